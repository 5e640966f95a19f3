"""The reference path: the paper's equations in plain torch, read top to bottom (issue 17).

A network built with ``fast=False`` computes every weight layer, pool and dropout here; with
``fast=True`` (the default) the fast path (:mod:`deepnets.nn.layers`, :mod:`deepnets.nn.kernels`)
computes the same numbers with speed tricks, chosen by :mod:`deepnets.nn.policy`. There are none
here: no folding of s into W, no memory-layout choices, no fused kernels, no cache.

Notation (Section 3.1): a weight layer l maps its input x = x_{l-1} to h = W x + b and
x_l = sigma(h); the backward pass brings g = dL/dx_l from the layer above and computes
delta = dL/dh, the layer's gradients delta x^t and sum(delta), and the error sent down,
R delta (``through`` below is R^t in W's layout; W itself for back-propagation). Rows of x and
delta are examples: the batch's gradients are summed over them. How R is chosen and how it
learns is the layer's rule (:mod:`deepnets.rules`), shared with the fast path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ConvEquations",
    "DenseEquations",
    "Gradients",
    "UntiedEquations",
    "dropout",
    "saturation",
    "saturation_delta",
    "unsaturated",
    "zero_pad_max_pool",
    "zero_pad_max_pool_all_ties",
]

#: (error sent down R delta, grad W = delta x^t, grad b = sum of delta); None where not asked for
Gradients = tuple[Tensor | None, Tensor | None, Tensor | None]


# ---------------------------------------------------------------- Remark 2: the saturation


def saturation(h: Tensor, s: float) -> Tensor:
    """sigma(h) = clip(s h, -1, 1): eq. (1)'s x_l = sigma(h_l) with Remark 2's saturated
    linear function (slope s; the paper prints s = 1)."""
    return torch.clamp(s * h, -1.0, 1.0)


def unsaturated(h: Tensor, s: float) -> Tensor:
    """1[|s h| < 1]: where sigma is not saturated; delta is 0 elsewhere (eq. (3))."""
    return (torch.abs(s * h) < 1.0).to(h.dtype)


def saturation_delta(g: Tensor, h: Tensor, s: float) -> Tensor:
    """delta = sigma'(h) (.) g with sigma'(h) = s 1[|s h| < 1] (eq. (2), Remark 2, eq. (3))."""
    return s * unsaturated(h, s) * g


# ---------------------------------------------------------------- eq. (1)-(2) per layer kind


@dataclass(frozen=True)
class DenseEquations:
    """A fully connected layer: W is (out, in); x and delta may have leading dimensions (each
    position is one more example sharing W)."""

    def linear(self, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        """h = W x + b (eq. (1)), one row of x per example."""
        h = x @ w.t()
        return h if b is None else h + b

    def grads(self, x: Tensor, delta: Tensor, through: Tensor, need_in: bool, need_w: bool,
              need_b: bool) -> Gradients:
        """(R delta, delta x^t, sum of delta) (eq. (2): dL/dW_ij = delta_i x_j, and
        delta_{l-1} = sigma' (.) R delta_l with R = ``through``^t)."""
        x2, d2 = x.reshape(-1, x.shape[-1]), delta.reshape(-1, delta.shape[-1])
        error_down = (d2 @ through).reshape(x.shape) if need_in else None  # R delta
        grad_w = d2.t() @ x2 if need_w else None  # delta x^t, summed over the examples
        grad_b = d2.sum(0) if need_b else None  # delta times the constant input 1
        return error_down, grad_w, grad_b


@dataclass(frozen=True)
class ConvEquations:
    """A convolution ("conv N KxK", Section 4; any stride, zero padding and dilation): eq. (1)
    with one W shared by all locations; W is (out, in, kh, kw)."""

    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)

    def linear(self, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        """h = W x + b (eq. (1)) at every location: a convolution."""
        return F.conv2d(x, w, b, self.stride, self.padding, self.dilation)

    def grads(self, x: Tensor, delta: Tensor, through: Tensor, need_in: bool, need_w: bool,
              need_b: bool) -> Gradients:
        """(R delta, delta x^t, sum of delta) (eq. (2)), each summed over the locations
        that share W; R delta is the transposed convolution with kernel ``through``."""
        geometry = (self.stride, self.padding, self.dilation)
        error_down = (torch.nn.grad.conv2d_input(x.shape, through, delta, *geometry)
                      if need_in else None)  # R delta
        grad_w = (torch.nn.grad.conv2d_weight(x, through.shape, delta, *geometry)
                  if need_w else None)  # delta x^t
        grad_b = delta.sum((0, 2, 3)) if need_b else None  # sum of delta
        return error_down, grad_w, grad_b


@dataclass(frozen=True)
class UntiedEquations:
    """A locally connected ("untied", Section 4.1) layer: eq. (1) with its own W at every
    location l; W is (L, out, in*k*k) over ``F.unfold``'s patches of the zero-padded input
    (``pads``: F.pad's (left, right, top, bottom)), b is (out, H, W)."""

    kernel_size: int
    pads: tuple[int, int, int, int]

    def patches(self, x: Tensor) -> Tensor:
        """(N, in*k*k, L): the input each location sees."""
        return F.unfold(F.pad(x, self.pads), self.kernel_size)

    def linear(self, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        """h_l = W_l x_l + b_l (eq. (1)) at every location l."""
        n, h, wd = x.shape[0], x.shape[2], x.shape[3]
        out = torch.einsum("loj,njl->nol", w, self.patches(x)).reshape(n, w.shape[1], h, wd)
        return out if b is None else out + b

    def grads(self, x: Tensor, delta: Tensor, through: Tensor, need_in: bool, need_w: bool,
              need_b: bool) -> Gradients:
        """(R delta, delta x^t, sum of delta) (eq. (2)) at every location."""
        n, _, h, wd = x.shape
        d = delta.reshape(n, delta.shape[1], h * wd)  # (N, out, L)
        error_down = None
        if need_in:  # R_l delta_l per location, summed back onto the pixels it came from
            cols = torch.einsum("loj,nol->njl", through, d)
            left, right, top, bottom = self.pads
            full = F.fold(cols, (h + top + bottom, wd + left + right), self.kernel_size)
            error_down = full[:, :, top : top + h, left : left + wd]
        grad_w = torch.einsum("nol,njl->loj", d, self.patches(x)) if need_w else None
        grad_b = delta.sum(0) if need_b else None
        return error_down, grad_w, grad_b


# ---------------------------------------------------------------- pooling and dropout


def zero_pad_max_pool(x: Tensor, kernel_size: int, stride: int) -> Tensor:
    """"Maxpool K" (Section 4): the max over the KxK window centred at every ``stride``-th pixel
    of the input padded with zeros ((K-1)//2 before, as many after as ceil(n / stride) windows
    need). Its gradient (autograd's) goes to each window's first maximum."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):  # F.pad's order: width first
        out = -(-n // stride)
        before = (kernel_size - 1) // 2
        pads += [before, max((out - 1) * stride + kernel_size - n - before, 0)]
    return F.max_pool2d(F.pad(x, pads), kernel_size, stride)


def zero_pad_max_pool_all_ties(x: Tensor, kernel_size: int, stride: int) -> Tensor:
    """:func:`zero_pad_max_pool`'s values, with the gradient of each window going to every
    entry equal to the window's maximum (the author's ``grad_pool``, for the error that
    ``sigma_prime_down=False`` sends down: there saturated entries, tied at +-1, pass it)."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):  # as zero_pad_max_pool
        out = -(-n // stride)
        before = (kernel_size - 1) // 2
        pads += [before, max((out - 1) * stride + kernel_size - n - before, 0)]
    padded = F.pad(x, pads)
    n, c, height, width = padded.shape
    patches = F.unfold(padded, kernel_size, stride=stride).view(n, c, kernel_size**2, -1)
    peak = patches.detach().amax(2, keepdim=True)
    ties = (patches.detach() == peak).to(patches.dtype)
    # the value is the peak; the gradient 1 at every tied entry (fold sums overlapping windows)
    pooled = peak.squeeze(2) + ((patches - patches.detach()) * ties).sum(2)
    return pooled.view(n, c, -(-(height - kernel_size + 1) // stride),
                       -(-(width - kernel_size + 1) // stride))


def dropout(x: Tensor, p: float) -> Tensor:
    """Inverted dropout ("drop P", Section 4): each unit kept with probability 1 - p (a mask
    drawn from torch's global generator) and scaled by 1 / (1 - p); its gradient (autograd's)
    is the same mask times the same scale."""
    keep = torch.empty_like(x).bernoulli_(1.0 - p)
    return x * keep / (1.0 - p)
