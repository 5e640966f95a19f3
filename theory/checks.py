"""The catalogue of checks of Appendix 2: every displayed step, each with a stable id.

Each :class:`Check` pairs a printed formula (``theory.printed``, read in a *context* that says
which derived function each notation symbol stands for) with what ``theory.model`` derives, or
states a sign claim on a derived quantity under the paper's assumptions. Corrections of errata
are typed in the paper's notation and are themselves verified against the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import sympy as sp

from theory import model as m
from theory import printed as p
from theory import reduction as rd
from theory.checkdef import Check
from theory.numeric import lambda3_counterexample
from theory.rules import rule_checks
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
    """Every check, in the order of the paper, then the rows of the engine's other rules."""
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

    checks = _reduction_checks() + [
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
        _thm1_monotone(),
        Check("eq17.first", "(17)", "first member of (17), k = 2..5: d(e²)/dt/2 = e ė with "
              "ė = −Σ λ̇_i Π_{j≠i} λ_j (λ̇_i of (15); the factor e kept as the symbol e)",
              sp.Matrix([p.eq17_first(k, dict(zip(range(1, k + 1), m.rhs(k))))
                         for k in range(2, 6)]),
              sp.Matrix([e * m.time_derivative(m.error(k), k) for k in range(2, 6)])),
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
              correction_text=T2_SMALL_ARGUMENT),
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
    checks += _t2_small_checks(cl2, last, t2, small, threshold_ok)
    checks += _orders_check(cl2, t2) + _lambda3_checks()
    checks += list(rule_checks())
    return tuple(checks)


#: the exact argument replacing "0 > T_2 while λ_2 <= δ" (each step is a row: T2.root*, T2.small.*)
T2_SMALL_ARGUMENT = (
    "T_2 = λ_2⁵L/(2(F+λ_{R,3})²) has the sign of the last factor L, which increases in λ_2 "
    "(when 2λ_{R,2} > √ε λ_{R,3}) from L(0) = −2λ_{R,3}² and has the single root "
    "λ_2* = 4λ_{R,2}λ_{R,3}²/(4λ_{R,2}² − ελ_{R,3}²) (T2.root, T2.root.single); Theorem 2's "
    "condition λ_{R,2} > (1+√(1+ε))/2 λ_{R,3} is equivalent to λ_2* < λ_{R,3} (T2.root.condition). "
    "So T_2 >= 0 for λ_2 >= λ_2*, and for λ_2 < λ_2* < λ_{R,3} < δ: |T_2| <= "
    "λ_2³H/(2λ_{R,3}e)·T_3 (T2.small.bound, any λ_2) <= λ_2²H/(2e)·T_3 < T_3 (T2.small.ratio), "
    "so T_1 + T_2 + T_3 > T_1 > 0, uniformly as λ_2 → 0 (where T_2 < 0 indeed)")
#: λ_2*, the root of the last factor of T_2 (the corrected argument of sign.T2.small)
LAM2_STAR = 4 * R2 * R3**2 / (4 * R2**2 - eps * R3**2)


def _reduction_checks() -> list[Check]:
    """Appendix 2's reduction of (8)/(9) to (10)/(15), exact with rational frames (theory.reduction)."""
    system, error = rd.two_layer()
    deep = rd.three_layer()
    lam_sym = [s for s in error.printed.free_symbols if s.name.startswith("Lambda_")]
    to_T = {s: sp.Symbol(s.name.replace("Lambda", "lambda_T"), positive=True) for s in lam_sym}
    return [
        Check("reduction.8-10", "Appendix 2, (8) → (10)",
              "W_2W_1 = UΛ_2Λ_1Vᵗ and (8) decouples into (10) with W_1 = SΛ_1Vᵗ, W_2 = UΛ_2Sᵗ, "
              "R_2(0) = SΛ_RUᵗ, S with orthogonal columns (norm d) as printed",
              system.printed, system.derived, ranges={rd.d: (0.5, 2.0)}, hypothesis={rd.d: 1},
              correction_text="S needs orthonormal columns (SᵗS = I), not just orthogonal ones: "
                              "columns of norm d give W_2W_1 = UΛ_2d²Λ_1Vᵗ and (10) with λ_2λ_1 "
                              "replaced by d²λ_2λ_1; with d = 1 the reduction is exact (sympy). "
                              + rd.residual_text((40, 100, 10))),
        Check("reduction.8-10.Lambda", "Appendix 2, (8) → (10)",
              "(T − W_2W_1) = U(Λ − Λ_2Λ_1)Vᵗ with the bare Λ of the print (SᵗS = I)",
              error.printed, error.derived.subs(rd.d, 1),
              ranges={s: (0.05, 1.0) for s in lam_sym}, hypothesis=to_T,
              correction_text="typo confirmed: the identity holds exactly when Λ = Λ_T, "
                              "(T − W_2W_1) = U(Λ_T − Λ_2Λ_1)Vᵗ (as in the next display)"),
        Check("reduction.9-15", "Appendix 2, (9) → (15)",
              "(9) decouples into (15) with W_i = U_{i+1}Λ_iU_iᵗ, R_i(0) = U_iΛ_{R,i}U_{i+1}ᵗ, "
              "U_{k+1} = U, frames with orthogonal columns (norm d) and U_1 unstated (U_1 ≠ V: "
              "u > 0), k = 3",
              deep.printed, deep.derived, ranges={rd.d: (0.5, 2.0), rd.u: (0.1, 1.0)},
              hypothesis={rd.d: 1, rd.u: 0},
              correction_text="needs U_2..U_k with orthonormal columns and U_1 = V (not stated); "
                              "with both the reduction is exact (sympy), each alone fails "
                              "(tests). " + rd.residual_text((40, 100, 100, 10))),
    ]


def _thm1_monotone() -> Check:
    """"λ_i increases in time and e > 0 always": λ̇_i = e·P_i and ė = −e·S with P_i, S > 0."""
    parts = []
    for k in range(2, 6):
        err = m.error(k)
        for rate in [*m.rhs(k), -m.time_derivative(err, k)]:
            part = sp.expand(sp.diff(rate, lam_T))        # rate is linear in λ_T, zero at e = 0
            if part.has(lam_T) or sp.expand(rate - err * part) != 0:
                raise AssertionError("e does not divide a right side of (15) or ė")
            parts.append(part)
    return _sign("thm1.monotone", "after (15), proof of Thm 1",
                 "λ̇_i = e·P_i and ė = −e·S with P_i, S > 0 for λ > 0 (k = 2..5): from λ(0) = 0, "
                 "e(t) = λ_T exp(−∫S) > 0 and every λ_i increases", sp.Matrix(p.eq15(5)),
                 sp.Min(*parts), ">")


def _t2_small_checks(cl2: Mapping[sp.Symbol, sp.Expr], last: sp.Expr, t2: sp.Expr,
                     small: Mapping[sp.Symbol, tuple[float, float]],
                     threshold_ok: sp.Expr) -> list[Check]:
    """The steps of the exact argument that replaces "0 > T_2 while λ_2 <= δ" (sign.T2.small)."""
    roots = sp.solve(last, l2)
    if len(roots) != 1:
        raise AssertionError(f"the last factor of T_2 has roots {roots}, expected one")
    exists = 4 * R2**2 - eps * R3**2
    t3_over_e = cl2[F] * _d(cl2[H])                                  # T_3 / e
    ratio = l2**3 * cl2[H] / (2 * R3 * e)
    return [
        Check("T2.root", "proof of Thm 2 (corrected)",
              "the last factor of T_2 vanishes at λ_2* = 4λ_{R,2}λ_{R,3}²/(4λ_{R,2}² − ελ_{R,3}²)",
              LAM2_STAR, roots[0], constraints=(exists,)),
        _sign("T2.root.single", "proof of Thm 2 (corrected)",
              "the last factor increases in λ_2 when 2λ_{R,2} > √ε λ_{R,3} (so λ_2* is its only "
              "root, and it is negative below λ_2*)", LAM2_STAR, sp.diff(last, l2), ">",
              constraints=(exists,)),
        _sign("T2.root.condition", "proof of Thm 2 (corrected)",
              "λ_2* < λ_{R,3} exactly when λ_{R,2} > (1+√(1+ε))/2 λ_{R,3}: "
              "(λ_{R,3} − λ_2*)(λ_{R,2} − threshold) > 0", p.THM2_THRESHOLD,
              sp.factor(sp.together((R3 - LAM2_STAR) * threshold_ok)), ">",
              constraints=(exists, sp.Abs(threshold_ok) - sp.Rational(1, 10**6) * R3)),
        _sign("T2.small.bound", "proof of Thm 2 (corrected)",
              "|T_2| <= λ_2³H/(2λ_{R,3}e) · T_3 for every λ_2 > 0", t2,
              ratio * e * t3_over_e + t2, ">"),
        _sign("T2.small.ratio", "proof of Thm 2 (corrected)",
              "λ_2³H/(2λ_{R,3}e) < 1 for λ_2 < λ_2* under Theorem 2's assumptions", ratio,
              1 - ratio, ">", numeric_subs={e: cl2[e]},
              constraints=(cl2[e], LAM2_STAR - l2, threshold_ok), ranges=small),
    ]


def _orders_check(cl2: Mapping[sp.Symbol, sp.Expr], t2: sp.Expr) -> list[Check]:
    """ "T_1 + T_3 = o(δ²)", "T_2 = o(δ⁵)": limits with λ_{R,2} = aδ, λ_{R,3} = bδ, λ_2 = cδ."""
    a, b, c, delta = sp.symbols("a b c delta", positive=True)
    scale = {R2: a * delta, R3: b * delta, l2: c * delta}
    t1 = _d(cl2[F]) * cl2[e] * cl2[H]
    t3 = cl2[F] * cl2[e] * _d(cl2[H])
    lim13 = sp.limit(sp.simplify((t1 + t3).subs(scale) / delta**2), delta, 0)
    lim2 = sp.limit(sp.simplify(t2.subs(scale) / delta**5), delta, 0)
    fb = sp.sqrt(b**2 + eps * c**2)
    typed = sp.Matrix([lam_T * c**sp.Rational(3, 2) * (2 * a * c + b**2 + 2 * eps * c**2)
                       / (2 * sp.sqrt(2 * a + eps * c) * fb),
                       c**5 * (2 * a * c - b**2 - b * fb) / (2 * (b + fb) ** 2)])
    unit = {s: (0.05, 1.0) for s in (a, b, c)}
    return [Check("thm2.orders", "proof of Thm 2",
                  "lim (T_1 + T_3)/δ² and lim T_2/δ⁵ as δ → 0 (λ_{R,2} = aδ, λ_{R,3} = bδ, "
                  "λ_2 = cδ) are 0 as 'o(δ²)', 'o(δ⁵)' say", p.THM2_ORDERS,
                  sp.Matrix([lim13, lim2]), ranges=unit, correction=typed,
                  lhs=r"\lim_{\delta \to 0} \left(\frac{T_1 + T_3}{\delta^2}, "
                      r"\frac{T_2}{\delta^5}\right)")]


def _lambda3_checks() -> list[Check]:
    """Theorem 2's "λ_3 increasing in ε", at the limit t → ∞ (implicit differentiation)."""
    slope = m.limit_lambda3_slope()
    lim_t = m.limit_k3()[lam_T]
    inside = (lim_t - sp.Rational(1, 2), 1 - lim_t, R2 - p.THM2_THRESHOLD)
    box = {R2: (1e-4, 0.05), R3: (1e-4, 0.05), l1: (0.2, 1.5)}
    return [
        _sign("thm2.lambda3", "Thm 2",
              "λ_3 increases with ε (at t → ∞: dλ_3(∞)/dε > 0, λ_T fixed, inside the assumptions)",
              sp.Derivative(l3, eps), slope, ">", constraints=inside, ranges=box, symbolic=False,
              correction_text="false: λ_3(∞) = λ_T/(λ_1λ_2) decreases with ε everywhere "
                              "(thm2.lambda3.limit), so for every ε < ε' λ_3 is smaller at ε' "
                              "from some finite t on; " + lambda3_counterexample().text()),
        _sign("thm2.lambda3.limit", "Thm 2 (corrected)",
              "dλ_3(∞)/dε < 0 at fixed λ_T, λ_{R,2}, λ_{R,3} (any admissible values)",
              sp.Derivative(l3, eps), slope, "<", symbolic=False),
    ]


def _increasing_f() -> sp.Expr:
    """df/dε for the printed f(ε) = sqrt(c²/ε + g(ε)) − c/√ε, with g, g' > 0 as symbols."""
    g = sp.Function("g")(eps)
    gv, gp = sp.Symbol("g_value", positive=True), sp.Symbol("g_slope", positive=True)
    f = p.SQRT_EPS_LAMBDA2.subs(lam(1) ** 2, g)
    return sp.diff(f, eps).subs(sp.Derivative(g, eps), gp).subs(g, gv)
