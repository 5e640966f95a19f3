"""sims.linear + sims.initial: vector fields, invariants, BP equivalence, Appendix 2 decoupling."""

import warnings

import numpy as np
import pytest

from sims.initial import project_modes, random_matrices, random_target, svd_start, zero_weights
from sims.linear import SolverError, bp_field, feedback_field, integrate, make_problem
from sims.scalar import conserved_16, integrate_scalar
from sims.until import System, run_until

WIDTHS = (6, 5, 4, 3)
T_EVAL = np.linspace(0.0, 4.0, 41)
TIGHT = {"rtol": 1e-10, "atol": 1e-12}


def problem_data(seed: int = 0, widths: tuple[int, ...] = WIDTHS):
    rng = np.random.default_rng(seed)
    T = random_target(widths, rng, 0.6)
    return T, random_matrices(widths, rng, 0.3), random_matrices(widths, rng, 0.3, transpose=True)


def error_of(T: np.ndarray, Ws: list[np.ndarray]) -> float:
    P = Ws[0]
    for W in Ws[1:]:
        P = W @ P
    return float(((T - P) ** 2).sum())


def test_bp_field_is_minus_half_the_gradient_of_e() -> None:
    T, Ws, _ = problem_data()
    dW = bp_field(T[None], [W[None] for W in Ws])
    h = 1e-6
    for i, W in enumerate(Ws):
        num = np.zeros_like(W)
        for idx in np.ndindex(W.shape):
            up = [w.copy() for w in Ws]
            down = [w.copy() for w in Ws]
            up[i][idx] += h
            down[i][idx] -= h
            num[idx] = -(error_of(T, up) - error_of(T, down)) / (4 * h)
        np.testing.assert_allclose(dW[i][0], num, rtol=1e-6, atol=1e-8)


def test_feedback_field_with_R_equal_Wt_is_bp_and_R_moves_as_eps_Wdot() -> None:
    T, Ws, _ = problem_data(1)
    Wb = [W[None] for W in Ws]
    Rb = [np.swapaxes(W, -1, -2) for W in Wb]
    dW, dR = feedback_field(T[None], Wb, Rb, np.array([0.7]))
    for a, b, r in zip(dW, bp_field(T[None], Wb), dR):
        np.testing.assert_allclose(a, b, rtol=1e-12)
        np.testing.assert_allclose(r, 0.7 * np.swapaxes(a, -1, -2), rtol=1e-12)


@pytest.mark.parametrize("eps", [0.0, 0.3, 1.0])
def test_invariant_R_minus_eps_Wt_is_conserved_from_a_random_start(eps: float) -> None:
    T, W0, R0 = problem_data(2)
    tr = integrate(make_problem("feedback", T, W0, R0, eps), T_EVAL)
    assert tr.drift.shape == (1, 3, T_EVAL.size)
    assert tr.drift.max() < 1e-9
    assert tr.error[0, -1] < 0.5 * tr.error[0, 0]


def test_closed_form_R_from_zero_weights() -> None:
    """From W(0) = 0, R_i(t) = R_i(0) + εW_i(t)ᵗ (eqs. (8)-(9)); R is integrated, not imposed."""
    T, _, R0 = problem_data(3)
    tr = integrate(make_problem("feedback", T, zero_weights(WIDTHS), R0, 0.5), T_EVAL,
                   keep_states=True)
    for W, R, R_0 in zip(tr.weights, tr.feedback, R0):
        np.testing.assert_allclose(R[0], R_0 + 0.5 * np.swapaxes(W[0], -1, -2), atol=1e-10)


def test_urfb_from_R_equal_Wt_reproduces_bp() -> None:
    T, W0, _ = problem_data(4)
    bp = integrate(make_problem("bp", T, W0), T_EVAL, keep_states=True, **TIGHT)
    fb = integrate(make_problem("feedback", T, W0, [W.T for W in W0], 1.0), T_EVAL,
                   keep_states=True, **TIGHT)
    np.testing.assert_allclose(fb.error, bp.error, rtol=1e-7, atol=1e-10)
    for a, b in zip(fb.weights, bp.weights):
        np.testing.assert_allclose(a, b, atol=1e-8)
    assert np.all(np.isnan(bp.corr)) and np.allclose(fb.corr[:, :, 1:], 1.0)


@pytest.mark.parametrize("widths", [(5, 4, 3), (6, 5, 4, 3), (7, 6, 5, 4, 3)])
def test_svd_start_decouples_into_system_15(widths: tuple[int, ...]) -> None:
    """Appendix 2: the projected matrix trajectory is the scalar system (15), k = 2, 3, 4."""
    rng = np.random.default_rng(len(widths))
    k, nk = len(widths) - 1, widths[-1]
    T = random_target(widths, rng, 0.8)
    lam_R = rng.uniform(0.2, 0.5, (k - 1, nk))
    start = svd_start(T, widths, lam_R, rng)
    t = np.linspace(0.0, 6.0, 31)
    for eps in (0.0, 0.5, 1.0):
        tr = integrate(make_problem("feedback", T, start.W0, start.R0, eps), t, keep_states=True,
                       **TIGHT)
        modes = project_modes([W[0] for W in tr.weights], start.frames)     # (n_t, n_k, k)
        scalar = integrate_scalar(start.lam_T, lam_R.T, eps, t)             # (n_k, k, n_t)
        np.testing.assert_allclose(np.moveaxis(modes, 0, -1), scalar, atol=1e-7)
        # W_i stays U_{i+1} Λ_i U_iᵗ: nothing outside the diagonal modes
        for i, W in enumerate(tr.weights):
            rebuilt = np.einsum("ra,ta,ca->trc", start.frames[i + 1], modes[..., i],
                                start.frames[i])
            np.testing.assert_allclose(W[0], rebuilt, atol=1e-7)
        q = conserved_16(modes, lam_R.T, np.asarray(eps))
        assert np.abs(q).max() < 1e-7
        assert tr.error[0, -1] < tr.error[0, 0]


def test_ensemble_equals_one_by_one() -> None:
    runs = [problem_data(s) for s in range(3)]
    batch = make_problem("feedback", np.stack([r[0] for r in runs]), zero_weights(WIDTHS, batch=3),
                         [np.stack(m) for m in zip(*[r[2] for r in runs])], [0.0, 0.5, 1.0])
    together = integrate(batch, T_EVAL, **TIGHT)
    for b, (T, _, R0) in enumerate(runs):
        alone = integrate(make_problem("feedback", T, zero_weights(WIDTHS), R0, 0.5 * b), T_EVAL,
                          **TIGHT)
        np.testing.assert_allclose(together.error[b], alone.error[0], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(together.corr[b, :, 1:], alone.corr[0, :, 1:], atol=1e-6)


def test_time_to_fraction_interpolates_log_error() -> None:
    T, W0, _ = problem_data(5)
    tr = integrate(make_problem("bp", T, W0), T_EVAL)
    t_hit = tr.time_to_fraction(1e-2)[0]
    j = np.searchsorted(T_EVAL, t_hit)
    assert tr.log10_error[0, j - 1] > tr.log10_error[0, 0] - 2 >= tr.log10_error[0, j]
    assert np.isnan(tr.time_to_fraction(1e-300)[0])


@pytest.mark.parametrize("change, match", [
    ({"eps": -0.5}, "eps must be >= 0"),
    ({"eps": np.inf}, "eps contains non-finite"),
    ({"T": np.ones((3, 5))}, r"T has shape \(3, 5\), expected \(n_k, n_0\) = \(3, 6\)"),
    ({"T": np.full((3, 6), np.nan)}, "T contains non-finite"),
    ({"W0": [np.zeros((5, 6)), np.zeros((4, 4)), np.zeros((3, 4))]}, "widths do not chain"),
    ({"R0": [np.zeros((6, 5)), np.zeros((5, 4)), np.zeros((3, 4))]}, r"R0\[2\]"),
    ({"R0": None}, "needs R0"),
    ({"method": "sgd"}, "method must be one of"),
])
def test_bad_inputs_name_the_argument(change: dict, match: str) -> None:
    T, W0, R0 = problem_data()
    args = {"method": "feedback", "T": T, "W0": W0, "R0": R0, "eps": 0.5} | change
    with pytest.raises(ValueError, match=match):
        make_problem(args["method"], args["T"], args["W0"], args["R0"], args["eps"])


def test_bp_refuses_feedback_arguments_and_bad_times() -> None:
    T, W0, R0 = problem_data()
    with pytest.raises(ValueError, match="bp takes neither"):
        make_problem("bp", T, W0, R0, 0.5)
    with pytest.raises(ValueError, match="t_eval"):
        integrate(make_problem("bp", T, W0), [1.0, 2.0])


def test_solver_failure_is_reported() -> None:
    """A target so large that the flow overflows: the solver gives up, we say so."""
    rng = np.random.default_rng(0)
    widths = (3, 4, 2)
    with pytest.raises(SolverError, match="failed for method 'bp'"):
        integrate(make_problem("bp", np.full((2, 3), 1e300), random_matrices(widths, rng, 1.0)),
                  np.linspace(0.0, 1.0, 3))


def test_batch_sizes_must_agree() -> None:
    T, W0, R0 = problem_data()
    W0 = [np.stack([W, W]) for W in W0]
    with pytest.raises(ValueError, match="W0\\[0\\] batch size 2 disagrees with batch 3"):
        make_problem("feedback", T, W0, R0, [0.0, 0.5, 1.0])


def test_an_error_of_exactly_zero_meets_a_tiny_threshold_without_log_of_zero() -> None:
    """e(t) = max(1 - t, 0)^2 hits exactly 0 at t = 1: it reaches 1e-300 of e(0) there, and the
    crossing's root finding takes no log(0)."""
    system = System(lambda t, y: -np.ones_like(y), np.ones(1), 1,
                    lambda y: np.maximum(y, 0.0) ** 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = run_until(system, 1e-300, 2.0, solver="RK23")
    assert abs(run.t_reach[0] - 1.0) < 1e-6
