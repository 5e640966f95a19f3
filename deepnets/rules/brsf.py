"""brSF: batchwise random-magnitude sign-concordant feedback (Liao, Leibo & Poggio 2016):
R = |M| (.) sign(W)^t with M Glorot-uniform, redrawn after every step from torch's global
generator (checkpointed, so a resumed run redraws the same M)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from deepnets.rules._sign import SignConcordant

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["BRSF"]


class BRSF(SignConcordant):
    name = "brsf"
    label = "brSF"
    color = "tab:brown"
    order = 5
    summary = "R = |M| sign(W)^t, M redrawn every batch"
    source = "Liao, Leibo & Poggio 2016"

    def magnitudes(self, r: Tensor, state: Mapping[str, Tensor], glorot_bound: float,
                   fresh: bool) -> Tensor:
        if not fresh:  # the magnitudes drawn with the layer
            return r.abs()
        return r.new_empty(r.shape).uniform_().mul_(glorot_bound)
