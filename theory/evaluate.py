"""Run the checks of ``theory.checks``: one status per check, corrections verified.

Status: ``holds``; ``erratum`` (with a correction in LaTeX, itself checked against the model);
``undecided`` (with the reason). The symbolic verdict is taken when it exists; otherwise the
numeric one; if both exist and disagree the check is undecided.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field

import numpy as np
import sympy as sp

from theory.checks import Check
from theory.compare import (
    Verdict,
    numeric_equal,
    numeric_sign,
    sample_points,
    symbolic_equal,
    symbolic_sign,
)
from theory.symbols import latex

EQUAL_POINTS = 12
SIGN_POINTS = 300


@dataclass(frozen=True)
class Result:
    """The outcome of one check, in the form the CLI prints and writes.

    ``kind``: "equality" (printed vs derived; an erratum's correction is a formula), "sign"
    (a sign claim) or "assumption" (an equality whose correction is to its hypotheses, in words).
    """

    id: str
    ref: str
    claim: str
    kind: str
    status: str
    printed: str
    derived: str
    correction: str
    reason: str
    symbolic: str | None
    numeric: str | None
    witness: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """JSON-ready dictionary."""
        return asdict(self)


def _combine(sym: Verdict, num: Verdict) -> tuple[str, str, dict]:
    if sym.status and num.status and sym.status != num.status:
        return "undecided", f"symbolic says {sym.status}, numeric says {num.status}", {}
    chosen = sym if sym.status else num
    if chosen.status is None:
        return "undecided", f"{sym.reason}; {num.reason}", {}
    path = "symbolic" if chosen is sym else "numeric"
    return chosen.status, f"{path}: {chosen.reason}", dict(chosen.witness or num.witness)


def _symbols(*exprs: sp.Expr | sp.MatrixBase) -> list[sp.Symbol]:
    return sorted(set().union(*(ex.free_symbols for ex in exprs)), key=str)


def compare(check: Check, printed: sp.Expr | sp.MatrixBase, seed: int,
            symbolic: bool = True) -> tuple[Verdict, Verdict]:
    """Symbolic and numeric verdicts for an equality (``printed`` already in context)."""
    rng = np.random.default_rng(seed)
    pts = sample_points(_symbols(printed, check.derived), EQUAL_POINTS, rng, check.ranges,
                        check.constraints)
    diff = printed - check.derived
    sym = symbolic_equal(diff, pts[0]) if symbolic else Verdict(None, "symbolic path skipped")
    return sym, numeric_equal(printed, check.derived, pts)


def sign_verdicts(check: Check, seed: int, symbolic: bool = True) -> tuple[Verdict, Verdict]:
    """Symbolic and numeric verdicts for a sign claim (numeric: e replaced by e(λ))."""
    rng = np.random.default_rng(seed)
    num_expr = check.derived.subs(check.numeric_subs)
    pts = sample_points(_symbols(num_expr, *check.constraints), SIGN_POINTS, rng, check.ranges,
                        check.constraints)
    sym = (symbolic_sign(check.derived, check.relation) if symbolic
           else Verdict(None, "symbolic path skipped"))
    return sym, numeric_sign(num_expr, check.relation, pts)


def run_check(check: Check, seed: int = 0, symbolic: bool = True) -> Result:
    """Decide one check and, for an erratum, verify and render its correction."""
    symbolic = symbolic and check.symbolic
    if check.relation is None:
        printed = check.printed.subs(check.context)
        sym, num = compare(check, printed, seed, symbolic)
        shown = latex(check.printed)
    else:
        sym, num = sign_verdicts(check, seed, symbolic)
        shown = f"{latex(check.printed)} {check.relation} 0"
    status, reason, witness = _combine(sym, num)
    correction = ""
    if status == "erratum":
        correction = _correction(check, seed, witness)
    derived = latex(check.derived) if check.relation is None else (
        f"{latex(check.derived)} {check.relation} 0")
    kind = ("sign" if check.relation is not None
            else "assumption" if check.hypothesis else "equality")
    return Result(check.id, check.ref, check.claim, kind, status, shown, derived, correction, reason,
                  sym.status, num.status, witness)


def _correction(check: Check, seed: int, witness: dict) -> str:
    """LaTeX of the verified correction (or the derived formula when none is typed)."""
    if check.relation is not None:
        where = ", ".join(f"{k}={v:.4g}" for k, v in sorted(witness.items()))
        text = check.correction_text or f"the claim {check.relation} 0 is false"
        return f"{text} (counterexample: {where})"
    if check.hypothesis:
        return _corrected_hypothesis(check, seed)
    if check.correction is None:
        return latex(sp.simplify(check.derived))
    sym, num = compare(check, check.correction.subs(check.context), seed)
    if _combine(sym, num)[0] != "holds":
        raise AssertionError(f"the correction typed for {check.id} does not hold")
    body = latex(check.correction)
    return f"{check.lhs} = {body}" if check.lhs else body


def _corrected_hypothesis(check: Check, seed: int) -> str:
    """Verify that the step holds under the corrected assumptions and return their statement."""
    fixed = dataclasses.replace(check, derived=check.derived.subs(check.hypothesis))
    sym, num = compare(fixed, check.printed.subs(check.context).subs(check.hypothesis), seed)
    if _combine(sym, num)[0] != "holds":
        raise AssertionError(f"the hypothesis typed for {check.id} does not make it hold")
    return check.correction_text
