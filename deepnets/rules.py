"""The feedback rules: what R is and how it learns, for every weight layer of the engine.

A rule is a parameter of the same layers (:class:`deepnets.layers.FeedbackRule`, one field of
:class:`deepnets.layers.LayerOptions`), not a module per rule. This module holds the registry
(:data:`RULES`: each rule's parameters, defaults and source) and the rule-specific code the
layers call: the start of R, its update after every step, and direct feedback (DFA).

Rules (``method`` names; the same in ``FeedbackNet``, :func:`deepnets.convert`, the CLI, the
suite and the protocol vocabulary):

* ``bp``: no separate R; the error goes down through W^t (back-propagation).
* ``frfb``: feedback alignment (Lillicrap et al. 2016; the paper's fixed random feedback):
  R random (Glorot-uniform, independent of W) and fixed.
* ``urfb``: the paper's updated random feedback: Delta R = epsilon Delta W^t (default 1).
* ``kp``: Kolen-Pollack (Akrout et al. 2019): Delta R = Delta W^t, plus weight decay
  ``decay`` = lambda on W and R: W <- (1 - lr lambda) W + Delta W, R <- (1 - lr lambda) R +
  Delta W^t, so W - R^t shrinks by (1 - lr lambda) every step. Without decay KP is urfb with
  epsilon = 1. Default lambda = 1e-4 (see ``docs/rules.md`` for the sources).
* ``usf``: uniform sign-concordant feedback (Liao, Leibo & Poggio 2016): R = s sign(W)^t with
  s = ``scale`` x the layer's Glorot standard deviation sqrt(2 / (fan_in + fan_out)) (BioTorch's
  choice, after Xiao et al. 2018); recomputed from W after every update.
* ``brsf``: batchwise random-magnitude sign-concordant feedback (Liao et al. 2016): R = |M| (.)
  sign(W)^t with M Glorot-uniform, redrawn after every update (from torch's global generator,
  so a resumed run redraws the same M).
* ``frsf``: fixed random-magnitude sign-concordant feedback (Liao et al. 2016): as brsf, M drawn
  once (buffer ``feedback_magnitude``).
* ``dfa``: direct feedback alignment (Nokland 2016): no chained feedback; each hidden layer
  receives B_l e, e the output layer's error (the loss gradient at its output) and B_l fixed,
  random (Glorot-uniform with fans (C, n_l), drawn from the layer's ``direct_seed``; connectivity
  masks B too). Where the feedback enters depends on where the nonlinearity lives
  (:func:`link_direct_feedback`): in the paper's layers (sigma inside the layer) B_l e is shaped
  like the layer's output and delta_l = (B_l e) (.) sigma'(h_l); in converted models (plain
  ``Linear``/``Conv2d``, nonlinearity outside in plain torch) each layer sends B_l e, shaped like
  its *input*, down to the layer below, whose delta is what arrives through the ReLU/BN/pooling
  in between (Nokland's f'(a) (.) B e for a chain; residual additions sum the signals).
  The update order means nothing for DFA: no error travels through weights that change.

Connectivity masks apply to every R (masked entries stay zero) and to DFA's B.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "METHODS",
    "RULES",
    "DirectFeedback",
    "ParamSpec",
    "RuleSpec",
    "check_params",
    "direct_matrix",
    "link_direct_feedback",
    "resolved_params",
]


@dataclass(frozen=True)
class ParamSpec:
    """One rule parameter: its default and the range it must lie in."""

    default: float
    low: float = 0.0
    high: float = 1e6
    low_open: bool = False  # True: must be > low

    def check(self, method: str, name: str, value: Any) -> float:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"method {method!r}: {name} must be a number, got {value!r}") from None
        above = v > self.low if self.low_open else v >= self.low
        if not (math.isfinite(v) and above and v <= self.high):
            side = ">" if self.low_open else ">="
            raise ValueError(f"method {method!r}: {name} must be {side} {self.low:g} and at most "
                             f"{self.high:g}, got {value!r}")
        return v


@dataclass(frozen=True)
class RuleSpec:
    """A rule of the registry. ``feedback``: ``"transpose"`` (W^t, bp), ``"matrix"`` (an R of W's
    shape), ``"direct"`` (DFA's B_l from the output error)."""

    name: str
    label: str
    feedback: str
    summary: str
    source: str
    params: Mapping[str, ParamSpec] = field(default_factory=dict)


RULES: dict[str, RuleSpec] = {
    r.name: r
    for r in (
        RuleSpec("bp", "BP", "transpose", "error through W^t", "Rumelhart et al. 1986"),
        RuleSpec("frfb", "FRFB (FA)", "matrix", "R random, fixed",
                 "Lillicrap et al. 2016; Amit 2019 Sec. 3"),
        RuleSpec("urfb", "URFB", "matrix", "Delta R = epsilon Delta W^t", "Amit 2019 Sec. 3",
                 {"epsilon": ParamSpec(1.0)}),
        RuleSpec("kp", "KP", "matrix", "Delta R = Delta W^t, decay lambda on W and R",
                 "Akrout et al. 2019", {"decay": ParamSpec(1e-4, 0.0, 1e3)}),
        RuleSpec("usf", "uSF", "matrix", "R = scale * std * sign(W)^t",
                 "Liao, Leibo & Poggio 2016; Xiao et al. 2018",
                 {"scale": ParamSpec(1.0, 0.0, 1e6, low_open=True)}),
        RuleSpec("brsf", "brSF", "matrix", "R = |M| sign(W)^t, M redrawn every batch",
                 "Liao, Leibo & Poggio 2016"),
        RuleSpec("frsf", "frSF", "matrix", "R = |M| sign(W)^t, M fixed",
                 "Liao, Leibo & Poggio 2016; Moskovitz et al. 2018"),
        RuleSpec("dfa", "DFA", "direct", "hidden delta from B_l e", "Nokland 2016"),
    )
}  # fmt: skip
METHODS: tuple[str, ...] = tuple(RULES)
SIGN_RULES = ("usf", "brsf", "frsf")


def check_params(method: str, params: Mapping[str, Any]) -> dict[str, float]:
    """``params`` checked against ``method``'s (names and ranges), as floats; one-line ValueError."""
    if method not in RULES:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    allowed = RULES[method].params
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        known = f" (its parameters: {', '.join(allowed)})" if allowed else ""
        raise ValueError(f"method {method!r} takes no parameter {', '.join(unknown)}{known}")
    return {k: allowed[k].check(method, k, v) for k, v in params.items()}


def resolved_params(method: str, params: Mapping[str, Any]) -> dict[str, float]:
    """``params`` checked, with the defaults of the ones not given filled in."""
    given = check_params(method, params)
    return {k: given.get(k, p.default) for k, p in RULES[method].params.items()}


def param(rule: Any, name: str) -> float:
    """The value of a rule's parameter (its default when the rule object does not set it)."""
    spec = RULES[rule.method].params.get(name)
    if spec is None:
        raise KeyError(name)
    return float(rule.params.get(name, spec.default))


# ------------------------------------------------------------------ R: start and updates


def glorot_std(layer: nn.Module) -> float:
    """The standard deviation of the layer's Glorot-uniform draw, sqrt(2 / (fan_in + fan_out))."""
    return float(layer.glorot_bound) / math.sqrt(3.0)


def _masked(layer: nn.Module, r: Tensor) -> Tensor:
    """``r`` (W's layout) with R's connectivity mask applied."""
    m = layer.mask_feedback
    return r if m is None else r * layer._as_weight_layout(m)


@torch.no_grad()
def setup(layer: nn.Module, generator: torch.Generator | None) -> None:
    """The rule's own start of a freshly built layer (its R already drawn at random, masked):
    sign rules derive R from W (frsf keeps the magnitudes), DFA draws the seed of its B."""
    method = layer.rule.method
    if method == "dfa":
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        layer.register_buffer("direct_seed", torch.tensor(seed, dtype=torch.int64))
        layer.direct_hub = None
        return
    if method == "frsf":
        layer.register_buffer("feedback_magnitude", layer.feedback.abs())
    if method in SIGN_RULES:
        refresh(layer, first=True)


@torch.no_grad()
def refresh(layer: nn.Module, first: bool = False) -> None:
    """Recompute a sign rule's R from the current W (after W was set from outside, e.g. by
    :func:`deepnets.convert`); other rules keep their R. ``first``: brsf keeps the magnitudes
    drawn with the layer instead of redrawing them."""
    method = layer.rule.method
    if method not in SIGN_RULES:
        return
    r = layer._as_weight_layout(layer.feedback)
    sign = torch.sign(layer.weight.detach())
    if method == "usf":
        mag: Tensor | float = param(layer.rule, "scale") * glorot_std(layer)
    elif method == "frsf":
        mag = layer._as_weight_layout(layer.feedback_magnitude)
    elif first:
        mag = r.abs()
    else:  # brsf: fresh magnitudes every batch, from the global generator (checkpointed)
        bound = float(layer.glorot_bound)
        mag = torch.rand(r.shape, device=r.device, dtype=r.dtype).mul_(bound)
    r.copy_(_masked(layer, sign * mag))


@torch.no_grad()
def update_feedback(layer: nn.Module, grad_w: Tensor, lr: float) -> None:
    """R after the layer's W took its step ``-lr grad_w`` (``grad_w`` not yet masked):
    urfb R^t -= epsilon lr grad_W; kp R <- (1 - lr lambda) R - lr grad_W^t; sign rules R from
    the new W; frfb, bp and dfa nothing."""
    method = layer.rule.method
    if layer.feedback is None or method == "frfb":
        return
    if method in SIGN_RULES:
        refresh(layer)
        return
    r = layer._as_weight_layout(layer.feedback)
    if method == "kp":
        decay = param(layer.rule, "decay")
        if decay:
            r.mul_(1.0 - lr * decay)
        r.add_(_masked(layer, grad_w), alpha=-lr)
        return
    epsilon = param(layer.rule, "epsilon")
    if epsilon != 0.0:
        r.add_(_masked(layer, grad_w), alpha=-lr * epsilon)


def weight_decay(rule: Any) -> float:
    """The decay lambda the rule puts on W (kp), 0 for the others."""
    return param(rule, "decay") if rule.method == "kp" else 0.0


@torch.no_grad()
def copy_state(layer: nn.Module, source: nn.Module, spread: Any) -> None:
    """The rule's own state of ``source`` (a conv) into ``layer`` (its untied copy): frsf's
    fixed magnitudes (spread to every location) and DFA's seed."""
    if getattr(source, "feedback_magnitude", None) is not None:
        layer.feedback_magnitude.copy_(spread(source.feedback_magnitude))
    if getattr(source, "direct_seed", None) is not None:
        layer.direct_seed.copy_(source.direct_seed)


# ------------------------------------------------------------------ DFA


class DirectFeedback:
    """What a network's DFA layers share: its output layer, where B_l e enters (``"output"``:
    each layer's own output, sigma inside the layer; ``"input"``: each layer sends B_l e down
    through its input, the nonlinearity below being plain torch) and the output error e of the
    latest backward pass (set by the output layer, whose backward runs first)."""

    def __init__(self, output: nn.Module, inject: str) -> None:
        if inject not in ("output", "input"):
            raise ValueError(f"inject must be 'output' or 'input', got {inject!r}")
        self.output = output
        self.inject = inject
        self.error: Tensor | None = None


def link_direct_feedback(model: nn.Module, output: nn.Module | None = None,
                         inject: str | None = None) -> DirectFeedback | None:
    """Give the DFA layers of ``model`` one shared :class:`DirectFeedback`. ``output``: the output
    layer (default: the last feedback layer registered); ``inject`` (default: ``"output"`` when
    every hidden layer applies its own sigma, else ``"input"``). None when the model has no DFA
    layer. ``FeedbackNet`` and :func:`deepnets.convert` call it; hand-built models must."""
    from deepnets.layers import feedback_layers

    layers = [m for m in feedback_layers(model) if m.rule.method == "dfa"]
    if not layers:
        return None
    output = layers[-1] if output is None else output
    if inject is None:
        hidden = [m for m in layers if m is not output]
        inject = "output" if all(m.sat_scale is not None for m in hidden) else "input"
    hub = DirectFeedback(output, inject)
    for m in layers:
        m.direct_hub = hub
    return hub


def direct_matrix(layer: nn.Module, n_classes: int, shape: tuple[int, ...], device: torch.device,
                  dtype: torch.dtype) -> Tensor:
    """B_l of shape (C, prod(shape)): fixed, Glorot-uniform with fans (C, prod(shape)), drawn
    from the layer's ``direct_seed`` (so that a checkpoint rebuilds it) and masked with the
    layer's connectivity; cached per shape, device and dtype, and redrawn when ``direct_seed``
    is written or replaced (a loaded state). A redrawn B_l overwrites the cached tensor in
    place, so that a captured CUDA graph (:mod:`deepnets.capture`) reads the new one once an
    eager step has redrawn it (replays do not call this function)."""
    seed_buf = layer.direct_seed
    n = math.prod(shape)
    key = (n_classes, n, str(device), dtype)
    cache = layer.__dict__.setdefault("_direct_cache", {})
    drawn_from, version, b = cache.get(key, (None, None, None))
    if drawn_from is not seed_buf or version != seed_buf._version:
        gen = torch.Generator().manual_seed(int(seed_buf))  # a host read: first step only
        bound = math.sqrt(6.0 / (n_classes + n))
        fresh = (torch.rand(n_classes, n, generator=gen) * 2 - 1) * bound
        keep = layer.options.connectivity
        if keep < 1.0:
            fresh = fresh * (torch.rand(n_classes, n, generator=gen) < keep)
        fresh = fresh.to(device=device, dtype=dtype)
        b = fresh if b is None else b.copy_(fresh)
        cache[key] = (seed_buf, seed_buf._version, b)
    return b


def direct_backward(layer: nn.Module, x: Tensor, grad_out: Tensor, active: Tensor | None,
                    needs: tuple[bool, bool, bool], lr: float | None
                    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """DFA's backward of one layer: (error sent down, grad W, grad b). ``active``: the sigma'
    indicator of a layer with sigma inside (None without). With ``lr`` (sequential order) the
    layer is updated here and no weight gradients are returned."""
    hub: DirectFeedback | None = getattr(layer, "direct_hub", None)
    if hub is None:
        raise RuntimeError("a dfa layer needs its network's output error: build the network with "
                           "FeedbackNet or deepnets.convert, or call "
                           "deepnets.rules.link_direct_feedback(model)")
    need_in, need_w, need_b = needs
    n = grad_out.shape[0]
    if layer is hub.output:
        hub.error = grad_out.detach().reshape(n, -1)
        signal = grad_out
    elif hub.error is None:
        raise RuntimeError("dfa: the output layer's backward has not run before a hidden layer's")
    elif hub.inject == "output":
        e = hub.error
        b = direct_matrix(layer, e.shape[1], tuple(grad_out.shape[1:]), e.device, e.dtype)
        signal = (e @ b).view_as(grad_out).to(grad_out.dtype)
    else:
        signal = grad_out
    delta = signal if active is None else signal * active * layer.sat_scale
    grad_w = grad_b = None
    if need_w or need_b:
        _, grad_w, grad_b = layer.linear_grads(x, delta, False, need_w, need_b)
        if lr is not None:
            layer.apply_update(grad_w, grad_b, lr)
            grad_w = grad_b = None
    grad_in = None
    if need_in and hub.inject == "input":
        e = hub.error
        b = direct_matrix(layer, e.shape[1], tuple(x.shape[1:]), e.device, e.dtype)
        grad_in = (e @ b).view_as(x).to(x.dtype)
    return grad_in, grad_w, grad_b


def sends_error(layer: nn.Module) -> bool:
    """Whether the layer sends an error down to its input (all but DFA layers that inject at
    their own output)."""
    hub = getattr(layer, "direct_hub", None)
    return not (layer.rule.method == "dfa" and (hub is None or hub.inject == "output"))
