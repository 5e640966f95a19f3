"""What the sign-concordant rules share (Liao, Leibo & Poggio 2016): R = |M| (.) sign(W)^t,
recomputed from W after every step (so in the sequential order the error goes down through the
sign of the updated W). The rules differ only in the magnitudes |M| (:meth:`magnitudes`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from deepnets.rules.base import Rule, Start, Step

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["SignConcordant", "glorot_std"]


def glorot_std(bound: float) -> float:
    """The standard deviation of a Glorot-uniform draw of bound ``bound``, sqrt(2 / (fan_in +
    fan_out))."""
    return bound / math.sqrt(3.0)


class SignConcordant(Rule):
    """R^t = magnitudes (.) sign(W), after the start and after every step."""

    learns_feedback = True
    symmetric_init_applies = False

    def magnitudes(self, r: Tensor, state: Mapping[str, Tensor], glorot_bound: float,
                   fresh: bool) -> Tensor | float:
        """|M| for R^t (``r``: the current R^t); ``fresh``: after a step (else at the start or
        after W was set from outside)."""
        raise NotImplementedError

    def _set(self, w: Tensor, r: Tensor, state: Mapping[str, Tensor], glorot_bound: float,
             fresh: bool) -> None:
        r.copy_(w.detach().sign() * self.magnitudes(r, state, glorot_bound, fresh))

    def start(self, start: Start) -> dict[str, Tensor]:
        state = self.start_state(start)
        assert start.r is not None
        self._set(start.w, start.r, state, start.glorot_bound, fresh=False)
        return state

    def start_state(self, start: Start) -> dict[str, Tensor]:
        """The rule's own tensors (fixed magnitudes), drawn before R takes W's signs."""
        return {}

    def refresh(self, w: Tensor, r: Tensor, state: Mapping[str, Tensor],
                glorot_bound: float) -> None:
        self._set(w, r, state, glorot_bound, fresh=False)

    def after_step(self, step: Step) -> None:
        self._set(step.w, step.r, step.state, step.glorot_bound, fresh=True)
