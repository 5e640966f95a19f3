"""Layers with feedforward weights W and separate feedback weights R (Section 3.1, Section 4.1).

Every weight layer computes ``sigma(W x + b)`` (or ``W x + b`` at the output layer) and, in the
backward pass, sends ``R delta`` down instead of ``W^t delta`` (eq. 2 with R). What R is and how
it learns is the layer's rule (a :class:`deepnets.rules.Rule`, one field of its
:class:`LayerOptions`; ``FeedbackRule.make(name, **params)`` builds one from the registry
:data:`deepnets.rules.RULES`). The layer hands its rule tensors -- W, R^t in W's layout, the
gradient of its step -- and never itself; it keeps R's connectivity mask after the rule has
changed R. The error goes down through the rule's ``error_path``: W^t (bp), R, or, for direct
feedback (dfa), B_l e from the network's output error (:class:`DirectFeedback`).

Storage of R: for :class:`FeedbackLinear`, ``feedback`` is the matrix R itself, shape
(in, out), i.e. the transpose of W's (out, in).  For :class:`FeedbackConv2d` and
:class:`FeedbackUntied2d`, R is the transposed convolution whose kernel ``feedback`` has W's
layout (the layout torch's transposed convolution takes), so entry ``[o, i, a, b]`` is the
feedback weight on the connection that ``weight[o, i, a, b]`` carries forward.
:meth:`FeedbackLayer.feedback_as_weight` returns R^t in W's layout for every layer.

W and R are drawn independently from Glorot-uniform (Section 4, ref. [6]); with
``connectivity < 1`` independent fixed masks keep that fraction of W's and of R's entries
(Section 4: "half of these connections are randomly set to 0"); masked entries stay zero,
and unmasked R entries get their Hebbian increment even where W is masked
(``LayerOptions.shared_masks``: R takes W's mask instead).

Two paths compute the same numbers (issue 17): the reference path (``fast = False``:
:class:`ReferenceFunction` on the plain-torch equations of :mod:`deepnets.nn.reference`, the pool
and dropout there too) and the fast path (``fast = True``, the default: :class:`FeedbackFunction`,
:class:`PooledFeedbackFunction` and the kernels of :mod:`deepnets.nn.kernels`), whose device- and
dtype-specific tricks :func:`deepnets.nn.policy.policy_for` decides in one place;
:func:`set_fast` chooses the path for a whole model.

The autograd Functions live here too. A layer learns through one
path, :meth:`FeedbackLayer.step` (SGD on W and b, then R as its rule says), in both update orders
(Remark 1): in the simultaneous order the caller steps every layer after the backward pass; a
forward pass run inside :func:`sequential_steps` binds the step size to the graph, and its
backward pass then steps each layer before sending the feedback down through the updated R.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deepnets.nn import reference
from deepnets.nn.kernels import (
    dropout_noise,
    exact_scale,
    from_planes,
    location_major,
    pool_backward,
    prefer_channels_last,
    same_format,
    saturation_backward,
    to_planes,
    zero_pad_pool,
)
from deepnets.nn.policy import ExecutionPolicy, policy_for
from deepnets.nn.reference import ConvEquations, DenseEquations, Gradients, UntiedEquations
from deepnets.rules import METHODS, Rule
from deepnets.rules import make as make_rule
from deepnets.rules.base import LinearMaps, Start, Step

__all__ = [
    "METHODS",
    "UNTIED_INITS",
    "BackwardRoute",
    "DirectFeedback",
    "Dropout",
    "FeedbackConv2d",
    "FeedbackFunction",
    "FeedbackLayer",
    "FeedbackLinear",
    "FeedbackRule",
    "FeedbackUntied2d",
    "LayerOptions",
    "PooledFeedbackFunction",
    "ReferenceFunction",
    "ZeroPadMaxPool2d",
    "feedback_layers",
    "link_direct_feedback",
    "route_backward",
    "sequential_steps",
    "set_fast",
]

#: How an untied layer's W and R start (:class:`FeedbackUntied2d`): ``replicated``, one conv
#: filter bank at every location (the author's code, and the default); ``independent``, drawn
#: separately at each location.
UNTIED_INITS = ("replicated", "independent")


class FeedbackRule:
    """Builds a layer's rule: ``FeedbackRule.make("urfb", epsilon=0.5)`` is
    :func:`deepnets.rules.make`; the rule is a :class:`deepnets.rules.Rule` (each rule's class
    in its own module of :mod:`deepnets.rules`)."""

    @staticmethod
    def make(method: str, epsilon: float | None = None, **params: float) -> Rule:
        """The rule ``method`` with its parameters (``epsilon``: urfb's), defaults filled in."""
        if epsilon is not None:
            params = {"epsilon": epsilon, **params}
        return make_rule(method, **params)


@dataclass(frozen=True)
class LayerOptions:
    """A weight layer's feedback rule and options, shared by all the layers of a network.

    ``connectivity``: fraction of W's and of R's entries kept by independent fixed masks
    (Section 4's 50% is 0.5; ``shared_masks``: one mask for both). ``sat_scale``: s of
    sigma(h) = clip(s h, -1, 1) (Remark 2), None for the linear output layer.
    ``symmetric_init``: R(0) = W(0)^t (and R's mask = W's).
    ``bias``: the layer has a bias b (initialised at 0, learnt like W with a constant input 1);
    eq. (1) has none, and :class:`deepnets.nn.network.FeedbackNet` builds none by default.
    ``sigma_prime_down``: a saturating layer sends the error down as R delta with
    delta = sigma'(h) (.) g (eq. (2); default); False: a dense or conv layer sends R g, without
    its sigma' (the slope s included), as the author's code after April 2019 does
    (``docs/results.md``); untied layers keep R delta, as the author's do. A layer's own update
    keeps delta x^t either way, and the exact route (the alignment probe's back-propagation)
    keeps sigma'.
    ``shared_masks``: with ``connectivity < 1``, R's mask is W's (every feedback connection
    has its feedforward partner, and R^t has no entry where W has none) instead of drawn
    separately as the paper does (Section 4: "separately for feedforward and feedback"); W and
    the values of R are drawn as before, only R's mask changes. Rules with an R only; not
    with ``symmetric_init``, which gives R W's mask already.
    """

    rule: Rule = field(default_factory=lambda: make_rule("urfb"))
    connectivity: float = 1.0
    sat_scale: float | None = 0.5
    symmetric_init: bool = False
    bias: bool = True
    sigma_prime_down: bool = True
    shared_masks: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.connectivity <= 1.0:
            raise ValueError(f"connectivity must be in (0, 1], got {self.connectivity}")
        if self.sat_scale is not None and not self.sat_scale > 0:
            raise ValueError(f"sat_scale must be positive, got {self.sat_scale}")
        if not self.sigma_prime_down and self.rule.direct:
            raise ValueError(f"sigma_prime_down=False changes the error a layer sends down; "
                             f"method {self.rule.method!r} sends its output error to each layer "
                             "directly")
        for name in ("symmetric_init", "bias", "sigma_prime_down", "shared_masks"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(  # noqa: TRY004 (bad input is a ValueError, as everywhere here)
                    f"{name} must be True or False, got {getattr(self, name)!r:.60}")
        if self.shared_masks:
            self._check_shared_masks()
        if self.symmetric_init and not self.rule.symmetric_init_applies:
            raise ValueError(f"symmetric_init does not apply to method {self.rule.method!r} "
                             "(its feedback is not a free matrix)")

    def _check_shared_masks(self) -> None:
        """``shared_masks`` needs masks (connectivity < 1), an R to mask, and no
        ``symmetric_init`` (which shares the mask already)."""
        if self.connectivity >= 1.0:
            raise ValueError("shared_masks gives R W's connectivity mask: it needs "
                             "connectivity < 1 (got 1)")
        if not self.rule.has_feedback:
            raise ValueError(f"shared_masks: method {self.rule.method!r} has no feedback matrix "
                             "R to mask")
        if self.symmetric_init:
            raise ValueError("shared_masks: symmetric_init gives R W's mask already")


class BackwardRoute:
    """Which weights a backward pass sends the error down through: the layers' R (the method's
    own feedback) or, with ``exact`` set, W^t (exact back-propagation). A forward pass inside
    :func:`route_backward` binds the route to its graph, so that one forward pass (one dropout
    mask) can be back-propagated both ways (the alignment probe, :mod:`deepnets.nn.alignment`)."""

    def __init__(self) -> None:
        self.exact = False


_ROUTE: contextvars.ContextVar[BackwardRoute | None] = contextvars.ContextVar(
    "backward_route", default=None
)


@contextlib.contextmanager
def route_backward(route: BackwardRoute) -> Iterator[None]:
    """Forward passes inside this context take their backward route from ``route``."""
    token = _ROUTE.set(route)
    try:
        yield
    finally:
        _ROUTE.reset(token)


@contextlib.contextmanager
def sequential_steps(model: nn.Module, lr: float) -> Iterator[None]:
    """Forward passes of ``model`` inside this context learn in the sequential order of Remark 1:
    their backward pass steps each feedback layer (:meth:`FeedbackLayer.step`, size ``lr``)
    before sending its feedback down. The step size is bound to the graph at the forward pass."""
    layers = feedback_layers(model)
    for layer in layers:
        layer.sequential_lr = float(lr)
    try:
        yield
    finally:
        for layer in layers:
            layer.sequential_lr = None


class FeedbackFunction(torch.autograd.Function):
    """Linear map (dense / conv / untied) fused with the saturated linearity; backward through R.

    Forward:  h = W x + b,  x_out = sigma(h) = clip(s h, -1, 1) (Remark 2; none at the output).
    Backward: delta = sigma'(h) * g with sigma'(h) = s 1[|s h| < 1]; the weight gradient is the
    Hebbian product delta x^T (eq. 2's first line) and the error sent to the layer below is
    R delta (eq. 2 with R in place of W^t), or R g where the layer's options say
    ``sigma_prime_down=False`` (:class:`LayerOptions`). For conv layers both come from one fused
    ``aten.convolution_backward`` call (two calls without sigma' down).
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor, layer: FeedbackLayer,
                sequential_lr: float | None, policy: ExecutionPolicy) -> Tensor:
        w, b, folded = _compute_weights(layer, x, weight, bias, policy)
        ctx.layer, ctx.sequential_lr, ctx.route = layer, sequential_lr, _ROUTE.get()
        ctx.policy = policy
        layer.last_input_shape = tuple(x.shape)
        s = layer.sat_scale
        if s is None:
            ctx.save_for_backward(x)
            return layer.linear_op(x, w, b)
        if folded:  # s is inside W and b: clip(W x + b) in one pass where the layer can
            out = layer.saturated_op(x, w, b)
        else:
            out = layer.linear_op(x, w, b).mul_(s).clamp_(-1.0, 1.0)
        # sigma'(h) = s 1[|s h| < 1] = s 1[|out| < 1]: the output is all the backward needs.
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        layer: FeedbackLayer = ctx.layer
        x, *out = ctx.saved_tensors  # out: [sigma(h)] for a saturating layer
        exact = ctx.route is not None and ctx.route.exact
        if layer.rule.direct and not exact:  # dfa: delta from B_l e
            act = (out[0].abs() < 1) if out else None
            need = tuple(ctx.needs_input_grad[:3])
            grads = layer.direct_backward(x, grad_out, act, need, ctx.sequential_lr)
            return (*grads, None, None, None)
        if not out:
            return (*FeedbackFunction.send(ctx, layer, x, grad_out), None, None, None)
        scale = _pending_scale(layer, ctx.policy)
        if scale == 1.0:
            delta = saturation_backward(grad_out, out[0], layer.sat_scale)
        else:  # delta / s: s goes into the gradients and the weights delta goes through
            delta = torch.ops.aten.hardtanh_backward(grad_out, out[0], -1.0, 1.0)
        down = grad_out if layer.sends_error_without_sigma_prime else None
        return (*FeedbackFunction.send(ctx, layer, x, delta, scale, down), None, None, None)

    @staticmethod
    def send(ctx: Any, layer: FeedbackLayer, x: Tensor, delta: Tensor, scale: float = 1.0,
             down: Tensor | None = None) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """(error for the layer below, grad W, grad b) from the layer's delta: through R (or
        W^t on the exact route), with the update order bound at the forward pass (both paths:
        the gradients come from :meth:`FeedbackLayer.gradients`).

        ``scale``: ``delta`` is the layer's delta divided by ``scale``, a power of two that
        multiplies the gradients and the weights the error goes through instead (the same
        numbers, without a pass over a conv layer's delta).
        ``down``: the error to send down through R instead of delta (the error g that reached
        the layer, for ``sigma_prime_down=False``: :class:`LayerOptions`); not on the exact
        route, which is back-propagation."""
        need_in, need_w, need_b = ctx.needs_input_grad[:3]
        lr = ctx.sequential_lr
        exact = ctx.route is not None and ctx.route.exact
        if exact:
            down = None

        def grads(signal: Tensor, signal_scale: float, i: bool, w: bool, b: bool
                  ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
            through = layer.weight if exact else None  # W^t for exact BP (alignment probe)
            if signal_scale != 1.0 and i:
                through = (layer.feedback_as_weight() if through is None
                           else through) * signal_scale
            gi, gw, gb = layer.gradients(x, signal, i, w, b, through=through)
            if signal_scale != 1.0:
                gw = None if gw is None else gw.mul_(signal_scale)
                gb = None if gb is None else gb.mul_(signal_scale)
            return _master_grads(layer, gi, gw, gb)

        if down is None and (exact or lr is None):
            # simultaneous: one (fused) call; the caller steps the layer
            return grads(delta, scale, need_in, need_w, need_b)
        gw = gb = None
        if need_w or need_b:  # sequential (Remark 1): the layer's step first ...
            _, gw, gb = grads(delta, scale, False, need_w, need_b)
            if lr is not None:
                layer.step(gw, gb, lr)
                gw = gb = None
        # ... then send the feedback down through the updated R.
        sent = delta if down is None else down
        gi = grads(sent, scale if down is None else 1.0, True, False, False)[0] if need_in else None
        return gi, gw, gb


class PooledFeedbackFunction(torch.autograd.Function):
    """A spatial layer and the zero-padded max pool after it, in one: pool(sigma(W x + b)).

    sigma is monotone, so pool(clip(s h, -1, 1)) = clip(pool(s h), -1, 1): the pool runs on s h
    and only its (~4x smaller) output is clipped. The pool's gradient reaches only each window's
    argmax, where sigma' = s 1[|pooled| < 1]; so delta = pool'(g s 1[|pooled| < 1]) without a
    pass over the layer's full output. (Where several entries of a window saturate at the
    maximum, the argmax may be another of them than pool(sigma(h))'s, but sigma' is 0 at all of
    them: the same delta.) Backward as :class:`FeedbackFunction`'s (not for dfa, whose error
    enters at the layer's own output).
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor, layer: FeedbackLayer,
                sequential_lr: float | None, pool: ZeroPadMaxPool2d, policy: ExecutionPolicy
                ) -> Tensor:
        w, b, folded = _compute_weights(layer, x, weight, bias, policy)
        layer.last_input_shape = tuple(x.shape)
        h = layer.linear_op(x, w, b)
        if not folded:
            h.mul_(layer.sat_scale)
        # an untied layer's output lies as (H, W, N, C): pool it as one image of N*C channels
        planes = (h.shape[0], h.shape[1]) if location_major(h) else None
        out, idx, plan, ref = zero_pad_pool(to_planes(h) if planes else h, pool.kernel_size,
                                            pool.stride, policy.implicit_pool_padding)
        out.clamp_(-1.0, 1.0)
        ctx.layer, ctx.sequential_lr, ctx.route = layer, sequential_lr, _ROUTE.get()
        ctx.policy = policy
        ctx.plan, ctx.planes = plan, planes
        ctx.save_for_backward(x, out, idx, ref)
        return from_planes(out, *planes) if planes else out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        layer: FeedbackLayer = ctx.layer
        x, out, idx, ref = ctx.saved_tensors
        planes = ctx.planes
        g = to_planes(grad_out) if planes else same_format(grad_out, out)
        scale = _pending_scale(layer, ctx.policy)
        if scale == 1.0:
            g = saturation_backward(g, out, layer.sat_scale)
        else:  # as in FeedbackFunction.backward
            g = torch.ops.aten.hardtanh_backward(g, out, -1.0, 1.0)
        delta = pool_backward(g, out, idx, ctx.plan, ref, owned=True)
        delta = from_planes(delta, *planes) if planes else delta
        return (*FeedbackFunction.send(ctx, layer, x, delta, scale), None, None, None, None)


class ReferenceFunction(torch.autograd.Function):
    """A weight layer on the reference path (``fast = False``): the plain-torch equations of
    :mod:`deepnets.nn.reference` for the layer's kind (:meth:`FeedbackLayer.equations`).

    Forward:  h = W x + b (eq. (1)), x_out = sigma(h) (Remark 2; none at the output layer).
    Backward: delta = sigma'(h) (.) g (eq. (2), (3)); the gradients and the error sent down
    (R delta, or W^t delta on the exact route; R g without sigma' down) go through
    :meth:`FeedbackFunction.send`, which applies the update order (Remark 1) as on the fast
    path; direct feedback (dfa) through :meth:`FeedbackLayer.direct_backward`. Computes in the
    input's dtype (bf16 compute keeps float32 masters), like the fast path.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, layer: FeedbackLayer,
                sequential_lr: float | None) -> Tensor:
        w, b = _in_compute_dtype(x, weight, bias)
        ctx.layer, ctx.sequential_lr, ctx.route = layer, sequential_lr, _ROUTE.get()
        layer.last_input_shape = tuple(x.shape)
        h = layer.equations().linear(x, w, b)
        ctx.save_for_backward(x, h)
        s = layer.sat_scale
        return h if s is None else reference.saturation(h, s)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        layer: FeedbackLayer = ctx.layer
        x, h = ctx.saved_tensors
        s = layer.sat_scale
        if layer.rule.direct and not (ctx.route is not None and ctx.route.exact):
            active = None if s is None else reference.unsaturated(h, s)
            grads = layer.direct_backward(x, grad_out, active, tuple(ctx.needs_input_grad[:3]),
                                          ctx.sequential_lr)
            return (*grads, None, None)
        delta = grad_out if s is None else reference.saturation_delta(grad_out, h, s)
        down = grad_out if layer.sends_error_without_sigma_prime else None
        return (*FeedbackFunction.send(ctx, layer, x, delta, down=down), None, None)


def _in_compute_dtype(x: Tensor, weight: Tensor, bias: Tensor | None
                      ) -> tuple[Tensor, Tensor | None]:
    """W and b in the input's dtype, the compute dtype (bf16 compute keeps float32 masters)."""
    if x.dtype != weight.dtype and x.is_floating_point():
        return weight.to(x.dtype), None if bias is None else bias.to(x.dtype)
    return weight, bias


def _compute_weights(layer: FeedbackLayer, x: Tensor, weight: Tensor, bias: Tensor | None,
                     policy: ExecutionPolicy) -> tuple[Tensor, Tensor | None, bool]:
    """(W, b, folded) for the fast forward pass: in the compute dtype, and with the
    saturation's s folded in (``folded``) where the policy folds, that is exact (s a power of
    two) and cheaper than scaling the output (spatial layers)."""
    weight, bias = _in_compute_dtype(x, weight, bias)
    if _pending_scale(layer, policy) == 1.0:
        return weight, bias, False
    s = layer.sat_scale
    return weight * s, None if bias is None else bias * s, True


def _pending_scale(layer: FeedbackLayer, policy: ExecutionPolicy) -> float:
    """The s that a saturating layer's backward leaves to :meth:`FeedbackFunction.send` (s when
    the policy folds, s is exact and the layer's weights are smaller than its delta, as for
    spatial layers), else 1."""
    s = layer.sat_scale
    fold = s is not None and policy.fold_scale and layer.fold_scale and exact_scale(s)
    return s if fold else 1.0


def _master_grads(layer: FeedbackLayer, grad_in: Tensor | None, grad_w: Tensor | None,
                  grad_b: Tensor | None) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """Weight gradients in the masters' dtype (fp32 Hebbian updates under bf16 compute)."""
    if grad_w is not None and grad_w.dtype != layer.weight.dtype:
        grad_w = grad_w.to(layer.weight.dtype)
    if grad_b is not None and layer.bias is not None and grad_b.dtype != layer.bias.dtype:
        grad_b = grad_b.to(layer.bias.dtype)
    return grad_in, grad_w, grad_b


def _same_padding(k: int) -> tuple[int, int]:
    """'same' zero padding (before, after) for a stride-1 window of side k; the extra on the after side."""
    before = (k - 1) // 2
    return before, k - 1 - before


class FeedbackLayer(nn.Module):
    """Base of the weight layers: W (``weight``), b (``bias``), R (``feedback``) and masks.

    Subclasses supply ``linear_op`` (h = W x + b), ``linear_grads`` (input gradient through R,
    weight and bias gradients) and the layout of R.
    """

    weight: nn.Parameter
    bias: nn.Parameter | None
    feedback: nn.Parameter | None
    mask_weight: Tensor | None
    mask_feedback: Tensor | None
    #: fold sigma's s into W and b (when exact) rather than scale the output: W is the smaller
    fold_scale: bool = False
    #: the fast path (False: the reference path, :mod:`deepnets.nn.reference`; :func:`set_fast`)
    fast: bool = True
    #: sends R delta down even with ``sigma_prime_down=False`` (untied layers, as the author's
    #: sparse layers: ``grad_sparse_fully_connected`` applies sigma' first)
    sigma_prime_always_down: bool = False

    def __init__(
        self,
        shape: tuple[int, ...],
        bias_shape: tuple[int, ...],
        fan_in: int,
        fan_out: int,
        options: LayerOptions,
        generator: torch.Generator | None,
        structure: Tensor | None = None,
        draw_shape: tuple[int, ...] | None = None,
    ) -> None:
        """``draw_shape``: draw W, R and the masks in this shape (default: ``shape``) and
        repeat them along ``shape``'s leading dimension (an untied layer's replicated start)."""
        super().__init__()
        self.options = options
        self.rule = options.rule
        self.sat_scale = options.sat_scale
        connectivity = options.connectivity
        _check_memory(shape)
        bound = math.sqrt(6.0 / (fan_in + fan_out))  # Glorot-uniform, ref. [6]
        # Always draw W, R and both masks in this order, so W is the same for every method.
        drawn = shape if draw_shape is None else draw_shape
        w = (torch.rand(drawn, generator=generator) * 2 - 1) * bound
        r = (torch.rand(drawn, generator=generator) * 2 - 1) * bound
        mw = torch.rand(drawn, generator=generator) < connectivity
        mr = torch.rand(drawn, generator=generator) < connectivity
        if draw_shape is not None:
            w, r, mw, mr = (t.expand(shape).clone() for t in (w, r, mw, mr))
        if options.symmetric_init:
            r, mr = w.clone(), mw.clone()
        elif options.shared_masks:
            mr = mw.clone()
        if structure is not None:
            mw, mr = mw & structure, mr & structure
        masked = connectivity < 1.0 or structure is not None
        self.weight = nn.Parameter(w * mw if masked else w)
        if options.bias:
            self.bias = nn.Parameter(torch.zeros(bias_shape))
        else:
            self.register_parameter("bias", None)
        fb = self.rule.has_feedback
        # R is a parameter that autograd never differentiates (requires_grad=False): the rule
        # writes its direction into R.grad, so net.parameters() hands W, b and R to a torch
        # optimizer; the state-dict key is "feedback", as when R was a buffer.
        self.register_parameter("feedback", nn.Parameter(
            self._to_feedback_layout(r * mr if masked else r), requires_grad=False) if fb else None)
        self.register_buffer("mask_weight", mw.float() if masked else None)
        self.register_buffer(
            "mask_feedback", self._to_feedback_layout(mr.float()) if masked and fb else None
        )
        self._frozen = False
        self.glorot_bound = bound
        #: the step size of the sequential order while a forward pass runs inside
        #: :func:`sequential_steps`; None: backward returns the gradients
        self.sequential_lr: float | None = None
        self.last_input_shape: tuple[int, ...] = ()
        self.direct_hub: DirectFeedback | None = None  # direct feedback's wiring (dfa)
        with torch.no_grad():
            r_view = self._as_weight_layout(self.feedback) if fb else None
            state = self.rule.start(Start(self.weight.detach(), r_view, bound, generator))
        self._keep_feedback_mask()
        #: names of the rule's own tensors -> whether each is shaped like W (kept in R's layout)
        self._rule_state: dict[str, bool] = {}
        for name, t in state.items():
            shaped_like_w = tuple(t.shape) == tuple(self.weight.shape)
            self.register_buffer(name, self._to_feedback_layout(t) if shaped_like_w else t)
            self._rule_state[name] = shaped_like_w

    # --- layout of R ---------------------------------------------------------------------
    def _to_feedback_layout(self, t: Tensor) -> Tensor:
        """A tensor in W's layout -> R's storage layout (identity except for dense layers)."""
        return t

    def _as_weight_layout(self, t: Tensor) -> Tensor:
        """A tensor in R's storage layout -> W's layout (a view)."""
        return t

    def connection_entries(self, t: Tensor) -> Tensor:
        """The entries of ``t`` (in W's layout) that are real connections, flattened."""
        return t.reshape(-1)

    def feedback_as_weight(self) -> Tensor:
        """R^t in W's layout (W itself for bp): the weights the error travels back through."""
        return self.weight if self.feedback is None else self._as_weight_layout(self.feedback)

    def rule_state(self) -> dict[str, Tensor]:
        """The rule's own tensors (:meth:`deepnets.rules.Rule.start`); W-shaped ones in W's
        layout."""
        return {name: self._as_weight_layout(getattr(self, name)) if like_w else getattr(self, name)
                for name, like_w in self._rule_state.items()}

    @torch.no_grad()
    def _keep_feedback_mask(self) -> None:
        """Masked entries of R back to zero (after the rule has changed R)."""
        if self.feedback is not None and self.mask_feedback is not None:
            self.feedback.mul_(self.mask_feedback)

    @torch.no_grad()
    def refresh_feedback(self) -> None:
        """R again from W as the rule says (sign rules), after W was set from outside
        (:func:`deepnets.convert`)."""
        if self.feedback is not None:
            self.rule.refresh(self.weight.detach(), self._as_weight_layout(self.feedback),
                              self.rule_state(), self.glorot_bound)
            self._keep_feedback_mask()

    def linear_maps(self) -> LinearMaps:
        """W x and the mean Hebbian product <y x^t> as functions, for rules that drive the
        layer with inputs of their own (:class:`deepnets.rules.base.LinearMaps`)."""
        w = self.weight.detach()

        def hebbian(x: Tensor, y: Tensor) -> Tensor:
            uses = y.numel() // self._output_units()  # examples x positions sharing W
            return self.gradients(x, y, False, True, False)[1].div_(uses)

        return LinearMaps(forward=lambda x: self.linear_map(x, w, None), hebbian=hebbian,
                          input_shape=self.last_input_shape)

    def _output_units(self) -> int:
        """The number of distinct output units W feeds (its first dimension: the output
        features or channels)."""
        return self.weight.shape[0]

    def _through(self, through: Tensor | None, delta: Tensor) -> Tensor:
        """The weights the error goes down through (``through`` or R^t), in delta's dtype."""
        fb = self.feedback_as_weight() if through is None else through
        return fb if fb.dtype == delta.dtype else fb.to(delta.dtype)

    # --- the linear map ------------------------------------------------------------------
    def equations(self) -> DenseEquations | ConvEquations | UntiedEquations:
        """The layer's equations on the reference path (:mod:`deepnets.nn.reference`)."""
        raise NotImplementedError

    def linear_map(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """h = W x + b (eq. 1) on the layer's path."""
        if self.fast:
            return self.linear_op(x, weight, bias)
        return self.equations().linear(x, weight, bias)

    def gradients(self, x: Tensor, delta: Tensor, need_in: bool, need_w: bool, need_b: bool,
                  through: Tensor | None = None) -> Gradients:
        """(R delta, delta x^t, sum of delta) on the layer's path (see :meth:`linear_grads`)."""
        if self.fast:
            return self.linear_grads(x, delta, need_in, need_w, need_b, through)
        return self.equations().grads(x, delta, self._through(through, delta), need_in, need_w,
                                      need_b)

    def linear_op(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        """h = W x + b (eq. 1) on the fast path."""
        raise NotImplementedError

    def saturated_op(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        """clip(W x + b, -1, 1) (s already inside W and b)."""
        return self.linear_op(x, weight, bias).clamp_(-1.0, 1.0)

    def linear_grads(
        self, x: Tensor, delta: Tensor, need_in: bool, need_w: bool, need_b: bool,
        through: Tensor | None = None,
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """(R delta, delta x^t, sum of delta) on the fast path: the error for the layer below
        and the gradients.

        ``through``: the weights (in W's layout) to send the error down through instead of
        R^t, e.g. W itself for exact back-propagation."""
        raise NotImplementedError

    @property
    def method(self) -> str:
        """The feedback rule's name (a key of :data:`deepnets.rules.RULES`)."""
        return self.rule.method

    @property
    def sends_error_without_sigma_prime(self) -> bool:
        """Whether the layer sends R g down instead of R delta (:class:`LayerOptions`'
        ``sigma_prime_down``)."""
        return (self.sat_scale is not None and not self.options.sigma_prime_down
                and not self.sigma_prime_always_down)

    def forward(self, x: Tensor, pool: ZeroPadMaxPool2d | None = None) -> Tensor:
        """sigma(W x + b); with ``pool`` (a spatial layer), that pool of it, on the fast path
        computed in one (:class:`PooledFeedbackFunction`, used by
        :class:`deepnets.nn.network.FeedbackNet`) unless the pool routes the error to all
        tied maxima or the layer sends R g down (``sigma_prime_down=False``)."""
        policy = policy_for(x, self.fast)
        if policy.reference:
            out = ReferenceFunction.apply(x, self.weight, self.bias, self, self.sequential_lr)
            return out if pool is None else pool(out)
        if pool is not None and not (pool.all_ties or self.sends_error_without_sigma_prime):
            return PooledFeedbackFunction.apply(x, self.weight, self.bias, self,
                                                self.sequential_lr, pool, policy)
        # the pool's own backward routes g (the fused one routes delta)
        out = FeedbackFunction.apply(x, self.weight, self.bias, self, self.sequential_lr, policy)
        return out if pool is None else pool(out)

    # --- learning ------------------------------------------------------------------------
    @property
    def frozen(self) -> bool:
        """A frozen layer keeps W and R fixed but still passes feedback down (Section 4.1, Fig. 9)."""
        return self._frozen

    @frozen.setter
    def frozen(self, value: bool) -> None:
        self._frozen = bool(value)
        self.weight.requires_grad_(not value)
        if self.bias is not None:
            self.bias.requires_grad_(not value)

    @torch.no_grad()
    def step(self, grad_w: Tensor, grad_b: Tensor | None, lr: float) -> None:
        """The layer's one step, in both update orders (Remark 1): SGD on W (eq. 3: dW =
        -lr grad_W, masked entries kept zero; W <- (1 - lr lambda) W + dW with the rule's
        ``weight_decay`` lambda) and on b, then R as the rule says (a gradient-learnt R decayed
        by the same (1 - lr lambda) first; :meth:`deepnets.rules.Rule.after_step`, e.g. urfb's
        R += epsilon dW^t), R's mask kept. A frozen layer does not step. Under a torch
        optimizer :meth:`write_grads` and :meth:`after_optimizer_step` take its place."""
        if self._frozen:
            return
        gw = grad_w if self.mask_weight is None else grad_w * self.mask_weight
        decay = self.rule.weight_decay
        if decay:
            self.weight.mul_(1.0 - lr * decay)
        self.weight.add_(gw, alpha=-lr)
        if self.bias is not None and grad_b is not None:
            self.bias.add_(grad_b, alpha=-lr)
        if self.rule.learns_feedback:
            r = self._as_weight_layout(self.feedback)
            if decay and self.rule.feedback_by_gradient:
                r.mul_(1.0 - lr * decay)  # the same decay on a gradient-learnt R (kp)
            self.rule.after_step(Step(self.weight.detach(), r, grad_w, lr, self.rule_state(),
                                      self.glorot_bound, self.linear_maps()))
            self._keep_feedback_mask()

    @torch.no_grad()
    def write_grads(self) -> None:
        """Under a torch optimizer (simultaneous order), after the backward pass: the layer's
        update direction in ``.grad``, torch's sign convention (p <- p - lr grad under plain
        SGD), the same step :meth:`step` takes: W.grad = delta x^t (eq. 3, autograd's, masked)
        + lambda W; b.grad as autograd left it; R.grad = the rule's direction
        (:meth:`deepnets.rules.Rule.feedback_grad`, urfb: epsilon W.grad^t) + lambda R, masked,
        where R learns by gradient. lambda: the rule's ``weight_decay`` (kp). A frozen layer
        writes nothing (autograd left it no gradient)."""
        grad_w = self.weight.grad
        if self._frozen or grad_w is None:
            return
        direction = (self.rule.feedback_grad(grad_w)
                     if self.feedback is not None and self.rule.feedback_by_gradient else None)
        decay = self.rule.weight_decay
        if self.mask_weight is not None:
            grad_w.mul_(self.mask_weight)
        if decay:
            grad_w.add_(self.weight, alpha=decay)
        if direction is not None:
            assert self.feedback is not None
            if decay:
                direction.add_(self._as_weight_layout(self.feedback), alpha=decay)
            grad_r = self._to_feedback_layout(direction)
            if self.mask_feedback is not None:
                grad_r.mul_(self.mask_feedback)
            self.feedback.grad = grad_r

    @torch.no_grad()
    def after_optimizer_step(self, lr: float) -> None:
        """After a torch optimizer has stepped W, b and R from :meth:`write_grads`' directions:
        masked entries of W and R back to zero, and R as a rule that does not learn it by
        gradient says (sign rules: from the new W's signs; wm: the mirror phase), with
        ``lr`` the learning rate of W's parameter group. Call before the gradients are cleared."""
        if self._frozen:
            return
        if self.mask_weight is not None:
            self.weight.mul_(self.mask_weight)
        if self.rule.learns_feedback and not self.rule.feedback_by_gradient:
            grad_w = self.weight.grad
            r = self._as_weight_layout(self.feedback)
            self.rule.after_step(Step(self.weight.detach(), r,
                                      torch.zeros_like(r) if grad_w is None else grad_w, lr,
                                      self.rule_state(), self.glorot_bound, self.linear_maps()))
        self._keep_feedback_mask()

    def direct_backward(self, x: Tensor, grad_out: Tensor, active: Tensor | None,
                        needs: tuple[bool, bool, bool], lr: float | None
                        ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """Direct feedback's backward of this layer (dfa): (error sent down, grad W, grad b).
        The output layer records the network's error e; a hidden layer's delta is (B_l e) (.)
        sigma'(h) where B_l e enters at its output, else what arrives from above.
        ``active``: the sigma' indicator of a layer with sigma inside (None without). With
        ``lr`` (sequential order) the layer steps here and no weight gradients are returned."""
        hub = self.direct_hub
        if hub is None:
            raise RuntimeError("a dfa layer needs its network's output error: build the network "
                               "with FeedbackNet or deepnets.convert, or call "
                               "deepnets.nn.layers.link_direct_feedback(model)")
        need_in, need_w, need_b = needs
        n = grad_out.shape[0]
        if self is hub.output:
            hub.error = grad_out.detach().reshape(n, -1)
            signal = grad_out
        elif hub.error is None:
            raise RuntimeError("dfa: the output layer's backward has not run before a hidden "
                               "layer's")
        elif hub.inject == "output":
            e = hub.error
            signal = (e @ self.direct_matrix(e, tuple(grad_out.shape[1:]))).view_as(grad_out)
            signal = signal.to(grad_out.dtype)
        else:
            signal = grad_out
        delta = signal if active is None else signal * active * self.sat_scale
        grad_w = grad_b = None
        if need_w or need_b:
            _, grad_w, grad_b = self.gradients(x, delta, False, need_w, need_b)
            if lr is not None:
                self.step(grad_w, grad_b, lr)
                grad_w = grad_b = None
        grad_in = None
        if need_in and hub.inject == "input":
            e = hub.error
            grad_in = (e @ self.direct_matrix(e, tuple(x.shape[1:]))).view_as(x).to(x.dtype)
        return grad_in, grad_w, grad_b

    def direct_matrix(self, error: Tensor, shape: tuple[int, ...]) -> Tensor:
        """B_l (C, prod(shape)) of direct feedback, in the error's device and dtype."""
        cache = self.__dict__.setdefault("_direct_cache", {})
        return self.rule.direct_matrix(self.direct_seed, error.shape[1], shape,
                                       self.options.connectivity, error.device, error.dtype,
                                       cache)

    @property
    def sends_error(self) -> bool:
        """Whether the layer sends an error down to its input (all but direct-feedback layers
        whose feedback enters at their own output)."""
        hub = self.direct_hub
        return not (self.rule.direct and (hub is None or hub.inject == "output"))

    def extra_repr(self) -> str:
        return f"rule={self.rule.describe()}, sat_scale={self.sat_scale}"


class FeedbackLinear(FeedbackLayer):
    """Fully connected layer ("full N", "output"); ``feedback`` is R of shape (in, out)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        options: LayerOptions | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        self.in_features, self.out_features = in_features, out_features
        super().__init__(
            (out_features, in_features),
            (out_features,),
            in_features,
            out_features,
            options=LayerOptions() if options is None else options,
            generator=generator,
        )

    def _to_feedback_layout(self, t: Tensor) -> Tensor:
        return t.t().contiguous()

    def _as_weight_layout(self, t: Tensor) -> Tensor:
        return t.t()

    def equations(self) -> DenseEquations:
        return DenseEquations()

    def linear_op(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        return F.linear(x, weight, bias)

    def linear_grads(self, x, delta, need_in, need_w, need_b, through=None):
        fb = self._through(through, delta)
        grad_in = delta @ fb if need_in else None
        grad_w = delta.t() @ x if need_w else None
        grad_b = delta.sum(0) if need_b else None
        return grad_in, grad_w, grad_b


class _SpatialLayer(FeedbackLayer):
    """Shared 'same' padding for the stride-1 spatial layers (conv, untied)."""

    kernel_size: int
    fold_scale = True

    def _setup_padding(self, k: int) -> None:
        before, after = _same_padding(k)
        self.padding = before if before == after else 0
        self._prepad = None if before == after else (before, after, before, after)

    def forward(self, x: Tensor, pool: ZeroPadMaxPool2d | None = None) -> Tensor:
        if self._prepad is not None:  # even kernels: the extra zero row/column goes after
            x = F.pad(x, self._prepad)
        return super().forward(prefer_channels_last(x, policy_for(x, self.fast).channels_last),
                               pool)


class FeedbackConv2d(_SpatialLayer):
    """Convolution "conv N KxK": stride 1, 'same' zero padding; R a transposed convolution."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        options: LayerOptions | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        k = kernel_size
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, k
        super().__init__(
            (out_channels, in_channels, k, k),
            (out_channels,),
            in_channels * k * k,
            out_channels * k * k,
            options=LayerOptions() if options is None else options,
            generator=generator,
        )
        self._setup_padding(k)

    def equations(self) -> ConvEquations:
        return ConvEquations(padding=(self.padding, self.padding))

    def linear_op(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        return F.conv2d(x, weight, bias, padding=self.padding)

    def saturated_op(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        """clip(conv(x), -1, 1): on the CPU one oneDNN convolution with the clip as its
        post-op (no second pass over the output; the same numbers)."""
        if (policy_for(x).fused_clip_conv
                and x.is_contiguous(memory_format=torch.channels_last)):
            p = self.padding
            return torch.ops.mkldnn._convolution_pointwise(
                x, weight, bias, [p, p], [1, 1], [1, 1], 1, "hardtanh", [-1.0, 1.0], "")
        return super().saturated_op(x, weight, bias)

    def linear_grads(self, x, delta, need_in, need_w, need_b, through=None):
        p = self.padding
        fb = self._through(through, delta)
        delta = same_format(delta, x)

        def grads(mask: list[bool]) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
            return torch.ops.aten.convolution_backward(  # grad_input through R
                delta, x, fb, [self.out_channels], [1, 1], [p, p], [1, 1],
                False, [0, 0], 1, mask,
            )  # fmt: skip

        if policy_for(x).one_thread_bf16_weight_grad and (need_w or need_b):
            # oneDNN's bf16 weight gradient stalls for ~4 s with 2 threads on a shared machine
            # (measured: 3.9 s per call, against 10-22 ms with one thread): take it on one
            grad_in = grads([need_in, False, False])[0] if need_in else None
            with _one_thread():
                _, grad_w, grad_b = grads([False, need_w, need_b])
            return grad_in, grad_w, grad_b
        return grads([need_in, need_w, need_b])  # one fused call


class FeedbackUntied2d(FeedbackLayer):
    """Locally connected ("untied", Section 4.1) layer with the connectivity of a conv.

    Each output location l = (i, j) has its own filters: ``weight`` has shape (L, out, in*k*k)
    with L = H*W (columns ordered as ``F.unfold``'s, i.e. as ``conv.weight.reshape(out, -1)``),
    and ``bias`` has shape (out, H, W).  Entries that would connect to the zero padding are not
    connections (kept zero by the masks).  Computed as L batched matrix products.

    ``replicated``: W, R and their masks are one conv filter bank, drawn as
    :class:`FeedbackConv2d` draws it (the same numbers from the same generator), repeated at
    every location, so that the layer starts computing what that conv computes. The author's
    code builds its sparse untied matrix from a conv layer's W and R in this way
    (``Conv_sparse_aux.convert_conv_to_sparse``), which fits Section 4.1's filters that
    "retain" a spatial homogeneity (the paper does not say how the layer starts). With
    connectivity < 1 the masks are the conv's too, where the author's code draws them anew for
    every entry. False: every location draws its own W, R and masks (no homogeneity at the
    start).
    """

    sigma_prime_always_down = True  # the author's sparse layers apply sigma' before sending

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        out_channels: int,
        kernel_size: int,
        options: LayerOptions | None = None,
        *,
        generator: torch.Generator | None = None,
        replicated: bool = False,
    ) -> None:
        c, h, w = in_shape
        k = kernel_size
        self.in_shape, self.out_channels, self.kernel_size = (c, h, w), out_channels, k
        before, after = _same_padding(k)
        self._pad = (before, after, before, after)
        structure = _untied_structure((c, h, w), k) > 0
        super().__init__(
            (h * w, out_channels, c * k * k),
            (out_channels, h, w),
            c * k * k,
            out_channels * k * k,
            options=LayerOptions() if options is None else options,
            generator=generator,
            structure=structure.expand(h * w, out_channels, c * k * k),
            draw_shape=(1, out_channels, c * k * k) if replicated else None,
        )

    def _output_units(self) -> int:
        return self.weight.shape[0] * self.weight.shape[1]  # a filter bank per location

    def connection_entries(self, t: Tensor) -> Tensor:
        """Entries of ``t`` (in W's layout) inside the image: padding positions are no connections."""
        real = _untied_structure(self.in_shape, self.kernel_size).to(t.device) > 0
        return t[real.expand_as(t)]

    fold_scale = True

    def _patches(self, x: Tensor) -> Tensor:
        """(L, k*k*in + 1, N): per location, the input patch seen by every example and a
        constant 1 (for the bias, which thus comes out of the same batched products).

        The patch entries are ordered (row, column, channel) and each patch row of every example
        is gathered at once: from the padded input laid out (H, W, in, N), patch row a of
        location (i, j) is k*in*N contiguous numbers (with ``F.unfold``'s order and layout the
        gather runs over 5 numbers at a time and took ~5x as long). The patches of the latest
        training forward pass are kept for its backward pass (the weight gradient multiplies
        them; rebuilding them costs about a bmm)."""
        cache = self.__dict__.get("_patch_cache")
        if cache is not None and _same_tensor(cache[0], x):
            return cache[1]
        k, (c, h, w), n = self.kernel_size, self.in_shape, x.shape[0]
        left, right = self._pad[0], self._pad[1]
        xq = x.new_zeros(h + left + right, w + left + right, c, n)
        xq[left : left + h, left : left + w] = x.permute(2, 3, 1, 0)
        st = xq.stride()
        rows = xq.as_strided((h, w, k, k * c * n), (st[0], st[1], st[0], 1))
        cols = torch.empty(h * w, k * k * c + 1, n, dtype=x.dtype, device=x.device)
        cols[:, :-1].view(h, w, k, k * c * n).copy_(rows)
        cols[:, -1] = 1
        self.__dict__["_patch_cache"] = (x, cols) if self.training else None
        return cols

    def _patch_order(self, t: Tensor) -> Tensor:
        """(L, out, in*k*k) in unfold's (channel, row, column) order -> (row, column, channel)."""
        k, c = self.kernel_size, self.in_shape[0]
        return t.reshape(*t.shape[:2], c, k, k).permute(0, 1, 3, 4, 2).reshape(t.shape)

    def _unfold_order(self, t: Tensor) -> Tensor:
        """The inverse of :meth:`_patch_order` (a copy)."""
        k, c = self.kernel_size, self.in_shape[0]
        return t.reshape(*t.shape[:2], k, k, c).permute(0, 1, 4, 2, 3).reshape(t.shape)

    def equations(self) -> UntiedEquations:
        return UntiedEquations(self.kernel_size, self._pad)

    def linear_op(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        n, (_, h, w), o = x.shape[0], self.in_shape, self.out_channels
        cols = self._patches(x)
        if bias is None:
            cols, wb = cols[:, :-1], self._patch_order(weight)
        else:  # [W | b] against [patch | 1]
            wb = torch.cat([self._patch_order(weight), bias.permute(1, 2, 0).reshape(h * w, o, 1)],
                           dim=2)
        out = torch.bmm(cols.transpose(1, 2), wb.transpose(1, 2))  # (L, N, out)
        return out.view(h, w, n, o).permute(2, 3, 0, 1)  # (N, out, H, W) view, location-major

    def linear_grads(
        self, x: Tensor, delta: Tensor, need_in: bool, need_w: bool, need_b: bool,
        through: Tensor | None = None,
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        n, (_, h, w), k, o = x.shape[0], self.in_shape, self.kernel_size, self.out_channels
        # delta as (L, N, out): a view when it is location-major (as this layer's output and
        # the pool fused with it leave it), else one copy; bmm takes its transpose as a view.
        d = delta.permute(2, 3, 0, 1)
        d = (d if d.is_contiguous() else d.contiguous()).view(h * w, n, o)
        grad_in = grad_w = grad_b = None
        if need_in:
            fb = self._through(through, delta)
            cols = torch.bmm(d, fb)  # (L, N, c*k*k): R delta per location
            pb, pa = self._pad[0], self._pad[1]
            full = F.fold(cols.permute(1, 2, 0), (h + pb + pa, w + pb + pa), k)
            grad_in = full[:, :, pb : pb + h, pb : pb + w]
        if need_w or need_b:
            # [delta x^T | sum of delta] per location, computed transposed:
            # (L, k*k*c + 1, N) @ (L, N, out)
            prod = torch.bmm(self._patches(x), d)
            if need_w:
                grad_w = self._unfold_order(prod[:, :-1].transpose(1, 2))
            if need_b:
                grad_b = prod[:, -1].t().reshape(o, h, w)
        self.__dict__["_patch_cache"] = None
        return grad_in, grad_w, grad_b

    @torch.no_grad()
    def copy_from_conv(self, conv: FeedbackConv2d) -> None:
        """Make this layer compute what ``conv`` computes: W, R, their masks and the bias copied
        to every location (restricted to real connections)."""
        if (conv.in_channels, conv.out_channels, conv.kernel_size, conv.method) != (
            self.in_shape[0],
            self.out_channels,
            self.kernel_size,
            self.method,
        ):
            raise ValueError("untied layer and conv differ in channels, kernel size or method")
        base = _untied_structure(self.in_shape, self.kernel_size).to(self.weight)
        base = base.expand_as(self.weight)

        def spread(t: Tensor | None) -> Tensor:
            return base if t is None else t.reshape(self.out_channels, -1).expand_as(base) * base

        self.weight.copy_(spread(conv.weight))
        if (self.bias is None) != (conv.bias is None):
            raise ValueError("untied layer and conv differ in having a bias")
        if self.bias is not None:
            self.bias.copy_(conv.bias[:, None, None].expand_as(self.bias))
        self.mask_weight.copy_(spread(conv.mask_weight))
        if conv.feedback is not None:
            self.feedback.copy_(spread(conv.feedback))
            self.mask_feedback.copy_(spread(conv.mask_feedback))
        for name, like_w in self._rule_state.items():  # the rule's own tensors (frsf, dfa)
            getattr(self, name).copy_(spread(getattr(conv, name)) if like_w else getattr(conv, name))


class ZeroPadMaxPool2d(nn.Module):
    """ "Maxpool K" (Section 4): the max over the KxK window centred at every ``stride``-th pixel,
    padding with zeros (not -inf); output side ceil(n / stride) ("Maxpool 3": 32x32 -> 16x16).
    Its gradient goes to each window's maximum, or with ``all_ties`` to every entry equal to it
    (:func:`deepnets.nn.reference.zero_pad_max_pool_all_ties`, on both paths; the author's
    pools, which :class:`deepnets.nn.network.FeedbackNet` builds with ``sigma_prime_down=False``).
    """

    #: the fast path (False: :func:`deepnets.nn.reference.zero_pad_max_pool`; :func:`set_fast`)
    fast: bool = True

    def __init__(self, kernel_size: int, stride: int, all_ties: bool = False) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.all_ties = kernel_size, stride, all_ties

    def output_side(self, n: int) -> int:
        return -(-n // self.stride)

    def _pads(self, n: int) -> tuple[int, int]:
        before = (self.kernel_size - 1) // 2
        after = max((self.output_side(n) - 1) * self.stride + self.kernel_size - n - before, 0)
        return before, after

    def forward(self, x: Tensor) -> Tensor:
        if self.all_ties:
            return reference.zero_pad_max_pool_all_ties(x, self.kernel_size, self.stride)
        policy = policy_for(x, self.fast)
        if policy.reference:
            return reference.zero_pad_max_pool(x, self.kernel_size, self.stride)
        return _ZeroPadMaxPool.apply(x, self.kernel_size, self.stride,
                                     policy.implicit_pool_padding)

    def extra_repr(self) -> str:
        ties = ", all_ties=True" if self.all_ties else ""
        return f"kernel_size={self.kernel_size}, stride={self.stride}{ties}"


class _ZeroPadMaxPool(torch.autograd.Function):
    """``F.max_pool2d(F.pad(x, zero pads), k, s)`` without the padded copy
    (:func:`deepnets.nn.kernels.zero_pad_pool`)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, k: int, s: int, implicit_padding: bool) -> Tensor:
        planes = (x.shape[0], x.shape[1]) if location_major(x) else None  # see PooledFeedback..
        out, idx, plan, ref = zero_pad_pool(to_planes(x) if planes else x, k, s,
                                            implicit_padding)
        ctx.plan, ctx.planes = plan, planes
        ctx.save_for_backward(out, idx, ref)
        return from_planes(out, *planes) if planes else out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None, None]:
        out, idx, ref = ctx.saved_tensors
        planes = ctx.planes
        g = to_planes(grad) if planes else grad
        owned = planes is not None and not grad.permute(2, 3, 0, 1).is_contiguous()  # a copy
        gin = pool_backward(g, out, idx, ctx.plan, ref, owned=owned)
        return (from_planes(gin, *planes) if planes else gin), None, None, None


class Dropout(nn.Dropout):
    """torch's inverted dropout (``drop P``: a fraction P of the units zeroed, the rest scaled by
    1/(1-P)), its mask drawn on the CPU by :func:`deepnets.nn.kernels.dropout_noise` (from torch's
    global generator, ~4x cheaper than ``bernoulli_``; the policy's ``cpu_dropout_noise``);
    elsewhere ``F.dropout``; on the reference path :func:`deepnets.nn.reference.dropout`."""

    #: the fast path (False: the reference path; :func:`set_fast`)
    fast: bool = True

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        policy = policy_for(x, self.fast)
        if policy.reference and 0.0 < self.p < 1.0:
            return reference.dropout(x, self.p)
        if not policy.cpu_dropout_noise or self.inplace or not 0.0 < self.p < 1.0:
            return super().forward(x)
        return _Dropout.apply(x, self.p)


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, p: float) -> Tensor:
        noise = dropout_noise(x, p)
        ctx.save_for_backward(noise)
        return x * noise

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (noise,) = ctx.saved_tensors
        return noise * grad, None  # in the noise's (the input's) layout


def _check_memory(shape: tuple[int, ...]) -> None:
    """Refuse, with the number, a layer whose W, R and masks (drawn as four float32 tensors)
    would not fit in this machine's memory."""
    need = math.prod(shape) * 4 * 4
    try:
        have = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if need > have:
        raise ValueError(
            f"a weight layer of shape {tuple(shape)} needs {need / 2**30:.1f} GiB for W, R and "
            f"their masks; this machine has {have / 2**30:.1f} GiB"
        )


def _untied_structure(in_shape: tuple[int, int, int], k: int) -> Tensor:
    """(L, 1, c*k*k): 1 where an untied weight connects to a pixel inside the image, 0 at padding."""
    before, after = _same_padding(k)
    ones = F.pad(torch.ones(1, *in_shape), (before, after, before, after))
    return F.unfold(ones, k)[0].t().unsqueeze(1)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """torch's operators on one thread inside (setting the count costs well under 1 us)."""
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _same_tensor(a: Tensor, b: Tensor) -> bool:
    """Whether ``a`` and ``b`` are the same unchanged data (a cache key)."""
    return (a is b or (a.data_ptr() == b.data_ptr() and a.shape == b.shape
                       and a.stride() == b.stride() and a.dtype == b.dtype)) and (
        a._version == b._version)


def feedback_layers(module: nn.Module) -> list[FeedbackLayer]:
    """All feedback layers inside ``module``, in registration (input -> output) order."""
    return [m for m in module.modules() if isinstance(m, FeedbackLayer)]


def set_fast(model: nn.Module, fast: bool) -> None:
    """Put every feedback layer, zero-padded pool and dropout of ``model`` on the fast path
    (``fast=True``) or on the reference path of :mod:`deepnets.nn.reference` (``False``). ``fast``
    must be a bool: ``bool("false")`` is True, so a string or a number is refused."""
    if not isinstance(fast, bool):
        raise ValueError(f"fast must be True or False, got {type(fast).__name__} {fast!r:.60}")
    for m in model.modules():
        if isinstance(m, (FeedbackLayer, ZeroPadMaxPool2d, Dropout)):
            m.fast = bool(fast)


class DirectFeedback:
    """What a network's direct-feedback (dfa) layers share: its output layer, where B_l e enters
    (``"output"``: each layer's own output, sigma inside the layer; ``"input"``: each layer sends
    B_l e down through its input, the nonlinearity below being plain torch) and the output error
    e of the latest backward pass (set by the output layer, whose backward runs first)."""

    def __init__(self, output: FeedbackLayer, inject: str) -> None:
        if inject not in ("output", "input"):
            raise ValueError(f"inject must be 'output' or 'input', got {inject!r}")
        self.output = output
        self.inject = inject
        self.error: Tensor | None = None


def link_direct_feedback(model: nn.Module, output: FeedbackLayer | None = None,
                         inject: str | None = None) -> DirectFeedback | None:
    """Give the direct-feedback layers of ``model`` one shared :class:`DirectFeedback`.
    ``output``: the output layer (default: the last feedback layer registered); ``inject``
    (default: ``"output"`` when every hidden layer applies its own sigma, else ``"input"``).
    None when the model has no such layer. ``FeedbackNet`` and :func:`deepnets.convert` call
    it; hand-built models must."""
    layers = [m for m in feedback_layers(model) if m.rule.direct]
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
