"""Every feedback rule of the deep-net engine as a parameter of Section 5's linear dynamics.

Notation of :mod:`sims.linear` (whitened inputs, E = T − W_k⋯W_1). Every rule moves the weights
by the same formula, Ẇ_i = D_i E (W_{i-1}⋯W_1)ᵗ − λW_i (D_k = I), and differs only in the
operator D_i (n_i × n_k) that carries the output error down to layer i, in how its feedback
matrices move, and in the decay λ. Names and parameters are the engine's
(:data:`deepnets.rules.RULES`; a test checks that the two tables agree):

* ``bp``: D_i = W_{i+1}ᵗ⋯W_kᵗ (Section 5's gradient flow).
* ``frfb``, ``urfb`` (``epsilon`` ε), ``kp`` (``decay`` λ): D_i = R_{i+1}⋯R_k with R_j state;
  Ṙ_j = εG_jᵗ − λR_j, G_j the undecayed Ẇ_j (frfb ε = 0; urfb λ = 0, eq. (7)/(9); kp ε = 1
  and λ on W and R, Akrout et al. 2019). Hence d(R_j − εW_jᵗ)/dt = −λ(R_j − εW_jᵗ) (``python -m
  theory``, rows ``rules.*``).
* ``usf`` (``scale`` s), ``brsf``, ``frsf``: R_j = A_j ⊙ sign(W_j)ᵗ, no state of its own. usf:
  A_j = s·σ_j, σ_j = √(2/(n_j + n_{j-1})) the layer's Glorot std; frsf: A_j = |M_j|, M_j
  Glorot-uniform, drawn once. brsf redraws M_j every step, so its R is random: the ODE uses its
  mean field A_j = E|M_j| = b_j/2 (b_j = √3 σ_j the Glorot-uniform bound). The mean field is
  the exact expected increment of one brsf step at given W (the R_j of different layers are
  drawn independently and enter D_i linearly), so it is the small-step limit of brsf; in the
  ODE brsf is usf with s = √3/2.
* ``dfa``: D_i = B_{i+1}, B_j (n_{j-1} × n_k) fixed (Nøkland 2016): in a converted linear
  network each layer j sends B_j e, shaped like its input, down to layer j−1.
* ``wm`` (``mirror_lr`` η, ``noise`` σ, ``decay`` λ; ``lr``): D_i = R_{i+1}⋯R_k, R_j state,
  W undecayed. After every engine step of size lr, R_j ← (1 − λ)R_j + η⟨x (W_j x)ᵗ⟩ with
  x ~ N(0, σ²I) (:mod:`deepnets.rules.wm`, Akrout et al. 2019's mirror phase). Its mean field:
  E[x xᵗ] = σ²I, so E[ΔR_j] = ησ²W_jᵗ − λR_j per step, and since t = lr × steps,
  Ṙ_j = (ησ²W_jᵗ − λR_j)/lr. ``lr`` is not a parameter of the engine's rule but of the
  training: the mirror phase runs once per step whatever the step size, so its rate in t is
  1/lr (default 0.1, the engine's and the paper's SGD step). For fixed W, R → (ησ²/λ)W_jᵗ
  (= W_jᵗ at the defaults) as e^{−λt/lr}.

``sign`` is discontinuous where an entry of W_j crosses 0. It enters only D_i for i < j, never
Ẇ_j itself, so W_j is C¹ in time, its entries cross 0 transversally (generically), and the ODE
has a unique solution through every crossing (Carathéodory); the adaptive Runge–Kutta solver
resolves each crossing by shrinking its step (no event location). np.sign(0) = 0 as
torch.sign(0): from W(0) = 0 every sign rule has R = 0 and stays at W = 0 (a fixed point).

Adding a rule is one entry in :data:`RULE_PARAMS` and one branch of :func:`feedback_mats` (and
:attr:`LinearRule.kind`), or, for a new way R learns, one branch of :func:`rule_field`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from sims.linear import _field_into, _pack, _stack, _unpack, check_widths, product
from sims.until import System

#: the engine's SGD step (deepnets' default ``lr``, the paper's): wm's default ``lr`` below
DEFAULT_LR = 0.1
#: the engine's rules and their parameters' defaults (deepnets.rules.RULES), plus the
#: TRAINING_PARAMS the dynamics need
RULE_PARAMS: dict[str, dict[str, float]] = {
    "bp": {},
    "frfb": {},
    "urfb": {"epsilon": 1.0},
    "kp": {"decay": 1e-4},
    "usf": {"scale": 1.0},
    "brsf": {},
    "frsf": {},
    "dfa": {},
    "wm": {"mirror_lr": 1.0, "noise": 0.1, "decay": 0.01, "lr": DEFAULT_LR},
}
#: parameters of the dynamics that are the training's, not the engine rule's (wm's step size)
TRAINING_PARAMS = ("lr",)
#: parameters that must be > 0 (the others >= 0)
POSITIVE_PARAMS = ("scale", "noise", "lr")
#: the largest value of a parameter: the engine's range (``ParamSpec.high``; the training's lr:
#: at most 1e6 too), below which the dynamics stay finite (kp:decay=1e300 overflowed the solver)
PARAM_MAX = 1e6
#: the parameters whose engine range ends lower than :data:`PARAM_MAX`
PARAM_HIGH: dict[tuple[str, str], float] = {("kp", "decay"): 1e3, ("wm", "decay"): 1.0}
RULE_NAMES: tuple[str, ...] = tuple(RULE_PARAMS)
SIGN_RULES = ("usf", "brsf", "frsf")
#: rules whose R learns from the weights' increment, Ṙ = εGᵗ − λR
GRADIENT_FEEDBACK_RULES = ("frfb", "urfb", "kp")
#: rules whose R is integrated as state (R_j(0) given)
STATE_RULES = GRADIENT_FEEDBACK_RULES + ("wm",)


def glorot_std(fan_in: int, fan_out: int) -> float:
    """√(2/(fan_in + fan_out)), the std of the engine's Glorot-uniform draws."""
    return math.sqrt(2.0 / (fan_in + fan_out))


def param_high(rule: str, param: str) -> float:
    """The largest value of ``rule``'s parameter ``param`` (the engine's range)."""
    return PARAM_HIGH.get((rule, param), PARAM_MAX)


@dataclass(frozen=True)
class LinearRule:
    """A rule of the engine with its parameters (defaults filled in); see the module docstring."""

    name: str
    params: tuple[tuple[str, float], ...] = ()

    @staticmethod
    def make(name: str, **params: float) -> LinearRule:
        """The rule ``name`` with ``params`` checked (known names, >= 0, > 0 for
        :data:`POSITIVE_PARAMS`, at most :func:`param_high`)."""
        if name not in RULE_PARAMS:
            raise ValueError(f"rule must be one of {RULE_NAMES}, got {name!r}")
        known = RULE_PARAMS[name]
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(f"rule {name!r} takes no parameter {', '.join(unknown)}"
                             + (f" (its parameters: {', '.join(known)})" if known else ""))
        values = {**known, **{k: float(v) for k, v in params.items()}}
        for k, v in values.items():
            positive, high = k in POSITIVE_PARAMS, param_high(name, k)
            if not (math.isfinite(v) and 0 <= v <= high) or (positive and v == 0):
                raise ValueError(f"rule {name!r}: {k} must be {'> 0' if positive else '>= 0'} "
                                 f"and at most {high:g}, got {v!r}")
        return LinearRule(name, tuple(sorted(values.items())))

    def param(self, key: str) -> float:
        return dict(self.params)[key]

    @property
    def kind(self) -> str:
        """``transpose`` (bp), ``state`` (R integrated), ``sign`` (R from sign W), ``direct``."""
        if self.name == "bp":
            return "transpose"
        if self.name in STATE_RULES:
            return "state"
        return "sign" if self.name in SIGN_RULES else "direct"

    @property
    def mirror(self) -> bool:
        """Whether R learns by the weight mirror (wm) rather than from Ẇ."""
        return self.name == "wm"

    @property
    def epsilon(self) -> float:
        """ε in Ṙ = εGᵗ − λR: urfb's parameter, 1 for kp, 0 for frfb (nan for the others)."""
        return {"frfb": 0.0, "kp": 1.0}.get(self.name, dict(self.params).get("epsilon", math.nan))

    @property
    def decay(self) -> float:
        """λ on W and R (kp), else 0 (wm's decay is per mirror phase, on R only)."""
        return 0.0 if self.mirror else dict(self.params).get("decay", 0.0)

    @property
    def params_text(self) -> str:
        """``key=value`` pairs joined by ';' (empty without parameters), as in the sweep's CSV."""
        return ";".join(f"{k}={v:g}" for k, v in self.params)

    @property
    def label(self) -> str:
        return self.name + (f"({self.params_text})" if self.params else "")


def fixed_shapes(rule: LinearRule, widths: Sequence[int]) -> list[tuple[int, int]]:
    """Shapes of the rule's fixed matrices per layer: sign magnitudes A_j (n_{j-1} × n_j), DFA's
    B_j (n_{j-1} × n_k); none for the other rules."""
    n = widths
    if rule.kind == "sign":
        return [(n[j - 1], n[j]) for j in range(1, len(n))]
    if rule.kind == "direct":
        return [(n[j - 1], n[-1]) for j in range(1, len(n))]
    return []


def draw_fixed(rule: LinearRule, widths: Sequence[int], rng: np.random.Generator,
               batch: int) -> list[np.ndarray]:
    """The rule's fixed matrices, (batch, rows, cols) each, drawn as the engine draws them:
    usf s·σ_j and brsf's mean field √3σ_j/2 (constants), frsf |M_j| with M_j Glorot-uniform,
    DFA's B_j Glorot-uniform with fans (n_k, n_{j-1})."""
    out = []
    for j, (rows, cols) in enumerate(fixed_shapes(rule, widths), start=1):
        std = glorot_std(rows, cols)
        bound = math.sqrt(3.0) * std
        if rule.name == "usf":
            a = np.full((batch, rows, cols), rule.param("scale") * std)
        elif rule.name == "brsf":
            a = np.full((batch, rows, cols), bound / 2)
        elif rule.name == "frsf":
            a = np.abs(rng.uniform(-bound, bound, (batch, rows, cols)))
        else:
            a = rng.uniform(-bound, bound, (batch, rows, cols))
        out.append(a)
    return out


def feedback_mats(rule: LinearRule, Ws: Sequence[np.ndarray], Rs: Sequence[np.ndarray],
                  fixed: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The matrices the error goes down through, per layer j = 1..k: Wⱼᵗ (bp), the state R_j,
    A_j ⊙ sign(W_j)ᵗ (sign rules) or B_j (dfa). Batched on axis 0."""
    if rule.kind == "transpose":
        return [np.swapaxes(W, -1, -2) for W in Ws]
    if rule.kind == "state":
        return list(Rs)
    if rule.kind == "sign":
        return [a * np.sign(np.swapaxes(W, -1, -2)) for a, W in zip(fixed, Ws)]
    return list(fixed)


def weight_field(rule: LinearRule, T: np.ndarray, Ws: Sequence[np.ndarray],
                 back: Sequence[np.ndarray], out: Sequence[np.ndarray] | None = None
                 ) -> list[np.ndarray]:
    """G_i = D_i E (W_{i-1}⋯W_1)ᵗ, undecayed, for the feedback matrices ``back`` (of
    :func:`feedback_mats`); written into ``out`` when given."""
    dW = [np.empty_like(W) for W in Ws] if out is None else list(out)
    _field_into(T, Ws, back, dW, chained=rule.kind != "direct")
    return dW


def rule_field(rule: LinearRule, T: np.ndarray, Ws: Sequence[np.ndarray],
               Rs: Sequence[np.ndarray], fixed: Sequence[np.ndarray],
               out: Sequence[np.ndarray] | None = None) -> tuple[list[np.ndarray],
                                                                  list[np.ndarray]]:
    """(Ẇ_1..Ẇ_k, Ṙ_1..Ṙ_k) of ``rule`` (Ṙ empty unless R is state): Ẇ_i = G_i − λW_i,
    Ṙ_i = εG_iᵗ − λR_i, or for wm Ṙ_i = (ησ²W_iᵗ − λR_i)/lr. ``out`` (k or 2k arrays)
    receives them."""
    k = len(Ws)
    res = ([np.empty_like(a) for a in [*Ws, *Rs]] if out is None else list(out))
    dW, dR = res[:k], res[k:]
    weight_field(rule, T, Ws, feedback_mats(rule, Ws, Rs, fixed), dW)
    if rule.mirror:
        mirror = rule.param("mirror_lr") * rule.param("noise") ** 2 / rule.param("lr")
        per_time = rule.param("decay") / rule.param("lr")
        for W, R, r in zip(Ws, Rs, dR):
            np.multiply(mirror, np.swapaxes(W, -1, -2), out=r)
            r -= per_time * R
    elif rule.kind == "state":
        for d, r in zip(dW, dR):
            np.multiply(rule.epsilon, np.swapaxes(d, -1, -2), out=r)
    lam = rule.decay
    if lam:
        for d, a in zip(res, [*Ws, *Rs]):
            d -= lam * a
    return dW, dR


@dataclass(frozen=True)
class RuleProblem:
    """A batch of initial value problems of one rule on the full matrices."""

    rule: LinearRule
    widths: tuple[int, ...]
    T: np.ndarray                    # (B, n_k, n_0)
    W0: tuple[np.ndarray, ...]       # (B, n_i, n_{i-1})
    R0: tuple[np.ndarray, ...]       # (B, n_{i-1}, n_i) for state rules, else empty
    fixed: tuple[np.ndarray, ...]    # fixed_shapes(rule, widths), batched

    @property
    def batch(self) -> int:
        return self.T.shape[0]

    @property
    def k(self) -> int:
        return len(self.widths) - 1

    def shapes(self) -> list[tuple[int, int]]:
        n = self.widths
        w = [(n[i], n[i - 1]) for i in range(1, self.k + 1)]
        return w + ([(b, a) for a, b in w] if self.rule.kind == "state" else [])

    def split(self, y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Views (W_1..W_k, R_1..R_k or []) of a flat state (B·D,) or states (B, D)."""
        mats = _unpack(y.ravel(), self.batch, self.shapes())
        return mats[:self.k], mats[self.k:]


def make_rule_problem(rule: LinearRule, T: ArrayLike, W0: Sequence[ArrayLike],
                      R0: Sequence[ArrayLike] | None = None,
                      fixed: Sequence[ArrayLike] | None = None) -> RuleProblem:
    """Validate and broadcast to one batch: ``T`` (B?, n_k, n_0), ``W0`` k matrices (B?, n_i,
    n_{i-1}); ``R0`` (k matrices (B?, n_{i-1}, n_i)) exactly for state rules; ``fixed`` (shapes of
    :func:`fixed_shapes`) exactly for sign rules and dfa."""
    widths = check_widths([np.shape(W0[0])[-1]] + [np.shape(w)[-2] for w in W0])
    Tm = np.asarray(T, dtype=float)
    if Tm.shape[-2:] != (widths[-1], widths[0]) or Tm.ndim not in (2, 3):
        raise ValueError(f"T has shape {Tm.shape}, expected ({widths[-1]}, {widths[0]}) with an "
                         "optional leading batch axis")
    if not np.all(np.isfinite(Tm)):
        raise ValueError("T contains non-finite values")
    Tm = Tm if Tm.ndim == 3 else Tm[None]
    k = len(widths) - 1
    Ws = _stack("W0", W0, [(widths[i], widths[i - 1]) for i in range(1, k + 1)])
    if (R0 is not None) != (rule.kind == "state"):
        raise ValueError(f"rule {rule.name!r}: R0 is {'required' if rule.kind == 'state' else 'refused'}")
    need_fixed = bool(fixed_shapes(rule, widths))
    if (fixed is not None) != need_fixed:
        raise ValueError(f"rule {rule.name!r}: fixed matrices are "
                         f"{'required' if need_fixed else 'refused'}")
    Rs = [] if R0 is None else _stack("R0", R0, [(widths[i - 1], widths[i]) for i in range(1, k + 1)])
    Fs = [] if fixed is None else _stack("fixed", fixed, fixed_shapes(rule, widths))
    B = max(a.shape[0] for a in [Tm, *Ws, *Rs, *Fs])
    for a in [Tm, *Ws, *Rs, *Fs]:
        if a.shape[0] not in (1, B):
            raise ValueError(f"batch sizes disagree: {a.shape[0]} against {B}")

    def bc(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(a, (B,) + a.shape[1:]))

    return RuleProblem(rule, widths, bc(Tm), tuple(map(bc, Ws)), tuple(map(bc, Rs)),
                       tuple(map(bc, Fs)))


def rule_system(problem: RuleProblem) -> System:
    """The full-matrix ODE of ``problem`` as a :class:`sims.until.System` (state W, then R)."""
    B, shapes, k = problem.batch, problem.shapes(), problem.k

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        dy = np.empty_like(y)
        mats, out = _unpack(y, B, shapes), _unpack(dy, B, shapes)
        rule_field(problem.rule, problem.T, mats[:k], mats[k:], problem.fixed, out)
        return dy

    def errors(y: np.ndarray) -> np.ndarray:
        E = problem.T - product(_unpack(y, B, shapes)[:k])
        return np.einsum("bij,bij->b", E, E)

    return System(rhs, _pack([*problem.W0, *problem.R0]), B, errors)


def error_signals(rule: LinearRule, T: np.ndarray, Ws: Sequence[np.ndarray],
                  back: Sequence[np.ndarray]) -> list[np.ndarray]:
    """δ_i = D_i E (n_i × n_k), the error that reaches layer i's output, i = 1..k (δ_k = E)."""
    E = T - product(Ws)
    out = [E]
    for i in range(len(Ws) - 2, -1, -1):
        out.insert(0, back[i + 1] @ (E if rule.kind == "direct" else out[0]))
    return out


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between the flattened last two axes of ``a`` and ``b``; nan at zero."""
    num = (a * b).sum(axis=(-2, -1))
    den = np.sqrt((a * a).sum(axis=(-2, -1)) * (b * b).sum(axis=(-2, -1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


def bp_angles(rule: LinearRule, T: np.ndarray, Ws: Sequence[np.ndarray],
              back: Sequence[np.ndarray]) -> np.ndarray:
    """(B, k): per layer, the angle between the rule's error δ_i and BP's W_{i+1}ᵗ⋯W_kᵗE at the
    same weights (0 at the top layer, where every rule sends E itself)."""
    bp = LinearRule.make("bp")
    mine = error_signals(rule, T, Ws, back)
    exact = error_signals(bp, T, Ws, feedback_mats(bp, Ws, [], []))
    return np.stack([angle_deg(a, b) for a, b in zip(mine, exact)], axis=1)
