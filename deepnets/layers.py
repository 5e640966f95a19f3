"""Layers with feedforward weights W and separate feedback weights R (Section 3.1, Section 4.1).

Every weight layer computes ``sigma(W x + b)`` (or ``W x + b`` at the output layer) and, in the
backward pass, sends ``R delta`` down instead of ``W^t delta`` (eq. 2 with R). What R is and how
it learns is the layer's :class:`FeedbackRule`, one field of its :class:`LayerOptions`:

* ``method="bp"``:   no separate R; feedback goes through W^t (back-propagation).
* ``method="frfb"``: R random and fixed (fixed random feedback).
* ``method="urfb"``: R random and receives the same Hebbian increment as W, transposed:
  ``Delta R = epsilon * Delta W^t`` (updated random feedback; epsilon = 0 behaves as frfb).

Storage of R: for :class:`FeedbackLinear`, ``feedback`` is the matrix R itself, shape
(in, out), i.e. the transpose of W's (out, in).  For :class:`FeedbackConv2d` and
:class:`FeedbackUntied2d`, R is the transposed convolution whose kernel ``feedback`` has W's
layout (the layout torch's transposed convolution takes), so entry ``[o, i, a, b]`` is the
feedback weight on the connection that ``weight[o, i, a, b]`` carries forward.
:meth:`FeedbackLayer.feedback_as_weight` returns R^t in W's layout for every layer.

W and R are drawn independently from Glorot-uniform (Section 4, ref. [6]); with
``connectivity < 1`` independent fixed masks keep that fraction of W's and of R's entries
(Section 4: "half of these connections are randomly set to 0"); masked entries stay zero,
and unmasked R entries get their Hebbian increment even where W is masked.

The autograd Function (:class:`FeedbackFunction`) lives here too. Update order (Remark 1): a
forward pass run inside :func:`sequential_update` binds that learning rate to the graph, and the
backward pass then updates each layer's W and R before sending the feedback down through the
updated R; otherwise backward returns the weight gradients and the caller applies them.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "METHODS",
    "BackwardRoute",
    "FeedbackFunction",
    "FeedbackRule",
    "LayerOptions",
    "route_backward",
    "sequential_update",
    "FeedbackConv2d",
    "FeedbackLayer",
    "FeedbackLinear",
    "FeedbackUntied2d",
    "ZeroPadMaxPool2d",
    "feedback_layers",
]

METHODS = ("bp", "frfb", "urfb")


@dataclass(frozen=True)
class FeedbackRule:
    """What R is and how it learns (Section 3.1): ``method`` and its parameters.

    ``epsilon`` (urfb): Delta R = epsilon Delta W^t; ignored by the other methods.
    """

    method: str = "urfb"
    params: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        allowed = {"urfb": {"epsilon"}}.get(self.method, set())
        unknown = sorted(set(self.params) - allowed)
        if unknown:
            raise ValueError(f"method {self.method!r} takes no parameter {', '.join(unknown)}")

    @classmethod
    def make(cls, method: str, epsilon: float | None = None) -> FeedbackRule:
        """The rule of ``method``; ``epsilon`` only for urfb (default 1)."""
        params = {"epsilon": 1.0 if epsilon is None else float(epsilon)} if method == "urfb" else {}
        if epsilon is not None and method != "urfb":
            raise ValueError(f"epsilon applies to method urfb only, not {method!r}")
        return cls(method, params)

    @property
    def has_feedback(self) -> bool:
        """Whether the layer keeps an R separate from W (all methods but bp)."""
        return self.method != "bp"

    @property
    def epsilon(self) -> float:
        """The factor of Delta W^t that R receives (0 for fixed feedback)."""
        return float(self.params.get("epsilon", 1.0)) if self.method == "urfb" else 0.0

    def describe(self) -> str:
        return self.method + "".join(f", {k}={v}" for k, v in self.params.items())


@dataclass(frozen=True)
class LayerOptions:
    """A weight layer's feedback rule and options, shared by all the layers of a network.

    ``connectivity``: fraction of W's and of R's entries kept by independent fixed masks
    (Section 4's 50% is 0.5). ``sat_scale``: s of sigma(h) = clip(s h, -1, 1) (Remark 2), None
    for the linear output layer. ``symmetric_init``: R(0) = W(0)^t (and R's mask = W's).
    """

    rule: FeedbackRule = field(default_factory=FeedbackRule)
    connectivity: float = 1.0
    sat_scale: float | None = 0.5
    symmetric_init: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.connectivity <= 1.0:
            raise ValueError(f"connectivity must be in (0, 1], got {self.connectivity}")
        if self.sat_scale is not None and not self.sat_scale > 0:
            raise ValueError(f"sat_scale must be positive, got {self.sat_scale}")


_SEQUENTIAL_LR: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "sequential_lr", default=None
)


class BackwardRoute:
    """Which weights a backward pass sends the error down through: the layers' R (the method's
    own feedback) or, with ``exact`` set, W^t (exact back-propagation). A forward pass inside
    :func:`route_backward` binds the route to its graph, so that one forward pass (one dropout
    mask) can be back-propagated both ways (the alignment probe, :mod:`deepnets.alignment`)."""

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
def sequential_update(lr: float) -> Iterator[None]:
    """Forward passes inside this context learn in the sequential order of Remark 1: their
    backward pass updates each layer (step ``lr``) before sending its feedback down."""
    token = _SEQUENTIAL_LR.set(float(lr))
    try:
        yield
    finally:
        _SEQUENTIAL_LR.reset(token)


class FeedbackFunction(torch.autograd.Function):
    """Linear map (dense / conv / untied) fused with the saturated linearity; backward through R.

    Forward:  h = W x + b,  x_out = sigma(h) = clip(s h, -1, 1) (Remark 2; none at the output).
    Backward: delta = sigma'(h) * g with sigma'(h) = s 1[|s h| < 1]; the weight gradient is the
    Hebbian product delta x^T (eq. 2's first line) and the error sent to the layer below is
    R delta (eq. 2 with R in place of W^t). For conv layers both come from one fused
    ``aten.convolution_backward`` call.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor, layer: FeedbackLayer,
                sequential_lr: float | None) -> Tensor:
        h = layer.linear_op(x, weight, bias)
        ctx.layer, ctx.sequential_lr, ctx.route = layer, sequential_lr, _ROUTE.get()
        s = layer.sat_scale
        if s is None:
            ctx.save_for_backward(x)
            return h
        sh = h.mul_(s)
        ctx.save_for_backward(x, sh.abs() < 1)
        return sh.clamp_(-1.0, 1.0)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        layer: FeedbackLayer = ctx.layer
        x, *active = ctx.saved_tensors
        delta = grad_out if not active else grad_out.mul(active[0]).mul_(layer.sat_scale)
        need_in, need_w, need_b = ctx.needs_input_grad[:3]
        lr = ctx.sequential_lr
        if ctx.route is not None and ctx.route.exact:  # exact BP through W^t (alignment probe)
            grads = layer.linear_grads(x, delta, need_in, need_w, need_b, through=layer.weight)
            return (*grads, None, None)
        if lr is None:  # simultaneous: one (fused) call; the caller applies the increments
            return (*layer.linear_grads(x, delta, need_in, need_w, need_b), None, None)
        if need_w or need_b:  # sequential (Remark 1): update W and R first ...
            _, gw, gb = layer.linear_grads(x, delta, False, need_w, need_b)
            layer.apply_update(gw, gb, lr)
        # ... then send the feedback down through the updated R.
        grad_in = layer.linear_grads(x, delta, True, False, False)[0] if need_in else None
        return grad_in, None, None, None, None


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
    bias: nn.Parameter
    feedback: Tensor | None
    mask_weight: Tensor | None
    mask_feedback: Tensor | None

    def __init__(
        self,
        shape: tuple[int, ...],
        bias_shape: tuple[int, ...],
        fan_in: int,
        fan_out: int,
        options: LayerOptions,
        generator: torch.Generator | None,
        structure: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.options = options
        self.rule = options.rule
        self.sat_scale = options.sat_scale
        connectivity = options.connectivity
        _check_memory(shape)
        bound = math.sqrt(6.0 / (fan_in + fan_out))  # Glorot-uniform, ref. [6]
        # Always draw W, R and both masks in this order, so W is the same for every method.
        w = (torch.rand(shape, generator=generator) * 2 - 1) * bound
        r = (torch.rand(shape, generator=generator) * 2 - 1) * bound
        mw = torch.rand(shape, generator=generator) < connectivity
        mr = torch.rand(shape, generator=generator) < connectivity
        if options.symmetric_init:
            r, mr = w.clone(), mw.clone()
        if structure is not None:
            mw, mr = mw & structure, mr & structure
        masked = connectivity < 1.0 or structure is not None
        self.weight = nn.Parameter(w * mw if masked else w)
        self.bias = nn.Parameter(torch.zeros(bias_shape))
        fb = self.rule.has_feedback
        self.register_buffer(
            "feedback", self._to_feedback_layout(r * mr if masked else r) if fb else None
        )
        self.register_buffer("mask_weight", mw.float() if masked else None)
        self.register_buffer(
            "mask_feedback", self._to_feedback_layout(mr.float()) if masked and fb else None
        )
        self._frozen = False

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

    # --- the linear map ------------------------------------------------------------------
    def linear_op(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        """h = W x + b (eq. 1)."""
        raise NotImplementedError

    def linear_grads(
        self, x: Tensor, delta: Tensor, need_in: bool, need_w: bool, need_b: bool,
        through: Tensor | None = None,
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """(R delta, delta x^t, sum of delta): the error for the layer below and the gradients.

        ``through``: the weights (in W's layout) to send the error down through instead of
        R^t, e.g. W itself for exact back-propagation."""
        raise NotImplementedError

    @property
    def method(self) -> str:
        """The feedback rule's name (``bp``, ``frfb``, ``urfb``)."""
        return self.rule.method

    def forward(self, x: Tensor) -> Tensor:
        return FeedbackFunction.apply(x, self.weight, self.bias, self, _SEQUENTIAL_LR.get())

    # --- learning ------------------------------------------------------------------------
    @property
    def frozen(self) -> bool:
        """A frozen layer keeps W and R fixed but still passes feedback down (Section 4.1, Fig. 9)."""
        return self._frozen

    @frozen.setter
    def frozen(self, value: bool) -> None:
        self._frozen = bool(value)
        self.weight.requires_grad_(not value)
        self.bias.requires_grad_(not value)

    @torch.no_grad()
    def apply_update(self, grad_w: Tensor, grad_b: Tensor, lr: float) -> None:
        """SGD: W -= lr grad_W, b -= lr grad_b, and for urfb R^t -= epsilon lr grad_W; masks kept."""
        if self._frozen:
            return
        gw = grad_w if self.mask_weight is None else grad_w * self.mask_weight
        self.weight.add_(gw, alpha=-lr)
        self.bias.add_(grad_b, alpha=-lr)
        epsilon = self.rule.epsilon
        if self.feedback is not None and epsilon != 0.0:
            r = self._as_weight_layout(self.feedback)
            if self.mask_feedback is not None:
                grad_w = grad_w * self._as_weight_layout(self.mask_feedback)
            r.add_(grad_w, alpha=-lr * epsilon)

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

    def linear_op(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        return F.linear(x, weight, bias)

    def linear_grads(self, x, delta, need_in, need_w, need_b, through=None):
        fb = self.feedback_as_weight() if through is None else through
        grad_in = delta @ fb if need_in else None
        grad_w = delta.t() @ x if need_w else None
        grad_b = delta.sum(0) if need_b else None
        return grad_in, grad_w, grad_b


class _SpatialLayer(FeedbackLayer):
    """Shared 'same' padding for the stride-1 spatial layers (conv, untied)."""

    kernel_size: int

    def _setup_padding(self, k: int) -> None:
        before, after = _same_padding(k)
        self.padding = before if before == after else 0
        self._prepad = None if before == after else (before, after, before, after)

    def forward(self, x: Tensor) -> Tensor:
        if self._prepad is not None:  # even kernels: the extra zero row/column goes after
            x = F.pad(x, self._prepad)
        return FeedbackFunction.apply(x, self.weight, self.bias, self, _SEQUENTIAL_LR.get())


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

    def linear_op(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        return F.conv2d(x, weight, bias, padding=self.padding)

    def linear_grads(self, x, delta, need_in, need_w, need_b, through=None):
        p = self.padding
        fb = self.feedback_as_weight() if through is None else through
        return torch.ops.aten.convolution_backward(  # one fused call, grad_input through R
            delta, x, fb, [self.out_channels], [1, 1], [p, p], [1, 1],
            False, [0, 0], 1, [need_in, need_w, need_b],
        )  # fmt: skip


class FeedbackUntied2d(FeedbackLayer):
    """Locally connected ("untied", Section 4.1) layer with the connectivity of a conv.

    Each output location l = (i, j) has its own filters: ``weight`` has shape (L, out, in*k*k)
    with L = H*W (columns ordered as ``F.unfold``'s, i.e. as ``conv.weight.reshape(out, -1)``),
    and ``bias`` has shape (out, H, W).  Entries that would connect to the zero padding are not
    connections (kept zero by the masks).  Computed as L batched matrix products.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        out_channels: int,
        kernel_size: int,
        options: LayerOptions | None = None,
        *,
        generator: torch.Generator | None = None,
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
        )

    def connection_entries(self, t: Tensor) -> Tensor:
        """Entries of ``t`` (in W's layout) inside the image: padding positions are no connections."""
        real = _untied_structure(self.in_shape, self.kernel_size).to(t.device) > 0
        return t[real.expand_as(t)]

    def _columns(self, x: Tensor) -> Tensor:
        """(L, N, in*k*k): the input patch seen by every location, batched by location."""
        k = self.kernel_size
        patches = F.pad(x, self._pad).unfold(2, k, 1).unfold(3, k, 1)  # (N, c, H, W, k, k)
        n = x.shape[0]
        return patches.permute(2, 3, 0, 1, 4, 5).reshape(-1, n, patches.shape[1] * k * k)

    def linear_op(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        n, (_, h, w) = x.shape[0], self.in_shape
        bias_l = bias.permute(1, 2, 0).reshape(h * w, 1, self.out_channels)
        out = torch.baddbmm(bias_l, self._columns(x), weight.transpose(1, 2))  # (L, N, out)
        return out.view(h, w, n, self.out_channels).permute(2, 3, 0, 1)  # (N, out, H, W) view

    def linear_grads(
        self, x: Tensor, delta: Tensor, need_in: bool, need_w: bool, need_b: bool,
        through: Tensor | None = None,
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        n, (_, h, w), k = x.shape[0], self.in_shape, self.kernel_size
        # bmm is only fast with a contiguous first operand: lay delta out as (L, N, out) for
        # the input gradient and as (L, out, N) for the weight gradient.
        grad_in = grad_w = grad_b = None
        if need_in:
            d = delta.permute(2, 3, 0, 1).contiguous().view(h * w, n, self.out_channels)
            fb = self.feedback_as_weight() if through is None else through
            cols = torch.bmm(d, fb)  # (L, N, c*k*k): R delta per location
            pb, pa = self._pad[0], self._pad[1]
            full = F.fold(cols.permute(1, 2, 0), (h + pb + pa, w + pb + pa), k)
            grad_in = full[:, :, pb : pb + h, pb : pb + w]
        if need_w:
            d = delta.permute(2, 3, 1, 0).contiguous().view(h * w, self.out_channels, n)
            grad_w = torch.bmm(d, self._columns(x))  # delta x^T per location
        if need_b:
            grad_b = delta.sum(0)
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
        self.bias.copy_(conv.bias[:, None, None].expand_as(self.bias))
        self.mask_weight.copy_(spread(conv.mask_weight))
        if conv.feedback is not None:
            self.feedback.copy_(spread(conv.feedback))
            self.mask_feedback.copy_(spread(conv.mask_feedback))


class ZeroPadMaxPool2d(nn.Module):
    """ "Maxpool K" (Section 4): the max over the KxK window centred at every ``stride``-th pixel,
    padding with zeros (not -inf); output side ceil(n / stride) ("Maxpool 3": 32x32 -> 16x16)."""

    def __init__(self, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def output_side(self, n: int) -> int:
        return -(-n // self.stride)

    def _pads(self, n: int) -> tuple[int, int]:
        before = (self.kernel_size - 1) // 2
        after = max((self.output_side(n) - 1) * self.stride + self.kernel_size - n - before, 0)
        return before, after

    def forward(self, x: Tensor) -> Tensor:
        ph, pw = self._pads(x.shape[-2]), self._pads(x.shape[-1])
        x = F.pad(x, (pw[0], pw[1], ph[0], ph[1]))
        return F.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


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


def feedback_layers(module: nn.Module) -> list[FeedbackLayer]:
    """All feedback layers inside ``module``, in registration (input -> output) order."""
    return [m for m in module.modules() if isinstance(m, FeedbackLayer)]
