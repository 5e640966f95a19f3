"""uSF: uniform sign-concordant feedback (Liao, Leibo & Poggio 2016): R = s sigma_l sign(W)^t with
sigma_l = sqrt(2 / (fan_in + fan_out)), the layer's Glorot standard deviation, and s = ``scale``
(BioTorch's choice, after Xiao et al. 2018); recomputed from W after every step."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from deepnets.rules._sign import SignConcordant, glorot_std
from deepnets.rules.base import ParamSpec

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["USF"]


class USF(SignConcordant):
    name = "usf"
    label = "uSF"
    color = "tab:orange"
    order = 4
    summary = "R = scale * std * sign(W)^t"
    source = "Liao, Leibo & Poggio 2016; Xiao et al. 2018"
    parameters = MappingProxyType({"scale": ParamSpec(
        1.0, 0.0, 1e6, low_open=True, meaning="|R| in units of the layer's Glorot std")})
    scale: float

    def magnitudes(self, r: Tensor, state: Mapping[str, Tensor], glorot_bound: float,
                   fresh: bool) -> float:
        return self.scale * glorot_std(glorot_bound)
