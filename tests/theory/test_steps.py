"""The steps added by issue 12: the reduction (8)/(9) → (10)/(15), Theorem 1's monotonicity,
the first member of (17), the exact T_2 argument, the orders and λ_3 in Theorem 2."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import sympy as sp

from theory import reduction as rd
from theory.checks import LAM2_STAR, all_checks
from theory.evaluate import _correction, run_check
from theory.numeric import lambda3_counterexample
from theory.symbols import e, eps, lam, lam_Ri


def _by_id(cid: str):
    return next(c for c in all_checks() if c.id == cid)


def _exact(printed: sp.Matrix, derived: sp.Matrix) -> str:
    """holds / erratum of printed = derived at an exact random rational point (u, d in (0, 2))."""
    rng = np.random.default_rng(0)
    point = {s: sp.Rational(int(rng.integers(1, 200)), 100)
             for s in printed.free_symbols | derived.free_symbols}
    diff = (printed - derived).xreplace(point)
    return "holds" if all(x == 0 for x in diff) else "erratum"


@pytest.mark.parametrize("fixed, status", [
    ({rd.d: 1, rd.u: 0}, "holds"),        # orthonormal frames and U_1 = V
    ({rd.d: 1}, "erratum"),               # orthonormal frames, U_1 turned away from V
    ({rd.u: 0}, "erratum"),               # U_1 = V, frames orthogonal of norm d
])
def test_deep_reduction_needs_both_conditions(fixed, status):
    deep = rd.three_layer()
    assert _exact(deep.printed.xreplace(fixed), deep.derived.xreplace(fixed)) == status


def test_two_layer_reduction_holds_with_orthonormal_S_only():
    system, _ = rd.two_layer()
    one, other = {rd.d: 1}, {rd.d: sp.Rational(3, 2)}
    assert _exact(system.printed.xreplace(one), system.derived.xreplace(one)) == "holds"
    assert _exact(system.printed.xreplace(other), system.derived.xreplace(other)) == "erratum"


@pytest.mark.parametrize("widths", [(7, 6, 3), (7, 6, 5, 3), (9, 8, 8, 8, 4)])
def test_sims_residual_is_machine_precision_only_when_the_conditions_hold(widths):
    assert rd.residual(widths) < 1e-13
    assert rd.residual(widths, scale=1.5) > 0.1
    if len(widths) > 3:
        assert rd.residual(widths, u1_is_v=False) > 0.1


def test_a_wrong_hypothesis_is_refused():
    check = dataclasses.replace(_by_id("reduction.8-10"), hypothesis={rd.d: 2})
    with pytest.raises(AssertionError, match="hypothesis"):
        _correction(check, 0, {})


l2, R2, R3 = lam(2), lam_Ri(2), lam_Ri(3)
MUTATIONS = [
    ("T2.root", 4 * R2 * R3**2 / (4 * R2**2 + eps * R3**2), "printed"),     # sign in the root
    ("eq17.first", _by_id("eq17.first").printed.subs(e, e**2), "printed"),  # e², not e
    ("thm1.monotone", -_by_id("thm1.monotone").derived, "derived"),          # a decreasing λ
    ("thm2.lambda3.limit", -_by_id("thm2.lambda3.limit").derived, "derived"),
]


@pytest.mark.parametrize("cid, mutated, side", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_planted_mutation_is_caught(cid, mutated, side):
    r = run_check(dataclasses.replace(_by_id(cid), **{side: mutated}), symbolic=False)
    assert r.status == "erratum" and r.numeric == "erratum"


def test_root_condition_is_the_theorem_condition():
    """λ_2* = λ_{R,3} exactly at λ_{R,2} = (1+√(1+ε))/2 λ_{R,3} (the positive solution)."""
    sols = [s for s in sp.solve(sp.Eq(LAM2_STAR, R3), R2) if s.subs({eps: 1, R3: 1}) > 0]
    assert len(sols) == 1
    assert sp.simplify(sols[0] - (1 + sp.sqrt(1 + eps)) / 2 * R3) == 0


def test_orders_are_theta_not_o():
    r = run_check(_by_id("thm2.orders"))
    assert r.status == "erratum" and r.symbolic == "erratum"
    assert r"c^{5}" in r.correction and "lambda_T" in r.correction


def test_lambda3_flips_inside_theorem2_assumptions():
    ex = lambda3_counterexample()
    r2, r3 = ex.lam_R
    assert max(r2, r3) < 0.05 < ex.lam_T < 1 and r2 > (1 + np.sqrt(2)) / 2 * r3
    assert 0 < ex.t_flip < ex.t and ex.lam3[0] > 1.5 * ex.lam3[1]
    assert ex.e_rel[0] > 0.5           # ε = 0 is far from converged: a genuinely finite-t failure
