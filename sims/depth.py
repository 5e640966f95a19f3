"""The depth sweep (its command line is :mod:`sims.depth_sweep`): does fixed feedback degrade
with depth in the linear dynamics?

Section 5 proves and simulates the ε speed-up for depths 2 and 3 only; Section 4's claim is that
fixed feedback (FRFB) falls behind updated feedback (URFB) as networks get deeper. This sweep
answers the linear version: for each depth k it draws Section 5.1's problem at that depth
(widths n_0, h, …, h, n_k; T = W_k*⋯W_1* with i.i.d. N(0, 0.2²) factors through the same widths;
BP from a random W(0); the feedback systems (9) from W(0) = 0 and a random R(0) shared by every
ε of a seed), integrates BP and every ε until e(t) <= threshold·e(0) or the horizon, and records

- ``t_threshold``: the first time e(t) <= threshold·e(0) (``reached`` false if not by the horizon);
- ``corr_l``: the final correlation of W_l and R_lᵗ (at t_threshold, or at the horizon);
- ``plateau_frac``: the longest stretch of [0, t_end] over which the best error so far improved
  by less than ``plateau_factor``, as a fraction of t_end; ``plateau`` when it is >= ``plateau_fraction``.

The feedback systems are integrated in the exact n_k × n_k reduction of :mod:`sims.subspace`
(every seed of a depth and ε in one batched solve), BP on the full matrices.

Time units shrink with depth (T grows like (0.2√h)^k), so the horizon is given in units of
τ_k = 1/(k s_1^{2-2/k}), the BP time scale of T's top singular value s_1 (median over the seeds);
every comparison uses ratios of times within one seed, which do not depend on the unit.
"""

from __future__ import annotations

import csv
import io
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from sims.depth_stats import (
    SEEDS_MAX,
    Times,
    collect,
    paired_ratios,
    quartiles,
    spearman_depth,
    time_unit,
)
from sims.initial import random_matrices, random_target
from sims.linear import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    eps_check,
    make_problem,
    pearson,
    sd_checks,
    tolerance_checks,
)
from sims.subspace import reduce_feedback, reduced_system, reduced_weights
from sims.until import SOLVERS, StopRun, full_system, run_until

#: BP seeds solved together by default. ``benchmarks/bench_depth.py`` measured batched BP
#: solves slower than one seed at a time from hidden width 40 up (crossover between 20 and 40),
#: so the default 100-wide grid solves BP seeds one by one.
BP_BATCH_DEFAULT = 1

#: Longest horizon, in the time units of depth k (default 2000): inf or 1e308 broke the solver.
HORIZON_MAX = 1e6


@dataclass(frozen=True)
class DepthConfig:
    """The grid and the settings of the depth sweep (defaults: Section 5.1 at every depth)."""

    depths: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8)
    n_in: int = 40
    hidden: int = 100
    n_out: int = 10
    eps: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)
    bp: bool = True
    seeds: int = 10
    seed: int = 0
    target: str = "matched"
    target_sd: float = 0.2
    w_sd: float = 0.2
    r_sd: float = 0.2
    threshold: float = 1e-6
    horizon: float = 2000.0
    plateau_factor: float = 2.0
    plateau_fraction: float = 0.25
    batch: int = 0
    bp_batch: int = BP_BATCH_DEFAULT
    solver: str = "RK45"
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL

    def widths(self, k: int) -> tuple[int, ...]:
        """Network widths n_0..n_k at depth k: n_in, hidden × (k−1), n_out."""
        return (self.n_in,) + (self.hidden,) * (k - 1) + (self.n_out,)

    def target_widths(self, k: int) -> tuple[int, ...]:
        """Widths of the factors of T: the network's own (``matched``) or Section 5.1's depth 3."""
        return self.widths(k) if self.target == "matched" else self.widths(3)

    def validate(self) -> None:
        """Raise ValueError naming the first bad field (``name: why``)."""
        checks = [
            ("depths", bool(self.depths) and min(self.depths) >= 2, "each depth must be >= 2"),
            ("depths", len(set(self.depths)) == len(self.depths), "values must be distinct"),
            ("n_in", self.n_in >= self.n_out, "must be >= --n-out (Section 5: n_k <= n_0)"),
            ("hidden", self.hidden >= self.n_out, "must be >= --n-out (the reduction needs it)"),
            ("n_out", self.n_out >= 1, "must be >= 1"),
            eps_check(self.eps),
            ("eps", 0.0 in self.eps and max(self.eps, default=0) > 0,
             "must contain 0 (FRFB) and a positive value"),
            ("eps", len(set(self.eps)) == len(self.eps), "values must be distinct"),
            ("seeds", 1 <= self.seeds <= SEEDS_MAX, f"must lie in 1..{SEEDS_MAX}"),
            ("seed", self.seed >= 0, "must be >= 0"),
            ("target", self.target in ("matched", "fixed"), "must be matched or fixed"),
            ("threshold", 0 < self.threshold < 1, "must lie in (0, 1)"),
            ("plateau_factor", 1 < self.plateau_factor <= 1e6, "must lie in (1, 1e6]"),
            ("plateau_fraction", 0 < self.plateau_fraction <= 1, "must lie in (0, 1]"),
            ("batch", self.batch >= 0, "must be >= 0 (0: all seeds in one solve)"),
            ("bp_batch", self.bp_batch >= 1, "must be >= 1"),
            ("solver", self.solver in SOLVERS, f"must be one of {sorted(SOLVERS)}"),
        ]
        checks += sd_checks(target_sd=self.target_sd, w_sd=self.w_sd, r_sd=self.r_sd)
        checks.append(("horizon", math.isfinite(self.horizon) and 0 < self.horizon <= HORIZON_MAX,
                       f"must lie in (0, {HORIZON_MAX:g}] (default {DepthConfig.horizon:g})"))
        checks += tolerance_checks(self.rtol, self.atol)
        for name, ok, rule in checks:
            if not ok:
                raise ValueError(f"{name}: {rule}, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class Draw:
    """The random problems of one depth: T, BP's W(0) and R(0) for every seed (batch axis)."""

    T: np.ndarray
    W0: list[np.ndarray]
    R0: list[np.ndarray]


def draw(cfg: DepthConfig, k: int) -> Draw:
    """Section 5.1's starting points at depth k; seed s draws from ``default_rng([seed, k, s])``."""
    Ts, Ws, Rs = [], [], []
    for s in range(cfg.seeds):
        rng = np.random.default_rng([cfg.seed, k, s])
        Ts.append(random_target(cfg.target_widths(k), rng, cfg.target_sd))
        Ws.append(random_matrices(cfg.widths(k), rng, cfg.w_sd))
        Rs.append(random_matrices(cfg.widths(k), rng, cfg.r_sd, transpose=True))
    return Draw(np.stack(Ts), [np.stack(m) for m in zip(*Ws)], [np.stack(m) for m in zip(*Rs)])


def plateau_fraction(t: np.ndarray, e: np.ndarray, t_end: float, factor: float) -> float:
    """Longest interval of [0, t_end] over which min_{s<=t} e(s) falls by less than ``factor``,
    divided by t_end (the running minimum makes the measure monotone and noise-proof)."""
    keep = t <= t_end
    t, best = t[keep], np.minimum.accumulate(e[keep])
    if t.size < 2 or t_end <= 0:
        return 0.0
    drop = -np.log(best)                                   # non-decreasing
    last = np.searchsorted(drop, drop + np.log(factor), side="left") - 1
    return float(np.max(t[last] - t) / t_end)


@dataclass(frozen=True)
class Row:
    """One line of the CSV: one seed of one method (BP or one ε) at one depth."""

    depth: int
    method: str
    epsilon: float
    seed: int
    t_threshold: float
    e_end_rel: float
    plateau_frac: float
    plateau: bool
    corr: tuple[float, ...] = field(default_factory=tuple)

    @property
    def reached(self) -> bool:
        return math.isfinite(self.t_threshold)


def _rows(cfg: DepthConfig, k: int, method: str, eps: float, seeds: Sequence[int], run: StopRun,
          corr: np.ndarray) -> list[Row]:
    out = []
    for b, s in enumerate(seeds):
        frac = plateau_fraction(run.trace_t, run.trace_e[b], float(run.t_end[b]),
                                cfg.plateau_factor)
        out.append(Row(k, method, eps, s, float(run.t_reach[b]),
                       float(run.error_end[b] / run.error0[b]), frac,
                       frac >= cfg.plateau_fraction, tuple(float(c) for c in corr[b])))
    return out


def _chunks(n: int, size: int) -> list[np.ndarray]:
    size = n if size == 0 else size
    return [np.arange(i, min(i + size, n)) for i in range(0, n, size)]


def run_feedback(cfg: DepthConfig, k: int, d: Draw, eps: float, horizon: float) -> list[Row]:
    """The feedback system (9) at one ε for every seed, in the reduction of :mod:`sims.subspace`."""
    rows: list[Row] = []
    opts = {"solver": cfg.solver, "rtol": cfg.rtol, "atol": cfg.atol}
    for idx in _chunks(cfg.seeds, cfg.batch):
        R0 = [r[idx] for r in d.R0]
        red = reduce_feedback(d.T[idx], R0)
        run = run_until(reduced_system(red, eps), cfg.threshold, horizon, **opts)
        W = reduced_weights(red, run.states)
        corr = np.stack([pearson(w, np.swapaxes(r0, -1, -2) + eps * w)
                         for w, r0 in zip(W, R0)], axis=1)
        rows += _rows(cfg, k, "feedback", eps, idx.tolist(), run, corr)
    return rows


def run_bp(cfg: DepthConfig, k: int, d: Draw, horizon: float) -> list[Row]:
    """BP from a random W(0) for every seed, ``bp_batch`` seeds per solve."""
    rows: list[Row] = []
    for idx in _chunks(cfg.seeds, cfg.bp_batch):
        problem = make_problem("bp", d.T[idx], [w[idx] for w in d.W0])
        run = run_until(full_system(problem), cfg.threshold, horizon, solver=cfg.solver,
                        rtol=cfg.rtol, atol=cfg.atol)
        rows += _rows(cfg, k, "bp", math.nan, idx.tolist(), run, np.full((idx.size, k), np.nan))
    return rows


def run_sweep(cfg: DepthConfig, *, progress: bool = True) -> list[Row]:
    """Every depth, BP and every ε; returns one :class:`Row` per depth, method and seed."""
    cfg.validate()
    rows: list[Row] = []
    cells = len(cfg.depths) * (len(cfg.eps) + cfg.bp)
    with tqdm(total=cells, desc="depth sweep", unit="cell", disable=not progress,
              file=sys.stderr) as bar:
        for k in cfg.depths:
            d = draw(cfg, k)
            horizon = cfg.horizon * time_unit(d.T, k)
            if cfg.bp:
                rows += run_bp(cfg, k, d, horizon)
                bar.update()
            for eps in cfg.eps:
                bar.set_postfix(depth=k, eps=eps)
                rows += run_feedback(cfg, k, d, eps, horizon)
                bar.update()
    return rows


def _fmt(x: float) -> str:
    return "" if not math.isfinite(x) else repr(float(x))


def rows_csv(rows: Sequence[Row]) -> str:
    """``depth,method,epsilon,seed,t_threshold,reached,corr_1..corr_K,e_end_rel,plateau_frac,
    plateau``; K is the largest depth; empty cells for BP's ε and correlations, for layers a
    depth does not have, and for t_threshold when not reached."""
    K = max(r.depth for r in rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["depth", "method", "epsilon", "seed", "t_threshold", "reached"]
               + [f"corr_{l}" for l in range(1, K + 1)] + ["e_end_rel", "plateau_frac", "plateau"])
    for r in rows:
        corr = [_fmt(c) for c in r.corr] + [""] * (K - len(r.corr))
        w.writerow([r.depth, r.method, _fmt(r.epsilon), r.seed, _fmt(r.t_threshold),
                    str(r.reached).lower()] + corr
                   + [_fmt(r.e_end_rel), _fmt(r.plateau_frac), str(r.plateau).lower()])
    return buf.getvalue()


def times_of(rows: Sequence[Row]) -> Times:
    """The times to threshold of every run, keyed as :mod:`sims.depth_stats` expects."""
    return collect((r.depth, r.method, r.epsilon, r.seed, r.t_threshold) for r in rows)


def _cell(x: np.ndarray) -> str:
    q1, med, q3 = quartiles(x)
    return "-" if x.size == 0 else f"{med:7.3g} [{q1:.3g}, {q3:.3g}]"


def verdict(rows: Sequence[Row], cfg: DepthConfig) -> str:
    """The printed answer: ratio table, alignment, plateaus, and whether the advantage of
    updating R (t_FRFB / t_URFB within a seed) grows with depth."""
    times, top = times_of(rows), ("feedback", max(cfg.eps))
    depths = sorted({r.depth for r in rows})
    fr = {k: paired_ratios(times, k, ("feedback", 0.0), top) for k in depths}
    lines = [(f"time to e(t) <= {cfg.threshold:g} e(0); per-seed ratios, median [quartiles] "
              f"(inf: not reached by the horizon); URFB = eps {top[1]:g}"),
             (f"{'depth':>5}  {'FRFB/URFB':>26}  {'BP/URFB':>26}  {'reached BP/eps..':>17}  "
              "plateaus")]
    for k in depths:
        bp = paired_ratios(times, k, ("bp", None), top)
        keys = [("bp", None)] * cfg.bp + [("feedback", e) for e in cfg.eps]
        reach = "/".join(str(sum(map(math.isfinite, times.get((k, *key), {}).values())))
                         for key in keys)
        plat = sum(r.plateau for r in rows if r.depth == k)
        lines.append(f"{k:>5}  {_cell(fr[k]):>26}  {_cell(bp):>26}  {reach:>17}  {plat:>8}")
    lines += _alignment_lines(rows, cfg)
    lines.append(_trend(fr))
    return "\n".join(lines)


def _alignment_lines(rows: Sequence[Row], cfg: DepthConfig) -> list[str]:
    out = ["final corr(W_l, R_l^t), median over seeds, layers l = 1..k:"]
    for eps in cfg.eps:
        for k in cfg.depths:
            c = np.array([r.corr for r in rows if r.depth == k and r.method == "feedback"
                          and r.epsilon == eps])
            med = np.nanmedian(c, axis=0) if c.size else []
            out.append(f"  eps {eps:<4g} depth {k}: " + " ".join(f"{v:5.2f}" for v in med))
    return out


#: Medians within this fraction of one another count as flat: a plateau.
PLATEAU_SPREAD = 0.02


def plateau_start(med: dict[int, float]) -> int:
    """The smallest depth from which the medians of every depth on lie within
    :data:`PLATEAU_SPREAD` of one another (max <= (1 + spread) min); the deepest depth if none."""
    ks = sorted(med)
    start = ks[-1]
    for k in reversed(ks):
        rest = [med[j] for j in ks if j >= k]
        if max(rest) > (1 + PLATEAU_SPREAD) * min(rest):
            break
        start = k
    return start


def _trend(fr: dict[int, np.ndarray]) -> str:
    """Whether the per-seed FRFB/URFB ratio grows with depth: Spearman ρ over all depths
    (significant at p < 0.01 and the median moving the same way) and over the deeper half."""
    med = {k: quartiles(x)[1] for k, x in fr.items()}
    head = "median FRFB/URFB by depth: " + ", ".join(f"{k}: {m:.3g}" for k, m in med.items())
    rho, p, n = spearman_depth(fr)
    if not math.isfinite(rho):
        return head + ". VERDICT: too few depths or seeds to judge a trend"
    ks = sorted(fr)
    deep = ks[len(ks) // 2:]
    rho_d, p_d, _ = spearman_depth({k: fr[k] for k in deep})
    stats = (f". Spearman rho(depth, ratio) = {rho:.2f} (p = {p:.1e}, n = {n}); over depths "
             f"{deep[0]}..{deep[-1]}: rho = {rho_d:.2f} (p = {p_d:.1e}). ")
    up, first, last = rho > 0 and p < 0.01, med[ks[0]], med[ks[-1]]
    if up and last > first and rho_d > 0 and p_d < 0.01:
        answer = "YES: the advantage of updating R grows with depth"
    elif up and last > first:
        flat = plateau_start(med)
        rest = [med[k] for k in ks if k >= flat]
        answer = (f"YES, THEN IT LEVELS OFF: the advantage of updating R grows from depth "
                  f"{ks[0]} to {flat} (median ratio {first:.3g} -> {med[flat]:.3g}) and is flat "
                  f"at {min(rest):.3g}-{max(rest):.3g} over depths {flat}..{ks[-1]}")
    elif rho < 0 and p < 0.01 and last < first:
        answer = "NO: the advantage of updating R shrinks with depth"
    else:
        answer = "NO CLEAR TREND: the advantage of updating R does not change monotonically"
    return head + stats + "VERDICT: " + answer
