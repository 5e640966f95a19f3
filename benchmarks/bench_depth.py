"""Benchmark of ``python -m sims.depth_sweep`` (issue 12): batching seeds, and the reduction.

1. BP (full matrices): the 10 seeds of one depth solved as one batched system against one after
   another, for several hidden widths; prints both times, the ratio and the crossover width
   (the widest hidden width at which batching is still faster). The sweep's default
   ``--bp-batch`` follows it.
2. The feedback systems in the reduction of ``sims.subspace`` (n_k × n_k per layer, whatever
   the hidden width): batched against one at a time (batching is the default there).
3. The reduction itself: URFB on the full matrices (W and R integrated, ``sims.linear``)
   against the reduced system, same seeds, same tolerance.
4. With ``--full-run``: the wall and CPU time of the default ``python -m sims.depth_sweep``.

Every ratio is measured side by side in this one run; the load average is printed because the
machine is shared. Run: ``.venv/bin/python benchmarks/bench_depth.py [--full-run]``
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from sims.depth import DepthConfig, draw, run_bp, run_feedback, time_unit
from sims.initial import zero_weights
from sims.linear import make_problem
from sims.until import full_system, run_until
from urfb_common import OneLineParser


def _clock(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bp_batching(depth: int, hidden: int, seeds: int) -> tuple[float, float]:
    """Seconds for BP on ``seeds`` seeds: one at a time, then all in one batched solve."""
    cfg = DepthConfig(hidden=hidden, seeds=seeds)
    d = draw(cfg, depth)
    horizon = cfg.horizon * time_unit(d.T, depth)
    one = _clock(lambda: run_bp(replace(cfg, bp_batch=1), depth, d, horizon))
    batched = _clock(lambda: run_bp(replace(cfg, bp_batch=seeds), depth, d, horizon))
    return one, batched


def feedback_batching(depth: int, eps: float, seeds: int) -> tuple[float, float]:
    """Seconds for the reduced feedback system on ``seeds`` seeds: one at a time, then batched."""
    cfg = DepthConfig(seeds=seeds)
    d = draw(cfg, depth)
    horizon = cfg.horizon * time_unit(d.T, depth)
    one = _clock(lambda: run_feedback(replace(cfg, batch=1), depth, d, eps, horizon))
    batched = _clock(lambda: run_feedback(replace(cfg, batch=0), depth, d, eps, horizon))
    return one, batched


def reduction_gain(depth: int, hidden: int, seeds: int) -> tuple[float, float, float]:
    """Seconds for URFB on the full matrices and in the reduction (one seed at a time each),
    and the largest relative difference of their times to threshold."""
    cfg = DepthConfig(hidden=hidden, seeds=seeds)
    d = draw(cfg, depth)
    horizon = cfg.horizon * time_unit(d.T, depth)
    full_t = []

    def full() -> None:
        for s in range(seeds):
            problem = make_problem("feedback", d.T[s], zero_weights(cfg.widths(depth)),
                                   [r[s] for r in d.R0], 1.0)
            full_t.append(run_until(full_system(problem), cfg.threshold, horizon).t_reach[0])

    t_full = _clock(full)
    rows: list = []
    t_red = _clock(lambda: rows.extend(run_feedback(replace(cfg, batch=1), depth, d, 1.0,
                                                    horizon)))
    diff = max(abs(r.t_threshold - t) / t for r, t in zip(rows, full_t))
    return t_full, t_red, diff


def full_run() -> tuple[float, float]:
    """Wall and CPU seconds of the default ``python -m sims.depth_sweep`` (into a temp folder),
    run as the user runs it: a fresh interpreter, its start-up included."""
    def children_cpu() -> float:
        use = resource.getrusage(resource.RUSAGE_CHILDREN)
        return use.ru_utime + use.ru_stime

    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = time.perf_counter(), children_cpu()
        subprocess.run([sys.executable, "-m", "sims.depth_sweep", "--quiet", "--out", tmp],
                       cwd=Path(__file__).resolve().parents[1], check=True,
                       stdout=subprocess.DEVNULL)
        return time.perf_counter() - wall, children_cpu() - cpu


def main() -> None:
    p = OneLineParser(description=__doc__.splitlines()[0])
    p.add_argument("--depth", type=int, default=5, help="depth of the batching tests; default %(default)s")
    p.add_argument("--seeds", type=int, default=10, help="seeds per solve; default %(default)s")
    p.add_argument("--widths", type=int, nargs="+", default=[10, 20, 40, 100],
                   help="hidden widths of the BP batching test; default %(default)s")
    p.add_argument("--full-run", action="store_true",
                   help="also time the default depth sweep (about 2-4 minutes)")
    a = p.parse_args()
    if a.depth < 2:
        p.error(f"argument --depth: must be >= 2 (two weight matrices at least), got {a.depth}")
    if a.seeds < 1:
        p.error(f"argument --seeds: must be >= 1, got {a.seeds}")
    if not a.widths or min(a.widths) < DepthConfig().n_out:
        p.error(f"argument --widths: each hidden width must be >= the output width "
                f"{DepthConfig().n_out}, got {a.widths}")
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
    faster = []
    for w in a.widths:
        one, batched = bp_batching(a.depth, w, a.seeds)
        faster.append(batched < one)
        print(f"BP depth {a.depth}, hidden {w:>3}, {a.seeds} seeds: one at a time {one:6.2f} s, "
              f"batched {batched:6.2f} s, ratio {one / batched:5.2f}x")
    wins = [w for w, f in zip(a.widths, faster) if f]
    print(f"BP crossover: batching is faster up to hidden width {max(wins) if wins else 'none'} "
          f"of {a.widths}" + ("" if all(faster[: len(wins)]) else " (not monotone)"))
    for eps in (0.0, 1.0):
        one, batched = feedback_batching(a.depth, eps, a.seeds)
        print(f"reduced feedback eps {eps:g}, depth {a.depth}, {a.seeds} seeds: one at a time "
              f"{one:6.2f} s, batched {batched:6.2f} s, ratio {one / batched:5.2f}x")
    t_full, t_red, diff = reduction_gain(4, 100, 2)
    print(f"URFB depth 4, hidden 100, 2 seeds: full matrices {t_full:6.2f} s, reduction "
          f"{t_red:6.2f} s, ratio {t_full / t_red:5.1f}x; max relative difference of the "
          f"times to threshold {diff:.1e}")
    if a.full_run:
        wall, cpu = full_run()
        print(f"default python -m sims.depth_sweep: {wall:.1f} s wall, {cpu:.1f} s CPU "
              f"(target < 120 s); load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
