"""Numerical checks of the claims of Theorems 1 and 2 (Appendix 2) on the scalar system (15).

For each parameter set (λ_T, λ_{R,2..k}) the system is integrated by ``sims.scalar`` for a grid
of ε in [0, 1] (one batched solve) from λ(0) = 0, and at every output time we test whether

- λ_i(t) increases with ε (Theorem 1: λ_1; Theorem 2: λ_1, λ_2, λ_3),
- e(t)² decreases with ε ("e² decays faster"), and
- the factor S of −e² in (17) (d(e²)/dt = −2e²S) increases with ε (the rate the proofs use).

A violation is a decrease (increase for e²) between neighbouring ε larger than ``TOL`` times
the quantity's size at that time. Theorem 2 is also probed *outside* its assumptions
(λ_{R,2} below (1+√(1+ε))/2 · λ_{R,3}, λ_R not small) to look for counterexamples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm import tqdm

from sims.scalar import integrate_scalar, scalar_rhs

EPS_GRID = np.linspace(0.0, 1.0, 11)
#: relative size of a decrease (between neighbouring ε) that counts as a violation
TOL = 1e-6
#: e² is compared only while e > E_FLOOR · λ_T (above the integrator's tolerance floor)
E_FLOOR = 1e-5
METHOD, RTOL, ATOL = "LSODA", 1e-10, 1e-14
N_TIMES = 400


@dataclass(frozen=True)
class Violation:
    """The worst violation of one monotonicity claim within one parameter set."""

    quantity: str
    lam_T: float
    lam_R: tuple[float, ...]
    eps_pair: tuple[float, float]
    t: float
    relative: float


@dataclass
class Finding:
    """Outcome of one family of parameter sets for one set of claims."""

    name: str
    k: int
    claims: tuple[str, ...]
    n_sets: int = 0
    violations: dict[str, int] = field(default_factory=dict)
    worst: dict[str, Violation] = field(default_factory=dict)
    confirmed: dict[str, float] = field(default_factory=dict)
    min_e: float = np.inf
    max_final_e: float = 0.0

    def as_dict(self) -> dict:
        """JSON-ready dictionary."""
        out = asdict(self)
        out["worst"] = {q: asdict(v) for q, v in self.worst.items()}
        return out


def escape_time(lam_T: float, lam_R: Sequence[float]) -> float:
    """Time for λ_1⋯λ_k to reach λ_T from 0 by the leading small-t terms of (15) at ε = 0.

    k = 2: λ_1 ≈ λ_Rλ_T t, λ_2 ≈ λ_T²λ_R t²/2; k = 3: λ_1 ≈ a t, λ_2 ≈ λ_{R,3}λ_T a t²/2,
    λ_3 ≈ λ_T²λ_{R,3}a²t⁴/8 with a = λ_{R,2}λ_{R,3}λ_T.
    """
    if len(lam_R) == 1:
        return float((2.0 / (lam_T * lam_R[0]) ** 2) ** (1 / 3))
    if len(lam_R) == 2:
        r2, r3 = lam_R
        return float((16.0 / (lam_T**6 * r2**4 * r3**6)) ** (1 / 7))
    raise ValueError(f"escape_time is written for k = 2, 3, got k = {len(lam_R) + 1}")


def rate_factor(lam: np.ndarray, lam_R: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """S with d(e²)/dt = −2e²S along (15): S = Σ_i (λ̇_i/e) Π_{j≠i} λ_j, from the first member
    of (17). λ̇_i/e is ``scalar_rhs`` with λ_T chosen so that e = 1. ``lam`` (E, k, T)."""
    lam_t = np.moveaxis(lam, 1, -1)                             # (E, T, k)
    prod = np.prod(lam_t, axis=-1)
    unit = scalar_rhs(0.0, lam_t, prod + 1.0, lam_R[:, None, :], eps[:, None])
    others = np.stack([np.prod(np.delete(lam_t, i, axis=-1), axis=-1)
                       for i in range(lam_t.shape[-1])], axis=-1)
    return np.sum(unit * others, axis=-1)                        # (E, T)


def _worst_drop(values: np.ndarray, increasing: bool,
                mask: np.ndarray | None = None) -> tuple[float, int, int]:
    """Most negative relative change between neighbouring ε (rows) over times (columns)."""
    sign = 1.0 if increasing else -1.0
    scale = np.max(np.abs(values), axis=0) + 1e-12
    rel = sign * np.diff(values, axis=0) / scale
    if mask is not None:
        rel = np.where(mask[None, :], rel, np.inf)
    j, ti = np.unravel_index(np.argmin(rel), rel.shape)
    return float(rel[j, ti]), int(j), int(ti)


def check_set(finding: Finding, lam_T: float, lam_R: Sequence[float],
              eps_grid: np.ndarray = EPS_GRID) -> None:
    """Integrate one parameter set over the ε grid and record any violations into ``finding``."""
    lam_R = np.asarray(lam_R, dtype=float)
    t_end = 4.0 * escape_time(lam_T, lam_R) + 40.0 / lam_T
    t_eval = np.unique(np.concatenate([np.geomspace(t_end * 1e-4, t_end, N_TIMES // 2),
                                       np.linspace(0.0, t_end, N_TIMES // 2)]))
    lam = integrate_scalar(lam_T, lam_R, eps_grid, t_eval, method=METHOD, rtol=RTOL, atol=ATOL)
    err = lam_T - np.prod(lam, axis=1)                           # (E, T)
    series = {f"lambda_{i + 1}": (lam[:, i, :], True, None) for i in range(lam.shape[1])}
    k = lam.shape[1]
    series[f"eps*lambda_{k}^2"] = (eps_grid[:, None] * lam[:, k - 1, :] ** 2, True, None)
    series["e^2"] = (err**2, False, np.all(err > E_FLOOR * lam_T, axis=0))
    series["rate S"] = (rate_factor(lam, np.broadcast_to(lam_R, (eps_grid.size, lam_R.size)),
                                    eps_grid), True, None)
    finding.n_sets += 1
    finding.min_e = min(finding.min_e, float(err.min() / lam_T))
    finding.max_final_e = max(finding.max_final_e, float(np.abs(err[:, -1]).max() / lam_T))
    for q in finding.claims:
        values, increasing, mask = series[q]
        rel, j, ti = _worst_drop(values, increasing, mask)
        if rel < -TOL:
            finding.violations[q] = finding.violations.get(q, 0) + 1
            if q not in finding.worst or rel < finding.worst[q].relative:
                finding.worst[q] = Violation(q, float(lam_T), tuple(map(float, lam_R)),
                                             (float(eps_grid[j]), float(eps_grid[j + 1])),
                                             float(t_eval[ti]), rel)


def theorem1_grid() -> list[tuple[float, tuple[float, ...]]]:
    """Theorem 1's setting: λ_T in (0, 1], λ_R ≪ λ_T."""
    return [(lt, (r * lt,)) for lt in (0.1, 0.4, 0.7, 1.0) for r in (0.002, 0.01, 0.05)]


def theorem2_grid(delta: float = 0.05) -> list[tuple[float, tuple[float, ...]]]:
    """Inside Theorem 2's assumptions: λ_{R,3} < λ_{R,2} < δ ≪ λ_T < 1 and
    λ_{R,2} > (1+√2)/2 · λ_{R,3} (the condition at ε = 1, hence for every ε in [0, 1])."""
    out = []
    for lt in (0.3, 0.6, 0.9):
        for r3 in (0.1 * delta, 0.3 * delta):
            for c in (1.25, 2.0, 3.0):
                if c * r3 < delta:
                    out.append((lt, (c * r3, r3)))
    return out


def below_bound_sets(n: int, rng: np.random.Generator) -> list[tuple[float, tuple[float, ...]]]:
    """Theorem 2 with small λ_R (< 0.05) but λ_{R,2} below the bound: λ_{R,2}/λ_{R,3} in (0.02, 1.2)."""
    out = []
    for _ in range(n):
        r3 = float(np.exp(rng.uniform(np.log(1e-3), np.log(0.05))))
        out.append((float(rng.uniform(0.05, 1.0)), (float(r3 * rng.uniform(0.02, 1.2)), r3)))
    return out


def large_sets(n: int, rng: np.random.Generator,
               above_bound: bool) -> list[tuple[float, tuple[float, ...]]]:
    """Theorem 2 with λ_R not small: λ_{R,3} log-uniform in [0.05, 2]; λ_{R,2}/λ_{R,3} in
    (1.25, 5) (above the bound (1+√2)/2 for every ε ≤ 1) or in (0.02, 1.2) (below it)."""
    out = []
    for _ in range(n):
        r3 = float(np.exp(rng.uniform(np.log(0.05), np.log(2.0))))
        c = rng.uniform(1.25, 5.0) if above_bound else rng.uniform(0.02, 1.2)
        out.append((float(rng.uniform(0.05, 1.0)), (float(c * r3), r3)))
    return out


def outside_sets_k2(n: int, rng: np.random.Generator) -> list[tuple[float, tuple[float, ...]]]:
    """Theorem 1 outside λ_R ≪ λ_T: λ_R log-uniform in [1e-3, 2], λ_T uniform in (0.05, 1]."""
    return [(float(rng.uniform(0.05, 1.0)), (float(np.exp(rng.uniform(np.log(1e-3), np.log(2)))),))
            for _ in range(n)]


def run_numeric(seed: int = 0, n_outside: int = 40, quiet: bool = False) -> list[Finding]:
    """All numerical checks; returns one :class:`Finding` per family of parameter sets."""
    rng = np.random.default_rng(seed)
    k2 = ("lambda_1", "eps*lambda_2^2", "e^2", "rate S", "lambda_2")
    k3 = ("lambda_1", "lambda_2", "lambda_3", "eps*lambda_3^2", "e^2", "rate S")
    plan: list[tuple[Finding, list[tuple[float, tuple[float, ...]]]]] = [
        (Finding("Theorem 1 (k=2), inside: lambda_R << lambda_T", 2, k2), theorem1_grid()),
        (Finding("Theorem 1 (k=2), outside: lambda_R not small", 2, k2),
         outside_sets_k2(n_outside // 2, rng)),
        (Finding("Theorem 2 (k=3), inside its assumptions", 3, k3), theorem2_grid()),
        (Finding("Theorem 2 (k=3), outside: lambda_R2 below the bound, lambda_R small", 3, k3),
         below_bound_sets(n_outside // 2, rng)),
        (Finding("Theorem 2 (k=3), outside: lambda_R not small, lambda_R2 above the bound", 3,
                 k3), large_sets(n_outside // 2, rng, above_bound=True)),
        (Finding("Theorem 2 (k=3), outside: lambda_R not small, lambda_R2 below the bound", 3,
                 k3), large_sets(n_outside // 2, rng, above_bound=False)),
    ]
    total = sum(len(sets) for _, sets in plan)
    with tqdm(total=total, disable=quiet, desc="theorems 1-2", unit="set") as bar:
        for finding, sets in plan:
            for lam_T, lam_R in sets:
                check_set(finding, lam_T, lam_R)
                bar.update()
    for finding, _ in plan:
        for q, w in finding.worst.items():
            finding.confirmed[q] = confirm(w)
    return [f for f, _ in plan]


def confirm(v: Violation, eps_grid: np.ndarray = EPS_GRID) -> float:
    """Re-integrate a violation's parameter set with DOP853 at rtol 1e-12 and return the relative
    change of its quantity between its two ε at its time (negative: the violation is real)."""
    lam = integrate_scalar(v.lam_T, v.lam_R, np.asarray(v.eps_pair), [0.0, v.t],
                           method="DOP853", rtol=1e-12, atol=1e-15)[:, :, -1]
    if v.quantity.startswith("eps*"):
        vals = np.asarray(v.eps_pair) * lam[:, -1] ** 2
    elif v.quantity.startswith("lambda_"):
        vals = lam[:, int(v.quantity.split("_")[1]) - 1]
    elif v.quantity == "e^2":
        vals = -(v.lam_T - lam.prod(axis=1)) ** 2
    else:
        vals = rate_factor(lam[:, :, None], np.broadcast_to(v.lam_R, (2, len(v.lam_R))),
                           np.asarray(v.eps_pair))[:, 0]
    return float((vals[1] - vals[0]) / (np.max(np.abs(vals)) + 1e-12))


def summary_text(findings: Sequence[Finding]) -> str:
    """Human-readable summary of :func:`run_numeric`."""
    header = (f"epsilon grid {EPS_GRID[0]:g}..{EPS_GRID[-1]:g} ({EPS_GRID.size} values); "
              f"violation = drop > {TOL:g} of the quantity's size between neighbouring epsilon")
    lines = [header]
    for f in findings:
        lines.append(f"\n{f.name}: {f.n_sets} parameter sets; min e/lambda_T = {f.min_e:.2e}, "
                     f"max final |e|/lambda_T = {f.max_final_e:.1e}")
        for q in f.claims:
            n = f.violations.get(q, 0)
            direction = "decreasing" if q == "e^2" else "increasing"
            if n == 0:
                lines.append(f"  {q:14s} {direction} in epsilon: no violation")
                continue
            w = f.worst[q]
            lines.append(f"  {q:14s} {direction} in epsilon: VIOLATED in {n}/{f.n_sets} sets; worst "
                         f"{-w.relative:.3g} (relative) at lambda_T={w.lam_T:.4g}, "
                         f"lambda_R={tuple(round(r, 5) for r in w.lam_R)}, "
                         f"eps {w.eps_pair[0]:g}->{w.eps_pair[1]:g}, t={w.t:.4g}; DOP853 "
                         f"rtol 1e-12 recheck: change {f.confirmed.get(q, float('nan')):.3g}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Lambda3Example:
    """A finite-time counterexample to "λ_3 increases with ε" (Theorem 2), from (15) at k = 3."""

    lam_T: float
    lam_R: tuple[float, float]
    eps: tuple[float, float]
    t_flip: float               # last output time at which λ_3 still increases with ε
    t: float                    # a time after the flip
    lam3: tuple[float, float]   # λ_3(t) at the two ε
    e_rel: tuple[float, float]  # e(t)/λ_T at the two ε

    def text(self) -> str:
        """One sentence for the report."""
        e_rel = ", ".join(f"{v:.2g}" if abs(v) > 1e-8 else "0 (to 1e-8)" for v in self.e_rel)
        return (f"at finite t it fails too: lambda_T = {self.lam_T:g}, lambda_R = {self.lam_R} "
                f"(inside Theorem 2's assumptions), eps {self.eps[0]:g} vs {self.eps[1]:g}: "
                f"lambda_3 increases with eps until t = {self.t_flip:.3g}, then decreases; at "
                f"t = {self.t:.3g}, lambda_3 = {self.lam3[0]:.3g} > {self.lam3[1]:.3g} while "
                f"e/lambda_T = {e_rel} (sims.scalar, LSODA, rtol 1e-10)")


def lambda3_counterexample(lam_T: float = 0.6, lam_R: tuple[float, float] = (0.01, 0.005),
                           eps: tuple[float, float] = (0.0, 1.0)) -> Lambda3Example:
    """Integrate (15) (k = 3, λ(0) = 0) at two ε and locate where λ_3 stops increasing in ε.

    The defaults satisfy Theorem 2's assumptions: λ_{R,2}, λ_{R,3} < δ = 0.05 ≪ λ_T < 1 and
    λ_{R,2} > (1+√(1+ε))/2 · λ_{R,3} for every ε <= 1.
    """
    t = np.concatenate([[0.0], np.geomspace(1.0, 1e4, 800)])
    lam = integrate_scalar(lam_T, np.asarray(lam_R), np.asarray(eps), t, method="LSODA")
    lam3, err = lam[:, 2, :], lam_T - np.prod(lam, axis=1)
    up = np.flatnonzero(lam3[1] > lam3[0])
    if up.size == 0 or up[-1] + 1 >= t.size:
        raise ValueError("lambda_3 does not stop increasing with eps on this grid")
    j = min(np.searchsorted(t, 1.4 * t[up[-1]]), t.size - 1)
    return Lambda3Example(lam_T, lam_R, eps, float(t[up[-1]]), float(t[j]),
                          (float(lam3[0, j]), float(lam3[1, j])),
                          (float(err[0, j] / lam_T), float(err[1, j] / lam_T)))
