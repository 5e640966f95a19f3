"""Supplying R(0): ``feedback_init=`` of FeedbackNet and convert (issue 19, §5), in W's layout,
checked for shape, values, masks and rules, and used by the training step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepnets import FeedbackNet, convert, make_loss, train_step
from deepnets.nn.layers import feedback_layers

ARCH = "conv 3 3x3; untied 2 3x3; full 5; output"
SHAPE = (2, 4, 4)


def _given(net: FeedbackNet, seed: int = 7) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {name: torch.randn(layer.weight.shape, generator=gen)
            for name, layer in zip(net.weight_layer_names, net.weight_layers)}


def test_feedbacknet_takes_R_per_layer_in_W_layout() -> None:
    names = FeedbackNet(ARCH, in_shape=SHAPE).weight_layer_names
    assert names == ["conv0", "untied1", "full2", "output"]
    given = _given(FeedbackNet(ARCH, in_shape=SHAPE))
    net = FeedbackNet(ARCH, in_shape=SHAPE, method="urfb", feedback_init=given)
    untied = net.weight_layers[1]
    for name, layer in zip(names, net.weight_layers):
        expected = given[name]
        if layer is untied:  # padding positions are no connections: R is zero there
            expected = expected * untied.mask_weight
        assert torch.equal(layer.feedback_as_weight(), expected), name
    dense = net.weight_layers[2]
    assert torch.equal(dense.feedback, given["full2"].t())  # R itself is stored (in, out)
    # W is as without feedback_init (R is drawn, then replaced)
    plain = FeedbackNet(ARCH, in_shape=SHAPE, method="urfb")
    assert all(torch.equal(a.weight, b.weight) for a, b in zip(net.weight_layers,
                                                               plain.weight_layers))


def test_a_callable_per_layer_or_for_all_layers() -> None:
    half = FeedbackNet("full 5; output", in_shape=(3,), method="frfb",
                       feedback_init={"output": lambda w: w / 2})
    plain = FeedbackNet("full 5; output", in_shape=(3,), method="frfb")
    assert torch.equal(half.weight_layers[1].feedback_as_weight(), plain.weight_layers[1].weight / 2)
    assert torch.equal(half.weight_layers[0].feedback, plain.weight_layers[0].feedback)  # drawn
    seen = []

    def every(name: str, w: torch.Tensor) -> torch.Tensor:
        seen.append(name)
        return torch.ones_like(w)

    net = FeedbackNet("full 5; output", in_shape=(3,), method="kp", feedback_init=every)
    assert seen == ["full0", "output"]
    assert all(bool((m.feedback == 1).all()) for m in net.weight_layers)


def test_R_given_as_W_trains_as_the_symmetric_start() -> None:
    """R(0) = W(0)^t given by hand is the same network as symmetric_init, step for step."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(6, *SHAPE, generator=gen), torch.randint(0, 10, (6,), generator=gen)
    a = FeedbackNet(ARCH, in_shape=SHAPE, method="frfb", symmetric_init=True)
    b = FeedbackNet(ARCH, in_shape=SHAPE, method="frfb", feedback_init=lambda n, w: w.clone())
    for _ in range(2):
        for net in (a, b):
            train_step(net, x, y, make_loss("hinge", 10))
    for la, lb in zip(a.weight_layers, b.weight_layers):
        assert torch.equal(la.weight, lb.weight) and torch.equal(la.feedback, lb.feedback)


def test_masked_entries_of_a_given_R_are_zero() -> None:
    given = {"full0": torch.ones(6, 4), "output": torch.ones(10, 6)}
    net = FeedbackNet("full 6; output", in_shape=(4,), method="urfb", connectivity=0.5,
                      feedback_init=given)
    for layer in net.weight_layers:
        r = layer.feedback_as_weight()
        mask = layer.mask_feedback.t()
        assert torch.equal(r, mask) and 0 < int(mask.sum()) < mask.numel()


def test_convert_takes_R_by_module_name_and_keeps_the_model_dtype() -> None:
    plain = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 2))).double()
    r0 = torch.randn(4, 3, dtype=torch.float64)
    net = convert(plain, method="kp", feedback_init={"0": r0, "2.0": lambda w: -w})
    assert torch.equal(net[0].feedback_as_weight(), r0) and net[0].feedback.dtype == torch.float64
    assert torch.equal(net[2][0].feedback_as_weight(), -plain[2][0].weight)
    single = convert(nn.Linear(3, 2), method="frfb", feedback_init={"": torch.zeros(2, 3)})
    assert not single.feedback.any()


@pytest.mark.parametrize("method", ["bp", "dfa", "usf", "brsf", "frsf"])
def test_rules_without_a_free_R_refuse_it(method: str) -> None:
    with pytest.raises(ValueError, match=f"does not apply to method '{method}'"):
        FeedbackNet("full 5; output", in_shape=(3,), method=method,
                    feedback_init=lambda n, w: w.clone())
    with pytest.raises(ValueError, match=f"does not apply to method '{method}'"):
        convert(nn.Linear(3, 2), method=method, feedback_init={"": torch.zeros(2, 3)})


def test_bad_values_are_one_line_errors() -> None:
    build = lambda init: FeedbackNet("full 5; output", in_shape=(3,), method="urfb",
                                     feedback_init=init)
    cases = [
        ({"output": torch.zeros(5, 10)}, r"shape \(5, 10\), not W's \(10, 5\).*pass R.T"),
        ({"output": torch.zeros(10, 5, 1)}, "not W's"),
        ({"full0": torch.full((5, 3), float("nan"))}, "NaN or infinite"),
        ({"output": [[0.0] * 5] * 10}, "must be a tensor, got list"),
        ({"out": torch.zeros(10, 5)}, "names no weight layer 'out' .*full0, output"),
        (lambda name, w: None, r"feedback_init\['full0'\] must be a tensor"),
        (torch.zeros(10, 5), "must be a mapping"),
    ]
    for init, fragment in cases:
        with pytest.raises(ValueError, match=fragment) as err:
            build(init)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="not both"):
        FeedbackNet("full 5; output", in_shape=(3,), symmetric_init=True,
                    feedback_init={"output": torch.zeros(10, 5)})
    with pytest.raises(ValueError, match=r"convert: feedback_init\['0'\] has shape"):
        convert(nn.Sequential(nn.Linear(3, 2)), feedback_init={"0": torch.zeros(3, 2)})


def test_config_stays_json_and_untie_keeps_the_given_R() -> None:
    import json

    from deepnets import untie

    given = {"conv0": torch.randn(3, 2, 3, 3)}
    net = FeedbackNet("conv 3 3x3; output", in_shape=SHAPE, method="urfb", feedback_init=given)
    json.dumps(net.config)
    assert "feedback_init" not in net.config
    untied = untie(net, [0])
    assert len(feedback_layers(untied)) == 2
    first = untied.weight_layers[0]
    # every location starts from the given kernel (restricted to real connections)
    spread = given["conv0"].reshape(3, -1).expand_as(first.weight) * first.mask_weight
    assert torch.equal(first.feedback_as_weight(), spread)
