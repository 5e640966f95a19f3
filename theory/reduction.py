"""The reduction of the matrix systems (8)/(9) to the scalar systems (10)/(15) (Appendix 2).

Symbolically (exact): small matrices with exact rational orthonormal frames and one symbol per
mode for every diagonal entry; the model's matrix field (``theory.model.matrix_field``) at the
structured state W_i = U_{i+1}Λ_iU_iᵗ is compared with the printed scalar system lifted back
into the frames. The paper asks only for frames with *orthogonal* columns, and for k > 2 it never
says that U_1 = V; both are exposed as parameters: every frame U_2..U_k (S for k = 2) gets column
norms d (orthonormal: d = 1), and U_1 = cV + sV⊥ with (c, s) = ((1−u²), 2u)/(1+u²) (U_1 = V: u = 0).

Numerically (``sims`` matrices, float64): the relative residual of the same comparison at the
widths of Section 5.1, when every condition holds and when one at a time is violated.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy as sp

from sims.initial import orthonormal_columns
from sims.linear import feedback_field
from sims.scalar import scalar_rhs
from theory import model as m
from theory import printed as p
from theory.symbols import lam, lam_R, lam_Ri, lam_T

#: column norm of the frames and the rotation parameter of U_1 (see the module docstring)
d = sp.Symbol("d", positive=True)
u = sp.Symbol("u", positive=True)
MODES = 2

# exact orthogonal matrices with rational entries
_Q3 = sp.Matrix([[1, 2, 2], [2, 1, -2], [2, -2, 1]]) / 3
_U = sp.Matrix([[3, -4], [4, 3]]) / 5
_S2 = sp.Matrix([[5, -12], [12, 5]]) / 13
_S3 = sp.Matrix([[8, -15], [15, 8]]) / 17


def mode_symbols(name: str) -> sp.Matrix:
    """diag(x_1, x_2) for one diagonal Λ of the reduction, one positive symbol per mode."""
    return sp.diag(*[sp.Symbol(f"{name}_m{a}", positive=True) for a in range(1, MODES + 1)])


def _lift(frame_out: sp.Matrix, values: list[sp.Expr], frame_in: sp.Matrix) -> sp.Matrix:
    return frame_out * sp.diag(*values) * frame_in.T


def _per_mode(expr: sp.Expr, a: int, names: dict[sp.Symbol, str]) -> sp.Expr:
    """A scalar formula of (10)/(15) for mode a: each λ symbol replaced by its mode-a symbol."""
    return expr.subs({s: sp.Symbol(f"{n}_m{a}", positive=True) for s, n in names.items()},
                     simultaneous=True)


@dataclass(frozen=True)
class MatrixCheck:
    """Printed and derived sides of one reduction check, as column matrices."""

    printed: sp.Matrix
    derived: sp.Matrix


def _stack(mats: list[sp.Matrix]) -> sp.Matrix:
    return sp.Matrix.vstack(*[mat.reshape(mat.rows * mat.cols, 1) for mat in mats])


@cache
def two_layer() -> tuple[MatrixCheck, MatrixCheck]:
    """(8) → (10) with n = (3, 2, 2): S has orthogonal columns of norm d, U_1 = V as printed.

    First: [W_2W_1; Ẇ_2; Ẇ_1] printed (UΛ_2Λ_1Vᵗ, and (10) lifted) against the model's (8).
    Second: T − W_2W_1 against the printed U(Λ − Λ_2Λ_1)Vᵗ with a bare Λ (own symbols).
    """
    V, S, U = _Q3[:, :2], d * _S2, _U
    LT, LR, L1, L2 = (mode_symbols(n) for n in ("lambda_T", "lambda_R2", "lambda_1", "lambda_2"))
    T = U * LT * V.T
    W1, W2, R2 = S * L1 * V.T, U * L2 * S.T, S * LR * U.T
    dW1, dW2 = m.matrix_field(T, [W1, W2], [R2])
    names = {lam_T: "lambda_T", lam_R: "lambda_R2", lam(1): "lambda_1", lam(2): "lambda_2"}
    rate2 = [_per_mode(p.EQ10[0], a, names) for a in range(1, MODES + 1)]
    rate1 = [_per_mode(p.EQ10[1], a, names) for a in range(1, MODES + 1)]
    system = MatrixCheck(_stack([p.reduction_product(U, L2, L1, V), _lift(U, rate2, S),
                                 _lift(S, rate1, V)]), _stack([W2 * W1, dW2, dW1]))
    error = MatrixCheck(_stack([p.reduction_error(U, mode_symbols("Lambda"), L2, L1, V)]),
                        _stack([T - W2 * W1]))
    return system, error


@cache
def three_layer() -> MatrixCheck:
    """(9) → (15) at k = 3 with n = (3, 2, 2, 2): U_2, U_3 orthogonal columns of norm d and
    U_1 = [cv_1 + sv_3, v_2] (u = 0: U_1 = V = [v_1, v_2]; v_3 ⊥ V). Printed: (15) lifted;
    derived: the model's (9)."""
    V = _Q3[:, :2]
    c, s = (1 - u**2) / (1 + u**2), 2 * u / (1 + u**2)
    frames = [sp.Matrix.hstack(c * _Q3[:, 0] + s * _Q3[:, 2], _Q3[:, 1]), d * _S2, d * _S3, _U]
    LT = mode_symbols("lambda_T")
    LR = {j: mode_symbols(f"lambda_R{j}") for j in (2, 3)}
    L = {i: mode_symbols(f"lambda_{i}") for i in (1, 2, 3)}
    T = _U * LT * V.T
    Ws = [frames[i] * L[i] * frames[i - 1].T for i in (1, 2, 3)]
    R0s = [frames[j - 1] * LR[j] * frames[j].T for j in (2, 3)]
    field = m.matrix_field(T, Ws, R0s)
    names = {lam_T: "lambda_T", lam_Ri(2): "lambda_R2", lam_Ri(3): "lambda_R3",
             **{lam(i): f"lambda_{i}" for i in (1, 2, 3)}}
    rates = m.rhs(3)
    lifted = [_lift(frames[i], [_per_mode(rates[i - 1], a, names) for a in range(1, MODES + 1)],
                    frames[i - 1]) for i in (1, 2, 3)]
    return MatrixCheck(_stack(lifted), _stack(field))


# -- numerically, with sims -------------------------------------------------------------------

def _frames(widths: tuple[int, ...], rng: np.random.Generator) -> list[np.ndarray]:
    """U_1 = V, U_2..U_k orthonormal (n_{i-1} × n_k), U_{k+1} = U for a random T = UΛ_TVᵗ."""
    nk = widths[-1]
    U = orthonormal_columns(nk, nk, rng)
    return ([orthonormal_columns(widths[0], nk, rng)]
            + [orthonormal_columns(widths[i - 1], nk, rng) for i in range(2, len(widths))] + [U])


def residual(widths: tuple[int, ...], *, scale: float = 1.0, u1_is_v: bool = True,
             epsilon: float = 0.5, seed: int = 0) -> float:
    """Relative residual ‖Ẇ − lift(15)‖/‖Ẇ‖ of (9) at a random structured state (sims float64).

    ``scale`` multiplies the columns of U_2..U_k (1: orthonormal); ``u1_is_v`` False replaces
    U_1 by an independent random frame in the structured state and R(0).
    """
    rng = np.random.default_rng(seed)
    k, nk = len(widths) - 1, widths[-1]
    frames = _frames(widths, rng)
    V = frames[0]
    if not u1_is_v:
        frames[0] = orthonormal_columns(widths[0], nk, rng)
    frames[1:k] = [scale * f for f in frames[1:k]]
    lam_T, lam_R = rng.uniform(0.2, 1.0, nk), rng.uniform(0.05, 0.5, (nk, k - 1))
    lam = rng.uniform(0.1, 1.0, (nk, k))
    T = frames[-1] @ np.diag(lam_T) @ V.T
    Ws = [frames[i + 1] @ np.diag(lam[:, i]) @ frames[i].T for i in range(k)]
    R0 = [frames[0] @ frames[1].T] + [frames[j - 1] @ np.diag(lam_R[:, j - 2]) @ frames[j].T
                                      for j in range(2, k + 1)]
    Rs = [r + epsilon * w.T for r, w in zip(R0, Ws)]
    dW, _ = feedback_field(T[None], [w[None] for w in Ws], [r[None] for r in Rs],
                           np.array([epsilon]))
    rates = scalar_rhs(0.0, lam, lam_T, lam_R, np.full(nk, epsilon))     # (n_k, k)
    lifted = [frames[i + 1] @ np.diag(rates[:, i]) @ frames[i].T for i in range(k)]
    num = np.sqrt(sum(np.sum((a[0] - b) ** 2) for a, b in zip(dW, lifted)))
    return float(num / np.sqrt(sum(np.sum(a[0] ** 2) for a in dW)))


def residual_table(widths: tuple[int, ...]) -> dict[str, float]:
    """The residual when every condition holds and when each one alone is violated."""
    table = {"orthonormal frames, U_1 = V": residual(widths),
             "frame columns of norm 1.5 (orthogonal only)": residual(widths, scale=1.5)}
    if len(widths) > 3:
        table["U_1 an independent frame (not V)"] = residual(widths, u1_is_v=False)
    return table


def residual_text(widths: tuple[int, ...]) -> str:
    """One line for the report: the residuals of :func:`residual_table` at ``widths``."""
    cells = "; ".join(f"{k}: {v:.1e}" for k, v in residual_table(widths).items())
    return f"sims residual ‖Ẇ − lift‖/‖Ẇ‖ at widths {'-'.join(map(str, widths))}: {cells}"

