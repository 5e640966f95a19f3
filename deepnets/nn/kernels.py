"""The elementwise and pooling work of a training step, written for speed (issue 10).

Each function computes what the plain torch expression in its docstring computes (the same
values; gradients equal up to the order of a sum of at most four terms); they are what the
layers of :mod:`deepnets.nn.layers` call.

* The saturation's derivative comes from the layer's *output*: |clip(s h, -1, 1)| < 1 exactly
  where |s h| < 1, so no mask is computed or stored in the forward pass, and the backward is one
  fused ``hardtanh_backward`` pass (:func:`saturation_backward`).
* The zero-padded max pool (:func:`zero_pad_pool`) runs torch's pool with its implicit -inf
  padding (no padded copy of the input) and then fixes the windows that reach the zero
  padding: their maximum is at least 0, and where it is the padding their gradient is dropped.
* Dropout on the CPU (:func:`dropout_noise`) draws 32 random bits per unit from torch's global
  generator (``random_``, ~4x cheaper than ``bernoulli_``) in the units' logical order, so masks
  stay reproducible from the seed whatever the memory layout, and a resumed run (which
  restores that generator) stays bit-identical.
* An untied layer's output lies as (H, W, N, C) in memory; :func:`to_planes` views it as one
  channels-last image of N*C channels, which torch's fast pooling kernels take as is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "PoolPlan",
    "dropout_noise",
    "exact_scale",
    "from_planes",
    "location_major",
    "pool_backward",
    "prefer_channels_last",
    "same_format",
    "saturation_backward",
    "threshold_of",
    "to_planes",
    "zero_pad_pool",
]


# ---------------------------------------------------------------- saturation


def exact_scale(s: float) -> bool:
    """Whether multiplying by ``s`` is exact in floating point (a power of two), so that
    ``conv(x, s W, s b) == s conv(x, W, b)`` bit for bit and s can be folded into the weights."""
    return s > 0 and math.frexp(s)[0] == 0.5


def saturation_backward(grad: Tensor, out: Tensor, s: float) -> Tensor:
    """``grad * s * (|out| < 1)`` for ``out = clip(s h, -1, 1)``: delta = g sigma'(h) (a new tensor)."""
    delta = torch.ops.aten.hardtanh_backward(grad, out, -1.0, 1.0)
    return delta.mul_(s)


def prefer_channels_last(x: Tensor, channels_last: bool) -> Tensor:
    """``x`` in channels-last memory order where that is the fast layout (``channels_last``, the
    policy's: 4-d float32/bfloat16 on the CPU, where oneDNN's convolutions and torch's max pool
    are 1.5-7x faster); else ``x``."""
    if channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def same_format(t: Tensor, like: Tensor) -> Tensor:
    """``t`` in ``like``'s memory order (channels-last or contiguous)."""
    if like.dim() == 4 and like.is_contiguous(memory_format=torch.channels_last):
        return t.contiguous(memory_format=torch.channels_last)
    return t.contiguous()


def location_major(t: Tensor) -> bool:
    """Whether 4-d ``t`` (N, C, H, W) lies in memory as (H, W, N, C), as an untied layer's
    batched products leave it (and neither contiguous nor channels-last)."""
    return (t.dim() == 4 and t.permute(2, 3, 0, 1).is_contiguous() and not t.is_contiguous()
            and not t.is_contiguous(memory_format=torch.channels_last))


def to_planes(t: Tensor) -> Tensor:
    """(N, C, H, W) -> the same numbers as one channels-last image of N*C channels,
    (1, N*C, H, W): a view when ``t`` is location-major, else one copy. Pooling it pools ``t``."""
    n, c, h, w = t.shape
    u = t.permute(2, 3, 0, 1)
    if not u.is_contiguous():
        if t.is_contiguous() and c > 1:  # via channels-last: two copies, each ~3x faster
            u = t.contiguous(memory_format=torch.channels_last).permute(2, 3, 0, 1)
        u = u.contiguous()
    # the canonical channels-last strides (also of the size-1 batch dim), so that torch's
    # kernels recognise the layout (else they copy to contiguous and pool 10x slower)
    return u.as_strided((1, n * c, h, w), (h * w * n * c, 1, w * n * c, n * c))


def from_planes(t: Tensor, n: int, c: int) -> Tensor:
    """The inverse of :func:`to_planes`: a location-major (N, C, H, W) view."""
    _, _, h, w = t.shape
    return t.permute(0, 2, 3, 1).reshape(h, w, n, c).permute(2, 3, 0, 1)


# ---------------------------------------------------------------- zero-padded max pool


@dataclass(frozen=True)
class PoolPlan:
    """How :func:`zero_pad_pool` pooled: with torch's implicit padding (``padded`` False:
    ``padding``, ``ceil_mode`` and the output ``border`` slices, (dim, start, stop), whose
    windows reach the zero padding) or, as a fallback, on an explicitly zero-padded copy
    (``padded`` True, ``pads`` as F.pad takes them)."""

    kernel: int
    stride: int
    padded: bool
    padding: int = 0
    ceil_mode: bool = False
    border: tuple[tuple[int, int, int], ...] = ()
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)


def _pads(n: int, k: int, s: int) -> tuple[int, int, int]:
    """(before, after, output side) of the zero padding of "maxpool k stride s" on side n."""
    out = -(-n // s)
    before = (k - 1) // 2
    return before, max((out - 1) * s + k - n - before, 0), out


def _torch_geometry(n: int, k: int, s: int) -> tuple[bool, int, int] | None:
    """(ceil_mode, leading, trailing) for which torch's pool with padding ``(k-1)//2`` visits
    the same windows as ours on side n: the first ``leading`` windows reach the zero padding
    before the image, the last ``trailing`` the padding after it. None if no ceil_mode does."""
    before, _, out = _pads(n, k, s)
    for ceil_mode in (False, True):
        num = n + 2 * before - k + (s - 1 if ceil_mode else 0)
        if num < 0:
            continue
        o = num // s + 1
        if ceil_mode and (o - 1) * s >= n + before:
            o -= 1
        if o == out:
            lead = sum(1 for i in range(out) if i * s - before < 0)
            trail = sum(1 for i in range(out) if i * s - before + k > n)
            return ceil_mode, lead, trail
    return None


def _view(t: Tensor, dim: int, start: int, stop: int) -> Tensor:
    return t.narrow(dim, start, stop - start)


def zero_pad_pool(x: Tensor, k: int, s: int, implicit_padding: bool
                  ) -> tuple[Tensor, Tensor, PoolPlan, Tensor]:
    """``F.max_pool2d(F.pad(x, pads), k, s)`` with zero ``pads`` (ours: ``(k-1)//2`` before, as
    many after as ceil(n / s) windows need) and its argmax indices: (out, indices, plan, the
    tensor whose shape the backward needs).

    torch pools the image only (implicit -inf padding); a window that reaches the zero padding
    then takes max(its maximum, 0), and its gradient goes where F.pad's pool sends it: that pool
    scans a window row by row and keeps the first maximum, so a window reaching the padding
    before the image (above or left: its first entry is padding) takes the padding's 0 whenever
    its image maximum is <= 0, and its gradient is dropped. A window reaching only the padding
    after the image ties with it at an image maximum of exactly 0 in a way that depends on
    where the zero lies; such a batch (rare) takes the explicit path. Without
    ``implicit_padding`` (the policy's: off the CPU, where that check would synchronise the
    device every step) the explicit path is always taken."""
    h, w = x.shape[-2:]
    gh, gw = _torch_geometry(h, k, s), _torch_geometry(w, k, s)
    if gh is not None and gw is not None and gh[0] == gw[0] and implicit_padding:
        p, ceil_mode = (k - 1) // 2, gh[0]
        out, idx = torch.ops.aten.max_pool2d_with_indices(x, [k, k], [s, s], [p, p], [1, 1],
                                                          ceil_mode)
        oh, ow = out.shape[-2:]
        lead = [b for b in ((-2, 0, gh[1]), (-1, 0, gw[1])) if b[2] > b[1]]
        trail = [b for b in ((-2, oh - gh[2], oh), (-1, ow - gw[2], ow)) if b[2] > b[1]]
        if not any(bool((_view(out, *b) == 0).any()) for b in trail):
            for b in lead + trail:
                _view(out, *b).clamp_min_(0)
            return out, idx, PoolPlan(k, s, False, p, ceil_mode, tuple(lead + trail)), x
    bh, ah, _ = _pads(h, k, s)
    bw, aw, _ = _pads(w, k, s)
    pads = (bw, aw, bh, ah)
    xp = F.pad(x, pads)
    out, idx = torch.ops.aten.max_pool2d_with_indices(xp, [k, k], [s, s], [0, 0], [1, 1], False)
    return out, idx, PoolPlan(k, s, True, pads=pads), xp


def pool_backward(grad: Tensor, out: Tensor, idx: Tensor, plan: PoolPlan, ref: Tensor,
                  *, owned: bool = False) -> Tensor:
    """The gradient of :func:`zero_pad_pool` with respect to its input, given ``grad`` for its
    output ``out``. ``owned``: ``grad`` is a temporary that may be changed in place."""
    k, s = plan.kernel, plan.stride
    shaped = same_format(grad, out)
    owned = owned or shaped is not grad
    grad = shaped
    if plan.padded:
        gp = torch.ops.aten.max_pool2d_with_indices_backward(grad, ref, [k, k], [s, s], [0, 0],
                                                             [1, 1], False, idx)
        bw, aw, bh, ah = plan.pads
        return gp[..., bh : gp.shape[-2] - ah, bw : gp.shape[-1] - aw]
    if plan.border:  # windows whose maximum was the zero padding (out == 0 there) send nothing
        if not owned:
            grad = grad.clone()
        for b in plan.border:
            _view(grad, *b).masked_fill_(_view(out, *b) == 0, 0)
    p = plan.padding
    return torch.ops.aten.max_pool2d_with_indices_backward(grad, ref, [k, k], [s, s], [p, p],
                                                           [1, 1], plan.ceil_mode, idx)


# ---------------------------------------------------------------- dropout


def dropout_noise(x: Tensor, p: float) -> Tensor:
    """The noise of inverted dropout for ``x`` (which it multiplies): ``1/(1-p)`` for a kept
    unit, 0 for a dropped one (a fraction ``p``, each independently), in ``x``'s dtype and memory
    layout. Drawn from torch's global CPU generator: 32 random bits per unit, in the units'
    logical (row-major) order whatever the layout, kept when below ``(1-p) 2**32``."""
    keep = 1.0 - p
    n = x.numel()
    bits = torch.empty((n + 1) // 2, dtype=torch.int64).random_(-(2**63), None)
    noise = torch.empty_like(x)  # x's layout (channels-last, location-major, ...)
    torch.lt(bits.view(torch.int32)[:n].view(x.shape), threshold_of(keep), out=noise)
    return noise.mul_(torch.ones((), dtype=x.dtype) / keep)  # 1/(1-p) in x's dtype, as F.dropout


def threshold_of(keep: float) -> int:
    """The int32 below which a uniform 32-bit draw has probability ``keep`` (to 2**-32)."""
    return min(round(keep * 2**32), 2**32 - 1) - 2**31
