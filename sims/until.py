"""Integrate BP or the feedback system (9) until e(t) falls to a fraction of e(0) (Section 5.1).

Section 5.1 reports how fast e(t) = tr(EᵗE) decays. :func:`run_until` steps a scipy Runge–Kutta
solver through a batch of problems, records e(t) of every member after every accepted step,
finds each member's first crossing of ``fraction``·e(0) on the solver's dense output, keeps that
member's state at that moment, and stops as soon as every member has crossed (or at the
horizon). Stopping there matters: once converged the feedback systems are stiff (one layer's
relaxation rate grows like the squared product of the others), so every step past the
threshold is costly and changes nothing that is measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate import DOP853, RK23, RK45
from scipy.optimize import brentq
from threadpoolctl import threadpool_limits

from sims.rkc import RKC
from sims.linear import (
    BLAS_THREADS,
    Problem,
    SolverError,
    initial_state,
    product,
    state_matrices,
    vector_field,
)

#: scipy's explicit Runge–Kutta solvers and the Runge–Kutta–Chebyshev solver of :mod:`sims.rkc`
SOLVERS = {"RK45": RK45, "RK23": RK23, "DOP853": DOP853, "RKC": RKC}


@dataclass(frozen=True)
class StopRun:
    """Outcome for a batch of B problems.

    ``t_reach`` (B,): first time e <= fraction·e(0), nan if not by the horizon; ``t_end`` (B,):
    the time of ``final`` (t_reach, or the horizon); ``final``: the state matrices (W_1..W_k,
    then R_1..R_k for feedback), each (B, rows, cols), at t_end; ``error0``/``error_end`` (B,);
    ``trace_t`` (n,) and ``trace_e`` (B, n): e after every accepted step (t = 0 first);
    ``nfev``: vector-field evaluations of the whole batch.
    """

    t_reach: np.ndarray
    t_end: np.ndarray
    final: list[np.ndarray]
    error0: np.ndarray
    error_end: np.ndarray
    trace_t: np.ndarray
    trace_e: np.ndarray
    nfev: int


def errors(problem: Problem, y: np.ndarray) -> np.ndarray:
    """e = ‖T − W_k⋯W_1‖²_F of every member of the batch, (B,)."""
    Ws = state_matrices(problem, y)[: problem.k]
    E = problem.T - product(Ws)
    return np.einsum("bij,bij->b", E, E)


def _crossing(problem: Problem, interp, t0: float, t1: float, b: int,
              target: float) -> tuple[float, np.ndarray]:
    """First time in [t0, t1] where member b's log e meets log target, and the state there."""
    def gap(t: float) -> float:
        return float(np.log(errors(problem, interp(t))[b]) - np.log(target))

    tc = t1 if gap(t1) == 0 else brentq(gap, t0, t1, xtol=1e-12 * max(t1, 1.0))
    return tc, interp(tc)


def run_until(problem: Problem, fraction: float, horizon: float, *, solver: str = "RK45",
              rtol: float = 1e-7, atol: float = 1e-9) -> StopRun:
    """Integrate ``problem`` from t = 0 until every member has e <= ``fraction``·e(0), or until
    ``horizon``. Raises ValueError for bad arguments and :class:`SolverError` on failure."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    if not (np.isfinite(horizon) and horizon > 0):
        raise ValueError(f"horizon must be finite and > 0, got {horizon}")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {sorted(SOLVERS)}, got {solver!r}")
    B = problem.batch
    y0 = initial_state(problem)
    e0 = errors(problem, y0)
    target = fraction * e0
    t_reach = np.full(B, np.nan)
    states = y0.reshape(B, -1).copy()               # each member's state at its t_end
    trace_t, trace_e = [0.0], [e0]
    with np.errstate(over="ignore", invalid="ignore"), threadpool_limits(BLAS_THREADS, "blas"):
        ode = SOLVERS[solver](vector_field(problem), 0.0, y0, float(horizon), rtol=rtol, atol=atol)
        while ode.status == "running" and np.isnan(t_reach).any():
            t_prev = ode.t
            message = ode.step()
            if ode.status == "failed" or not np.all(np.isfinite(ode.y)):
                raise SolverError(f"{solver} failed for method {problem.method!r} at "
                                  f"t = {ode.t:.4g}: {message or 'non-finite state'}")
            e = errors(problem, ode.y)
            trace_t.append(ode.t)
            trace_e.append(e)
            new = np.flatnonzero(np.isnan(t_reach) & (e <= target))
            if new.size:
                interp = ode.dense_output()
                for b in new:
                    t_reach[b], y_b = _crossing(problem, interp, t_prev, ode.t, b, target[b])
                    states[b] = y_b.reshape(B, -1)[b]
    left = np.isnan(t_reach)
    states[left] = ode.y.reshape(B, -1)[left]
    final = state_matrices(problem, states.ravel())
    return StopRun(t_reach, np.where(left, ode.t, t_reach), [m.copy() for m in final], e0,
                   errors(problem, states.ravel()), np.asarray(trace_t),
                   np.stack(trace_e, axis=1), int(ode.nfev))
