"""Benchmark of the linear dynamics (issue 2, Performance): the default ε sweep and the ensemble mode.

1. Wall time of the default ``python -m sims.epsilon_sweep`` work (3 runs x 5 algorithms,
   integration, CSV and Figure 12), target < 10 s on the 2-core development machine.
2. 32 seeds of Section 5.1's problem (URFB, ε = 1) integrated as one batched system versus one
   after another; target ratio >= 5. Prints both times, the ratio and the vector-field
   evaluations (per member) from one run, for the Figure 12 widths and for small widths.

Why the target is missed at the Figure 12 widths (40, 100, 100, 10): a member's state holds
2·15,000 numbers, so each RK45 step costs ~0.35 ms of matrix products (6 field evaluations) and
~0.3 ms of solve_ivp's own vector arithmetic over the state, against ~0.05 ms of Python call
overhead. Batching removes only that overhead (the batched solve takes as many steps as the
slowest member); the rest grows with the batch, and a 32-member state (~1M numbers, a 54 MB
stage array) no longer fits the cache, which slows solve_ivp's arithmetic per number. At small
widths the overhead dominates and batching pays.

Run: ``.venv/bin/python benchmarks/bench_sweep.py``
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sims.epsilon import SweepConfig
from sims.initial import random_matrices, random_target, zero_weights
from sims.linear import integrate, make_problem
from urfb_common import OneLineParser


def time_default_sweep() -> float:
    """Seconds for the whole default sweep CLI (quiet, into a temporary folder), run as the user
    runs it: a fresh interpreter, its start-up included."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sims.epsilon_sweep", "--quiet", "--out", tmp],
                       cwd=Path(__file__).resolve().parents[1], check=True,
                       stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def time_ensemble(cfg: SweepConfig, seeds: int,
                  points: int) -> tuple[float, float, float, float, float, int]:
    """Sequential s, batched s, max |e difference| / e(0), worst e(end)/e(0), mean field
    evaluations of a sequential solve and those of the batched solve, for URFB seeds."""
    Ts, Rs = [], []
    for s in range(seeds):
        rng = np.random.default_rng([cfg.seed, 1000 + s])
        Ts.append(random_target(cfg.widths, rng, cfg.target_sd))
        Rs.append(random_matrices(cfg.widths, rng, cfg.r_sd, transpose=True))
    t_eval = np.linspace(0.0, cfg.horizon, points)
    start = time.perf_counter()
    one_by_one = [integrate(make_problem("feedback", T, zero_weights(cfg.widths), R, 1.0), t_eval)
                  for T, R in zip(Ts, Rs)]
    t_seq = time.perf_counter() - start
    batch = make_problem("feedback", np.stack(Ts), zero_weights(cfg.widths, batch=seeds),
                         [np.stack(layer) for layer in zip(*Rs)], 1.0)
    start = time.perf_counter()
    together = integrate(batch, t_eval)
    t_batch = time.perf_counter() - start
    seq_err = np.concatenate([tr.error for tr in one_by_one])
    rel = np.abs(together.error - seq_err) / seq_err[:, :1]
    return (t_seq, t_batch, float(rel.max()), float((together.error[:, -1] / seq_err[:, 0]).max()),
            float(np.mean([tr.nfev for tr in one_by_one])), together.nfev)


def main() -> None:
    p = OneLineParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=32, help="ensemble size; default %(default)s")
    p.add_argument("--points", type=int, default=11,
                   help="output times of the ensemble runs; default %(default)s")
    a = p.parse_args()
    if a.seeds < 1:
        p.error(f"argument --seeds: must be >= 1, got {a.seeds}")
    if a.points < 2:
        p.error(f"argument --points: must be >= 2, got {a.points}")
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
    print(f"default sweep (3 runs x 5 algorithms, CSVs and figure): {time_default_sweep():.2f} s "
          "wall (target < 10 s)")
    small = SweepConfig(widths=(10, 8, 8, 4), target_sd=0.6, r_sd=0.5, horizon=5.0)
    for cfg in (SweepConfig(), small):
        t_seq, t_batch, diff, reached, nfev_seq, nfev_batch = time_ensemble(cfg, a.seeds, a.points)
        print(f"ensemble of {a.seeds} seeds, widths {cfg.widths}: one after another {t_seq:.2f} s, "
              f"batched {t_batch:.2f} s, ratio {t_seq / t_batch:.1f}x (target >= 5x); field "
              f"evaluations {nfev_seq:.0f} per seed alone, {nfev_batch} batched; "
              f"max |e difference| / e(0) = {diff:.1e}; worst e(end)/e(0) = {reached:.1e}")


if __name__ == "__main__":
    main()
