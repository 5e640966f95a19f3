"""URFB: the paper's updated random feedback (Section 3.1): R starts random and receives the same
Hebbian increment as W, transposed and scaled, Delta R = epsilon Delta W^t. epsilon = 1 with
R(0) = W(0)^t is back-propagation; epsilon = 0 is FRFB."""

from __future__ import annotations

from types import MappingProxyType

from deepnets.rules.base import ParamSpec, Rule, Step

__all__ = ["URFB"]


class URFB(Rule):
    name = "urfb"
    label = "URFB"
    color = "tab:blue"
    order = 2
    summary = "Delta R = epsilon Delta W^t"
    source = "Amit 2019 Sec. 3"
    parameters = MappingProxyType({"epsilon": ParamSpec(
        1.0, meaning="the factor of Delta W^t that R receives (0 behaves as frfb)")})
    learns_feedback = True
    epsilon: float

    def after_step(self, step: Step) -> None:
        if self.epsilon:
            # R += epsilon * dW.T, with dW = -lr * grad_W (R^t and grad_W in W's layout)
            step.r.add_(step.grad_w, alpha=-step.lr * self.epsilon)
