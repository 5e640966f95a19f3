"""The record of one check of ``python -m theory`` (shared by :mod:`theory.checks` and
:mod:`theory.rules`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import sympy as sp


@dataclass(frozen=True)
class Check:
    """One displayed step: printed vs derived (``relation`` None) or a sign claim ("<"/">").

    ``hypothesis`` corrects an equality's *assumptions* rather than its formula: substituted
    into both sides (e.g. column norms d = 1) it must make the step hold; ``correction_text``
    then states the corrected assumption. ``symbolic`` False skips sympy's sign decision for
    a quantity without a usable closed form (decided at the random points alone).
    """

    id: str
    ref: str
    claim: str
    printed: sp.Expr | sp.MatrixBase
    derived: sp.Expr | sp.MatrixBase
    context: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)
    relation: str | None = None
    constraints: tuple[sp.Expr, ...] = ()
    numeric_subs: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)
    ranges: Mapping[sp.Symbol, tuple[float, float]] = field(default_factory=dict)
    correction: sp.Expr | None = None
    correction_text: str = ""
    lhs: str = ""
    hypothesis: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)
    symbolic: bool = True
