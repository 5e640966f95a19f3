"""BP: back-propagation (Rumelhart et al. 1986); no separate R, the error goes down through W^t
(eq. 2 as written)."""

from __future__ import annotations

from deepnets.rules.base import Rule

__all__ = ["BP"]


class BP(Rule):
    name = "bp"
    label = "BP"
    color = "tab:green"
    order = 0
    summary = "error through W^t"
    source = "Rumelhart, Hinton & Williams 1986"
    error_path = "W^t"
