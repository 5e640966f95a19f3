"""A learning-rate factor for the biases (issue 19, §5): ``train_step(..., bias_lr_scale=k)``.

The paper's bias is the weight on a constant input 1 and learns by the same Hebbian rule and
step as W (Section 3.1; eq. (1) omits it): b <- b - lr delta (summed over the batch, over the
positions of a conv layer). Reference code often gives biases their own step (e.g. twice the
weights'); ``bias_lr_scale`` = k makes every feedback layer's bias step b <- b - k lr delta,
in either update order (Remark 1) and for every rule: the bias never enters the error sent
down (R delta) nor R's update, so the factor can be applied to the step the layer took, after
it. W and R take exactly the steps they take with k = 1; k = 1 (the default) touches nothing.
Other parameters of a converted model (BatchNorm's) keep the plain step ``lr``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from deepnets.nn.layers import feedback_layers

__all__ = ["SCALE_MAX", "scaled_bias_step"]

#: Largest bias step factor.
SCALE_MAX = 1e6


@contextmanager
def scaled_bias_step(net: nn.Module, scale: Any) -> Iterator[None]:
    """Around one training step of ``net``: each feedback layer's bias ends at
    b0 + ``scale`` (b1 - b0), b0 and b1 its values before and after the step (to rounding,
    b0 - scale lr delta). A one-line ValueError unless ``scale`` is a number in [0, 1e6]
    (larger factors overflow float32 biases to inf without an error)."""
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise ValueError(f"train_step: bias_lr_scale must be a number, got {scale!r}")
    if not (math.isfinite(scale) and 0 <= scale <= SCALE_MAX):
        raise ValueError(f"train_step: bias_lr_scale must be a number in [0, 1e6], got {scale!r}")
    if scale == 1:
        yield
        return
    biases = [layer.bias for layer in feedback_layers(net) if layer.bias is not None]
    before = [b.detach().clone() for b in biases]
    yield
    with torch.no_grad():
        for b, b0 in zip(biases, before):
            b.sub_(b0).mul_(float(scale)).add_(b0)
