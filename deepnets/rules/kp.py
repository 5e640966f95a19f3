"""KP: Kolen-Pollack (Akrout et al. 2019): Delta R = Delta W^t plus a weight decay lambda on W and
on R: W <- (1 - lr lambda) W + Delta W, R <- (1 - lr lambda) R + Delta W^t, so that W - R^t shrinks
by (1 - lr lambda) every step. Without decay KP is URFB with epsilon = 1. Default lambda = 1e-4
(``docs/rules.md`` gives the sources)."""

from __future__ import annotations

from types import MappingProxyType

from deepnets.rules.base import ParamSpec, Rule, Step

__all__ = ["KP"]


class KP(Rule):
    name = "kp"
    label = "KP"
    color = "tab:purple"
    order = 3
    summary = "Delta R = Delta W^t, decay lambda on W and R"
    source = "Akrout et al. 2019"
    parameters = MappingProxyType({"decay": ParamSpec(
        1e-4, 0.0, 1e3, meaning="weight decay lambda on W and R")})
    learns_feedback = True
    decay: float

    @property
    def weight_decay(self) -> float:
        return self.decay

    def after_step(self, step: Step) -> None:
        if self.decay:
            step.r.mul_(1.0 - step.lr * self.decay)  # R <- (1 - lr lambda) R
        step.r.add_(step.grad_w, alpha=-step.lr)  # R += dW.T, dW = -lr grad_W
