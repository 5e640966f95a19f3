"""Section 5.1's simulation behind Figure 12: the ε sweep's settings, runs, CSV and summary
(its command line is :mod:`sims.epsilon_sweep`).

Widths n = (40, 100, 100, 10), X = I, T = W_3*W_2*W_1* with i.i.d. N(0, 0.2²) factors; BP from a
random W(0); the feedback system (9) for each ε from W(0) = 0 and a random R(0) shared by all ε
of a run; several independent runs. Choices the paper leaves open (documented defaults):

- R(0) and BP's W(0) have i.i.d. N(0, 0.2²) entries, the law of the factors of T;
- the horizon is t = 1 with 251 output times (the paper's "1000 iterations" read as Euler
  steps of 0.001): every algorithm is then far below 1e-6 of its initial error.

The summary gives, for each run and algorithm, the time at which e(t) first drops below
``threshold`` · e(0), and whether that time decreases as ε increases (the paper's claim).
"""

from __future__ import annotations

import csv
import io
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from sims.initial import random_matrices, random_target, zero_weights
from sims.linear import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    DEFAULT_SOLVER,
    Trajectory,
    check_widths,
    eps_check,
    integrate,
    make_problem,
    sd_checks,
    tolerance_checks,
)

#: Longest horizon (Section 5.1's is 1; the error has long settled by then).
HORIZON_MAX = 1e3
#: Most time points per trajectory (memory grows with points x runs x eps x weights).
POINTS_MAX = 100_000


@dataclass(frozen=True)
class SweepConfig:
    """Parameters of the ε sweep (defaults: Section 5.1 plus the documented open choices)."""

    eps: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)
    widths: tuple[int, ...] = (40, 100, 100, 10)
    runs: int = 3
    seed: int = 0
    horizon: float = 1.0
    points: int = 251
    target_sd: float = 0.2
    w_sd: float = 0.2
    r_sd: float = 0.2
    threshold: float = 1e-6
    solver: str = DEFAULT_SOLVER
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        try:
            check_widths(self.widths)
        except ValueError as exc:
            raise ValueError(f"widths: {exc}") from None
        if len(self.eps) < 2:
            raise ValueError("eps: give at least two values (the summary asks whether the time "
                             f"to threshold decreases as eps increases), got {list(self.eps)}")
        if not eps_check(self.eps)[1]:
            raise ValueError(f"eps: {eps_check(self.eps)[2]}, got {list(self.eps)}")
        if len(set(self.eps)) != len(self.eps):
            raise ValueError(f"eps: values must be distinct, got {list(self.eps)}")
        checks = [("runs", self.runs >= 1, "must be >= 1"),
                  ("horizon", math.isfinite(self.horizon) and 0 < self.horizon <= HORIZON_MAX,
                   f"must lie in (0, {HORIZON_MAX:g}] (Section 5.1: 1)"),
                  ("points", 2 <= self.points <= POINTS_MAX, f"must lie in 2..{POINTS_MAX}"),
                  ("seed", self.seed >= 0, "must be >= 0"),
                  ("threshold", 0 < self.threshold < 1, "must lie in (0, 1)")]
        checks += sd_checks(target_sd=self.target_sd, w_sd=self.w_sd, r_sd=self.r_sd)
        checks += tolerance_checks(self.rtol, self.atol)
        for name, ok, rule in checks:
            if not ok:
                raise ValueError(f"{name}: {rule}, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class RunResult:
    """One run of the sweep: the BP trajectory and the feedback trajectories (one per ε)."""

    run: int
    bp: Trajectory
    feedback: list[Trajectory]


def run_sweep(cfg: SweepConfig, *, progress: bool = True) -> list[RunResult]:
    """Integrate BP and every ε for each run; run r draws from ``default_rng([seed, r])``."""
    cfg.validate()
    t_eval = np.linspace(0.0, cfg.horizon, cfg.points)
    opts = {"solver": cfg.solver, "rtol": cfg.rtol, "atol": cfg.atol}
    results = []
    with tqdm(total=cfg.runs * (1 + len(cfg.eps)), desc="epsilon sweep", disable=not progress,
              file=sys.stderr) as bar:
        for run in range(1, cfg.runs + 1):
            rng = np.random.default_rng([cfg.seed, run])
            T = random_target(cfg.widths, rng, cfg.target_sd)
            W0 = random_matrices(cfg.widths, rng, cfg.w_sd)
            R0 = random_matrices(cfg.widths, rng, cfg.r_sd, transpose=True)
            bp = integrate(make_problem("bp", T, W0), t_eval, **opts)
            bar.update()
            fb = []
            for eps in cfg.eps:
                fb.append(integrate(make_problem("feedback", T, zero_weights(cfg.widths), R0, eps),
                                    t_eval, **opts))
                bar.update()
            results.append(RunResult(run, bp, fb))
    return results


def _fmt(x: float) -> str:
    return "" if not math.isfinite(x) else repr(float(x))


def curves_csv(results: Sequence[RunResult]) -> str:
    """``run,method,epsilon,t,error,corr_1..corr_k``; epsilon and correlations empty for BP."""
    k = len(results[0].bp.widths) - 1
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["run", "method", "epsilon", "t", "error"] + [f"corr_{l}" for l in range(1, k + 1)])
    for res in results:
        for tr in [res.bp] + res.feedback:
            eps = "" if tr.method == "bp" else _fmt(tr.eps[0])
            for j, t in enumerate(tr.t):
                w.writerow([res.run, tr.method, eps, _fmt(t), _fmt(tr.error[0, j])]
                           + [_fmt(c) for c in tr.corr[0, :, j]])
    return buf.getvalue()


@dataclass(frozen=True)
class Summary:
    """Per run: time to reach threshold·e(0) for BP and each ε, and whether it decreases in ε."""

    eps: tuple[float, ...]
    t_bp: np.ndarray                 # (runs,)
    t_feedback: np.ndarray           # (runs, len(eps)) in the order of ``eps``
    decreasing: np.ndarray           # (runs,) bool: strictly decreasing as ε increases

    def csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["run", "method", "epsilon", "t_reach", "decreasing_in_eps"])
        for r in range(self.t_bp.size):
            dec = str(bool(self.decreasing[r])).lower()
            w.writerow([r + 1, "bp", "", _fmt(self.t_bp[r]), dec])
            for e, tt in zip(self.eps, self.t_feedback[r]):
                w.writerow([r + 1, "feedback", _fmt(e), _fmt(tt), dec])
        return buf.getvalue()

    def table(self, threshold: float) -> str:
        heads = ["run", "BP"] + [f"eps={e:g}" for e in self.eps] + ["decreasing in eps"]
        rows = [[str(r + 1), _cell(self.t_bp[r])] + [_cell(x) for x in self.t_feedback[r]]
                + ["yes" if self.decreasing[r] else "NO"] for r in range(self.t_bp.size)]
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(heads)]
        lines = [f"time for e(t) to reach {threshold:g} of e(0):",
                 "  ".join(h.rjust(n) for h, n in zip(heads, widths))]
        lines += ["  ".join(c.rjust(n) for c, n in zip(row, widths)) for row in rows]
        held = int(self.decreasing.sum())
        lines.append(f"time decreases with eps in {held} of {self.t_bp.size} runs")
        return "\n".join(lines)


def _cell(x: float) -> str:
    return f"{x:.4f}" if math.isfinite(x) else "never"


def summarize(results: Sequence[RunResult], eps: Sequence[float], threshold: float) -> Summary:
    """Times to reach ``threshold``·e(0) and the ε ordering; a run that never gets there fails it."""
    order = np.argsort(eps)
    t_bp = np.array([r.bp.time_to_fraction(threshold)[0] for r in results])
    t_fb = np.array([[tr.time_to_fraction(threshold)[0] for tr in r.feedback] for r in results])
    ts = t_fb[:, order]
    decreasing = np.all(np.isfinite(ts), axis=1) & np.all(np.diff(ts, axis=1) < 0, axis=1)
    return Summary(tuple(float(e) for e in eps), t_bp, t_fb, decreasing)
