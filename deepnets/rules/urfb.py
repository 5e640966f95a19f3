"""URFB: the paper's updated random feedback (Section 3.1): R starts random and receives the same
Hebbian increment as W, transposed and scaled, Delta R = epsilon Delta W^t. epsilon = 1 with
R(0) = W(0)^t is back-propagation; epsilon = 0 is FRFB.

Under a torch optimizer R's direction is epsilon grad_W^t (:meth:`URFB.feedback_grad`): with
any optimizer that is linear in the gradient (SGD, momentum, Nesterov) and no weight decay,
R - epsilon W^t stays what it was at the start; Adam breaks that (``docs/rules.md``)."""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

from deepnets.rules.base import ParamSpec, Rule, Step

if TYPE_CHECKING:
    from torch import Tensor

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
    feedback_by_gradient = True
    epsilon: float

    def after_step(self, step: Step) -> None:
        if self.epsilon:
            # R += epsilon * dW.T, with dW = -lr * grad_W (R^t and grad_W in W's layout)
            step.r.add_(step.grad_w, alpha=-step.lr * self.epsilon)

    def feedback_grad(self, grad_w: Tensor) -> Tensor | None:
        # R.grad = epsilon * W.grad.T: the optimizer's step of R is epsilon times W's, transposed
        return grad_w * self.epsilon if self.epsilon else None
