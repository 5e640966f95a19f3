"""sims.scalar: eq. (13) functions, system (15), reduced equations (14)/(19), invariants (16)."""

import numpy as np
import pytest

from sims.linear import SolverError
from sims.scalar import (
    F,
    G,
    H,
    conserved_16,
    integrate_reduced_k2,
    integrate_reduced_k3,
    integrate_scalar,
    scalar_rhs,
)

T_EVAL = np.linspace(0.0, 60.0, 121)


def rhs_by_loop(lam: np.ndarray, lam_T: float, lam_R: np.ndarray, eps: float) -> np.ndarray:
    """System (15) written term by term (1-based indices as in the paper)."""
    k = lam.size
    lam1 = {i: lam[i - 1] for i in range(1, k + 1)}
    lr = {i: lam_R[i - 2] for i in range(2, k + 1)}
    e = lam_T - np.prod(lam)
    out = []
    for i in range(1, k + 1):
        up = np.prod([lr[j] + eps * lam1[j] for j in range(i + 1, k + 1)])
        down = np.prod([lam1[j] for j in range(1, i)])
        out.append(up * e * down)
    return np.array(out)


def test_G_and_H_invert_each_other_and_G_has_its_eps0_limit() -> None:
    x = np.linspace(0.0, 3.0, 31)
    for eps in (0.0, 0.3, 1.0):
        np.testing.assert_allclose(H(G(x, 0.2, eps), 0.2, eps), x, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(F(x, 0.2, eps), 0.2 + eps * G(x, 0.2, eps), rtol=1e-12)
    np.testing.assert_allclose(G(x, 0.2, 0.0), x**2 / 0.4)
    np.testing.assert_allclose(G(x, 0.2, 1e-9), x**2 / 0.4, rtol=1e-7)


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_scalar_rhs_matches_system_15_term_by_term(k: int) -> None:
    rng = np.random.default_rng(k)
    lam, lam_R = rng.uniform(0.1, 1.5, k), rng.uniform(0.05, 0.5, k - 1)
    for eps in (0.0, 0.4, 1.0):
        np.testing.assert_allclose(scalar_rhs(0.0, lam, 0.8, lam_R, eps),
                                   rhs_by_loop(lam, 0.8, lam_R, eps), rtol=1e-13)
    batch = scalar_rhs(0.0, np.stack([lam, 2 * lam]), np.array([0.8, 0.3]), lam_R,
                       np.array([0.2, 1.0]))
    np.testing.assert_allclose(batch[1], rhs_by_loop(2 * lam, 0.3, lam_R, 1.0), rtol=1e-13)


def test_integrate_scalar_batches_and_conserves_16() -> None:
    lam_T = np.array([1.0, 0.8, 0.5])
    lam_R = np.array([[0.3, 0.2], [0.4, 0.3], [0.2, 0.3]])
    eps = np.array([0.0, 0.5, 1.0])
    lam = integrate_scalar(lam_T, lam_R, eps, T_EVAL)
    assert lam.shape == (3, 3, T_EVAL.size)
    one = integrate_scalar(lam_T[1], lam_R[1], eps[1], T_EVAL)
    np.testing.assert_allclose(one[0], lam[1], rtol=1e-7, atol=1e-9)
    q = conserved_16(np.moveaxis(lam, 1, -1), lam_R[:, None, :], eps[:, None])
    assert np.abs(q).max() < 1e-8
    err = lam_T[:, None] - lam.prod(axis=1)
    assert np.all(np.diff(lam, axis=-1) >= -1e-8)   # λ_i increasing (Appendix 2), to tolerance
    assert np.all(err >= -1e-7) and np.all(err[:, -1] < 1e-6 * lam_T)


def test_reduced_equations_14_and_19_match_the_full_systems() -> None:
    lam_T, eps = np.array([1.0, 0.5]), np.array([0.25, 1.0])
    full2 = integrate_scalar(lam_T, [0.1], eps, T_EVAL)
    np.testing.assert_allclose(integrate_reduced_k2(lam_T, 0.1, eps, T_EVAL), full2[:, 0],
                               atol=1e-7)
    full3 = integrate_scalar(lam_T, [0.1, 0.05], eps, T_EVAL)
    lam1, lam2 = integrate_reduced_k3(lam_T, 0.1, 0.05, eps, T_EVAL)
    np.testing.assert_allclose(lam1, full3[:, 0], atol=1e-7)
    np.testing.assert_allclose(lam2, full3[:, 1], atol=1e-7)
    assert lam2[:, -1].min() > 0.1                          # not the spurious λ_2 ≡ 0 branch


def test_error_decreases_faster_for_larger_eps_k2() -> None:
    """Theorem 1 on one example: λ_1 increases with ε, so e is smaller at every time."""
    lam = integrate_scalar(0.8, [0.05], np.array([0.0, 0.5, 1.0]), T_EVAL)
    err = 0.8 - lam.prod(axis=1)
    assert np.all(np.diff(lam[:, 0, 1:], axis=0) > 0)
    assert np.all(np.diff(err[:, 1:60], axis=0) < 0)


@pytest.mark.parametrize("kwargs, match", [
    ({"eps": -0.1}, "eps must be >= 0"),
    ({"lam_T": np.nan}, "lam_T must be finite"),
    ({"lam_R": np.ones((2, 1)), "eps": np.ones(3)}, "do not broadcast"),
])
def test_bad_scalar_inputs(kwargs: dict, match: str) -> None:
    args = {"lam_T": 1.0, "lam_R": [0.1], "eps": 0.5} | kwargs
    with pytest.raises(ValueError, match=match):
        integrate_scalar(args["lam_T"], args["lam_R"], args["eps"], T_EVAL)


def test_scalar_solver_failure_is_a_solver_error() -> None:
    """A system so large that the flow overflows: reported as SolverError, like sims.linear's."""
    with pytest.raises(SolverError, match="solve_ivp"):
        integrate_scalar(1e200, [1e200, 1e200], 1.0, np.linspace(0.0, 10.0, 5))
