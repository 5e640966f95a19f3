"""WM: weight mirror (Akrout, Wilson, Humphreys, Lillicrap & Tweed 2019, "Deep learning without
weight transport"). R learns in a mirror phase: after every step each layer is driven by
zero-mean noise x ~ N(0, noise^2) (a batch of the training batch's size, shaped like the layer's
input) and R moves toward W^t by the Hebbian product of the noise and the layer's response
y = W x, with decay:

    R <- (1 - decay) R + mirror_lr <x y^t>

(<.>: the mean over the noise batch and, for a conv, over the pixels that share W:
:class:`deepnets.rules.base.LinearMaps`).

Since <x x^t> -> noise^2 I, the mean increment is mirror_lr noise^2 W^t, and R's fixed point is
(mirror_lr noise^2 / decay) W^t; the defaults make that W^t itself. Defaults and sources:
``docs/rules.md``."""

from __future__ import annotations

from types import MappingProxyType

from deepnets.rules.base import ParamSpec, Rule, Step

__all__ = ["WM"]


class WM(Rule):
    name = "wm"
    label = "WM"
    color = "tab:cyan"
    order = 8
    summary = "mirror phase: R += mirror_lr <x (W x)^t> - decay R, x noise"
    source = "Akrout et al. 2019"
    parameters = MappingProxyType({
        "mirror_lr": ParamSpec(1.0, meaning="step of R toward the mirror's Hebbian product"),
        "noise": ParamSpec(0.1, 0.0, 1e6, low_open=True,
                           meaning="standard deviation of the mirror phase's noise"),
        "decay": ParamSpec(0.01, 0.0, 1.0, meaning="R <- (1 - decay) R every mirror phase"),
    })
    learns_feedback = True
    mirror_lr: float
    noise: float
    decay: float

    def after_step(self, step: Step) -> None:
        x = step.r.new_empty(step.maps.input_shape).normal_(0.0, self.noise)  # global generator
        y = step.maps.forward(x)  # the layer's response W x
        if self.decay:
            step.r.mul_(1.0 - self.decay)
        # R += mirror_lr * <x y^t>  (in W's layout: R^t += mirror_lr * <y x^t>)
        step.r.add_(step.maps.hebbian(x, y), alpha=self.mirror_lr)
