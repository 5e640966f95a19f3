"""Decide one check: symbolic comparison first, then 50-digit numeric comparison at random points.

A check is either an *equality* (a printed formula against the model's derived one) or a *sign
claim* (a derived quantity said to be > 0 or < 0 under stated assumptions). Both paths give a
verdict "holds", "erratum" or None (undecided); the symbolic verdict is final when it exists,
the numeric one is the fallback, and a disagreement between them is reported as undecided.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import mpmath
import numpy as np
import sympy as sp

DIGITS = 50
#: relative difference below which two values agree / above which they differ (50 digits)
EQUAL_TOL = mpmath.mpf("1e-30")
DIFFER_TOL = mpmath.mpf("1e-15")

#: default sampling box (log-uniform) for symbols by name prefix; real symbols: uniform (-1, 1)
DEFAULT_RANGES: dict[str, tuple[float, float]] = {
    "epsilon": (1e-2, 1.0),
    "lambda_T": (5e-2, 1.0),
    "lambda_R": (1e-3, 0.5),
    "lambda_": (1e-2, 1.5),
    "x": (1e-2, 1.5),
    "e": (1e-3, 1.0),
    "h": (1e-3, 1e-1),
    "g_": (1e-3, 2.0),
}


@dataclass(frozen=True)
class Verdict:
    """Outcome of one path: status ("holds", "erratum" or None) and a reason or witness."""

    status: str | None
    reason: str = ""
    witness: Mapping[str, float] = field(default_factory=dict)


def _box(sym: sp.Symbol, ranges: Mapping[sp.Symbol, tuple[float, float]]) -> tuple[float, float]:
    if sym in ranges:
        return ranges[sym]
    for prefix, box in sorted(DEFAULT_RANGES.items(), key=lambda kv: -len(kv[0])):
        if sym.name.startswith(prefix):
            return box
    raise KeyError(f"no sampling range for symbol {sym}")


def sample_points(symbols: Sequence[sp.Symbol], n: int, rng: np.random.Generator,
                  ranges: Mapping[sp.Symbol, tuple[float, float]],
                  constraints: Sequence[sp.Expr] = (), max_tries: int = 200) -> list[dict]:
    """``n`` random admissible points: positive symbols log-uniform in their box, every constraint > 0."""
    cons = [sp.lambdify(symbols, c, "mpmath") for c in constraints]
    points: list[dict] = []
    for _ in range(max_tries):
        for _ in range(n):
            pt = {}
            for s in symbols:
                lo, hi = _box(s, ranges)
                if s.is_positive:
                    pt[s] = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
                else:
                    pt[s] = float(rng.uniform(lo, hi))
            args = [mpmath.mpf(pt[s]) for s in symbols]
            if all(c(*args) > 0 for c in cons):
                points.append(pt)
                if len(points) == n:
                    return points
    raise RuntimeError(f"could not sample {n} points satisfying {list(constraints)}")


def _entries(expr: sp.Expr | sp.MatrixBase) -> list[sp.Expr]:
    return list(expr) if isinstance(expr, sp.MatrixBase) else [expr]


def _is_zero(expr: sp.Expr) -> bool:
    """Symbolic zero test. A rational function is zero exactly when the expanded numerator of
    its single fraction is (decisive and fast for the big matrix entries of the reduction
    checks); anything else: cheap rational normal form first, then full simplification."""
    if expr == 0:
        return True
    if expr.is_rational_function():
        return sp.expand(sp.fraction(sp.together(expr))[0]) == 0
    if sp.cancel(sp.together(expr)) == 0:
        return True
    return sp.simplify(expr) == 0


def symbolic_equal(diff: sp.Expr | sp.MatrixBase, witness: dict) -> Verdict:
    """holds if every entry of printed − derived simplifies to 0; erratum if, at an exact rational
    witness point, some entry is an exact nonzero number; otherwise undecided."""
    entries = _entries(diff)
    if all(_is_zero(d) for d in entries):
        return Verdict("holds", "printed − derived simplifies to 0")
    exact = {s: sp.Rational(round(v * 10**6), 10**6) for s, v in witness.items()}
    for d in entries:
        val = d.subs(exact)
        if not val.free_symbols and sp.radsimp(val).is_zero is False:
            return Verdict("erratum", "printed − derived is nonzero at an exact rational point",
                           {str(s): float(v) for s, v in exact.items()})
    return Verdict(None, "simplification did not reach 0 and no exact nonzero witness")


def _mp(expr: sp.Expr, symbols: Sequence[sp.Symbol]):
    return sp.lambdify(list(symbols), expr, "mpmath")


def _term_scale(expr: sp.Expr, symbols: Sequence[sp.Symbol]):
    """Σ|term| over the top-level terms of ``expr``: the size against which a difference is small."""
    terms = [_mp(t, symbols) for t in sp.Add.make_args(expr)]
    return lambda *args: sum(abs(t(*args)) for t in terms)


def numeric_equal(printed: sp.Expr | sp.MatrixBase, derived: sp.Expr | sp.MatrixBase,
                  points: Sequence[dict]) -> Verdict:
    """Compare at each point with 50 digits.

    The difference is measured relative to the size of the terms of both sides (so an identity
    whose derived side is 0 is judged against the terms that cancel): < 1e-30 agrees, > 1e-15
    differs, anything between is undecided.
    """
    p_entries, d_entries = _entries(printed), _entries(derived)
    symbols = sorted(set().union(*(e.free_symbols for e in p_entries + d_entries)), key=str)
    pairs = [(_mp(p, symbols), _mp(d, symbols), _term_scale(p, symbols), _term_scale(d, symbols))
             for p, d in zip(p_entries, d_entries)]
    worst = mpmath.mpf(0)
    with mpmath.workdps(DIGITS):
        for pt in points:
            args = [mpmath.mpf(pt[s]) for s in symbols]
            for fp, fd, sp_, sd in pairs:
                vp, vd = fp(*args), fd(*args)
                scale = max(abs(vp), abs(vd), sp_(*args), sd(*args), mpmath.mpf("1e-300"))
                rel = abs(vp - vd) / scale
                if rel > DIFFER_TOL:
                    return Verdict("erratum", f"relative difference {mpmath.nstr(rel, 3)}",
                                   {str(s): pt[s] for s in symbols})
                worst = max(worst, rel)
    if worst < EQUAL_TOL:
        return Verdict("holds", f"{len(points)} points agree to {mpmath.nstr(worst, 2)} (relative)")
    return Verdict(None, f"relative difference {mpmath.nstr(worst, 3)} is neither 0 nor clearly not")


def symbolic_sign(expr: sp.Expr, relation: str) -> Verdict:
    """Ask sympy (positive symbols) whether ``expr`` is > 0 or < 0 everywhere (as it stands
    first, then simplified)."""
    if (expr.is_positive if relation == ">" else expr.is_negative):
        return Verdict("holds", f"sympy proves it {relation} 0 for positive symbols")
    simp = sp.simplify(expr)
    known = simp.is_positive if relation == ">" else simp.is_negative
    if known:
        return Verdict("holds", f"sympy proves it {relation} 0 for positive symbols")
    return Verdict(None, "sympy cannot decide the sign symbolically")


def numeric_sign(expr: sp.Expr, relation: str, points: Sequence[dict]) -> Verdict:
    """Evaluate with 50 digits at every point; a clear violation is an erratum, and the witness
    is the point that violates the claim most (relative to the size of the expression's terms)."""
    symbols = sorted(expr.free_symbols, key=str)
    f, size = _mp(expr, symbols), _term_scale(expr, symbols)
    sign = 1 if relation == ">" else -1
    undecided, worst, witness = 0, mpmath.mpf(0), {}
    with mpmath.workdps(DIGITS):
        for pt in points:
            args = [mpmath.mpf(pt[s]) for s in symbols]
            v = sign * f(*args)
            rel = v / max(size(*args), mpmath.mpf("1e-300"))
            if rel < -EQUAL_TOL and rel < worst:
                worst, witness = rel, {str(s): pt[s] for s in symbols}
            elif abs(rel) <= EQUAL_TOL:
                undecided += 1
    if witness:
        return Verdict("erratum", f"violates {relation} 0 by {mpmath.nstr(-worst, 3)} of its size",
                       witness)
    if undecided:
        return Verdict(None, f"{undecided} of {len(points)} values indistinguishable from 0")
    return Verdict("holds", f"{relation} 0 at all {len(points)} random admissible points")
