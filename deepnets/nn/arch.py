"""Architecture strings in the paper's notation (Section 4) and the four named presets.

An architecture is a ``;``-separated, case-insensitive list of items::

    conv N KxK       convolution, N filters of size KxK, 'same' zero padding, stride 1
    untied N KxK     locally connected layer with the connectivity of ``conv N KxK`` (Section 4.1)
    maxpool K        max over a KxK window, stride 2, zero padding ("Maxpool 3", Section 4)
    maxpool K stride S
    drop P           dropout; P is the fraction of units dropped ("Drop .8" drops 80%)
    full N           fully connected layer of N units (also written ``full conn. N``)
    sum              adds the outputs of the two preceding conv/untied layers (deepernet's SUM)
    output           the fully connected output layer of C units, no nonlinearity; always last

Presets: simpnet, deepernet and deepnet_s as printed in Section 4 (deepnet_s from the issue's
layer list, Figure 9/11).  ``deepnet``'s layer list did not survive in the paper's text, so
``deepnet`` here is deepernet without its ``sum`` layers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PRESETS", "WEIGHT_KINDS", "ArchError", "LayerSpec", "format_arch", "parse_arch"]

#: Architecture presets. ``deepnet``: its layer list did not survive in the paper's text
#: (Section 4 says "The deep architecture is given here." but prints nothing); we use
#: deepernet without its ``sum`` layers, i.e. the same network without residual connections.
PRESETS: dict[str, str] = {
    "simpnet": "conv 32 5x5; maxpool 3; drop .8; full 500; drop .3; output",
    "deepernet": (
        "conv 16 3x3; conv 16 3x3; SUM; conv 32 3x3; conv 32 3x3; SUM; maxpool 3; drop .5; "
        "conv 64 3x3; conv 64 3x3; SUM; maxpool 3; conv 128 3x3; conv 128 3x3; SUM; maxpool 3; "
        "drop .8; full conn. 500; output"
    ),
    "deepnet": (
        "conv 16 3x3; conv 16 3x3; conv 32 3x3; conv 32 3x3; maxpool 3; drop .5; "
        "conv 64 3x3; conv 64 3x3; maxpool 3; conv 128 3x3; conv 128 3x3; maxpool 3; "
        "drop .8; full 500; output"
    ),
    "deepnet_s": (
        "conv 16 3x3; conv 16 3x3; sum; maxpool 3 stride 3; drop .5; conv 64 3x3; "
        "conv 64 3x3; sum; maxpool 2; conv 64 2x2; conv 64 2x2; sum; maxpool 2; drop .5; "
        "full 500; output"
    ),
}

#: Layer kinds that carry feedforward weights W and feedback weights R.
WEIGHT_KINDS = ("conv", "untied", "full", "output")
DEFAULT_POOL_STRIDE = 2


class ArchError(ValueError):
    """A malformed architecture string; the message names the offending item."""


@dataclass(frozen=True)
class LayerSpec:
    """One item of an architecture string.

    ``size``: filters (conv/untied) or units (full); ``kernel``: filter or pooling window side;
    ``stride``: pooling stride; ``rate``: fraction dropped (drop).
    """

    kind: str
    size: int | None = None
    kernel: int | None = None
    stride: int | None = None
    rate: float | None = None


_NUM = r"(\d+)"
_PATTERNS: dict[str, re.Pattern[str]] = {
    "conv": re.compile(rf"conv\s+{_NUM}\s+{_NUM}\s*x\s*{_NUM}"),
    "untied": re.compile(rf"untied\s+{_NUM}\s+{_NUM}\s*x\s*{_NUM}"),
    "maxpool": re.compile(rf"maxpool\s+{_NUM}(?:\s+stride\s+{_NUM})?"),
    "drop": re.compile(r"drop\s+(\d*\.?\d+)"),
    "full": re.compile(rf"full(?:\s+conn\.?)?\s+{_NUM}"),
    "sum": re.compile(r"sum"),
    "output": re.compile(r"output"),
}
_USAGE = {
    "conv": "conv N KxK",
    "untied": "untied N KxK",
    "maxpool": "maxpool K [stride S]",
    "drop": "drop P (0 <= P < 1)",
    "full": "full N",
    "sum": "sum",
    "output": "output",
}


def _parse_item(item: str) -> LayerSpec:
    """Parse one normalised (lower-case, single-spaced) item; raise ValueError with the reason."""
    word = item.split(" ", 1)[0]
    if word not in _PATTERNS:
        raise ValueError(f"unknown layer '{word}' (known: {', '.join(_PATTERNS)})")
    m = _PATTERNS[word].fullmatch(item)
    if m is None:
        raise ValueError(f"expected '{_USAGE[word]}'")
    if word in ("conv", "untied"):
        size, kh, kw = (int(g) for g in m.groups())
        if kh != kw:
            raise ValueError("only square kernels are supported")
        if size < 1 or kh < 1:
            raise ValueError("filter count and kernel size must be positive")
        return LayerSpec(word, size=size, kernel=kh)
    if word == "maxpool":
        k = int(m.group(1))
        s = int(m.group(2)) if m.group(2) else DEFAULT_POOL_STRIDE
        if k < 1 or s < 1:
            raise ValueError("window and stride must be positive")
        return LayerSpec(word, kernel=k, stride=s)
    if word == "drop":
        rate = float(m.group(1))
        if not 0.0 <= rate < 1.0:
            raise ValueError("the dropped fraction must be in [0, 1)")
        return LayerSpec(word, rate=rate)
    if word == "full":
        size = int(m.group(1))
        if size < 1:
            raise ValueError("the number of units must be positive")
        return LayerSpec(word, size=size)
    return LayerSpec(word)


def _check_structure(specs: list[LayerSpec], raw: list[str]) -> None:
    """Whole-list rules: one ``output``, last; ``sum`` after two equal-width convs; no conv after full."""
    seen_full = False
    for i, spec in enumerate(specs):
        where = f"item {i + 1} ('{raw[i]}')"
        if spec.kind == "output" and i != len(specs) - 1:
            raise ArchError(f"{where}: 'output' must be the last item")
        if spec.kind in ("conv", "untied", "maxpool", "sum") and seen_full:
            raise ArchError(f"{where}: spatial layer after a 'full' layer")
        if spec.kind == "full":
            seen_full = True
        if spec.kind == "sum":
            prev = specs[max(i - 2, 0) : i]
            if len(prev) < 2 or any(p.kind not in ("conv", "untied") for p in prev):
                raise ArchError(f"{where}: 'sum' must follow two conv/untied layers")
            if prev[0].size != prev[1].size:
                raise ArchError(
                    f"{where}: 'sum' adds layers of different widths ({prev[0].size}, {prev[1].size})"
                )
    if not specs or specs[-1].kind != "output":
        raise ArchError("the architecture must end with 'output'")


def parse_arch(text: str) -> list[LayerSpec]:
    """Parse a preset name or a ``;``-separated architecture string (Section 4 notation).

    Raises ArchError naming the 1-based item and its text when an item is malformed.
    """
    key = text.strip().lower()
    if key in PRESETS:
        text = PRESETS[key]
    items = [re.sub(r"\s+", " ", it.strip().lower()) for it in text.split(";")]
    if items and items[-1] == "":
        items.pop()  # a trailing ';' is harmless
    if not items:
        raise ArchError(f"empty architecture (presets: {', '.join(PRESETS)})")
    specs = []
    for i, item in enumerate(items):
        if item == "":
            raise ArchError(f"item {i + 1} is empty")
        try:
            specs.append(_parse_item(item))
        except ValueError as err:
            hint = f"; presets: {', '.join(PRESETS)}" if len(items) == 1 else ""
            raise ArchError(f"item {i + 1} ('{item}'): {err}{hint}") from None
    _check_structure(specs, items)
    return specs


def format_arch(specs: list[LayerSpec]) -> str:
    """Canonical string of a layer list; ``parse_arch(format_arch(specs)) == specs``."""
    parts = []
    for s in specs:
        if s.kind in ("conv", "untied"):
            parts.append(f"{s.kind} {s.size} {s.kernel}x{s.kernel}")
        elif s.kind == "maxpool":
            stride = "" if s.stride == DEFAULT_POOL_STRIDE else f" stride {s.stride}"
            parts.append(f"maxpool {s.kernel}{stride}")
        elif s.kind == "drop":
            parts.append(f"drop {s.rate!r}")
        elif s.kind == "full":
            parts.append(f"full {s.size}")
        else:
            parts.append(s.kind)
    return "; ".join(parts)
