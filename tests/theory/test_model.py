"""The sympy model (theory.model) and the comparison engine (theory.compare)."""

from __future__ import annotations

import numpy as np
import sympy as sp

from theory import model as m
from theory.compare import numeric_equal, numeric_sign, sample_points, symbolic_equal
from theory.symbols import Delta, eps, f_eps, f_lam, h, lam, lam_R, lam_Ri, x


def test_conserved_quantity_is_constant_along_the_flow():
    for k in (2, 3, 4):
        for i in range(2, k + 1):
            assert sp.simplify(m.time_derivative(m.conserved(i, k), k)) == 0


def test_roots_solve_the_conserved_quantity():
    q = m.conserved(2).subs(lam_Ri(2), lam_R)
    assert sp.simplify(q.subs({lam(1): x, lam(2): m.G_d(x, lam_R)})) == 0
    assert sp.simplify(q.subs({lam(2): x, lam(1): m.H_d(x, lam_R)})) == 0
    assert sp.simplify(m.F_d(x, lam_R) - sp.sqrt(lam_R**2 + eps * x**2)) == 0


def test_linearised_difference_keeps_the_step():
    assert sp.expand(m.linearised_difference() - (f_lam * Delta + h * f_eps)) == 0


def test_symbolic_equal_decides_both_ways():
    assert symbolic_equal(sp.sqrt(x**2) - x, {x: 0.3}).status == "holds"
    v = symbolic_equal(sp.sqrt(x**2 + 1) - x, {x: 0.3})
    assert v.status == "erratum" and v.witness


def test_numeric_paths():
    rng = np.random.default_rng(0)
    pts = sample_points([x, eps], 10, rng, {}, constraints=(x - eps,))
    assert all(pt[x] > pt[eps] for pt in pts)
    assert numeric_equal((x + 1) ** 2, x**2 + 2 * x + 1, pts).status == "holds"
    assert numeric_equal((x + 1) ** 2, x**2 + 1, pts).status == "erratum"
    assert numeric_sign(x - eps, ">", pts).status == "holds"
    bad = numeric_sign(x - 2 * eps, ">", sample_points([x, eps], 200, rng, {}))
    assert bad.status == "erratum" and bad.witness["x"] < 2 * bad.witness["epsilon"]


def test_disagreeing_paths_are_undecided():
    from theory.compare import Verdict
    from theory.evaluate import _combine
    assert _combine(Verdict("holds"), Verdict("erratum"))[0] == "undecided"
    assert _combine(Verdict(None, "a"), Verdict(None, "b"))[0] == "undecided"
    assert _combine(Verdict(None, "a"), Verdict("holds", "ok"))[:2] == ("holds", "numeric: ok")
