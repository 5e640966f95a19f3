"""Architecture parser: presets round-trip, malformed strings name the offending item."""

import pytest

from deepnets.nn.arch import PRESETS, ArchError, LayerSpec, format_arch, parse_arch
from deepnets.nn.network import FeedbackNet


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip(name: str) -> None:
    specs = parse_arch(name)
    assert parse_arch(format_arch(specs)) == specs
    assert parse_arch(PRESETS[name].upper()) == specs  # case-insensitive


def test_simpnet_items() -> None:
    assert parse_arch("simpnet") == [
        LayerSpec("conv", size=32, kernel=5),
        LayerSpec("maxpool", kernel=3, stride=2),
        LayerSpec("drop", rate=0.8),
        LayerSpec("full", size=500),
        LayerSpec("drop", rate=0.3),
        LayerSpec("output"),
    ]


def test_deepnet_is_deepernet_without_sums() -> None:
    deeper = [s for s in parse_arch("deepernet") if s.kind != "sum"]
    assert parse_arch("deepnet") == deeper
    assert parse_arch("deepernet")[-2] == LayerSpec("full", size=500)  # "full conn. 500"


def test_deepnet_s_has_eight_weight_layers_and_shapes() -> None:
    net = FeedbackNet("deepnet_s", method="bp")
    assert len(net.weight_layers) == 8
    # 32 -(maxpool 3 stride 3)-> 11 -(maxpool 2)-> 6 -(maxpool 2)-> 3; 64 * 3 * 3 inputs to full 500
    assert net.weight_layers[-2].in_features == 64 * 3 * 3


def test_untied_item_and_stride() -> None:
    assert parse_arch("untied 8 3x3; maxpool 3 stride 3; output")[:2] == [
        LayerSpec("untied", size=8, kernel=3),
        LayerSpec("maxpool", kernel=3, stride=3),
    ]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("conv 32 5x5; maxpol 3; output", ["item 2", "maxpol", "unknown layer"]),
        ("conv 32; output", ["item 1", "conv N KxK"]),
        ("conv 32 5x3; output", ["item 1", "square"]),
        ("conv 8 3x3; drop 1.5; output", ["item 2", "[0, 1)"]),
        ("conv 16 3x3; sum; output", ["item 2", "'sum' must follow"]),
        ("conv 16 3x3; conv 32 3x3; sum; output", ["item 3", "different widths"]),
        ("full 10; conv 3 3x3; output", ["item 2", "after a 'full'"]),
        ("conv 3 3x3", ["must end with 'output'"]),
        ("output; full 10; output", ["item 1", "last"]),
        ("conv 3 3x3;; output", ["item 2", "empty"]),
        ("", ["empty architecture"]),
        ("simpnett", ["item 1", "presets: simpnet"]),
        ("full 0; output", ["item 1", "positive"]),
    ],
)
def test_malformed(text: str, fragments: list[str]) -> None:
    with pytest.raises(ArchError) as info:
        parse_arch(text)
    for fragment in fragments:
        assert fragment in str(info.value)
