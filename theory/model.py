"""The one sympy model of Appendix 2: the scalar system (15) (system (10) at k = 2).

Everything a check calls *derived* is computed here from the right-hand side of (15) alone:
the conserved quantities (16) by separating and integrating the ratio of two equations of (15),
their positive roots (the functions of (12)-(13)), the eliminated equations (14)/(19), and every
ε-derivative. No printed formula (``theory.printed``) is used here.

Symbols are positive (λ_T, λ_{R,i}, ε, the states λ_i and the generic argument x), which is
the admissible region of Appendix 2 (ε > 0 so that G's first printed form is defined).
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from theory.symbols import Delta, eps, f_eps, f_lam, h, lam, lam_R, lam_Ri, lam_T, x

_s = sp.Symbol("s", positive=True)


def error(k: int) -> sp.Expr:
    """e = λ_T − λ_1⋯λ_k (Section 5 / Appendix 2)."""
    return lam_T - sp.Mul(*[lam(i) for i in range(1, k + 1)])


@cache
def rhs(k: int) -> tuple[sp.Expr, ...]:
    """Right side of (15) (the scalar form of (9)): λ̇_i for i = 1..k.

    λ̇_i = (λ_{R,k} + ελ_k)⋯(λ_{R,i+1} + ελ_{i+1}) · e · λ_{i-1}⋯λ_1.
    """
    err = error(k)
    return tuple(
        sp.Mul(*[lam_Ri(j) + eps * lam(j) for j in range(i + 1, k + 1)])
        * err * sp.Mul(*[lam(j) for j in range(1, i)])
        for i in range(1, k + 1)
    )


def time_derivative(expr: sp.Expr, k: int) -> sp.Expr:
    """d/dt of an expression in λ_1..λ_k along the flow (15)."""
    return sum(sp.diff(expr, lam(i)) * r for i, r in zip(range(1, k + 1), rhs(k)))


@cache
def conserved(i: int, k: int = 5) -> sp.Expr:
    """The quantity Q_i(λ_{i-1}, λ_i) constant along (15), derived by separating λ̇_i/λ̇_{i-1}.

    The ratio of the i-th and (i-1)-th equations of (15) is num/den; integrating
    den dλ_i = num dλ_{i-1} from λ(0) = 0 gives Q_i = ∫den dλ_i − ∫num dλ_{i-1} = 0 (eq. (16)).
    """
    r = rhs(k)
    num, den = sp.fraction(sp.cancel(r[i - 1] / r[i - 2]))
    if num.free_symbols & {lam(i)} or den.free_symbols & {lam(i - 1)}:
        raise ValueError(f"the ratio of equations {i} and {i - 1} of (15) does not separate")
    a, b = sp.Dummy("a", positive=True), sp.Dummy("b", positive=True)
    left = sp.integrate(den.subs(lam(i), a), (a, 0, lam(i)))
    right = sp.integrate(num.subs(lam(i - 1), b), (b, 0, lam(i - 1)))
    return sp.expand(left - right)


@cache
def _roots() -> tuple[sp.Expr, sp.Expr]:
    """Positive roots of Q_2 = 0 for λ_2 (given λ_1 = x) and for λ_1 (given λ_2 = x), λ_{R,2} = λ_R."""
    q = conserved(2).subs(lam_Ri(2), lam_R)
    fwd = _positive_root(q.subs(lam(1), x), lam(2))
    back = _positive_root(q.subs(lam(2), x), lam(1))
    return fwd, back


def _positive_root(eq: sp.Expr, var: sp.Symbol) -> sp.Expr:
    """The unique positive real root of ``eq`` in ``var`` (checked at a sample point)."""
    free = sp.Symbol(var.name + "_free", real=True)
    sols = sp.solve(eq.subs(var, free), free)
    probe = {eps: sp.Rational(1, 3), lam_R: sp.Rational(1, 7), x: sp.Rational(2, 5)}
    positive = [s for s in sols if s.subs(probe).evalf() > 0]
    if len(positive) != 1:
        raise ValueError(f"expected one positive root in {var}, got {sols}")
    return sp.simplify(positive[0])


def G_d(arg: sp.Expr, lam_r: sp.Expr) -> sp.Expr:
    """Derived G: the positive λ_i solving (16) given λ_{i-1} = arg (first line of (12))."""
    return _roots()[0].subs({x: _s, lam_R: lam_r}, simultaneous=True).subs(_s, arg)


def H_d(arg: sp.Expr, lam_r: sp.Expr) -> sp.Expr:
    """Derived H: the positive λ_{i-1} solving (16) given λ_i = arg (second line of (12))."""
    return _roots()[1].subs({x: _s, lam_R: lam_r}, simultaneous=True).subs(_s, arg)


def F_d(arg: sp.Expr, lam_r: sp.Expr) -> sp.Expr:
    """Derived F: the feedback factor λ_{R,i} + ελ_i of (15) with λ_i = G_d(λ_{i-1})."""
    return sp.sqrtdenest(sp.simplify(lam_r + eps * G_d(arg, lam_r)))


def on_manifold(expr: sp.Expr, k: int) -> sp.Expr:
    """Eliminate λ_{R,2..k} from ``expr`` with the conserved quantities (16) (Q_i = 0)."""
    subs = {}
    for i in range(2, k + 1):
        (sol,) = sp.solve(conserved(i), lam_Ri(i))
        subs[lam_Ri(i)] = sol
    return expr.subs(subs)


def eliminate_k2() -> dict[sp.Symbol, sp.Expr]:
    """k = 2, everything a function of λ_1 (proof of Theorem 1): λ_2 = G(λ_1, λ_R)."""
    return {lam(2): G_d(lam(1), lam_R), lam_Ri(2): lam_R}


def eliminate_k3_from_lam1() -> dict[sp.Symbol, sp.Expr]:
    """k = 3, everything a function of λ_1 (eq. (19), second line)."""
    l2 = G_d(lam(1), lam_Ri(2))
    return {lam(2): l2, lam(3): G_d(l2, lam_Ri(3))}


def eliminate_k3_from_lam2() -> dict[sp.Symbol, sp.Expr]:
    """k = 3, everything a function of λ_2 (eq. (19), first line)."""
    return {lam(1): H_d(lam(2), lam_Ri(2)), lam(3): G_d(lam(2), lam_Ri(3))}


def linearised_difference() -> sp.Expr:
    """d/dt(λ_{ε+h} − λ_ε) to first order in h for λ̇ = f(λ, ε), with Δ = λ_{ε+h} − λ_ε = O(h).

    Derived by a Taylor series of f(λ + Δ, ε + h) − f(λ, ε); returned in the notation symbols
    ∂f/∂λ, ∂f/∂ε and Δ (the step after (14)).
    """
    f = sp.Function("f")
    v, d = sp.Symbol("v", real=True), sp.Symbol("D", real=True)
    first = sp.series(f(v + h * d, eps + h) - f(v, eps), h, 0, 2).removeO().doit()
    first = first.subs({sp.Derivative(f(v, eps), v): f_lam, sp.Derivative(f(v, eps), eps): f_eps})
    return sp.expand(first.subs(d, Delta / h))


def matrix_field(T: sp.Matrix, Ws: list[sp.Matrix], R0s: list[sp.Matrix],
                 epsilon: sp.Expr = eps) -> list[sp.Matrix]:
    """Right side of the matrix system (9) (k = 2: (8)) for W_1..W_k.

    Ẇ_i = R_{i+1}⋯R_k E W_1ᵗ⋯W_{i-1}ᵗ with E = T − W_k⋯W_1 and R_j = R_j(0) + εW_jᵗ, the closed
    form of (7)'s Ṙ_j = εẆ_jᵗ from W(0) = 0. ``R0s`` holds R_2(0)..R_k(0).
    """
    k = len(Ws)
    R = {j: R0s[j - 2] + epsilon * Ws[j - 1].T for j in range(2, k + 1)}
    prod = Ws[0]
    for W in Ws[1:]:
        prod = W * prod
    E = T - prod
    out = []
    for i in range(1, k + 1):
        left = sp.eye(Ws[i - 1].rows)
        for j in range(i + 1, k + 1):
            left = left * R[j]
        right = sp.eye(Ws[0].cols)
        for j in range(1, i):
            right = right * Ws[j - 1].T
        out.append(left * E * right)
    return out


def limit_k3() -> dict[sp.Symbol, sp.Expr]:
    """k = 3 at t → ∞, as functions of the limit λ_1 (e = 0 on the curves (16)):
    λ_2 = G(λ_1, λ_{R,2}), λ_3 = G(λ_2, λ_{R,3}) and λ_T = λ_1λ_2λ_3."""
    sub = eliminate_k3_from_lam1()
    return {**sub, lam_T: lam(1) * sub[lam(2)] * sub[lam(3)]}


def limit_lambda3_slope() -> sp.Expr:
    """dλ_3(∞)/dε at fixed λ_T, λ_{R,2}, λ_{R,3} (k = 3), by implicit differentiation of
    λ_T = λ_1G_2(λ_1)G_3(λ_1) at the limit; a function of the limit λ_1."""
    lim = limit_k3()
    lam_t, lam3 = lim[lam_T], lim[lam(3)]
    dlam1 = -sp.diff(lam_t, eps) / sp.diff(lam_t, lam(1))
    return sp.diff(lam3, lam(1)) * dlam1 + sp.diff(lam3, eps)
