"""The autograd Function that sends the error down through the feedback weights R (Section 3.1).

Forward:  h = W x + b,  x_out = sigma(h) = clip(s h, -1, 1)  (Remark 2; no sigma at the output layer).
Backward: delta = sigma'(h) * g  with sigma'(h) = s 1[|s h| < 1];  the weight gradient is the
Hebbian product delta x^T (eq. 2's first line), and the error sent to the layer below is
R delta (eq. 2 with R in place of W^t).  For conv layers both come from one fused
``aten.convolution_backward`` call.

Update order (Remark 1): when the layer's ``_sequential_lr`` is set, backward first updates the
layer's W and R with its own increment and only then sends R delta down, with the updated R.
Otherwise it returns the weight gradients and the engine applies all increments after the pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from deepnets.layers import FeedbackLayer

__all__ = ["FeedbackFunction"]


class FeedbackFunction(torch.autograd.Function):
    """Linear map (dense / conv / untied) fused with the saturated linearity; backward through R."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor, layer: FeedbackLayer) -> Tensor:
        h = layer.linear_op(x, weight, bias)
        ctx.layer = layer
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
        lr = layer._sequential_lr
        if lr is None:  # simultaneous: one (fused) call; the engine applies the increments later
            return (*layer.linear_grads(x, delta, need_in, need_w, need_b), None)
        if need_w or need_b:  # sequential (Remark 1): update W and R first ...
            _, gw, gb = layer.linear_grads(x, delta, False, need_w, need_b)
            layer.apply_update(gw, gb, lr)
        # ... then send the feedback down through the updated R.
        grad_in = layer.linear_grads(x, delta, True, False, False)[0] if need_in else None
        return grad_in, None, None, None
