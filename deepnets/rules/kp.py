"""KP: Kolen-Pollack (Akrout et al. 2019): Delta R = Delta W^t plus a weight decay lambda on W and
on R: W <- (1 - lr lambda) W + Delta W, R <- (1 - lr lambda) R + Delta W^t, so that W - R^t shrinks
by (1 - lr lambda) every step. Default lambda = 1e-4 (``docs/rules.md`` gives the sources).

KP is URFB with epsilon = 1 and torch's weight decay lambda on W and R: this class is exactly
that (URFB's update, ``weight_decay`` = lambda, which the layer puts on W and R; under a torch
optimizer lambda W and lambda R are added to their ``.grad``, as ``weight_decay=lambda`` does).
``tests/deepnets/test_optim.py`` checks it against URFB under ``torch.optim.SGD``."""

from __future__ import annotations

from types import MappingProxyType

from deepnets.rules.base import ParamSpec
from deepnets.rules.urfb import URFB

__all__ = ["KP"]


class KP(URFB):
    name = "kp"
    label = "KP"
    color = "tab:purple"
    order = 3
    summary = "Delta R = Delta W^t, decay lambda on W and R"
    source = "Akrout et al. 2019"
    parameters = MappingProxyType({"decay": ParamSpec(
        1e-4, 0.0, 1e3, meaning="weight decay lambda on W and R")})
    epsilon = 1.0  # not a parameter: KP is URFB with epsilon 1
    decay: float

    @property
    def weight_decay(self) -> float:
        return self.decay
