"""Initial conditions for the linear dynamics: Section 5.1's random ones and Appendix 2's SVD-structured ones.

Section 5.1: T = W_k*⋯W_1* with i.i.d. normal factors (sd 0.2); BP starts from random W(0); the
feedback systems start from W(0) = 0 and random R(0). The paper does not give the scale of R(0),
of BP's W(0), nor the horizon; the defaults of :mod:`sims.epsilon_sweep` are documented there.

Appendix 2: with T = UΛ_TVᵗ, frames U_1 = V, U_2..U_k (n_{i-1} × n_k, orthonormal columns) and
U_{k+1} = U, R_i(0) = U_iΛ_{R,i}U_{i+1}ᵗ and W_i(0) = 0 keep W_i = U_{i+1}Λ_iU_iᵗ for all time,
so that (9) decouples into the scalar systems (15), one per singular direction of T.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from sims.linear import check_widths


def random_matrices(widths: Sequence[int], rng: np.random.Generator, sd: float, *,
                    transpose: bool = False, batch: int | None = None) -> list[np.ndarray]:
    """i.i.d. N(0, sd²) matrices W_i (n_i × n_{i-1}), or R_i (n_{i-1} × n_i) with ``transpose``.

    With ``batch`` each matrix gets a leading axis of that length (an ensemble of draws).
    """
    n = check_widths(widths)
    if not (np.isfinite(sd) and sd >= 0):
        raise ValueError(f"sd must be finite and >= 0, got {sd}")
    lead = () if batch is None else (batch,)
    shapes = [(n[i - 1], n[i]) if transpose else (n[i], n[i - 1]) for i in range(1, len(n))]
    return [sd * rng.standard_normal(lead + s) for s in shapes]


def zero_weights(widths: Sequence[int], batch: int | None = None) -> list[np.ndarray]:
    """W_i(0) = 0 for i = 1..k (Section 5.1's start for the feedback systems)."""
    n = check_widths(widths)
    lead = () if batch is None else (batch,)
    return [np.zeros(lead + (n[i], n[i - 1])) for i in range(1, len(n))]


def random_target(widths: Sequence[int], rng: np.random.Generator, sd: float = 0.2, *,
                  batch: int | None = None) -> np.ndarray:
    """T = W_k*⋯W_1* with i.i.d. N(0, sd²) factors W_i* (n_i × n_{i-1}): shape (n_k, n_0) (Section 5.1).

    The paper writes T = W_1*W_2*W_3* with W_1* ∈ R^{40×100}, i.e. the transpose of this
    (n_0 × n_k) map; the distribution is the same and (n_k × n_0) is the shape (9) needs.
    """
    T = None
    for W in random_matrices(widths, rng, sd, batch=batch):
        T = W if T is None else W @ T
    assert T is not None
    return T


def orthonormal_columns(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """A random (rows × cols) matrix with orthonormal columns (QR of a Gaussian matrix)."""
    if cols > rows:
        raise ValueError(f"cannot fit {cols} orthonormal columns in dimension {rows}")
    q, r = np.linalg.qr(rng.standard_normal((rows, cols)))
    return q * np.sign(np.diag(r))


@dataclass(frozen=True)
class SVDStart:
    """Appendix 2's structured start: W(0) = 0, R(0), the frames U_1..U_{k+1} and Λ_T, Λ_{R,i}."""

    W0: list[np.ndarray]
    R0: list[np.ndarray]
    frames: list[np.ndarray]     # U_1 = V (n_0 × n_k), U_2..U_k (n_{i-1} × n_k), U_{k+1} = U
    lam_T: np.ndarray            # (n_k,) singular values of T
    lam_R: np.ndarray            # (n_k, k) diagonals of Λ_{R,1}..Λ_{R,k} (column 0: R_1's)


def svd_start(T: ArrayLike, widths: Sequence[int], lam_R: ArrayLike,
              rng: np.random.Generator) -> SVDStart:
    """SVD-structured initial conditions of Appendix 2 (requires n_k <= n_0..n_{k-1}).

    ``lam_R`` holds the diagonals of Λ_{R,2}..Λ_{R,k}: shape (k-1,) (same for every mode) or
    (k-1, n_k). R_1(0) = U_1Λ_{R,1}U_2ᵗ, which does not enter (9), takes Λ_{R,1} = Λ_{R,2}.
    Returns W(0) = 0, R(0), the frames and λ_T, λ_R (per mode).
    """
    n = check_widths(widths)
    k, nk = len(n) - 1, n[-1]
    T = np.asarray(T, dtype=float)
    if T.shape != (nk, n[0]):
        raise ValueError(f"T has shape {T.shape}, expected (n_k, n_0) = ({nk}, {n[0]})")
    if min(n[:-1]) < nk:
        raise ValueError(f"Appendix 2 needs n_k <= n_0..n_(k-1), got widths {list(n)}")
    lr = np.asarray(lam_R, dtype=float)
    if lr.ndim == 1:
        lr = np.repeat(lr[:, None], nk, axis=1)
    if lr.shape != (k - 1, nk) or not np.all(np.isfinite(lr)) or np.any(lr <= 0):
        raise ValueError(f"lam_R must be positive, shape ({k - 1},) or ({k - 1}, {nk}), got "
                         f"{np.asarray(lam_R).shape}")
    U, s, Vt = np.linalg.svd(T, full_matrices=False)
    frames = [Vt.T] + [orthonormal_columns(n[i - 1], nk, rng) for i in range(2, k + 1)] + [U]
    lam_R_all = np.vstack([lr[:1], lr]).T                       # (n_k, k): Λ_{R,1}..Λ_{R,k}
    R0 = [frames[i] @ np.diag(lam_R_all[:, i]) @ frames[i + 1].T for i in range(k)]
    return SVDStart(zero_weights(n), R0, frames, s, lam_R_all)


def project_modes(weights: Sequence[np.ndarray], frames: Sequence[np.ndarray]) -> np.ndarray:
    """Scalar modes λ_i = diag(U_{i+1}ᵗ W_i U_i) of a (trajectory of) weights (Appendix 2).

    ``weights`` are W_1..W_k with any leading axes (..., n_i, n_{i-1}); returns (..., n_k, k).
    """
    if len(frames) != len(weights) + 1:
        raise ValueError(f"need k+1 = {len(weights) + 1} frames, got {len(frames)}")
    lam = [np.einsum("ra,...rc,ca->...a", frames[i + 1], W, frames[i])
           for i, W in enumerate(weights)]
    return np.stack(lam, axis=-1)
