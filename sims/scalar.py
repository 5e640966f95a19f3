"""The decoupled scalar dynamics of Appendix 2: systems (10)/(15) and the reduced equations (14)/(19).

Under the SVD-structured initial conditions of Appendix 2 the matrix system (9) splits into one
scalar system (15) per singular direction of the target T; for k = 2 it is system (10).
Conventions (paper's indices, 0-based in arrays):

- ``lam[..., i-1]`` is λ_i, i = 1..k (λ_1 feeds from the input, λ_k into the output);
- ``lam_R[..., i-2]`` is λ_{R,i}, i = 2..k (the feedback strength of layer i);
- e = λ_T − λ_1⋯λ_k.

λ_{R,i} is the conserved quantity r_i − ελ_i of the feedback mode r_i, which equals r_i(0) when
λ_i(0) = 0 (the setting of the paper). Every integrator here batches its parameters into one
vectorised :func:`scipy.integrate.solve_ivp` system, so a whole parameter grid is one solve.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike
from scipy.integrate import solve_ivp

from sims.linear import SolverError

#: Default solver settings for the scalar systems. RK45, not DOP853: once a large mode (λ_T ~ 10)
#: has converged the system is stiff, and DOP853's dense output at t_eval then wandered by ~1e-5
#: (k = 4) while RK45, LSODA and Radau agreed to 1e-9.
DEFAULT_METHOD = "RK45"
DEFAULT_RTOL = 1e-10
DEFAULT_ATOL = 1e-12


def F(x: ArrayLike, lam_R: ArrayLike, eps: ArrayLike) -> np.ndarray:
    """F(x, λ_R, ε) = sqrt(λ_R² + εx²), eq. (13); equals λ_R + ε G(x, λ_R, ε)."""
    x, lam_R, eps = (np.asarray(a, dtype=float) for a in (x, lam_R, eps))
    return np.sqrt(lam_R**2 + eps * x**2)


def G(x: ArrayLike, lam_R: ArrayLike, eps: ArrayLike) -> np.ndarray:
    """G(x, λ_R, ε) = x² / (F + λ_R), eq. (13): λ_i = G(λ_{i-1}, λ_{R,i}, ε) by (12).

    Written in the paper's second form, which is finite at ε = 0 (its limit x²/(2λ_R)).
    """
    x, lam_R = np.asarray(x, dtype=float), np.asarray(lam_R, dtype=float)
    return x**2 / (F(x, lam_R, eps) + lam_R)


def H(x: ArrayLike, lam_R: ArrayLike, eps: ArrayLike) -> np.ndarray:
    """H(x, λ_R, ε) = sqrt(2λ_R x + εx²), eq. (13): λ_{i-1} = H(λ_i, λ_{R,i}, ε) by (12)."""
    x, lam_R, eps = (np.asarray(a, dtype=float) for a in (x, lam_R, eps))
    return np.sqrt(2.0 * lam_R * x + eps * x**2)


def scalar_rhs(t: float, lam: ArrayLike, lam_T: ArrayLike, lam_R: ArrayLike,
               eps: ArrayLike) -> np.ndarray:
    """Right side of system (15) (system (10) when k = 2).

    λ̇_i = (λ_{R,k} + ελ_k)⋯(λ_{R,i+1} + ελ_{i+1}) · e · λ_{i-1}⋯λ_1.
    Shapes broadcast: ``lam`` (..., k), ``lam_T`` (...), ``lam_R`` (..., k-1), ``eps`` (...).
    ``t`` is unused (the system is autonomous) and kept for :func:`solve_ivp`.
    """
    lam = np.asarray(lam, dtype=float)
    lam_T, lam_R, eps = (np.asarray(a, dtype=float) for a in (lam_T, lam_R, eps))
    err = lam_T - np.prod(lam, axis=-1)
    feedback = lam_R + eps[..., None] * lam[..., 1:]                # λ_{R,j} + ελ_j, j = 2..k
    above = np.flip(np.cumprod(np.flip(feedback, -1), axis=-1), -1)  # Π_{j>=m} over j = 2..k
    ones = np.ones(feedback.shape[:-1] + (1,))
    upper = np.concatenate([above, np.broadcast_to(ones, above.shape[:-1] + (1,))], axis=-1)
    lower = np.concatenate([np.broadcast_to(ones, lam.shape[:-1] + (1,)),
                            np.cumprod(lam[..., :-1], axis=-1)], axis=-1)
    return upper * err[..., None] * lower


def conserved_16(lam: ArrayLike, lam_R: ArrayLike, eps: ArrayLike) -> np.ndarray:
    """The quantities of eq. (16), λ_{R,i}λ_i + (ε/2)λ_i² − λ_{i-1}²/2 for i = 2..k.

    ``lam`` (..., k); returns (..., k-1). They are constant along (15) and vanish from λ(0) = 0.
    """
    lam = np.asarray(lam, dtype=float)
    lam_R, eps = np.asarray(lam_R, dtype=float), np.asarray(eps, dtype=float)
    up, down = lam[..., 1:], lam[..., :-1]
    return lam_R * up + 0.5 * eps[..., None] * up**2 - 0.5 * down**2


def _batch(lam_T: ArrayLike, lam_R: ArrayLike,
           eps: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcast (λ_T, λ_R, ε) to one batch B; validate them; return (B,), (B, k-1), (B,)."""
    lam_T = np.asarray(lam_T, dtype=float)
    lam_R = np.asarray(lam_R, dtype=float)
    eps = np.asarray(eps, dtype=float)
    if lam_R.ndim == 0:
        raise ValueError("lam_R must have a last axis of length k-1 (λ_R,2..λ_R,k)")
    if lam_T.ndim > 1 or eps.ndim > 1 or lam_R.ndim > 2:
        raise ValueError("lam_T and eps must be scalars or (B,), lam_R (k-1,) or (B, k-1)")
    for name, arr in (("lam_T", lam_T), ("lam_R", lam_R), ("eps", eps)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite")
    if np.any(eps < 0):
        raise ValueError(f"eps must be >= 0, got {eps.min()}")
    try:
        B = np.broadcast_shapes(lam_T.shape, lam_R.shape[:-1], eps.shape)
    except ValueError as exc:
        raise ValueError(f"lam_T {lam_T.shape}, lam_R {lam_R.shape} and eps {eps.shape} "
                         "do not broadcast to one batch") from exc
    n = int(np.prod(B)) if B else 1
    return (np.broadcast_to(lam_T, B).reshape(n).copy(),
            np.broadcast_to(lam_R, B + lam_R.shape[-1:]).reshape(n, -1).copy(),
            np.broadcast_to(eps, B).reshape(n).copy())


def _solve(rhs: Callable[[float, np.ndarray], np.ndarray], y0: np.ndarray, t_eval: ArrayLike,
           rtol: float, atol: float, method: str) -> np.ndarray:
    """One :func:`solve_ivp` call from t = 0 over ``t_eval``; raises :class:`SolverError` on failure."""
    t_eval = np.asarray(t_eval, dtype=float)
    if t_eval.ndim != 1 or t_eval.size == 0 or np.any(np.diff(t_eval) < 0) or t_eval[0] < 0:
        raise ValueError("t_eval must be a non-empty, non-decreasing 1-D array of times >= 0")
    t_end = float(t_eval[-1])
    if t_end == 0.0:
        return np.repeat(y0[:, None], t_eval.size, axis=1)
    with np.errstate(over="ignore", invalid="ignore"):
        sol = solve_ivp(rhs, (0.0, t_end), y0, method=method, t_eval=t_eval, rtol=rtol, atol=atol)
    if not sol.success:
        raise SolverError(f"solve_ivp ({method}) failed: {sol.message}")
    if not np.all(np.isfinite(sol.y)):
        raise SolverError(f"solve_ivp ({method}) produced non-finite values")
    return sol.y


def integrate_scalar(lam_T: ArrayLike, lam_R: ArrayLike, eps: ArrayLike, t_eval: ArrayLike, *,
                     lam0: ArrayLike | None = None, rtol: float = DEFAULT_RTOL,
                     atol: float = DEFAULT_ATOL, method: str = DEFAULT_METHOD) -> np.ndarray:
    """Integrate system (15) (k = 2: system (10)) for a batch of parameters in one solve.

    ``lam_T`` (B,) or scalar, ``lam_R`` (B, k-1) or (k-1,), ``eps`` (B,) or scalar broadcast to
    one batch B; ``lam0`` (B, k) or (k,) (default zeros, the paper's λ_i(0) = 0).
    Returns λ_1..λ_k at ``t_eval``, shape (B, k, len(t_eval)).
    """
    lam_T, lam_R, eps = _batch(lam_T, lam_R, eps)
    n, k = lam_R.shape[0], lam_R.shape[1] + 1
    y0 = np.zeros((n, k)) if lam0 is None else np.broadcast_to(
        np.asarray(lam0, dtype=float), (n, k)).copy()
    if not np.all(np.isfinite(y0)):
        raise ValueError("lam0 must be finite")

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        return scalar_rhs(t, y.reshape(n, k), lam_T, lam_R, eps).ravel()

    y = _solve(rhs, y0.ravel(), t_eval, rtol, atol, method)
    return y.reshape(n, k, -1)


def reduced_rhs_k2(lam1: np.ndarray, lam_T: np.ndarray, lam_R: np.ndarray,
                   eps: np.ndarray) -> np.ndarray:
    """Eq. (14): λ̇_1 = F(λ_1, λ_R, ε)(λ_T − G(λ_1, λ_R, ε)λ_1), λ_2 eliminated through (12)."""
    return F(lam1, lam_R, eps) * (lam_T - G(lam1, lam_R, eps) * lam1)


def integrate_reduced_k2(lam_T: ArrayLike, lam_R: ArrayLike, eps: ArrayLike, t_eval: ArrayLike,
                         *, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL,
                         method: str = DEFAULT_METHOD) -> np.ndarray:
    """λ_1(t) from the reduced equation (14) (k = 2, λ(0) = 0); shape (B, len(t_eval)).

    ``lam_R`` is λ_{R,2}: scalar, (B,), or (B, 1); batching as in :func:`integrate_scalar`.
    """
    lam_R = np.asarray(lam_R, dtype=float)
    lam_T, lam_R, eps = _batch(lam_T, lam_R[..., None] if lam_R.ndim < 2 else lam_R, eps)
    lam_R = lam_R[:, 0]

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        return reduced_rhs_k2(y, lam_T, lam_R, eps)

    return _solve(rhs, np.zeros(lam_T.size), t_eval, rtol, atol, method)


def reduced_rhs_k3_lam1(lam1: np.ndarray, lam_T: np.ndarray, lam_R2: np.ndarray,
                        lam_R3: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """Eq. (19), second line: λ̇_1 = F_3 F_2 (λ_T − G_3 G_2 λ_1), all functions of λ_1."""
    g2 = G(lam1, lam_R2, eps)
    f2 = F(lam1, lam_R2, eps)
    g3 = G(g2, lam_R3, eps)
    f3 = F(g2, lam_R3, eps)
    return f3 * f2 * (lam_T - g3 * g2 * lam1)


def reduced_rhs_k3_sqrt_lam2(s: np.ndarray, lam_T: np.ndarray, lam_R2: np.ndarray,
                             lam_R3: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """Eq. (19), first line, written for s = sqrt(λ_2).

    λ̇_2 = F(λ_2)(λ_T − G(λ_2)λ_2 H(λ_2))H(λ_2) with F, G at λ_{R,3} and H at λ_{R,2}. Since
    H(λ_2) = sqrt(λ_2)·sqrt(2λ_{R,2} + ελ_2), the right side is not Lipschitz at λ_2 = 0 and
    λ_2 ≡ 0 is a spurious solution from λ_2(0) = 0. In s the equation is smooth:
    ṡ = F(s²)(λ_T − G(s²)s²H(s²)) sqrt(2λ_{R,2} + εs²) / 2, and s(0) = 0 leaves 0 at once.
    """
    lam2 = s**2
    h = H(lam2, lam_R2, eps)
    return (F(lam2, lam_R3, eps) * (lam_T - G(lam2, lam_R3, eps) * lam2 * h)
            * np.sqrt(2.0 * lam_R2 + eps * lam2) / 2.0)


def integrate_reduced_k3(lam_T: ArrayLike, lam_R2: ArrayLike, lam_R3: ArrayLike,
                         eps: ArrayLike, t_eval: ArrayLike, *, rtol: float = DEFAULT_RTOL,
                         atol: float = DEFAULT_ATOL,
                         method: str = DEFAULT_METHOD) -> tuple[np.ndarray, np.ndarray]:
    """(λ_1(t), λ_2(t)) from the two decoupled reduced equations (19) (k = 3, λ(0) = 0).

    Each is integrated on its own (each right side depends on its own variable only); λ_2
    through s = sqrt(λ_2), see :func:`reduced_rhs_k3_sqrt_lam2`. Shapes (B, len(t_eval)).
    """
    lam_R = np.stack(np.broadcast_arrays(np.asarray(lam_R2, float), np.asarray(lam_R3, float)),
                     axis=-1)
    lam_T, lam_R, eps = _batch(lam_T, lam_R, eps)
    r2, r3 = lam_R[:, 0], lam_R[:, 1]
    n = lam_T.size

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        return np.concatenate([reduced_rhs_k3_lam1(y[:n], lam_T, r2, r3, eps),
                               reduced_rhs_k3_sqrt_lam2(y[n:], lam_T, r2, r3, eps)])

    y = _solve(rhs, np.zeros(2 * n), t_eval, rtol, atol, method)
    return y[:n], y[n:] ** 2
