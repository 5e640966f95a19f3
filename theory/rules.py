"""Rows of ``python -m theory`` for the engine's other rules in Section 5's linear dynamics.

Each row states a claim about :mod:`sims.rules`' dynamics (``printed``: our statement) and
derives it with sympy from the rules' definitions (``derived``), on small symbolic networks.
The weights move by the rule's Hebbian increments summed over a data set with any second
moments Σ_xx = Σ x xᵗ (symmetric) and Σ_yx = Σ y xᵗ (Section 5 whitens: Σ_xx = I, T = Σ_yx):
Ẇ_i = G_i − λW_i, G_i = D_i (Σ_yx − W_k⋯W_1 Σ_xx)(W_{i-1}⋯W_1)ᵗ, Ṙ_i = εG_iᵗ − λR_i, with D_i
= R_{i+1}⋯R_k (feedback rules), W_{i+1}ᵗ⋯W_kᵗ (bp) or B_{i+1} (dfa).

wm (weight mirror) learns R from noise, not from Ẇ: its rows derive the mean of one mirror
phase, E[x (Wx)ᵗ] = σ²Wᵗ for x ~ N(0, σ²I), and what Ṙ = (ησ²Wᵗ − λR)/lr does for fixed W.

Sources compared with (docs/theory.md): Akrout et al. 2019 (KP: W − Rᵗ decays; WM), Lillicrap et al.
2016 (feedback alignment works while eᵗWBe > 0, W the top layer), Refinetti et al. 2021
("Align, then memorise": alignment in linear networks is governed by the conditioning of the
alignment matrices), Liao, Leibo & Poggio 2016 (sign-concordant feedback).
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp
import sympy.stats  # sp.stats: the mirror phase's expectation

from theory.checkdef import Check

t = sp.Symbol("t", positive=True)
eps_r = sp.Symbol("epsilon_r", positive=True)       # ε of the rule
decay = sp.Symbol("decay", positive=True)           # λ of KP
rho = sp.Symbol("rho", positive=True)               # a fraction in (0, 1)
align = sp.Symbol("c_align", positive=True)         # a target cosine in (0, 1)
d0 = sp.Symbol("d_0", positive=True)                # ‖W(0) − R(0)ᵗ‖
mnorm = sp.Symbol("m_norm", positive=True)          # a lower bound of ‖W‖‖R‖
sigma = sp.Symbol("sigma", positive=True)
bound = sp.Symbol("b_M", positive=True)
eta_m = sp.Symbol("eta_mirror", positive=True)      # wm's mirror_lr η
lr = sp.Symbol("lr", positive=True)                 # the engine's SGD step (t = lr × steps)
scale_b = sp.Symbol("b_B", positive=True)
POS = {t: (0.1, 10.0), eps_r: (0.01, 2.0), decay: (1e-3, 1.0), rho: (0.01, 0.99),
       align: (0.05, 0.95), d0: (0.1, 10.0), mnorm: (0.1, 10.0), sigma: (0.1, 3.0),
       bound: (0.1, 3.0), scale_b: (0.1, 3.0), eta_m: (0.1, 3.0), lr: (1e-3, 1.0)}


def _mat(name: str, rows: int, cols: int) -> sp.Matrix:
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{i}{j}", real=True))


def _sym(name: str, n: int) -> sp.Matrix:
    return sp.Matrix(n, n, lambda i, j: sp.Symbol(f"{name}_{min(i, j)}{max(i, j)}", real=True))


def _ranges(*exprs: sp.Expr | sp.MatrixBase) -> dict[sp.Symbol, tuple[float, float]]:
    """Sampling boxes: the positive symbols of :data:`POS`, every real entry uniform in (−1, 1)."""
    out: dict[sp.Symbol, tuple[float, float]] = {}
    for ex in exprs:
        for s in ex.free_symbols:
            out[s] = POS.get(s, (-1.0, 1.0))
    return out


def rule_field(kind: str, Ws: list[sp.Matrix], Rs: list[sp.Matrix], Sxx: sp.Matrix,
               Syx: sp.Matrix, epsilon: sp.Expr = 0, lam: sp.Expr = 0,
               Bs: list[sp.Matrix] | None = None) -> tuple[list[sp.Matrix], list[sp.Matrix]]:
    """(Ẇ, Ṙ) of a rule (``kind``: bp, feedback, direct) on symbolic matrices (module docstring);
    ``Rs``/``Bs`` hold R_1..R_k / B_1..B_k (R_1, B_1 never enter)."""
    k = len(Ws)
    prefix = [sp.eye(Ws[0].cols)]
    for W in Ws:
        prefix.append(W * prefix[-1])
    err = Syx - prefix[-1] * Sxx
    dW, dR = [], []
    for i in range(1, k + 1):
        if kind == "direct" and i < k:
            down = Bs[i]
        else:
            down = sp.eye(Ws[i - 1].rows)
            for j in range(i + 1, k + 1):
                down = down * (Ws[j - 1].T if kind == "bp" else Rs[j - 1])
        g = down * err * prefix[i - 1].T
        dW.append(g - lam * Ws[i - 1])
        if kind == "feedback":
            dR.append(epsilon * g.T - lam * Rs[i - 1])
    return dW, dR


def _network(k: int, n: int = 2) -> tuple[list[sp.Matrix], list[sp.Matrix], sp.Matrix, sp.Matrix]:
    Ws = [_mat(f"w{i}", n, n) for i in range(1, k + 1)]
    Rs = [_mat(f"r{i}", n, n) for i in range(1, k + 1)]
    return Ws, Rs, _sym("sxx", n), _mat("syx", n, n)


def _stack(mats: list[sp.Matrix]) -> sp.Matrix:
    return sp.Matrix.vstack(*[m.reshape(m.rows * m.cols, 1) for m in mats])


def _invariant_rows() -> list[Check]:
    """URFB's R − εWᵗ constant; with decay, R − εWᵗ and (KP) W − Rᵗ decay as e^{−λt}."""
    urfb, decayed, kp = [], [], []
    printed_decay, printed_kp = [], []
    for k in (2, 3, 4):
        Ws, Rs, Sxx, Syx = _network(k)
        dW, dR = rule_field("feedback", Ws, Rs, Sxx, Syx, eps_r, 0)
        urfb += [dR[j] - eps_r * dW[j].T for j in range(k)]
        dW, dR = rule_field("feedback", Ws, Rs, Sxx, Syx, eps_r, decay)
        decayed += [dR[j] - eps_r * dW[j].T for j in range(k)]
        printed_decay += [-decay * (Rs[j] - eps_r * Ws[j].T) for j in range(k)]
        dW, dR = rule_field("feedback", Ws, Rs, Sxx, Syx, 1, decay)
        kp += [dW[j] - dR[j].T for j in range(k)]
        printed_kp += [-decay * (Ws[j] - Rs[j].T) for j in range(k)]
    u, dd, kk = _stack(urfb), _stack(decayed), _stack(kp)
    pd, pk = _stack(printed_decay), _stack(printed_kp)
    return [
        Check("rules.urfb.invariant", "(7)/(9), Thm 1's reduction",
              "urfb: d(R_j − εW_jᵗ)/dt = 0 for every layer, depths k = 2..4, any data moments "
              "Σ_xx, Σ_yx (so R_j = R_j(0) + ε(W_j − W_j(0))ᵗ, the closed form behind (8))",
              sp.zeros(u.rows, 1), u, ranges=_ranges(u)),
        Check("rules.decay.invariant", "sims.rules (urfb with decay)",
              "with decay λ on W and R: d(R_j − εW_jᵗ)/dt = −λ(R_j − εW_jᵗ), k = 2..4, any data",
              pd, dd, ranges=_ranges(pd, dd)),
        Check("rules.kp.decay", "Akrout et al. 2019",
              "kp (ε = 1): d(W_j − R_jᵗ)/dt = −λ(W_j − R_jᵗ), k = 2..4, any data", pk, kk,
              ranges=_ranges(pk, kk)),
    ]


def _kp_time_rows() -> list[Check]:
    """The solution of the KP invariant and the times to a given alignment."""
    f = sp.Function("D")
    sol = sp.dsolve(sp.Eq(f(t).diff(t), -decay * f(t)), f(t), ics={f(0): d0}).rhs
    t_rho = sp.solve(sp.Eq(sol / d0, rho), t)
    if len(t_rho) != 1:
        raise AssertionError(f"expected one time, got {t_rho}")
    u = sp.Matrix(3, 1, lambda i, _: sp.Symbol(f"u_{i}", real=True))
    v = sp.Matrix(3, 1, lambda i, _: sp.Symbol(f"v_{i}", real=True))
    nu, nv = sp.sqrt((u.T * u)[0]), sp.sqrt((v.T * v)[0])
    cos = (u.T * v)[0] / (nu * nv)
    lower = 1 - ((u - v).T * (u - v))[0] / (2 * nu * nv)
    shrink = sp.Symbol("u_shrink", positive=True)   # e^{−2λt}
    u_c = sp.solve(sp.Eq(1 - d0**2 * shrink / (2 * mnorm), align), shrink)
    if len(u_c) != 1:
        raise AssertionError(f"expected one root, got {u_c}")
    t_c = [sp.expand_log(-sp.log(u_c[0]) / (2 * decay), force=True)]   # e^{−2λt} = u
    return [
        Check("rules.kp.solution", "Akrout et al. 2019",
              "kp: every entry of W − Rᵗ is D(0)e^{−λt} (sympy dsolve), whatever the data",
              d0 * sp.exp(-decay * t), sol, ranges=_ranges(sol)),
        Check("rules.kp.time", "Akrout et al. 2019",
              "kp: ‖W − Rᵗ‖ falls to a fraction ρ of its start at t = ln(1/ρ)/λ",
              sp.log(1 / rho) / decay, t_rho[0], ranges=_ranges(t_rho[0])),
        Check("rules.kp.cos-bound", "sims.rules",
              "cos∠(W, Rᵗ) >= 1 − ‖W − Rᵗ‖²/(2‖W‖‖R‖) (W, Rᵗ flattened; 3 entries)",
              lower, cos - lower, relation=">", ranges=_ranges(cos)),
        Check("rules.kp.align-time", "sims.rules",
              "kp: cos∠(W, Rᵗ) >= c for t >= ln(‖W(0) − R(0)ᵗ‖²/(2(1−c)m))/(2λ) while "
              "‖W‖‖R‖ >= m (from rules.kp.solution and rules.kp.cos-bound)",
              sp.log(d0**2 / (2 * (1 - align) * mnorm)) / (2 * decay), t_c[0],
              ranges=_ranges(t_c[0]), constraints=(1 - align, d0**2 - 2 * (1 - align) * mnorm)),
    ]


#: exact 3 × 2 matrix with orthonormal columns (DFA's B = b_B Q)
_Q32 = sp.Matrix([[1, 2], [2, 1], [2, -2]]) / 3


def _dfa_rows() -> list[Check]:
    """DFA in a two-layer linear network (n = (2, 3, 2)), whitened inputs, W(0) = 0."""
    T = _mat("tt", 2, 2)
    W1, W2 = _mat("w1", 3, 2), _mat("w2", 2, 3)
    Bsym = _mat("bb", 3, 2)
    E = _mat("e", 2, 2)
    Y = _mat("y", 2, 2)
    a = sp.Symbol("a_anti", real=True)
    # fixed points: BE = 0 forces E = 0 when B has full column rank (Gram matrix invertible)
    gram = Bsym.T * Bsym
    recovered = gram.adjugate() * Bsym.T * (Bsym * E) / gram.det()
    # the structure from W(0) = 0: W_1 = B Y, W_2 = Z Bᵗ with Ẏ = E, Ż = EYᵗ
    dW = rule_field("direct", [W1, W2], [], sp.eye(2), T, Bs=[None, Bsym])[0]
    E_at = T - W2 * W1
    at_W1 = {W1[i, j]: (Bsym * Y)[i, j] for i in range(3) for j in range(2)}
    W1_rate = dW[0] - Bsym * E_at
    W2_rate = dW[1].subs(at_W1, simultaneous=True) - E_at.subs(at_W1, simultaneous=True) * Y.T * Bsym.T
    sym_rate = (E * Y.T) + (E * Y.T).T - (E * Y.T + Y * E.T)
    # alignment: <B e, W_2ᵗ e> with W_2 = Z Bᵗ, Z = YYᵗ/2 + A (A antisymmetric), B = b Q
    B = scale_b * _Q32
    Zs = Y * Y.T / 2 + sp.Matrix([[0, a], [-a, 0]])
    inner = (B * E).T * (Zs * B.T).T * E
    inner_tr = sp.expand(inner.trace())
    aniso = sp.Symbol("g_aniso", positive=True)
    B_aniso = _Q32 * sp.diag(1, aniso)                      # BᵗB = diag(1, g²)
    inner_aniso = sp.expand(((B_aniso * E).T * (Zs * B_aniso.T).T * E).trace())
    typed = scale_b**2 / 2 * (Y.T * E).applyfunc(lambda x: x**2)
    typed_sum = sum(typed)
    return [
        Check("rules.dfa.fixed-points", "Lillicrap et al. 2016; Refinetti et al. 2021",
              "dfa, two layers: E = (BᵗB)⁻¹Bᵗ(BE), so where Ẇ_1 = BE = 0 and B has full column "
              "rank, E = 0: every fixed point is a global minimum W_2W_1 = T (W = 0 is not "
              "one, unlike BP's saddle)",
              E, recovered, ranges=_ranges(E, Bsym), constraints=(gram.det(),)),
        Check("rules.dfa.W1-range", "Lillicrap et al. 2016 (from W = 0)",
              "dfa: Ẇ_1 = BE, so from W_1(0) = 0, W_1 = BY with Ẏ = E: col(W_1) ⊆ col(B)",
              sp.zeros(3, 2), W1_rate, ranges=_ranges(W1_rate)),
        Check("rules.dfa.W2-form", "Lillicrap et al. 2016 (from W = 0)",
              "dfa: at W_1 = BY, Ẇ_2 = (EYᵗ)Bᵗ, so from W_2(0) = 0, W_2 = ZBᵗ with Ż = EYᵗ",
              sp.zeros(2, 3), W2_rate, ranges=_ranges(W2_rate)),
        Check("rules.dfa.Z-sym", "Refinetti et al. 2021 (alignment phase)",
              "dfa: d(Z + Zᵗ − YYᵗ)/dt = 0, so Z + Zᵗ = YYᵗ ⪰ 0 from W(0) = 0",
              sp.zeros(2, 2), sym_rate, ranges=_ranges(sym_rate)),
        Check("rules.dfa.alignment", "Lillicrap et al. 2016's eᵗWBe > 0",
              "dfa with BᵗB = b²I: ⟨BE, W_2ᵗE⟩ = tr(EᵗBᵗB ZᵗE) = (b²/2)‖YᵗE‖² (A, the "
              "antisymmetric part of Z, drops out)", typed_sum, inner_tr,
              ranges=_ranges(inner_tr)),
        Check("rules.dfa.alignment.sign", "Lillicrap et al. 2016; Refinetti et al. 2021",
              "dfa with BᵗB = b²I, from W(0) = 0: ⟨BE, W_2ᵗE⟩ > 0 whenever YᵗE ≠ 0, i.e. BE is "
              "within 90° of BP's W_2ᵗE at every time (Lillicrap's condition holds)",
              typed_sum, inner_tr, relation=">", ranges=_ranges(inner_tr)),
        Check("rules.dfa.alignment.anisotropic", "Refinetti et al. 2021 (conditioning)",
              "our naive claim 'dfa: ⟨BE, W_2ᵗE⟩ > 0 from W(0) = 0 for any B' (BᵗB = diag(1, g²), "
              "g in [2, 10]); expected false: the antisymmetric part of Z enters as soon as BᵗB "
              "is not ∝ I", inner_aniso, inner_aniso, relation=">", symbolic=False,
              ranges={**_ranges(inner_aniso), aniso: (2.0, 10.0)},
              correction_text="alignment is guaranteed only for BᵗB ∝ I (rules.dfa.alignment."
                              "sign); an ill-conditioned BᵗB can turn BE more than 90° from BP's "
                              "W_2ᵗE, as Refinetti et al. trace DFA's failures to the "
                              "conditioning of the alignment matrices"),
    ]


def _sign_rows() -> list[Check]:
    """Sign-concordant feedback: what stays invariant and what does not."""
    w, wdot = sp.Symbol("w_entry", real=True), sp.Symbol("wdot_entry", real=True)
    amp, c = sp.Symbol("amp", positive=True), sp.Symbol("c_scale", positive=True)
    ws = [sp.Symbol(f"w_{i}", real=True) for i in range(4)]
    fro = sp.sqrt(sum(x**2 for x in ws))
    usf_cos = sum(x * amp * sp.sign(x) for x in ws) / (fro * amp * 2)
    step = sp.Symbol("eta", real=True)
    eta = sp.solve(sp.Eq(w + step * wdot, 0), step)
    x = sp.Symbol("x", real=True)
    gauss = sp.exp(-x**2 / (2 * sigma**2)) / (sigma * sp.sqrt(2 * sp.pi))
    e_abs = sp.integrate(sp.Abs(x) * gauss, (x, -sp.oo, sp.oo))
    e_sq = sp.integrate(x**2 * gauss, (x, -sp.oo, sp.oo))
    m = sp.Symbol("m", positive=True)
    m_abs = sp.integrate(m / bound, (m, 0, bound))
    m_sq = sp.integrate(m**2 / bound, (m, 0, bound))
    pos = {amp: (0.1, 3.0), c: (0.1, 3.0)}
    return [
        Check("rules.sign.concordant", "Liao, Leibo & Poggio 2016",
              "usf/brsf/frsf: sign(R) = sign(W)ᵗ after every update (R = A ⊙ sign(W)ᵗ, A > 0): "
              "the sign pattern is the invariant", sp.sign(w), sp.sign(amp * sp.sign(w)),
              ranges={w: (-1.0, 1.0), **pos}),
        Check("rules.sign.scale-free", "sims.rules",
              "usf/frsf: R(cW) = R(W) for c > 0, so R is constant between sign flips of W "
              "(Ṙ = 0 a.e.; brsf's mean field too)", amp * sp.sign(w),
              amp * sp.sign(c * w), ranges={w: (-1.0, 1.0), **pos}),
        Check("rules.sign.flip-step", "deepnets.rules (R refreshed after the step)",
              "not invariant within a step: W + ηẆ flips the sign of an entry with wẆ < 0 once "
              "η > −w/ẇ, and the R of that step then disagrees in sign with the new W until "
              "the refresh", -w / wdot, eta[0],
              ranges={w: (0.1, 1.0), wdot: (-1.0, -0.1)}),
        Check("rules.usf.cos", "sims.rules",
              "usf: cos∠(W, Rᵗ) = ‖W‖₁/(√N‖W‖_F) (N = 4 entries): 1 only when every |w| is "
              "equal, so usf never aligns exactly", sum(sp.Abs(x) for x in ws) / (2 * fro),
              usf_cos, ranges={**{x_: (-1.0, 1.0) for x_ in ws}, **pos}),
        Check("rules.usf.cos.gaussian", "sims.rules",
              "usf: for i.i.d. N(0, σ²) entries cos∠(W, Rᵗ) → E|w|/√E[w²] = √(2/π) ≈ 0.80 "
              "(large N)", sp.sqrt(2 / sp.pi), sp.simplify(e_abs / sp.sqrt(e_sq)),
              ranges={sigma: POS[sigma]}),
        Check("rules.frsf.cos.gaussian", "sims.rules",
              "frsf: with |M| ~ U(0, b) independent of N(0, σ²) entries, cos∠(W, Rᵗ) → "
              "√(2/π)·E|M|/√E[M²] = √(6/π)/2 ≈ 0.69 (large N)", sp.sqrt(6 / sp.pi) / 2,
              sp.simplify(e_abs * m_abs / sp.sqrt(e_sq * m_sq)),
              ranges={sigma: POS[sigma], bound: POS[bound]}),
    ]


def _wm_rows() -> list[Check]:
    """Weight mirror (deepnets.rules.wm): the mirror phase's mean and R's relaxation for fixed W
    (2 × 2 matrices; the entries of W and R are independent, so the size does not matter)."""
    W, R, R0 = _mat("w", 2, 2), _mat("r", 2, 2), _mat("rz", 2, 2)
    x = sp.Matrix([sp.stats.Normal(f"x_{i}", 0, sigma) for i in range(2)])
    mean = (x * (W * x).T).applyfunc(lambda e: sp.stats.E(sp.expand(e)))
    field = (eta_m * sigma**2 * W.T - decay * R) / lr
    star = sp.solve(list(field), list(R), dict=True)
    if len(star) != 1:
        raise AssertionError(f"expected one fixed point, got {star}")
    r_star = R.subs(star[0])
    f = sp.Function("r")
    entry = sp.dsolve(sp.Eq(f(t).diff(t), field[0, 1].subs(R[0, 1], f(t))), f(t),
                      ics={f(0): R0[0, 1]}).rhs
    printed_entry = r_star[0, 1] + (R0[0, 1] - r_star[0, 1]) * sp.exp(-decay * t / lr)
    return [
        Check("rules.wm.mirror-mean", "Akrout et al. 2019 (deepnets.rules.wm)",
              "wm: one mirror phase's mean Hebbian product is E[x (Wx)ᵗ] = σ²Wᵗ for "
              "x ~ N(0, σ²I) (sympy.stats), so E[ΔR] = ησ²Wᵗ − λR per step and "
              "Ṙ = (ησ²Wᵗ − λR)/lr in t = lr × steps", sigma**2 * W.T, mean,
              ranges=_ranges(mean)),
        Check("rules.wm.fixed-point", "deepnets.rules.wm (docs/rules.md)",
              "wm: for fixed W, Ṙ = 0 only at R* = (ησ²/λ)Wᵗ (= Wᵗ at the defaults η = 1, "
              "σ = 0.1, λ = 0.01)", eta_m * sigma**2 / decay * W.T, r_star,
              ranges=_ranges(r_star)),
        Check("rules.wm.relaxation", "sims.rules",
              "wm: for fixed W every entry of R − R* is (R(0) − R*)e^{−λt/lr} (sympy dsolve): "
              "R aligns in time ~lr/λ (10 at lr = 0.1), independent of the data",
              printed_entry, entry, ranges=_ranges(entry)),
    ]


@lru_cache(maxsize=1)
def rule_checks() -> tuple[Check, ...]:
    """Every row of the engine's other rules (ids ``rules.*``)."""
    return tuple(_invariant_rows() + _kp_time_rows() + _dfa_rows() + _sign_rows()
                 + _wm_rows())
