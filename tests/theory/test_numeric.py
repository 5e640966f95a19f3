"""Numerical checks of Theorems 1 and 2 (theory.numeric) on sims.scalar's integrator."""

from __future__ import annotations

import numpy as np

from sims.scalar import integrate_scalar
from theory.numeric import Finding, _worst_drop, check_set, rate_factor


def test_rate_factor_matches_eq11_on_a_trajectory():
    lam_T, lam_R, eps = 0.6, np.array([0.05]), np.array([0.0, 0.5, 1.0])
    lam = integrate_scalar(lam_T, lam_R, eps, np.linspace(0, 40, 50))
    s = rate_factor(lam, np.broadcast_to(lam_R, (3, 1)), eps)
    l1, l2 = lam[:, 0, :], lam[:, 1, :]
    # independent of (17): on (16), d(e^2)/dt = -2e^2 (3/2 l1^2 + eps/2 l2^2) for k = 2
    np.testing.assert_allclose(s, 1.5 * l1**2 + eps[:, None] / 2 * l2**2, rtol=1e-6, atol=1e-12)


def test_worst_drop_finds_a_planted_decrease():
    v = np.array([[0.0, 1.0, 2.0], [0.0, 1.5, 1.0], [0.0, 2.0, 3.0]])
    rel, j, t = _worst_drop(v, increasing=True)
    assert (j, t) == (0, 2) and rel < -0.3
    assert _worst_drop(v[:, :2], increasing=True)[0] >= 0


def test_theorem1_set_has_no_violation_but_lambda2_is_not_monotone():
    f = Finding("t1", 2, ("lambda_1", "e^2", "rate S", "lambda_2"))
    check_set(f, 0.5, (0.01,))
    assert f.n_sets == 1
    assert set(f.violations) == {"lambda_2"}          # λ_2 is not claimed by Theorem 1
    assert f.min_e > -1e-8


def test_theorem2_inside_lambda3_decreases_with_eps():
    f = Finding("t2", 3, ("lambda_1", "lambda_2", "lambda_3", "eps*lambda_3^2", "e^2", "rate S"))
    check_set(f, 0.6, (0.01, 0.005))
    assert set(f.violations) == {"lambda_3"}
