"""Appendix 1, "Computing the shutdown of the feedback computation": rule (3) with control units u, v.

Figure 15's order: (1) the weights above unit (l, i) are updated from x_{l,i} (done by the training
engine, not here); (2) the control units fire from x_{l,i}: u = 1[x >= 1], v = -1[x <= -1];
(3) the top-down feedback delta_{l,i} arrives and the unit fires
delta~ = sigma(delta - 2K u + 2K v), sigma(z) = z if z >= -K else 0 (Appendix 1 also calls it sigma_delta).
The paper claims delta~ = 0 exactly when the unit is saturated, provided |delta| <= K.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class ShutdownTrace:
    """The three stages of Figure 15: control units u, v, the gated input, and the output delta~."""

    u: Tensor
    v: Tensor
    gated_input: Tensor
    delta_tilde: Tensor


def saturation(h: Tensor) -> Tensor:
    """Remark 2's non-linearity x = sigma(h) = max(-1, min(1, h))."""
    return h.clamp(-1.0, 1.0)


def simulate_shutdown(delta: Tensor, x: Tensor, K: float) -> ShutdownTrace:
    """Stages (2) and (3) of Figure 15 for feedback ``delta`` into units of activity ``x`` (broadcast)."""
    if not 0 < K < math.inf:
        raise ValueError(f"K must be finite and > 0, got {K!r}")
    u = (x >= 1).to(delta.dtype)
    v = -(x <= -1).to(delta.dtype)
    gated = delta + 2 * K * (v - u)  # = delta - 2K u + 2K v, one rounding (none for float32 inputs)
    delta_tilde = torch.where(gated >= -K, gated, torch.zeros_like(gated))
    return ShutdownTrace(u=u, v=v, gated_input=gated, delta_tilde=delta_tilde)


def remark2_derivative(h: Tensor) -> Tensor:
    """Remark 2's sigma'(h): 1 if |h| <= 1, else 0."""
    return (h.abs() <= 1).to(h.dtype)


def rule3(delta: Tensor, h: Tensor) -> Tensor:
    """Rule (3): the feedback is shut off (0) when |h| >= 1 (equivalently |x| = 1), else passed on."""
    return torch.where(h.abs() >= 1, torch.zeros_like(delta), delta)
