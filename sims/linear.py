"""Learning dynamics of deep linear networks, Section 5: back-propagation and the feedback systems (7)/(9).

Notation of Section 5: whitened inputs (XXᵗ = I), target map T (n_k × n_0), weights
W_i (n_i × n_{i-1}), feedback matrices R_i (n_{i-1} × n_i), error E = T − W_k⋯W_1 and
e = tr(EᵗE). The vector fields are

- BP:       Ẇ_i = (W_{i+1}ᵗ⋯W_kᵗ) E (W_1ᵗ⋯W_{i-1}ᵗ);
- feedback: Ẇ_i = (R_{i+1}⋯R_k) E (W_1ᵗ⋯W_{i-1}ᵗ),  Ṙ_i = ε Ẇ_iᵗ  (ε = 0: FRFB, ε = 1: URFB).

The feedback matrices are explicit state: the closed form R_i = R_i(0) + εW_iᵗ of (8)/(9) is never
used (it holds only from W(0) = 0; its invariant R_i − εW_iᵗ is reported as a check). As in the
networks of Section 3, R_1 (the input layer's feedback) is carried and updated by the same rule
although it never feeds back into the dynamics; it makes corr(W_1, R_1ᵗ) of Figure 12 defined.

Every array carries a leading batch (ensemble) axis B: one :func:`integrate` call runs B
independent problems (seeds, ε values) through one vectorised vector field and one
:func:`scipy.integrate.solve_ivp` solve.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.integrate import solve_ivp
from threadpoolctl import threadpool_limits

from urfb_common import available_memory

METHODS: tuple[str, ...] = ("bp", "feedback")
#: Solver defaults, accurate for the Figure 12 setting (tests check the invariants to ~1e-6).
DEFAULT_SOLVER = "RK45"
DEFAULT_RTOL = 1e-7
DEFAULT_ATOL = 1e-9
#: The tolerances the sweeps accept (issue 19: ``--rtol 10`` flipped the verdict). Measured on
#: the default Figure 12 sweep (``sims.epsilon_sweep``): at rtol 1e-3 the times to threshold
#: agree with rtol 1e-5 to 1e-3 relative, at 1e-2 BP's are 6% off; at atol 1e-6 they agree
#: with the default to 3e-4, at 1e-3 the ε ordering fails in 2 of 3 runs. Below 100 machine
#: epsilons ``solve_ivp`` raises rtol itself.
RTOL_RANGE = (100 * float(np.finfo(float).eps), 1e-3)
ATOL_RANGE = (0.0, 1e-6)
#: BLAS threads during a solve: the matrices are small, so extra threads only add overhead
#: (the default Figure 12 sweep ran 4x slower with 2 OpenBLAS threads on a 2-core machine).
BLAS_THREADS = 1


class SolverError(RuntimeError):
    """The ODE solver failed or produced non-finite values."""


def check_widths(widths: Sequence[int]) -> tuple[int, ...]:
    """Validate layer widths n_0..n_k (k >= 2, positive integers)."""
    out = tuple(int(n) for n in widths)
    if len(out) < 3 or any(n < 1 for n in out) or any(int(n) != n for n in widths):
        raise ValueError(f"widths must be >= 3 positive integers n_0..n_k (k >= 2), got {list(widths)}")
    return out


def _finite(name: str, arr: np.ndarray) -> None:
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values")


def _stack(name: str, mats: Sequence[ArrayLike],
           shapes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """Validate a list of (B?, rows, cols) matrices against ``shapes``; return them as (B, r, c)."""
    if len(mats) != len(shapes):
        raise ValueError(f"{name} must hold {len(shapes)} matrices, got {len(mats)}")
    out = []
    for i, (m, shape) in enumerate(zip(mats, shapes), start=1):
        a = np.asarray(m, dtype=float)
        if a.shape[-2:] != shape or a.ndim not in (2, 3):
            raise ValueError(f"{name}[{i - 1}] (layer {i}) has shape {a.shape}, expected "
                             f"{shape} or (B, {shape[0]}, {shape[1]}): widths do not chain")
        _finite(f"{name}[{i - 1}]", a)
        out.append(a if a.ndim == 3 else a[None])
    return out


@dataclass(frozen=True)
class Problem:
    """A validated batch of initial value problems for one method."""

    method: str
    widths: tuple[int, ...]
    T: np.ndarray                    # (B, n_k, n_0)
    W0: tuple[np.ndarray, ...]       # W_i(0), (B, n_i, n_{i-1})
    R0: tuple[np.ndarray, ...]       # R_i(0), (B, n_{i-1}, n_i); empty for bp
    eps: np.ndarray                  # (B,); nan for bp

    @property
    def batch(self) -> int:
        return self.T.shape[0]

    @property
    def k(self) -> int:
        return len(self.widths) - 1

    def shapes(self) -> list[tuple[int, int]]:
        """Shapes of the state matrices: W_1..W_k, then R_1..R_k for feedback."""
        n = self.widths
        w = [(n[i], n[i - 1]) for i in range(1, self.k + 1)]
        return w + ([(b, a) for a, b in w] if self.method == "feedback" else [])


def make_problem(method: str, T: ArrayLike, W0: Sequence[ArrayLike],
                 R0: Sequence[ArrayLike] | None = None, eps: ArrayLike | None = None) -> Problem:
    """Validate inputs (method, shapes, finiteness, ε >= 0) and broadcast them to one batch.

    ``T`` is (n_k, n_0) or (B, n_k, n_0); ``W0`` k matrices (n_i × n_{i-1}), each optionally with
    a leading B; widths are read from ``W0``. ``R0`` (k matrices n_{i-1} × n_i) and ``eps``
    (scalar or (B,)) are required for ``feedback`` and refused for ``bp``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if len(W0) < 2:
        raise ValueError(f"W0 must hold k >= 2 matrices, got {len(W0)}")
    for i, w in enumerate(W0):
        if np.ndim(w) not in (2, 3):
            raise ValueError(f"W0[{i}] must be a matrix (n_{i + 1}, n_{i}) or with a leading "
                             f"batch axis, got shape {np.shape(w)}")
    widths = list(check_widths([np.shape(W0[0])[-1]] + [np.shape(w)[-2] for w in W0]))
    Tm = np.asarray(T, dtype=float)
    if Tm.ndim not in (2, 3) or Tm.shape[-2:] != (widths[-1], widths[0]):
        raise ValueError(f"T has shape {Tm.shape}, expected (n_k, n_0) = ({widths[-1]}, "
                         f"{widths[0]}) or (B, {widths[-1]}, {widths[0]})")
    _finite("T", Tm)
    Tm = Tm if Tm.ndim == 3 else Tm[None]
    k = len(widths) - 1
    w_shapes = [(widths[i], widths[i - 1]) for i in range(1, k + 1)]
    Ws = _stack("W0", W0, w_shapes)
    if method == "bp":
        if R0 is not None or eps is not None:
            raise ValueError("R0 and eps are for method 'feedback'; bp takes neither")
        Rs: list[np.ndarray] = []
        e = np.full(1, np.nan)
    else:
        if R0 is None or eps is None:
            raise ValueError("method 'feedback' needs R0 (k matrices n_{i-1} x n_i) and eps")
        Rs = _stack("R0", R0, [(b, a) for a, b in w_shapes])
        e = np.atleast_1d(np.asarray(eps, dtype=float))
        if e.ndim != 1:
            raise ValueError(f"eps must be a scalar or a 1-D array (B,), got shape {e.shape}")
        _finite("eps", e)
        if np.any(e < 0):
            raise ValueError(f"eps must be >= 0, got {e.min():g}")
    B = max([Tm.shape[0], e.shape[0]] + [a.shape[0] for a in Ws + Rs])
    named = [("T", Tm), ("eps", e)] + [(f"W0[{i}]", a) for i, a in enumerate(Ws)]
    for name, a in named + [(f"R0[{i}]", a) for i, a in enumerate(Rs)]:
        if a.shape[0] not in (1, B):
            raise ValueError(f"{name} batch size {a.shape[0]} disagrees with batch {B}")

    def bc(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(a, (B,) + a.shape[1:]))

    return Problem(method, tuple(widths), bc(Tm), tuple(bc(a) for a in Ws),
                   tuple(bc(a) for a in Rs), bc(e))


def product(Ws: Sequence[np.ndarray]) -> np.ndarray:
    """W_k⋯W_1, multiplied from the output side (n_k is the narrow width in Section 5)."""
    out = Ws[-1]
    for W in reversed(Ws[:-1]):
        out = out @ W
    return out


def bp_field(T: np.ndarray, Ws: Sequence[np.ndarray],
             out: Sequence[np.ndarray] | None = None) -> list[np.ndarray]:
    """BP vector field Ẇ_i = (W_{i+1}ᵗ⋯W_kᵗ) E (W_1ᵗ⋯W_{i-1}ᵗ) (Section 5), batched on axis 0.

    ``out`` (k arrays shaped like ``Ws``, e.g. views into the solver's derivative) receives Ẇ.
    """
    dW = [np.empty_like(W) for W in Ws] if out is None else list(out)
    _field_into(T, Ws, [np.swapaxes(W, -1, -2) for W in Ws], dW)
    return dW


def feedback_field(T: np.ndarray, Ws: Sequence[np.ndarray], Rs: Sequence[np.ndarray],
                   eps: np.ndarray, out: Sequence[np.ndarray] | None = None
                   ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Feedback vector field of (7)/(9): Ẇ_i = (R_{i+1}⋯R_k) E (W_1ᵗ⋯W_{i-1}ᵗ), Ṙ_i = εẆ_iᵗ.

    ``eps`` has shape (B,); arrays are batched on axis 0. ``out`` (2k arrays shaped like
    ``Ws`` then ``Rs``) receives Ẇ and Ṙ.
    """
    k = len(Ws)
    res = [np.empty_like(a) for a in [*Ws, *Rs]] if out is None else list(out)
    dW, dR = res[:k], res[k:]
    _field_into(T, Ws, Rs, dW)
    e = eps[:, None, None]
    for d, r in zip(dW, dR):
        np.multiply(e, np.swapaxes(d, -1, -2), out=r)
    return dW, dR


def _field_into(T: np.ndarray, Ws: Sequence[np.ndarray], back: Sequence[np.ndarray],
                dW: Sequence[np.ndarray], *, chained: bool = True) -> None:
    """Write Ẇ_i = (B_{i+1}⋯B_k) E (W_{i-1}⋯W_1)ᵗ into ``dW[i-1]``; B_j = W_jᵗ (BP) or R_j (feedback).

    ``chained`` False (direct feedback, DFA): Ẇ_i = B_{i+1} E (W_{i-1}⋯W_1)ᵗ, B_{i+1} (n_i × n_k)
    the fixed matrix through which layer i+1 sends the output error down, no product.

    Every product is formed through the output width n_k: (B_{i+1}⋯B_k) (n_i × n_k) top-down and
    E(W_{i-1}⋯W_1)ᵗ (n_k × n_{i-1}) bottom-up, about 3·n_k·Σ n_i·n_{i-1} multiply-adds in all.
    ``dW`` may be views into the solver's state vector: each product is written there directly.
    """
    k = len(Ws)
    err_in = [T - product(Ws)]                          # E (W_{i-1}⋯W_1)ᵗ for i = 1..k-1
    for W in Ws[:-2]:
        err_in.append(err_in[-1] @ np.swapaxes(W, -1, -2))
    np.matmul(err_in[-1], np.swapaxes(Ws[-2], -1, -2), out=dW[-1])   # Ẇ_k = E (W_{k-1}⋯W_1)ᵗ
    down = back[-1]                                      # B_{i+1}⋯B_k, for i = k-1 .. 1
    for i in range(k - 2, -1, -1):
        np.matmul(down if chained else back[i + 1], err_in[i], out=dW[i])
        if i > 0 and chained:
            down = back[i] @ down


def _pack(mats: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([m.reshape(m.shape[0], -1) for m in mats], axis=1).ravel()


def _unpack(y: np.ndarray, batch: int, shapes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """Views of the (B, r, c) matrices inside the flat state ``y`` (extra trailing axes kept)."""
    flat = y.reshape((batch, -1) + y.shape[1:])
    out, off = [], 0
    for r, c in shapes:
        block = flat[:, off:off + r * c]
        out.append(block.reshape((batch, r, c) + y.shape[1:]))
        off += r * c
    return out


def initial_state(problem: Problem) -> np.ndarray:
    """The flat solver state at t = 0: W_1(0)..W_k(0), then R_1(0)..R_k(0) for feedback."""
    return _pack(list(problem.W0) + list(problem.R0))


def state_matrices(problem: Problem, y: np.ndarray) -> list[np.ndarray]:
    """Views of W_1..W_k (then R_1..R_k) as (B, rows, cols) inside the flat state ``y``."""
    return _unpack(y, problem.batch, problem.shapes())


def vector_field(problem: Problem) -> Callable[[float, np.ndarray], np.ndarray]:
    """The flat right-hand side f(t, y) of BP or of (7)/(9) for ``problem``, for an ODE solver."""
    B, k, shapes = problem.batch, problem.k, problem.shapes()
    T, eps = problem.T, problem.eps

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        dy = np.empty_like(y)                   # the field is written straight into dy's views
        mats, out = _unpack(y, B, shapes), _unpack(dy, B, shapes)
        if problem.method == "bp":
            bp_field(T, mats, out)
        else:
            feedback_field(T, mats[:k], mats[k:], eps, out)
        return dy

    return rhs


@dataclass(frozen=True)
class Trajectory:
    """A batch of solved trajectories and the quantities Section 5.1 reports along them.

    ``error`` is e(t) = tr(EᵗE), shape (B, n_t); ``corr`` the Pearson correlation of the entries of
    W_l and R_lᵗ, (B, k, n_t) (nan for BP, and where W_l = 0); ``drift`` the Frobenius norm of
    (R_l − εW_lᵗ)(t) − (R_l − εW_lᵗ)(0), (B, k, n_t) (nan for BP). ``weights`` / ``feedback`` hold
    W_l(t), R_l(t) as (B, n_t, rows, cols) when requested (``keep_states``), else None.
    """

    method: str
    widths: tuple[int, ...]
    eps: np.ndarray
    t: np.ndarray
    error: np.ndarray
    corr: np.ndarray
    drift: np.ndarray
    weights: tuple[np.ndarray, ...] | None
    feedback: tuple[np.ndarray, ...] | None
    nfev: int

    @property
    def log10_error(self) -> np.ndarray:
        """log10 e(t), (B, n_t) (the top row of Figure 12)."""
        with np.errstate(divide="ignore"):
            return np.log10(self.error)

    def time_to_fraction(self, fraction: float) -> np.ndarray:
        """First time e(t) <= fraction · e(0), per batch member (B,); nan where never reached.

        Interpolates log10 e linearly between output times.
        """
        log_e = self.log10_error
        target = log_e[:, :1] + np.log10(fraction)
        out = np.full(log_e.shape[0], np.nan)
        for b in range(log_e.shape[0]):
            below = np.flatnonzero(log_e[b] <= target[b, 0])
            if below.size == 0:
                continue
            j = below[0]
            if j == 0:
                out[b] = self.t[0]
                continue
            y0, y1 = log_e[b, j - 1], log_e[b, j]
            w = (target[b, 0] - y0) / (y1 - y0)
            out[b] = self.t[j - 1] + w * (self.t[j] - self.t[j - 1])
        return out


def pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation over the two last axes, nan where either side is constant."""
    a = a - a.mean(axis=(-2, -1), keepdims=True)
    b = b - b.mean(axis=(-2, -1), keepdims=True)
    num = (a * b).sum(axis=(-2, -1))
    den = np.sqrt((a * a).sum(axis=(-2, -1)) * (b * b).sum(axis=(-2, -1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def integrate(problem: Problem, t_eval: ArrayLike, *, solver: str = DEFAULT_SOLVER,
              rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL,
              keep_states: bool = False) -> Trajectory:
    """Integrate ``problem`` from t = 0 with :func:`scipy.integrate.solve_ivp` over ``t_eval``.

    The whole batch is one system. Raises ``ValueError`` for bad times or tolerances and
    :class:`SolverError` if the solver fails or the solution leaves the finite numbers.
    """
    t_eval = np.asarray(t_eval, dtype=float)
    if t_eval.ndim != 1 or t_eval.size < 2 or t_eval[0] != 0 or np.any(np.diff(t_eval) <= 0):
        raise ValueError("t_eval must be increasing 1-D times starting at 0 (>= 2 points)")
    if not (rtol > 0 and atol > 0):
        raise ValueError(f"rtol and atol must be > 0, got rtol={rtol}, atol={atol}")
    with np.errstate(over="ignore", invalid="ignore"), threadpool_limits(BLAS_THREADS, "blas"):
        sol = solve_ivp(vector_field(problem), (0.0, float(t_eval[-1])), initial_state(problem),
                        method=solver, t_eval=t_eval, rtol=rtol, atol=atol)
    if not sol.success:
        raise SolverError(f"solve_ivp ({solver}) failed for method {problem.method!r}: "
                          f"{sol.message}")
    if not np.all(np.isfinite(sol.y)):
        raise SolverError(f"solve_ivp ({solver}) produced non-finite values for method "
                          f"{problem.method!r}")
    return _measure(problem, sol.t, sol.y, int(sol.nfev), keep_states)


def _measure(problem: Problem, t: np.ndarray, y: np.ndarray, nfev: int,
             keep_states: bool) -> Trajectory:
    """e(t), corr(W_l, R_lᵗ)(t) and the invariant drift from the solver output y (B·D, n_t)."""
    B, k = problem.batch, problem.k
    mats = [np.moveaxis(m, -1, 1) for m in _unpack(y, B, problem.shapes())]  # (B, n_t, r, c)
    Ws, Rs = mats[:k], mats[k:]
    E = problem.T[:, None] - product(Ws)
    error = (E * E).sum(axis=(-2, -1))
    n_t = t.size
    if problem.method == "feedback":
        Rt = [np.swapaxes(R, -1, -2) for R in Rs]
        corr = np.stack([pearson(W, R) for W, R in zip(Ws, Rt)], axis=1)
        e = problem.eps[:, None, None, None]
        drift = np.stack([np.linalg.norm((R - e * W) - (R[:, :1] - e * W[:, :1]), axis=(-2, -1))
                          for W, R in zip(Ws, Rt)], axis=1)
    else:
        corr = drift = np.full((B, k, n_t), np.nan)
    return Trajectory(
        method=problem.method, widths=problem.widths, eps=problem.eps, t=t, error=error,
        corr=corr, drift=drift,
        weights=tuple(np.ascontiguousarray(W) for W in Ws) if keep_states else None,
        feedback=tuple(np.ascontiguousarray(R) for R in Rs) if keep_states and Rs else None,
        nfev=nfev)


#: Largest standard deviation of a random start (target, W(0), R(0)): Section 5.1 uses 0.2;
#: 1e308 overflows to inf and 1e9 makes the system too stiff to integrate in any time.
SD_MAX = 10.0


#: Largest epsilon (Section 5.1 sweeps [0, 1]; 1e308 makes the solver fail after the work).
EPS_MAX = 1e3


def eps_check(eps: tuple[float, ...]) -> tuple[str, bool, str]:
    """``(field, ok, rule)`` for a config's ``validate``: each epsilon in [0, :data:`EPS_MAX`]."""
    return ("eps", all(math.isfinite(e) and 0 <= e <= EPS_MAX for e in eps),
            f"values must lie in [0, {EPS_MAX:g}]")


def sd_checks(**sds: float) -> list[tuple[str, bool, str]]:
    """``(field, ok, rule)`` for a config's ``validate``: each standard deviation in
    (0, :data:`SD_MAX`]."""
    rule = f"must lie in (0, {SD_MAX:g}] (Section 5.1: 0.2; larger starts overflow or stiffen)"
    return [(name, math.isfinite(v) and 0 < v <= SD_MAX, rule) for name, v in sds.items()]


#: float64 copies of a network's weights that a sweep holds at least per run (or seed): the
#: draw's W(0) and R(0), the solver's state, its Runge-Kutta stages (RK45 keeps seven) and its
#: error estimate. A lower bound: a job :func:`memory_problem` refuses cannot fit.
WEIGHT_COPIES = 10


def weights_bytes(widths: Sequence[int], copies: int) -> int:
    """Bytes of ``copies`` float64 copies of every weight matrix of a network of ``widths``."""
    return 8 * copies * sum(a * b for a, b in itertools.pairwise(widths))


def memory_problem(need: int) -> str | None:
    """Why a job needing ``need`` bytes cannot run here (more than the memory available), or
    None; for a CLI's check before any work."""
    free = available_memory()
    if free is None or need <= free:
        return None
    return (f"needs about {need / 2**30:.3g} GiB of memory, more than the {free / 2**30:.3g} GiB "
            "available")


def tolerance_checks(rtol: float, atol: float) -> list[tuple[str, bool, str]]:
    """``(field, ok, rule)`` for a config's ``validate``: ``rtol`` in :data:`RTOL_RANGE`,
    ``atol`` in :data:`ATOL_RANGE` (lower end excluded)."""
    (rlo, rhi), (_, ahi) = RTOL_RANGE, ATOL_RANGE
    why = "a looser tolerance changes the times the summary compares"
    return [("rtol", rlo <= rtol <= rhi, f"must lie in [{rlo:.3g}, {rhi:g}] ({why})"),
            ("atol", 0 < atol <= ahi, f"must lie in (0, {ahi:g}] ({why})")]
