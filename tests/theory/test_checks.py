"""Every check of Appendix 2 runs and has the status derived by hand (docs/theory.md)."""

from __future__ import annotations

import dataclasses

import pytest
import sympy as sp

from theory import printed as p
from theory.checks import all_checks
from theory.evaluate import compare, run_check
from theory.symbols import G2, dG2, eps, lam, lam_Ri

ERRATA = {
    "linearisation", "dF3/deps", "dG3/deps", "G2.substitution", "T2.definition",
    "T2.closed-form", "sign.T2.small", "reduction.8-10", "reduction.8-10.Lambda",
    "reduction.9-15", "thm2.orders", "thm2.lambda3", "rules.dfa.alignment.anisotropic",
}
REQUIRED_IDS = {
    "eq11", "eq12", "eq13.F", "eq13.G", "eq13.G.alt", "eq13.H", "dF/deps", "dG/deps",
    "df1/deps", "eq16", "eq17.k2", "eq17.k3", "eq17.k4", "eq17.k5", "eq18", "eq19.lambda2",
    "eq19.lambda1", "dF2/deps", "dG2/deps", "dF3/deps", "dG3/deps", "dH/deps", "rhs1/deps",
    "G2.substitution", "dF3.closed-form", "rhs2/deps", "T2.closed-form", "T2.last-factor",
    "thm2.bound", "sign.F", "sign.G", "sign.H", "sign.dF/deps", "sign.dG/deps",
    "reduction.8-10", "reduction.9-15", "thm2.lambda3", "thm1.monotone", "thm2.orders",
    "eq17.first", "T2.root", "T2.root.single", "T2.root.condition", "T2.small.bound",
    "T2.small.ratio", "thm2.lambda3.limit", "rules.urfb.invariant", "rules.decay.invariant",
    "rules.kp.decay", "rules.kp.solution", "rules.kp.time", "rules.kp.cos-bound",
    "rules.kp.align-time", "rules.dfa.fixed-points", "rules.dfa.W1-range", "rules.dfa.W2-form",
    "rules.dfa.Z-sym", "rules.dfa.alignment", "rules.dfa.alignment.sign",
    "rules.dfa.alignment.anisotropic", "rules.sign.concordant", "rules.sign.scale-free",
    "rules.sign.flip-step", "rules.usf.cos", "rules.usf.cos.gaussian", "rules.frsf.cos.gaussian",
    "rules.wm.mirror-mean", "rules.wm.fixed-point", "rules.wm.relaxation",
}


@pytest.fixture(scope="module")
def results():
    return {c.id: run_check(c) for c in all_checks()}


def test_ids_unique_and_complete():
    ids = [c.id for c in all_checks()]
    assert len(ids) == len(set(ids))
    assert REQUIRED_IDS <= set(ids)


@pytest.mark.parametrize("check", all_checks(), ids=lambda c: c.id)
def test_status(results, check):
    expected = "erratum" if check.id in ERRATA else "holds"
    assert results[check.id].status == expected, results[check.id].reason


def test_symbolic_and_numeric_agree(results):
    both = [r for r in results.values() if r.symbolic and r.numeric]
    assert len(both) > 40
    for r in both:
        assert r.symbolic == r.numeric, r.id
    # every equality is decided by the numeric fallback alone as well
    for r in results.values():
        if r.kind == "equality":
            assert r.numeric == r.status, r.id


def _at(expr: sp.Expr | sp.MatrixBase, point: dict[str, float]) -> list[complex]:
    """``expr`` (a number or a matrix) at ``point`` (symbol name -> value), entry by entry."""
    value = expr.subs({s: point[s.name] for s in expr.free_symbols}).evalf(30)
    return [complex(v) for v in (value if isinstance(value, sp.MatrixBase) else [value])]


def _gap(a: sp.Expr | sp.MatrixBase, b: sp.Expr | sp.MatrixBase, point: dict[str, float]) -> float:
    """Largest |a - b| over the entries at ``point``, relative to the larger side."""
    return max(abs(x - y) / max(abs(x), abs(y), 1e-300) for x, y in zip(_at(a, point), _at(b, point)))


def test_each_erratum_has_a_counterexample_and_its_correction_holds_there(results):
    """The report's witness of an erratum breaks the printed step (a sign claim is false there,
    the printed formula differs from the derived one), and a typed correction is right there."""
    for cid in sorted(ERRATA):
        check, point = _by_id(cid), results[cid].witness
        if check.relation is not None:
            value = _at(check.derived.subs(check.numeric_subs), point)[0].real
            assert (value >= 0 if check.relation == "<" else value <= 0), cid
            continue
        assert _gap(check.printed.subs(check.context), check.derived, point) > 1e-3, cid
        if check.correction is not None:
            assert _gap(check.correction.subs(check.context), check.derived, point) < 1e-8, cid
    assert results["dF3/deps"].correction.startswith(r"\frac{dF_3}{d\epsilon} =")


def test_typed_corrections_hold():
    for c in all_checks():
        if c.correction is not None:
            sym, num = compare(c, c.correction.subs(c.context), seed=1)
            assert (sym.status, num.status) == ("holds", "holds"), c.id


def _by_id(cid):
    return next(c for c in all_checks() if c.id == cid)


l1, l2 = lam(1), lam(2)
MUTATIONS = [
    ("eq11", p.EQ11.subs(eps, -eps)),                                    # sign
    ("eq13.H", sp.sqrt(2 * p.lam_R * p.x - eps * p.x**2)),               # sign inside a root
    ("dG/deps", -p.DG_DEPS),                                              # sign
    ("dF2/deps", 2 * p.DF2_DEPS),                                         # factor
    ("eq18", p.EQ18.subs(sp.Rational(3, 2), sp.Rational(1, 2))),          # coefficient
    ("T2.last-factor", p.T2_LAST_FACTOR.subs(l2, l2**2)),                 # exponent
    ("eq17.k3", p.eq17_final(3).subs(lam(3) ** 2, lam(3) ** 3)),          # exponent
    ("dF3.closed-form", p.DF3_CLOSED_FORM * lam_Ri(2) / lam_Ri(3)),      # wrong parameter
    ("dF3/deps", G2**2 / (2 * p.F3) + 2 * eps * G2 / p.F3 * dG2),        # factor on the fix
]


@pytest.mark.parametrize("cid, mutated", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_planted_mutation_is_caught(cid, mutated):
    check = dataclasses.replace(_by_id(cid), printed=mutated)
    assert mutated != _by_id(cid).printed
    r = run_check(check)
    assert r.status == "erratum"
    assert r.symbolic in ("erratum", None) and r.numeric == "erratum"


def test_flipped_sign_claim_is_caught():
    r = run_check(dataclasses.replace(_by_id("sign.dF/deps"), relation="<"))
    assert r.status == "erratum" and r.witness
