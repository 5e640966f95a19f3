"""FRFB: fixed random feedback (the paper's FRFB, Section 3; feedback alignment, Lillicrap et al.
2016): R is drawn Glorot-uniform independently of W and never changes. The smallest rule: a
name, a label, a colour and nothing to do."""

from __future__ import annotations

from deepnets.rules.base import Rule

__all__ = ["FRFB"]


class FRFB(Rule):
    name = "frfb"
    label = "FRFB"
    color = "tab:red"
    order = 1
    summary = "R random, fixed"
    source = "Lillicrap et al. 2016; Amit 2019 Sec. 3"
