"""The catalogue of checks of Appendix 2: every displayed step, each with a stable id.

Each :class:`Check` pairs a printed formula (``theory.printed``, read in a *context* that says
which derived function each notation symbol stands for) with what ``theory.model`` derives, or
states a sign claim on a derived quantity under the paper's assumptions. Corrections of errata
are typed in the paper's notation and are themselves verified against the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import sympy as sp

from theory import model as m
from theory import printed as p
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
    dH,
    e,
    eps,
    f_eps,
    f_lam,
    h,
    lam,
    lam_R,
    lam_Ri,
    lam_T,
    x,
)

l1, l2, l3 = lam(1), lam(2), lam(3)
R2, R3 = lam_Ri(2), lam_Ri(3)
#: the "small δ" of Theorem 2 used when sampling its order argument
DELTA_SMALL = 0.05


@dataclass(frozen=True)
class Check:
    """One displayed step: printed vs derived (``relation`` None) or a sign claim ("<"/">")."""

    id: str
    ref: str
    claim: str
    printed: sp.Expr | sp.MatrixBase
    derived: sp.Expr | sp.MatrixBase
    context: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)
    relation: str | None = None
    constraints: tuple[sp.Expr, ...] = ()
    numeric_subs: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)
    ranges: Mapping[sp.Symbol, tuple[float, float]] = field(default_factory=dict)
    correction: sp.Expr | None = None
    correction_text: str = ""
    lhs: str = ""


def _d(expr: sp.Expr) -> sp.Expr:
    return sp.diff(expr, eps)


def _keep_e(outer: sp.Expr, e_expr: sp.Expr) -> sp.Expr:
    """d/dε (outer · e) by the product rule with the factor e kept as the symbol e (> 0)."""
    ef = sp.Function("e_of")(eps)
    total = sp.diff(outer * ef, eps)
    return total.subs(sp.Derivative(ef, eps), _d(e_expr)).subs(ef, e)


def _contexts() -> dict[str, dict[sp.Symbol, sp.Expr]]:
    """Which derived function each notation symbol means, per part of Appendix 2."""
    fx, gx, hx = m.F_d(x, lam_R), m.G_d(x, lam_R), m.H_d(x, lam_R)
    e_k2 = m.error(2).subs(m.eliminate_k2())
    f2, g2 = m.F_d(l1, R2), m.G_d(l1, R2)
    f3, g3 = m.F_d(g2, R3), m.G_d(g2, R3)
    e_l1 = m.error(3).subs(m.eliminate_k3_from_lam1())
    fl2, gl2, hl2 = m.F_d(l2, R3), m.G_d(l2, R3), m.H_d(l2, R2)
    e_l2 = m.error(3).subs(m.eliminate_k3_from_lam2())
    return {
        "x": {F: fx, G: gx, H: hx},
        "k2": {F: m.F_d(l1, lam_R), G: m.G_d(l1, lam_R), e: e_k2},
        "l1": {F2: f2, G2: g2, F3: f3, G3: g3, e: e_l1,
               dF2: _d(f2), dG2: _d(g2), dF3: _d(f3), dG3: _d(g3)},
        "l2": {F: fl2, G: gl2, H: hl2, e: e_l2, dH: _d(hl2)},
    }


def _sign(cid: str, ref: str, claim: str, printed: sp.Expr, derived: sp.Expr, relation: str,
          **kw) -> Check:
    return Check(cid, ref, claim, printed, derived, relation=relation, **kw)


@lru_cache(maxsize=1)
def all_checks() -> tuple[Check, ...]:
    """Every check, in the order of the paper."""
    c = _contexts()
    cx, ck2, cl1, cl2 = c["x"], c["k2"], c["l1"], c["l2"]
    k2 = m.eliminate_k2()
    f1 = m.rhs(2)[0].subs(k2)
    rhs1 = m.rhs(3)[0].subs(m.eliminate_k3_from_lam1())
    rhs2 = m.rhs(3)[1].subs(m.eliminate_k3_from_lam2())
    de_l2 = _d(cl2[e])                                      # ∂e/∂ε along (19), λ_2 fixed
    t2 = cl2[F] * de_l2 * cl2[H]                             # the product-rule term of e
    last = sp.simplify(de_l2 * 2 * (cl2[F] + R3) ** 2 * cl2[F] * cl2[H] / l2**5)
    q = {i: m.conserved(i) for i in range(2, 6)}
    dot5 = dict(zip(range(1, 6), m.rhs(5)))
    small = {R2: (1e-4, DELTA_SMALL), R3: (1e-4, DELTA_SMALL), l2: (1e-4, DELTA_SMALL),
             lam_T: (0.5, 1.0)}
    threshold_ok = R2 - p.THM2_THRESHOLD

    checks = [
        Check("eq10", "(10)", "system (10) is (15) at k = 2", sp.Matrix(p.EQ10),
              sp.Matrix([m.rhs(2)[1], m.rhs(2)[0]]).subs(lam_Ri(2), lam_R)),
        Check("eq11", "(11), proof of Thm 1", "d(e²)/dt for k = 2 from (17)",
              p.EQ11, m.on_manifold(m.time_derivative(m.error(2) ** 2, 2), 2), {e: m.error(2)}),
        Check("eq12", "(12)", "λ_i = G(λ_{i-1}), λ_{i-1} = H(λ_i) lie on the curve (16)",
              sp.Matrix([q[2].subs({l1: x, l2: p.EQ13_G}), q[2].subs({l1: p.EQ13_H, l2: x})]
                        ).subs(R2, lam_R),
              sp.zeros(2, 1), cx),
        Check("eq13.F", "(13)", "F = sqrt(λ_R² + εx²) is the factor λ_R + ελ_i of (15)",
              p.EQ13_F, cx[F]),
        Check("eq13.G", "(13)", "G = (F − λ_R)/ε is the positive root of (16)", p.EQ13_G, cx[G],
              cx),
        Check("eq13.G.alt", "(13)", "G = x²/(F + λ_R) (second printed form)", p.EQ13_G_ALT,
              cx[G], cx),
        Check("eq13.H", "(13)", "H = sqrt(2λ_R x + εx²) is the positive root of (16)",
              p.EQ13_H, cx[H]),
        Check("sqrt-eps-lambda2", "after (13)", "√ε λ_2 = sqrt(λ_R²/ε + λ_1²) − λ_R/√ε",
              p.SQRT_EPS_LAMBDA2, sp.sqrt(eps) * ck2[G]),
        Check("eq14", "(14)", "λ̇_1 with λ_2 eliminated", p.EQ14, f1, ck2),
        Check("linearisation", "after (14)", "first-order equation for Δ = λ_{ε+h} − λ_ε",
              p.LINEARISATION, m.linearised_difference(),
              correction=f_lam * Delta + h * f_eps, lhs=r"\dot{\Delta}",
              ranges={f_lam: (-1.0, 1.0), f_eps: (-1.0, 1.0), Delta: (-1.0, 1.0)}),
        Check("dF/deps", "after (14)", "∂F/∂ε", p.DF_DEPS, _d(cx[F]), cx),
        Check("dG/deps", "after (14)", "∂G/∂ε", p.DG_DEPS, _d(cx[G]), cx),
        Check("df1/deps", "after (14)", "∂f_1/∂ε", p.DF1_DEPS, _d(f1), ck2),
        Check("eq16", "(16)", "(16) is the conserved quantity of (15), i = 2..5",
              sp.Matrix([p.eq16_lhs_minus_rhs(i) for i in range(2, 6)]),
              sp.Matrix([q[i] for i in range(2, 6)])),
        Check("eq16.rate", "before (16)", "λ̇_i(λ_{R,i} + ελ_i) = λ̇_{i-1}λ_{i-1} along (15), k = 5",
              sp.Matrix([p.eq16_rate(i, dot5) for i in range(2, 6)]), sp.zeros(4, 1)),
    ]
    for k in range(2, 6):
        dedt = m.time_derivative(m.error(k) ** 2, k) / 2
        checks += [
            Check(f"eq17.middle.k{k}", "(17)", f"second member of (17), k = {k}",
                  p.eq17_middle(k), dedt, {e: m.error(k)}),
            Check(f"eq17.k{k}", "(17)", f"third member of (17) (uses (16)), k = {k}",
                  p.eq17_final(k), m.on_manifold(dedt, k), {e: m.error(k)}),
        ]
    checks += [
        Check("eq18", "(18), proof of Thm 2", "(17) for k = 3", p.EQ18,
              m.on_manifold(m.time_derivative(m.error(3) ** 2, 3) / 2, 3), {e: m.error(3)}),
        Check("eq19.lambda2", "(19)", "λ̇_2 with λ_1, λ_3 eliminated", p.EQ19_LAMBDA2, rhs2, cl2),
        Check("eq19.lambda1", "(19)", "λ̇_1 with λ_2, λ_3 eliminated", p.EQ19_LAMBDA1, rhs1, cl1),
        Check("dF2/deps", "after (19)", "dF_2/dε", p.DF2_DEPS, cl1[dF2], cl1),
        Check("dG2/deps", "after (19)", "dG_2/dε", p.DG2_DEPS, cl1[dG2], cl1),
        Check("dF3/deps", "after (19)", "dF_3/dε (chain rule through G_2)", p.DF3_DEPS,
              cl1[dF3], cl1, correction=G2**2 / (2 * F3) + eps * G2 / F3 * dG2,
              lhs=r"\frac{dF_3}{d\epsilon}"),
        Check("dG3/deps", "after (19)", "dG_3/dε (chain rule through G_2)", p.DG3_DEPS,
              cl1[dG3], cl1,
              correction=-(G2**4) / (2 * (F3 + R3) ** 2 * F3)
              - G2 / F3 * l1**4 / (2 * (F2 + R2) ** 2 * F2), lhs=r"\frac{dG_3}{d\epsilon}"),
        Check("dH/deps", "after (19)", "dH/dε", p.DH_DEPS, cl2[dH], cl2),
        Check("rhs1/deps", "after (19)", "d/dε of the λ_1 equation of (19)", p.RHS1_DEPS,
              _d(rhs1), cl1),
        Check("G2.substitution", "proof of Thm 2", "the substituted value of G_2",
              p.G2_SUBSTITUTION, cl1[G2], cl1, correction=l1**2 / (F2 + R2), lhs="G_2"),
        Check("dF3.closed-form.middle", "proof of Thm 2", "dF_3/dε = A[1 − εG_2/F_2]",
              p.DF3_CHAIN_MIDDLE, cl1[dF3], cl1),
        Check("dF3.closed-form", "proof of Thm 2", "dF_3/dε = A λ_{R,2}/F_2", p.DF3_CLOSED_FORM,
              cl1[dF3], cl1),
        Check("rhs2/deps", "proof of Thm 2", "d/dε of the λ_2 equation of (19) = T_1 + T_2 + T_3",
              p.RHS2_DEPS, _d(rhs2), cl2),
        Check("G.substitution", "proof of Thm 2", "G = λ_2²/(F + λ_{R,3})", p.G_SUBSTITUTION,
              cl2[G], cl2),
        Check("T2.definition", "proof of Thm 2", "T_2 = [ ... ] (first member of the T_2 chain)",
              p.T2_BRACKET, t2, cl2, correction=F * H * p.T2_BRACKET, lhs="T_2"),
        Check("T2.substituted", "proof of Thm 2", "[ ... ] = λ_2⁵/2 [ ... ] (second member)",
              p.T2_SUBSTITUTED, de_l2, cl2),
        Check("T2.closed-form", "proof of Thm 2", "[ ... ] = λ_2⁵/(...)[H² − (F + λ_{R,3})F]",
              p.T2_CLOSED_FORM, de_l2, cl2,
              correction=l2**5 / (2 * (F + R3) ** 2 * F * H) * (H**2 - (F + R3) * F),
              lhs=r"\frac{T_2}{FH}"),
        Check("T2.last-factor", "proof of Thm 2", "H² − (F + λ_{R,3})F explicitly",
              p.T2_LAST_FACTOR, last, cl2),
        Check("thm2.condition", "proof of Thm 2", "the bound is > 0 iff λ_{R,2} > (1+√(1+ε))/2 λ_{R,3}",
              p.THM2_THRESHOLD, sp.solve(p.THM2_BOUND, R2)[0]),
        # sign claims
        _sign("sign.F", "(13)", "F > 0", F, cx[F], ">"),
        _sign("sign.G", "(13)", "G > 0", G, cx[G], ">"),
        _sign("sign.H", "(13)", "H > 0", H, cx[H], ">"),
        _sign("sign.dF/deps", "after (14)", "∂F/∂ε > 0", p.DF_DEPS, _d(cx[F]), ">"),
        _sign("sign.dG/deps", "after (14)", "∂G/∂ε < 0", p.DG_DEPS, _d(cx[G]), "<"),
        _sign("sign.df1/deps", "after (14)", "∂f_1/∂ε > 0 (e > 0)", p.DF1_DEPS,
              _keep_e(ck2[F], ck2[e]), ">", numeric_subs={e: ck2[e]}, constraints=(ck2[e],)),
        _sign("sign.sqrt-eps-lambda2", "after (13)",
              "f(ε) = sqrt(c²/ε + g(ε)) − c/√ε increases when g > 0 increases",
              p.SQRT_EPS_LAMBDA2, _increasing_f(), ">"),
        _sign("sign.dF2/deps", "after (19)", "dF_2/dε > 0", p.DF2_DEPS, cl1[dF2], ">"),
        _sign("sign.dG2/deps", "after (19)", "dG_2/dε < 0", p.DG2_DEPS, cl1[dG2], "<"),
        _sign("sign.dG3/deps", "proof of Thm 2", "dG_3/dε < 0", p.DG3_DEPS, cl1[dG3], "<"),
        _sign("sign.dF3/deps", "proof of Thm 2", "dF_3/dε > 0", p.DF3_CLOSED_FORM, cl1[dF3], ">"),
        _sign("sign.dH/deps", "after (19)", "dH/dε > 0", p.DH_DEPS, cl2[dH], ">"),
        _sign("sign.rhs1/deps", "proof of Thm 2", "d/dε of the λ_1 equation > 0 (e > 0)",
              p.RHS1_DEPS, _keep_e(cl1[F3] * cl1[F2], cl1[e]), ">",
              numeric_subs={e: cl1[e]}, constraints=(cl1[e],)),
        _sign("sign.T1", "proof of Thm 2", "T_1 > 0 (e > 0)", p.T1, _d(cl2[F]) * e * cl2[H], ">",
              numeric_subs={e: cl2[e]}, constraints=(cl2[e],)),
        _sign("sign.T3", "proof of Thm 2", "T_3 > 0 (e > 0)", p.T3, cl2[F] * e * _d(cl2[H]), ">",
              numeric_subs={e: cl2[e]}, constraints=(cl2[e],)),
        _sign("sign.T2.small", "proof of Thm 2", "0 > T_2 while λ_2 ≤ δ (λ_{R,2}, λ_{R,3} < δ ≪ λ_T)",
              p.T2_AS_IN_RHS2, t2, "<", constraints=(cl2[e],), ranges=small,
              correction_text="T_2 changes sign inside λ_2 ≤ δ; the order argument only needs "
                              "|T_2| = O(\\delta^5) \\ll T_1 + T_3"),
        _sign("sign.rhs2.small", "proof of Thm 2",
              "T_1 + T_2 + T_3 > 0 while λ_2 ≤ δ (λ_{R,2}, λ_{R,3} < δ ≪ λ_T)", p.RHS2_DEPS,
              _keep_e(cl2[F] * cl2[H], cl2[e]), ">", numeric_subs={e: cl2[e]},
              constraints=(cl2[e],), ranges=small),
        _sign("thm2.bound", "proof of Thm 2",
              "last factor > 2λ_{R,2}λ_2 − λ_{R,3}λ_2 − λ_{R,3}√(1+ε)λ_2 when λ_2 > λ_{R,2}, λ_{R,3}",
              p.THM2_BOUND, last - p.THM2_BOUND, ">", constraints=(l2 - R2, l2 - R3)),
        _sign("sign.T2.large", "proof of Thm 2",
              "T_2 > 0 when λ_2 > λ_{R,2}, λ_{R,3} and λ_{R,2} > (1+√(1+ε))/2 λ_{R,3}",
              p.T2_AS_IN_RHS2, t2, ">", constraints=(l2 - R2, l2 - R3, threshold_ok)),
    ]
    return tuple(checks)


def _increasing_f() -> sp.Expr:
    """df/dε for the printed f(ε) = sqrt(c²/ε + g(ε)) − c/√ε, with g, g' > 0 as symbols."""
    g = sp.Function("g")(eps)
    gv, gp = sp.Symbol("g_value", positive=True), sp.Symbol("g_slope", positive=True)
    f = p.SQRT_EPS_LAMBDA2.subs(lam(1) ** 2, g)
    return sp.diff(f, eps).subs(sp.Derivative(g, eps), gp).subs(g, gv)
