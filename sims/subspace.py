"""An exact reduction of the feedback system (9) from W(0) = 0 to n_k × n_k matrices.

Section 5 starts the feedback systems from W_i(0) = 0 with random R_i(0). Take n_k-dimensional
subspaces S_k = R^{n_k}, S_i ⊇ R_{i+1}(0) S_{i+1} (i = 1..k-1) and S_0 ⊇ row(T), with orthonormal
bases Q_i (thin QR: R_{i+1}(0) Q_{i+1} = Q_i C_i, Tᵗ = Q_0 C_0; Q_k = I). If col(W_i) ⊆ S_i and
row(W_i) ⊆ S_{i-1} for every i, then R_j = R_j(0) + εW_jᵗ maps S_j into S_{j-1}, so in (9)
Ẇ_i = (R_{i+1}⋯R_k) E (W_{i-1}⋯W_1)ᵗ has its columns in S_i and its rows in S_{i-1} (for i = 1:
the rows of E = T − W_k⋯W_1 lie in S_0). The set of such W is a linear subspace that the vector
field is tangent to and that contains W(0) = 0, so the solution never leaves it:
W_i(t) = Q_i M_i(t) Q_{i-1}ᵗ.

In these coordinates the M_i obey (9) itself with every width equal to n_k, target T̃ = T Q_0 and
feedback R̃_j(0) = Q_{j-1}ᵗ R_j(0) Q_j; e(t) is unchanged because Q_0 has orthonormal columns.
For the widths of Section 5.1 this shrinks a 40-100-…-100-10 state (about 10⁴ numbers per
layer, twice that with R) to 10 × 10 per layer. It needs every width >= n_k (as Appendix 2 does)
and holds for any R(0) and T; BP from a random W(0) has no such reduction.

The same frames serve every rule of :mod:`sims.rules` whose feedback maps S_j into S_{j-1}
from W(0) = 0: KP with decay λ (R_j = εW_jᵗ + e^{−λt}R_j(0), and −λW_i stays in the set), and
DFA with S_i = col(B_{i+1}) (``direct``: Ẇ_i = B_{i+1}E(W_{i-1}⋯W_1)ᵗ has its columns there).
The sign rules have none: sign(Q M Qᵗ) is not of that form, and from W(0) = 0 they never move.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sims.until import System


def _orthonormal(a: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the column space of each (rows × cols) matrix in a (B, rows, cols) stack."""
    q, _ = np.linalg.qr(a)
    return q


def feedback_frames(T: np.ndarray, R0: Sequence[np.ndarray], direct: bool = False
                    ) -> list[np.ndarray]:
    """Q_0..Q_k for a batch: Q_0 (B, n_0, n_k) from the thin QR of Tᵗ, Q_i (B, n_i, n_k) from the
    thin QR of R_{i+1}(0)Q_{i+1} (``direct``: of B_{i+1}), Q_k = I. ``T`` (B, n_k, n_0), ``R0``
    k arrays (B, n_{i-1}, n_i), or with ``direct`` DFA's B_1..B_k (B, n_{i-1}, n_k)."""
    B, nk, n0 = T.shape
    k = len(R0)
    widths = [n0] + [r.shape[-2] for r in R0[1:]] + [nk]
    if min(widths) < nk:
        raise ValueError(f"the reduction needs every width >= n_k = {nk}, got {widths}")
    frames: list[np.ndarray] = [np.broadcast_to(np.eye(nk), (B, nk, nk)).copy()]
    down = frames[0]
    for i in range(k - 1, 0, -1):                      # S_i = R_{i+1}(0) S_{i+1}
        down = _orthonormal(R0[i] if direct else R0[i] @ down)
        frames.insert(0, down)
    frames.insert(0, _orthonormal(np.swapaxes(T, -1, -2)))
    return frames


@dataclass(frozen=True)
class Reduced:
    """The reduced problem and what is needed to lift its solution back to full matrices."""

    T: np.ndarray                     # T̃ = T Q_0, (B, n_k, n_k)
    R0: list[np.ndarray]              # R̃_j(0) = Q_{j-1}ᵗ R_j(0) Q_j (direct: B̃_j = Q_{j-1}ᵗ B_j)
    frames: list[np.ndarray]          # Q_0..Q_k
    direct: bool = False


def reduce_feedback(T: np.ndarray, R0: Sequence[np.ndarray], direct: bool = False) -> Reduced:
    """The reduced data of (9) from W(0) = 0 (module docstring); ``direct``: of DFA with
    B_1..B_k in place of R(0). R̃_1(0) (B̃_1) is kept only so the reduced problem has the full
    problem's shape: it never enters the dynamics."""
    Q = feedback_frames(T, R0, direct)
    Qt = [np.swapaxes(q, -1, -2) for q in Q]
    red = [Qt[j - 1] @ R0[j - 1] if direct else Qt[j - 1] @ R0[j - 1] @ Q[j]
           for j in range(1, len(R0) + 1)]
    return Reduced(T @ Q[0], red, Q, direct)


def lift_weights(M: Sequence[np.ndarray], frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """W_i = Q_i M_i Q_{i-1}ᵗ for reduced weights M_i (B, n_k, n_k) -> (B, n_i, n_{i-1})."""
    return [frames[i + 1] @ m @ np.swapaxes(frames[i], -1, -2) for i, m in enumerate(M)]


def reduced_system(red: Reduced, eps: float, decay: float = 0.0) -> System:
    """(9) for the M_i from M(0) = 0 as one batched ODE; state (B, k, n_k, n_k) raveled.

    R_j = e^{−λt}R̃_j(0) + εM_jᵗ (λ = ``decay``; KP: ε = 1) is used in closed form (it holds from
    M(0) = 0, as in (8)), so the state holds the M_i only; all layers are square, so the field is a
    few stacked matrix products: prefix products P_i = M_i⋯M_1, E = T̃ − P_k, and
    Ṁ_i = (R_{i+1}⋯R_k) E P_{i-1}ᵗ − λM_i; for ``red.direct`` (DFA) Ṁ_i = B̃_{i+1} E P_{i-1}ᵗ.
    """
    T = red.T
    B, n = T.shape[0], T.shape[-1]
    k = len(red.R0)
    R0 = np.stack(red.R0, axis=1)                       # (B, k, n, n)
    eye = np.eye(n)

    def prefix(M: np.ndarray) -> np.ndarray:
        """P_i = M_i⋯M_1 over the layer axis −3 (any leading axes)."""
        P = np.empty_like(M)
        P[..., 0, :, :] = M[..., 0, :, :]
        for i in range(1, k):
            np.matmul(M[..., i, :, :], P[..., i - 1, :, :], out=P[..., i, :, :])
        return P

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        """f(t, y) for a flat state y, or for the columns of y (D, m) (``vectorized``: an
        implicit solver's finite-difference Jacobian in one call); columns become a leading axis."""
        M = (y.T if y.ndim == 2 else y).reshape(-1, B, k, n, n)
        P = prefix(M)
        E = T - P[..., -1, :, :]
        G = np.empty_like(M)                            # E P_{i-1}ᵗ, P_0 = I
        G[..., 0, :, :] = E
        np.matmul(E[..., None, :, :], np.swapaxes(P[..., :-1, :, :], -1, -2),
                  out=G[..., 1:, :, :])
        D = np.empty_like(M)                            # R_{i+1}⋯R_k, empty product I
        D[..., -1, :, :] = eye
        if red.direct:
            D[..., :-1, :, :] = R0[:, 1:]
        else:
            R = math.exp(-decay * t) * R0 + eps * np.swapaxes(M, -1, -2)
            for i in range(k - 2, -1, -1):
                np.matmul(R[..., i + 1, :, :], D[..., i + 1, :, :], out=D[..., i, :, :])
        dM = np.matmul(D, G)
        if decay:
            dM -= decay * M
        return dM.reshape(y.shape[1], -1).T if y.ndim == 2 else dM.ravel()

    def errors(y: np.ndarray) -> np.ndarray:
        E = T - prefix(y.reshape(B, k, n, n))[:, -1]
        return np.einsum("bij,bij->b", E, E)

    return System(rhs, np.zeros(B * k * n * n), B, errors, vectorized=True)


def reduced_weights(red: Reduced, states: np.ndarray) -> list[np.ndarray]:
    """The full W_1..W_k, each (B, n_i, n_{i-1}), of reduced states (B, k·n_k²)."""
    B, n = red.T.shape[0], red.T.shape[-1]
    M = states.reshape(B, len(red.R0), n, n)
    return lift_weights([M[:, i] for i in range(M.shape[1])], red.frames)
