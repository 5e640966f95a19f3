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

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.integrate import BDF, DOP853, RK23, RK45
from scipy.optimize import brentq
from threadpoolctl import threadpool_limits

from sims.linear import (
    BLAS_THREADS,
    Problem,
    SolverError,
    initial_state,
    product,
    state_matrices,
    vector_field,
)

#: scipy's explicit Runge–Kutta solvers and the implicit BDF (for the stiff reduced feedback
#: systems; it differentiates the field by finite differences, so it suits small states);
#: the step loop needs ``step`` and ``dense_output``
SOLVERS = {"RK45": RK45, "RK23": RK23, "DOP853": DOP853, "BDF": BDF}


@dataclass(frozen=True)
class System:
    """A batch of B independent problems as one ODE: ``rhs(t, y)`` on a flat member-major state
    (``y.reshape(B, -1)[b]`` is member b), ``y0`` and ``errors(y)`` giving e of every member."""

    rhs: Callable[[float, np.ndarray], np.ndarray]
    y0: np.ndarray
    batch: int
    errors: Callable[[np.ndarray], np.ndarray]
    vectorized: bool = False    # rhs also takes states as the columns of a (D, m) array


def errors(problem: Problem, y: np.ndarray) -> np.ndarray:
    """e = ‖T − W_k⋯W_1‖²_F of every member of the batch, (B,)."""
    Ws = state_matrices(problem, y)[: problem.k]
    E = problem.T - product(Ws)
    return np.einsum("bij,bij->b", E, E)


def full_system(problem: Problem) -> System:
    """BP or (7)/(9) on the full matrices of :mod:`sims.linear` (W, and R for feedback)."""
    return System(vector_field(problem), initial_state(problem), problem.batch,
                  lambda y: errors(problem, y))


#: the smallest positive float: where :func:`_crossing` takes the log of an error of 0
TINY = float(np.nextafter(0.0, 1.0))


@dataclass(frozen=True)
class StopRun:
    """Outcome for a batch of B problems.

    ``t_reach`` (B,): first time e <= fraction·e(0), nan if not by the horizon; ``t_end`` (B,):
    the time of ``states`` (t_reach, or the horizon); ``states`` (B, D): each member's state at
    t_end; ``error0``/``error_end`` (B,); ``trace_t`` (n,) and ``trace_e`` (B, n): e after every
    accepted step (t = 0 first); ``nfev``: vector-field evaluations of the whole batch.
    """

    t_reach: np.ndarray
    t_end: np.ndarray
    states: np.ndarray
    error0: np.ndarray
    error_end: np.ndarray
    trace_t: np.ndarray
    trace_e: np.ndarray
    nfev: int


def _crossing(system: System, interp, t0: float, t1: float, b: int,
              target: float) -> tuple[float, np.ndarray]:
    """First time in [t0, t1] where member b's log e meets log target, and the state there.
    An error (or target) of exactly 0 counts as the smallest positive float, so that an error
    that reaches 0 meets any target without a log(0)."""
    def gap(t: float) -> float:
        return float(np.log(max(system.errors(interp(t))[b], TINY)) - np.log(max(target, TINY)))

    tc = t1 if gap(t1) == 0 else brentq(gap, t0, t1, xtol=1e-12 * max(t1, 1.0))
    return tc, interp(tc)


def run_until(system: System, fraction: float, horizon: float, *, solver: str = "RK45",
              rtol: float = 1e-7, atol: float = 1e-9) -> StopRun:
    """Integrate ``system`` from t = 0 until every member has e <= ``fraction``·e(0), or until
    ``horizon``. Raises ValueError for bad arguments and :class:`SolverError` on failure."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    if not (np.isfinite(horizon) and horizon > 0):
        raise ValueError(f"horizon must be finite and > 0, got {horizon}")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {sorted(SOLVERS)}, got {solver!r}")
    B = system.batch
    e0 = system.errors(system.y0)
    target = fraction * e0
    t_reach = np.full(B, np.nan)
    states = system.y0.reshape(B, -1).copy()              # each member's state at its t_end
    trace_t, trace_e = [0.0], [e0]
    with np.errstate(over="ignore", invalid="ignore"), threadpool_limits(BLAS_THREADS, "blas"):
        ode = SOLVERS[solver](system.rhs, 0.0, system.y0, float(horizon), rtol=rtol, atol=atol,
                              vectorized=system.vectorized)
        while ode.status == "running" and np.isnan(t_reach).any():
            t_prev = ode.t
            message = ode.step()
            if ode.status == "failed" or not np.all(np.isfinite(ode.y)):
                raise SolverError(f"{solver} failed at t = {ode.t:.4g}: "
                                  f"{message or 'non-finite state'}")
            e = system.errors(ode.y)
            trace_t.append(ode.t)
            trace_e.append(e)
            new = np.flatnonzero(np.isnan(t_reach) & (e <= target))
            if new.size:
                interp = ode.dense_output()
                for b in new:
                    t_reach[b], y_b = _crossing(system, interp, t_prev, ode.t, b, target[b])
                    states[b] = y_b.reshape(B, -1)[b]
    left = np.isnan(t_reach)
    states[left] = ode.y.reshape(B, -1)[left]
    return StopRun(t_reach, np.where(left, ode.t, t_reach), states, e0,
                   system.errors(states.ravel()), np.asarray(trace_t),
                   np.stack(trace_e, axis=1), int(ode.nfev))
