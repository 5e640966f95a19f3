"""frSF: fixed random-magnitude sign-concordant feedback (Liao, Leibo & Poggio 2016; Moskovitz et
al. 2018): R = |M| (.) sign(W)^t with M drawn once (the layer's Glorot-uniform R; kept as the
buffer ``feedback_magnitude``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from deepnets.rules._sign import SignConcordant
from deepnets.rules.base import Start

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["FRSF"]


class FRSF(SignConcordant):
    name = "frsf"
    label = "frSF"
    color = "goldenrod"
    order = 6
    summary = "R = |M| sign(W)^t, M fixed"
    source = "Liao, Leibo & Poggio 2016; Moskovitz et al. 2018"

    def start_state(self, start: Start) -> dict[str, Tensor]:
        assert start.r is not None
        return {"feedback_magnitude": start.r.abs()}

    def magnitudes(self, r: Tensor, state: Mapping[str, Tensor], glorot_bound: float,
                   fresh: bool) -> Tensor:
        return state["feedback_magnitude"]
