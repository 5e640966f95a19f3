"""Appendix 2's displayed formulas, typed in exactly as the paper prints them.

Nothing here is derived and nothing here is used to derive anything: each constant is compared
with what ``theory.model`` derives (``theory.checks``). Names follow the paper's notation
(``theory.symbols``): F, G, H, F_2, G_2, ... stand for the functions the paper defines, e is
the error, and dG2 etc. stand for the printed derivative names (dG_2/dε ...). Where a displayed
line is a chain "A = B = C", each member is its own constant.

Notation: the paper's  \\dot{e}^2  and  \\dot{e^2}  both mean d(e²)/dt (it is how (17) is used).
"""

from __future__ import annotations

import sympy as sp

from theory.symbols import (
    F2,
    F3,
    G2,
    G3,
    Delta,
    F,
    G,
    H,
    dF2,
    dF3,
    dG2,
    dG3,
    e,
    eps,
    f_eps,
    f_lam,
    lam,
    lam_R,
    lam_Ri,
    lam_T,
    x,
)

half = sp.Rational(1, 2)
l1, l2, l3 = lam(1), lam(2), lam(3)
R2, R3 = lam_Ri(2), lam_Ri(3)

# (10): (dλ_2/dt, dλ_1/dt)
EQ10 = ((lam_T - l2 * l1) * l1, (lam_R + eps * l2) * (lam_T - l2 * l1))

# (11): \dot{e}^2 = -2e^2(λ_1^2 + ½λ_1^2 + ε/2 λ_2^2)
EQ11 = -2 * e**2 * (l1**2 + half * l1**2 + eps / 2 * l2**2)

# (12): λ_i = G(λ_{i-1}, λ_{R,i}, ε),  λ_{i-1} = H(λ_i, λ_{R,i}, ε)   (G, H of (13))
# (13): F = sqrt(λ_R^2 + εx^2);  G = (F - λ_R)/ε = x^2/(F + λ_R);  H = sqrt(2λ_R x + εx^2)
EQ13_F = sp.sqrt(lam_R**2 + eps * x**2)
EQ13_G = (F - lam_R) / eps
EQ13_G_ALT = x**2 / (F + lam_R)
EQ13_H = sp.sqrt(2 * lam_R * x + eps * x**2)

# Below (13): √ε λ_2 = sqrt(λ_R^2/ε + λ_1^2) - λ_R/√ε
SQRT_EPS_LAMBDA2 = sp.sqrt(lam_R**2 / eps + l1**2) - lam_R / sp.sqrt(eps)
# ... and, for g(ε) positive increasing, f(ε) = sqrt(c^2/ε + g(ε)) - c/√ε  (c is λ_R)

# (14): dλ_1/dt = F(λ_1, λ_R, ε)(λ_T - G(λ_1, λ_R, ε)λ_1)
EQ14 = F * (lam_T - G * l1)

# Linearisation after (14): \dot{Δ} = ∂f/∂λ Δ + ∂f/∂ε
LINEARISATION = f_lam * Delta + f_eps

# After the linearisation, "by (13)":
DF_DEPS = x**2 / (2 * F)
DG_DEPS = -x**4 / (2 * (F + lam_R) ** 2 * F)
DF1_DEPS = e * l1**2 / (2 * F) + F * l1 * l1**4 / (2 * (F + lam_R) ** 2 * F)


def eq16_lhs_minus_rhs(i: int) -> sp.Expr:
    """(16): λ_{R,i}λ_i + ε/2 λ_i^2 = ½λ_{i-1}^2, as LHS − RHS."""
    return lam_Ri(i) * lam(i) + eps / 2 * lam(i) ** 2 - half * lam(i - 1) ** 2


def eq16_rate(i: int, dot: dict[int, sp.Expr]) -> sp.Expr:
    """Line before (16): \\dot{λ}_i(λ_{R,i} + ελ_i) = \\dot{λ}_{i-1}λ_{i-1}, as LHS − RHS."""
    return dot[i] * (lam_Ri(i) + eps * lam(i)) - dot[i - 1] * lam(i - 1)


def eq17_middle(k: int) -> sp.Expr:
    """(17), second member: -e^2 Σ_i Π_{j<i} λ_j^2 Π_{j>i} λ_j(λ_{R,j} + ελ_j)  (= \\dot{e}^2/2)."""
    return -e**2 * sum(
        sp.Mul(*[lam(j) ** 2 for j in range(1, i)])
        * sp.Mul(*[lam(j) * (lam_Ri(j) + eps * lam(j)) for j in range(i + 1, k + 1)])
        for i in range(1, k + 1)
    )


def eq17_final(k: int) -> sp.Expr:
    """(17), third member: -e^2 Σ_i Π_{j<i} λ_j^2 Π_{j>i} (ε/2 λ_j^2 + ½λ_{j-1}^2)."""
    return -e**2 * sum(
        sp.Mul(*[lam(j) ** 2 for j in range(1, i)])
        * sp.Mul(*[eps / 2 * lam(j) ** 2 + half * lam(j - 1) ** 2 for j in range(i + 1, k + 1)])
        for i in range(1, k + 1)
    )


# (18): \dot{e^2}/2 = -e^2[(ε/2 λ_2^2 + 3/2 λ_1^2)(ε/2 λ_3^2 + ½λ_2^2) + λ_1^2 λ_2^2]
EQ18 = -e**2 * ((eps / 2 * l2**2 + sp.Rational(3, 2) * l1**2) * (eps / 2 * l3**2 + half * l2**2)
                + l1**2 * l2**2)

# (19): F, G at λ_{R,3} and H at λ_{R,2}, functions of λ_2; F_2, G_2, F_3, G_3 functions of λ_1
EQ19_LAMBDA2 = F * (lam_T - G * l2 * H) * H
EQ19_LAMBDA1 = F3 * F2 * (lam_T - G3 * G2 * l1)

# Derivatives listed after (19)
DF2_DEPS = l1**2 / (2 * F2)
DG2_DEPS = -(l1**4) / (2 * (F2 + R2) ** 2 * F2)
DF3_DEPS = G2**2 / (2 * F3) - eps * G2 / F3 * dG2
DG3_DEPS = -(G2**4) / (2 * (F3 + R3) ** 2 * F3) - eps * G2 / F3 * l1**4 / (2 * (F2 + R2) ** 2 * F2)
DH_DEPS = l2**2 / (2 * H)

# Derivative of the right side of (19) for λ_1 with respect to ε
RHS1_DEPS = dF3 * F2 * e + F3 * dF2 * e - F3 * F2 * (dG3 * G2 * l1 + G3 * dG2 * l1)

# "Substituting G_2 = λ_1^4/(F_2 + λ_{R,2})^2 in the first term"
G2_SUBSTITUTION = l1**4 / (F2 + R2) ** 2
# ... "we have: G_2^2/(2F_3) - εG_2/F_3 dG_2/dε = A [1 - εG_2/F_2] = A λ_{R,2}/F_2 > 0"
DF3_CHAIN_MIDDLE = l1**4 / (2 * F3 * (F2 + R2) ** 2) * (1 - eps * G2 / F2)
DF3_CLOSED_FORM = l1**4 / (2 * F3 * (F2 + R2) ** 2) * R2 / F2

# Derivative of the right side of (19) for λ_2: T_1 + T_2 + T_3
T1 = l2**2 / (2 * F) * e * H
T2_AS_IN_RHS2 = F * (l2**4 / (2 * (F + R3) ** 2 * F) * l2 * H - G * l2**2 / (2 * H) * l2) * H
T3 = F * e * l2**2 / (2 * H)
RHS2_DEPS = T1 + T2_AS_IN_RHS2 + T3

# "substituting G = λ_2^2/(F + λ_{R,3})":  T_2 = [ ... ] = λ_2^5/2 [ ... ] = λ_2^5/(...)[...]
G_SUBSTITUTION = l2**2 / (F + R3)
T2_BRACKET = l2**4 / (2 * (F + R3) ** 2 * F) * l2 * H - G * l2**2 / (2 * H) * l2
T2_SUBSTITUTED = l2**5 / 2 * (H / ((F + R3) ** 2 * F) - 1 / (H * (F + R3)))
T2_CLOSED_FORM = l2**5 / ((F + R3) ** 2 * F * H) * (H**2 - (F + R3) * F)

# "The last factor is"
T2_LAST_FACTOR = 2 * R2 * l2 - R3**2 - R3 * sp.sqrt(R3**2 + eps * l2**2)

# "bounded below by 2λ_{R,2}λ_2 - λ_{R,3}λ_2 - λ_{R,3}sqrt(1+ε)λ_2 > 0 if λ_{R,2} > (1+sqrt(1+ε))/2 λ_{R,3}"
THM2_BOUND = 2 * R2 * l2 - R3 * l2 - R3 * sp.sqrt(1 + eps) * l2
THM2_THRESHOLD = (1 + sp.sqrt(1 + eps)) / 2 * R3


def eq15(k: int) -> tuple[sp.Expr, ...]:
    """(15): λ̇_i = (λ_{R,k} + ελ_k)⋯(λ_{R,i+1} + ελ_{i+1}) e λ_{i-1}⋯λ_1, i = 1..k."""
    return tuple(
        sp.Mul(*[lam_Ri(j) + eps * lam(j) for j in range(i + 1, k + 1)])
        * e * sp.Mul(*[lam(j) for j in range(1, i)])
        for i in range(1, k + 1)
    )


def eq17_first(k: int, dot: dict[int, sp.Expr]) -> sp.Expr:
    """(17), first member: -e Σ_i \\dot{λ}_i Π_{j≠i} λ_j  (= \\dot{e}^2/2)."""
    return -e * sum(dot[i] * sp.Mul(*[lam(j) for j in range(1, k + 1) if j != i])
                    for i in range(1, k + 1))


# Appendix 2, two-layer reduction: "W_2W_1 = UΛ_2Λ_1V^t, (T − W_2W_1) = U(Λ − Λ_2Λ_1)V^t"
# (a bare Λ, not defined anywhere in the paper). Matrices in, matrix out.
def reduction_product(U: sp.Matrix, L2: sp.Matrix, L1: sp.Matrix, V: sp.Matrix) -> sp.Matrix:
    """W_2W_1 = UΛ_2Λ_1Vᵗ as printed."""
    return U * L2 * L1 * V.T


def reduction_error(U: sp.Matrix, Lam: sp.Matrix, L2: sp.Matrix, L1: sp.Matrix,
                    V: sp.Matrix) -> sp.Matrix:
    """(T − W_2W_1) = U(Λ − Λ_2Λ_1)Vᵗ as printed (Λ as printed: a bare Λ)."""
    return U * (Lam - L2 * L1) * V.T


# Theorem 2's proof: "T_1 + T_3 = o(δ²)" and "T_2 = o(δ⁵)": the limits of (T_1 + T_3)/δ² and
# T_2/δ⁵ as δ → 0 that these claims assert
THM2_ORDERS = sp.Matrix([0, 0])
