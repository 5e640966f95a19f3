"""``python -m sims.rule_sweep``: every rule of the engine in Section 5's linear dynamics, by depth.

For each depth k and each rule of :mod:`sims.rules` (with parameters), on Section 5.1's problem at
that depth (T = W_k*⋯W_1* with i.i.d. N(0, 0.2²) factors through the network's widths), this
integrates the rule's dynamics until e(t) <= threshold·e(0) or the horizon and records per seed

- ``t_threshold`` (``reached`` false when not by the horizon) and ``tau`` (the unit τ_k of
  :func:`sims.depth_stats.time_unit`, so that t/τ_k compares depths);
- ``angle_l``: the angle (degrees) between the error the rule sends to layer l and BP's at the
  same weights, at t_threshold (or at the horizon); 0 at the top layer;
- ``corr_l``: corr(W_l, R_lᵗ) at that moment (empty for bp and dfa, which have no R).

Starting points (``--start``). ``section5`` (default): the rules that can leave W = 0 start
there, as Section 5 starts (9): frfb, urfb, kp (random R(0)) and dfa (random B); they are
integrated in the exact n_k × n_k reduction of :mod:`sims.subspace`. bp, wm and the sign rules
start from a random W(0) (wm with a random R(0), as the engine starts it) and are integrated on
the full matrices: from W = 0 the sign rules have R = 0 and never move, and wm's R relaxes to
(ησ²/λ)Wᵗ = 0 within ~lr/λ = 10 time units, after which it is BP near its saddle W = 0 (at
depth 3, 5-5-3, seed 0, it took t ≈ 9300 against frfb's 150 from W = 0). ``random``: every rule from the same random W(0), full matrices. All random
matrices are Glorot-uniform, as the engine draws them; within a seed every rule shares T, W(0),
R(0) (frsf's fixed |M| is |R(0)|, as in the engine) and B.

Verdict per rule: the per-seed ratio t(rule)/t(bp) against depth (Spearman, as
:mod:`sims.depth_sweep`): it degrades with depth, degrades and then levels off, or does not.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sims.depth_stats import SEEDS_MAX, quartiles, spearman_depth, time_unit
from sims.initial import random_target
from sims.linear import (
    ATOL_RANGE,
    RTOL_RANGE,
    SolverError,
    pearson,
    sd_checks,
    tolerance_checks,
)
from sims.rules import (
    RULE_NAMES,
    LinearRule,
    bp_angles,
    draw_fixed,
    feedback_mats,
    make_rule_problem,
    rule_system,
)
from sims.subspace import Reduced, reduce_feedback, reduced_system, reduced_weights
from sims.sweep_checks import check_or_exit
from sims.until import SOLVERS, StopRun, run_until
from urfb_common import (
    OneLineParser,
    atomic_write_text,
    command_line,
    path_arg,
    report_error,
    validate_or_exit,
)

DEFAULT_RULES = ("bp", "frfb", "urfb:epsilon=0.25", "urfb:epsilon=0.5", "urfb", "kp",
                 "kp:decay=0.001", "kp:decay=0.01", "usf", "brsf", "frsf", "dfa", "wm")
STARTS = ("section5", "random")
PROG = "python -m sims.rule_sweep"
#: the files written into --out
OUTPUTS = ("rule_sweep.csv", "verdict.txt", "rule_sweep.png", "rule_sweep.pdf")


def parse_rule(spec: str) -> LinearRule:
    """``name`` or ``name:key=value[,key=value]`` -> :class:`LinearRule` (ValueError if bad,
    a parameter given twice included)."""
    name, _, rest = spec.partition(":")
    params: dict[str, float] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"bad rule {spec!r}: expected name:key=value") from None
        if not eq:
            raise ValueError(f"bad rule {spec!r}: expected name:key=value")
        if key.strip() in params:
            raise ValueError(f"bad rule {spec!r}: {key.strip()} given twice")
        params[key.strip()] = number
    return LinearRule.make(name.strip(), **params)


@dataclass(frozen=True)
class SweepConfig:
    """The grid and settings (defaults: every rule, depths 2..8, 10 seeds, narrow widths)."""

    depths: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8)
    n_in: int = 20
    hidden: int = 20
    n_out: int = 5
    rules: tuple[str, ...] = DEFAULT_RULES
    seeds: int = 10
    seed: int = 0
    start: str = "section5"
    target_sd: float = 0.2
    threshold: float = 1e-3
    horizon: float = 2000.0
    solver: str = "RK23"
    reduced_solver: str = "BDF"
    rtol: float = 1e-5
    atol: float = 1e-8

    def widths(self, k: int) -> tuple[int, ...]:
        return (self.n_in,) + (self.hidden,) * (k - 1) + (self.n_out,)

    def parsed_rules(self) -> list[LinearRule]:
        return [parse_rule(s) for s in self.rules]

    def validate(self) -> None:
        """Raise ValueError naming the first bad field (``name: why``)."""
        try:
            rules = self.parsed_rules()
        except ValueError as exc:
            raise ValueError(f"rules: {exc}") from None
        checks = [
            ("depths", bool(self.depths) and min(self.depths) >= 2, "each depth must be >= 2"),
            ("depths", len(set(self.depths)) == len(self.depths), "values must be distinct"),
            ("n_out", self.n_out >= 1, "must be >= 1"),
            ("n_in", self.n_in >= self.n_out, "must be >= --n-out (Section 5: n_k <= n_0)"),
            ("hidden", self.hidden >= self.n_out, "must be >= --n-out (the reduction needs it)"),
            ("rules", any(r.name == "bp" for r in rules),
             "must include bp (the verdicts' reference)"),
            ("rules", len({r.label for r in rules}) == len(rules), "must be distinct"),
            ("seeds", 1 <= self.seeds <= SEEDS_MAX, f"must lie in 1..{SEEDS_MAX}"),
            ("seed", self.seed >= 0, "must be >= 0"),
            ("start", self.start in STARTS, f"must be one of {STARTS}"),
            ("threshold", 0 < self.threshold < 1, "must lie in (0, 1)"),
            ("solver", self.solver in SOLVERS, f"must be one of {sorted(SOLVERS)}"),
            ("reduced_solver", self.reduced_solver in SOLVERS,
             f"must be one of {sorted(SOLVERS)}"),
        ]
        checks += sd_checks(target_sd=self.target_sd)
        checks.append(("horizon", math.isfinite(self.horizon) and self.horizon > 0,
                       "must be finite and > 0"))
        checks += tolerance_checks(self.rtol, self.atol)
        for name, ok, why in checks:
            if not ok:
                raise ValueError(f"{name}: {why}, got {getattr(self, name)!r}")


def _glorot(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    bound = math.sqrt(6.0 / (rows + cols))
    return rng.uniform(-bound, bound, (rows, cols))


@dataclass(frozen=True)
class Draw:
    """One depth's random problems, batched over seeds: T, W(0), R(0) and DFA's B."""

    T: np.ndarray
    W0: list[np.ndarray]
    R0: list[np.ndarray]
    B: list[np.ndarray]


def draw(cfg: SweepConfig, k: int) -> Draw:
    """Seed s of depth k draws from ``default_rng([seed, k, s])``."""
    n = cfg.widths(k)
    Ts, Ws, Rs, Bs = [], [], [], []
    for s in range(cfg.seeds):
        rng = np.random.default_rng([cfg.seed, k, s])
        Ts.append(random_target(n, rng, cfg.target_sd))
        Ws.append([_glorot(rng, n[i], n[i - 1]) for i in range(1, k + 1)])
        Rs.append([_glorot(rng, n[i - 1], n[i]) for i in range(1, k + 1)])
        Bs.append([_glorot(rng, n[i - 1], n[-1]) for i in range(1, k + 1)])
    stack = lambda mats: [np.stack(m) for m in zip(*mats)]
    return Draw(np.stack(Ts), stack(Ws), stack(Rs), stack(Bs))


def fixed_of(rule: LinearRule, d: Draw, widths: Sequence[int]) -> list[np.ndarray] | None:
    """The rule's fixed matrices for this draw (sign magnitudes, DFA's B), None for others."""
    if rule.name == "frsf":
        return [np.abs(r) for r in d.R0]
    if rule.name == "dfa":
        return d.B
    if rule.kind == "sign":     # usf and brsf: constant magnitudes, the generator is not used
        return draw_fixed(rule, widths, np.random.default_rng(0), d.T.shape[0])
    return None


@dataclass(frozen=True)
class Row:
    """One line of the CSV: one seed of one rule at one depth."""

    depth: int
    rule: str
    params: str
    seed: int
    t_threshold: float
    tau: float
    e_end_rel: float
    angles: tuple[float, ...] = field(default_factory=tuple)
    corr: tuple[float, ...] = field(default_factory=tuple)

    @property
    def reached(self) -> bool:
        return math.isfinite(self.t_threshold)

    @property
    def label(self) -> str:
        return self.rule + (f"({self.params})" if self.params else "")


def reduced_applies(rule: LinearRule, start: str) -> bool:
    """Whether the rule runs in the reduction: it starts from W(0) = 0 and is frfb/urfb/kp/dfa
    (not wm: see the module docstring)."""
    return start == "section5" and rule.kind in ("state", "direct") and not rule.mirror


def run_rule(cfg: SweepConfig, k: int, d: Draw, rule: LinearRule, horizon: float,
             tau: float) -> list[Row]:
    """Every seed of one rule at one depth in one batched solve; the rows it yields."""
    opts = {"solver": cfg.solver, "rtol": cfg.rtol, "atol": cfg.atol}
    widths = cfg.widths(k)
    fixed = fixed_of(rule, d, widths)
    if reduced_applies(rule, cfg.start):
        direct = rule.kind == "direct"
        red = reduce_feedback(d.T, d.B if direct else d.R0, direct)
        run = _per_seed(red, 0.0 if direct else rule.epsilon, rule.decay, cfg, horizon)
        W = reduced_weights(red, run.states)
        decay = np.exp(-rule.decay * run.t_end)[:, None, None]
        R = [] if direct else [rule.epsilon * np.swapaxes(w, -1, -2) + decay * r0
                               for w, r0 in zip(W, d.R0)]
    else:
        problem = make_rule_problem(rule, d.T, d.W0, d.R0 if rule.kind == "state" else None,
                                    fixed)
        run = run_until(rule_system(problem), cfg.threshold, horizon, **opts)
        W, R = problem.split(run.states)
    back = feedback_mats(rule, W, R, fixed or [])
    angles = bp_angles(rule, d.T, W, back)
    if rule.kind in ("state", "sign"):
        corr = np.stack([pearson(w, np.swapaxes(r, -1, -2)) for w, r in zip(W, back)], axis=1)
    else:
        corr = np.full((d.T.shape[0], k), np.nan)
    return _rows(k, rule, run, tau, angles, corr)


def _per_seed(red: Reduced, eps: float, decay: float, cfg: SweepConfig,
              horizon: float) -> StopRun:
    """The reduced system solved seed by seed with ``cfg.reduced_solver`` (BDF by default: the
    reduced feedback systems are stiff at depth, where an explicit step is limited by
    stability; an implicit solver's finite-difference Jacobian is cheap for one seed's
    k·n_k² numbers, but not for a batch). The seeds' outcomes stacked as one StopRun (its
    error trace keeps t = 0 only: the sweep does not use traces)."""
    runs = []
    for b in range(red.T.shape[0]):
        one = Reduced(red.T[b:b + 1], [r[b:b + 1] for r in red.R0],
                      [q[b:b + 1] for q in red.frames], red.direct)
        runs.append(run_until(reduced_system(one, eps, decay), cfg.threshold, horizon,
                              solver=cfg.reduced_solver, rtol=cfg.rtol, atol=cfg.atol))
    cat = lambda name: np.concatenate([getattr(r, name) for r in runs])
    return StopRun(cat("t_reach"), cat("t_end"), cat("states"), cat("error0"),
                   cat("error_end"), np.zeros(1), cat("error0")[:, None],
                   sum(r.nfev for r in runs))


def _rows(k: int, rule: LinearRule, run: StopRun, tau: float, angles: np.ndarray,
          corr: np.ndarray) -> list[Row]:
    return [Row(k, rule.name, rule.params_text, s, float(run.t_reach[s]), tau,
                float(run.error_end[s] / run.error0[s]), tuple(map(float, angles[s])),
                tuple(map(float, corr[s]))) for s in range(run.t_reach.size)]


def run_sweep(cfg: SweepConfig, *, progress: bool = True) -> list[Row]:
    """Every depth and rule; one :class:`Row` per depth, rule and seed."""
    cfg.validate()
    rules = cfg.parsed_rules()
    rows: list[Row] = []
    with tqdm(total=len(cfg.depths) * len(rules), desc="rule sweep", unit="cell",
              disable=not progress, file=sys.stderr) as bar:
        for k in cfg.depths:
            d = draw(cfg, k)
            tau = time_unit(d.T, k)
            for rule in rules:
                bar.set_postfix(depth=k, rule=rule.label)
                rows += run_rule(cfg, k, d, rule, cfg.horizon * tau, tau)
                bar.update()
    return rows


def _fmt(x: float) -> str:
    return "" if not math.isfinite(x) else repr(float(x))


def rows_csv(rows: Sequence[Row]) -> str:
    """``depth,rule,params,seed,t_threshold,reached,tau,e_end_rel,angle_1..angle_K,
    corr_1..corr_K``; K the largest depth; empty cells where a value does not exist."""
    K = max(r.depth for r in rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["depth", "rule", "params", "seed", "t_threshold", "reached", "tau", "e_end_rel"]
               + [f"angle_{l}" for l in range(1, K + 1)] + [f"corr_{l}" for l in range(1, K + 1)])
    for r in rows:
        pad = [""] * (K - r.depth)
        w.writerow([r.depth, r.rule, r.params, r.seed, _fmt(r.t_threshold), str(r.reached).lower(),
                    _fmt(r.tau), _fmt(r.e_end_rel)] + [_fmt(a) for a in r.angles] + pad
                   + [_fmt(c) for c in r.corr] + pad)
    return buf.getvalue()


Times = dict[tuple[int, str], dict[int, float]]


def times_of(rows: Sequence[Row]) -> Times:
    """(depth, label) -> {seed: t/τ_k, +inf if not reached}."""
    out: Times = {}
    for r in rows:
        out.setdefault((r.depth, r.label), {})[r.seed] = (r.t_threshold / r.tau if r.reached
                                                         else math.inf)
    return out


def ratios_to_bp(times: Times, depth: int, label: str) -> np.ndarray:
    """Per seed t(label)/t(bp) at ``depth``, over the seeds whose BP run reached the threshold."""
    a, b = times.get((depth, label), {}), times.get((depth, "bp"), {})
    return np.array([a[s] / t for s, t in sorted(b.items()) if math.isfinite(t) and s in a])


def trend(fr: dict[int, np.ndarray]) -> str:
    """The verdict of one rule: does t(rule)/t(bp) grow with depth? Spearman ρ of depth against
    the pooled per-seed ratios: significant (p < 0.01) growth with the median moving the same way
    is 'degrades'; if the deeper half of the depths shows no significant growth, 'then levels
    off'; significant decrease is 'does not degrade (gains on BP)'; otherwise 'does not degrade'."""
    ks = sorted(fr)
    med = {k: quartiles(x)[1] for k, x in fr.items()}
    rho, p, n = spearman_depth(fr)
    if not math.isfinite(rho):
        return "too few depths or seeds to judge"
    deep = ks[len(ks) // 2:]
    rho_d, p_d, _ = spearman_depth({k: fr[k] for k in deep})
    stats = f"rho = {rho:.2f} (p = {p:.1e}, n = {n}); depths {deep[0]}..{deep[-1]}: rho = {rho_d:.2f} (p = {p_d:.1e})"
    first, last = med[ks[0]], med[ks[-1]]
    if rho > 0 and p < 0.01 and last > first:
        if rho_d > 0 and p_d < 0.01:
            return f"DEGRADES WITH DEPTH ({stats})"
        return f"DEGRADES, THEN LEVELS OFF ({stats})"
    if rho < 0 and p < 0.01 and last < first:
        return f"DOES NOT DEGRADE: gains on BP with depth ({stats})"
    return f"DOES NOT DEGRADE: no clear trend ({stats})"


def _cell(x: float) -> str:
    return "inf" if x == math.inf else ("-" if not math.isfinite(x) else f"{x:.3g}")


def ordering(times: Times, labels: Sequence[str], depth: int) -> list[str]:
    """Labels from fastest to slowest by median t/τ_k at ``depth`` (not reached: +inf)."""
    med = {lab: quartiles(np.array(list(times.get((depth, lab), {}).values())))[1]
           for lab in labels}
    return sorted(labels, key=lambda lab: (med[lab], lab))


def verdict(rows: Sequence[Row]) -> str:
    """The printed report: times, ratios to BP, verdicts, orderings, final alignment."""
    times = times_of(rows)
    depths = sorted({r.depth for r in rows})
    labels = list(dict.fromkeys(r.label for r in rows))
    w = max(len(lab) for lab in labels)
    lines = [("time to threshold in units tau_k, median over seeds (inf: not reached); "
              "reached/seeds"),
             f"{'rule':<{w}}  " + "  ".join(f"{'k=' + str(k):>12}" for k in depths)]
    for lab in labels:
        cells = []
        for k in depths:
            t = np.array(list(times.get((k, lab), {}).values()))
            cells.append(f"{_cell(quartiles(t)[1])} {int(np.isfinite(t).sum())}/{t.size}")
        lines.append(f"{lab:<{w}}  " + "  ".join(f"{c:>12}" for c in cells))
    lines.append("per-seed t(rule)/t(bp), median by depth, and the verdict (test: Spearman rho "
                 "of depth against the ratios, p < 0.01; see sims.rule_sweep.trend):")
    for lab in labels:
        if lab == "bp":
            continue
        fr = {k: ratios_to_bp(times, k, lab) for k in depths}
        meds = " ".join(_cell(quartiles(x)[1]) for x in fr.values())
        lines.append(f"  {lab:<{w}}  {meds}\n  {'':<{w}}  VERDICT: {trend(fr)}")
    lines.append("ordering, fastest first (median t/tau_k):")
    for k in depths:
        lines.append(f"  k={k}: " + " < ".join(ordering(times, labels, k)))
    lines.append(f"at threshold, depth {depths[-1]}, median over seeds, layers 1..k: "
                 "angle to BP's error (deg) | corr(W_l, R_l^t)")
    for lab in labels:
        sel = [r for r in rows if r.depth == depths[-1] and r.label == lab]
        a = _column_medians(np.array([r.angles for r in sel]))
        cm = _column_medians(np.array([r.corr for r in sel]))
        lines.append(f"  {lab:<{w}}  " + " ".join(f"{x:3.0f}" for x in a) + " | "
                     + " ".join("  -  " if not math.isfinite(x) else f"{x:5.2f}" for x in cm))
    return "\n".join(lines)


def _column_medians(x: np.ndarray) -> np.ndarray:
    """The median of each column over its non-nan entries; nan for a column of nans only (a
    seed's angle or correlation that does not exist), without numpy's All-NaN warning."""
    return np.array([np.median(col[~np.isnan(col)]) if (~np.isnan(col)).any() else np.nan
                     for col in x.T])


def _parser() -> argparse.ArgumentParser:
    d = SweepConfig()
    p = OneLineParser(
        prog=PROG,
        description="Every feedback rule of the deep-net engine in Section 5's linear dynamics, "
                    "at depths 2..8: time for e(t) to reach a threshold, the alignment of each "
                    "layer's error with BP's, and corr(W, R^t). Writes rule_sweep.csv, "
                    "rule_sweep.png/.pdf and verdict.txt and prints the verdicts.",
        epilog=f"Rules: {', '.join(RULE_NAMES)}; a rule with parameters is written "
               "name:key=value (urfb:epsilon=0.5, kp:decay=0.01, usf:scale=2, wm:lr=0.05). brsf and "
               "wm run as their mean fields (see sims.rules); wm's lr is the engine's SGD step, "
               "which sets its mirror phases per unit of t. Widths default to 20-20-...-5, not Section 5.1's "
               "40-100-...-10: the sign rules have no reduction and cost minutes there.")
    a = p.add_argument
    a("--depths", type=int, nargs="+", default=list(d.depths), metavar="K",
      help="network depths k >= 2 (number of weight matrices); default %(default)s")
    a("--n-in", type=int, default=d.n_in, help="input width n_0; default %(default)s")
    a("--hidden", type=int, default=d.hidden, help="every hidden width; default %(default)s")
    a("--n-out", type=int, default=d.n_out, help="output width n_k; default %(default)s")
    a("--rules", nargs="+", default=list(d.rules), metavar="RULE",
      help="rules as name or name:key=value (must include bp); default %(default)s")
    a("--seeds", type=int, default=d.seeds, help="seeds per depth and rule; default %(default)s")
    a("--seed", type=int, default=d.seed,
      help="base seed; seed s of depth k draws from default_rng([SEED, k, s]); default %(default)s")
    a("--start", choices=STARTS, default=d.start,
      help="section5: W(0) = 0 for frfb/urfb/kp/dfa (exact reduction), random W(0) for bp, "
           "wm and the sign rules; random: every rule from the same random W(0) (full matrices, "
           "slower); default %(default)s")
    a("--target-sd", type=float, default=d.target_sd,
      help="sd of the entries of T's factors (paper: 0.2); default %(default)s")
    a("--threshold", type=float, default=d.threshold,
      help="time to threshold: first t with e(t) <= THRESHOLD e(0); default %(default)s")
    a("--horizon", type=float, default=d.horizon,
      help="integrate up to HORIZON time units tau_k = 1/(k s_1^(2-2/k)); default %(default)s")
    a("--solver", choices=sorted(SOLVERS), default=d.solver,
      help="solver of the full-matrix runs (bp, sign rules; every rule with --start random), "
           "all seeds in one batch; default %(default)s")
    a("--reduced-solver", choices=sorted(SOLVERS), default=d.reduced_solver,
      help="solver of the reduced systems (frfb, urfb, kp, dfa from W = 0), one seed at a "
           "time; default %(default)s (implicit: they are stiff at depth)")
    a("--rtol", type=float, default=d.rtol,
      help=f"solver relative tolerance, in [{RTOL_RANGE[0]:.3g}, {RTOL_RANGE[1]:g}]; "
           "default %(default)s")
    a("--atol", type=float, default=d.atol,
      help=f"solver absolute tolerance, in (0, {ATOL_RANGE[1]:g}]; default %(default)s")
    a("--out", type=path_arg, default="out/rule_sweep", metavar="DIR",
      help="output folder (created if missing); default %(default)s")
    a("--quiet", action="store_true", help="no progress bar")
    return p


@command_line(PROG)
def main(argv: Sequence[str] | None = None) -> int:
    """Run the sweep, write the CSV, the figure and the verdict atomically, print the verdict."""
    parser = _parser()
    a = parser.parse_args(argv)
    cfg = SweepConfig(depths=tuple(a.depths), n_in=a.n_in, hidden=a.hidden, n_out=a.n_out,
                      rules=tuple(a.rules), seeds=a.seeds, seed=a.seed, start=a.start,
                      target_sd=a.target_sd, threshold=a.threshold, horizon=a.horizon,
                      solver=a.solver, reduced_solver=a.reduced_solver, rtol=a.rtol,
                      atol=a.atol)
    validate_or_exit(parser, cfg)
    out = Path(a.out)
    check_or_exit(parser, cfg, cfg.widths, out, OUTPUTS)
    try:
        rows = run_sweep(cfg, progress=not a.quiet)
    except SolverError as exc:
        report_error(PROG, exc)
        return 1
    from figures.rule_sweep import plot_rule_sweep  # plotting only once the numbers exist

    text = verdict(rows)
    atomic_write_text(out / "rule_sweep.csv", rows_csv(rows))
    atomic_write_text(out / "verdict.txt", text + "\n")
    figs = plot_rule_sweep(out / "rule_sweep.csv", out / "rule_sweep")
    print(text)
    print(f"wrote {out / 'rule_sweep.csv'}, {out / 'verdict.txt'}, "
          + ", ".join(str(f) for f in figs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
