"""``python -m sims.epsilon_sweep``: Section 5.1's simulation, rebuilding Figure 12.

Runs :mod:`sims.epsilon` (widths n = (40, 100, 100, 10), BP and the feedback system (9) for
each ε, several independent runs; the defaults the paper leaves open are documented there).
Writes ``curves.csv``, ``summary.csv`` and ``figure12.png``/``.pdf`` into ``--out`` (default
``out/epsilon_sweep``, where ``python -m figures 12`` reads ``curves.csv``), and prints for
each run and algorithm the time at which e(t) first drops below ``--threshold`` · e(0), and
whether that time decreases as ε increases (the paper's claim), computed from the runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sims.epsilon import SweepConfig, curves_csv, run_sweep, summarize
from sims.linear import (
    ATOL_RANGE,
    RTOL_RANGE,
    WEIGHT_COPIES,
    SolverError,
    memory_problem,
    weights_bytes,
)
from urfb_common import (
    SWEEP_OUT,
    OneLineParser,
    atomic_write_text,
    command_line,
    path_arg,
    report_error,
    require_writable,
    validate_or_exit,
)

#: the files written into --out
OUTPUTS = ("curves.csv", "summary.csv", "figure12.png", "figure12.pdf")


def memory_need(cfg: SweepConfig) -> int:
    """Bytes one run holds at least: the solver's copies of W and R, and W and R at every
    output time (``solve_ivp``'s solution)."""
    return weights_bytes(cfg.widths, 2 * (WEIGHT_COPIES + cfg.points))


def _parser() -> argparse.ArgumentParser:
    d = SweepConfig()
    p = OneLineParser(
        prog="python -m sims.epsilon_sweep",
        description="Section 5.1 / Figure 12: BP and the feedback systems (9) for several ε on "
                    "a random deep linear problem; writes curves.csv, summary.csv, figure12.png.",
        epilog="Not given by the paper, chosen here: R(0) and BP's W(0) entries N(0, 0.2^2) (the "
               "law of T's factors) and horizon t = 1 (all five algorithms end far below 1e-6 of "
               "their initial error; the paper's 1000 iterations read as Euler steps of 0.001).")
    p.add_argument("--eps", type=float, nargs="+", default=list(d.eps), metavar="EPS",
                   help="feedback update strengths ε >= 0 (0: FRFB, 1: URFB); default %(default)s")
    p.add_argument("--widths", type=int, nargs="+", default=list(d.widths), metavar="N",
                   help="layer widths n_0 .. n_k (k >= 2); default %(default)s")
    p.add_argument("--runs", type=int, default=d.runs,
                   help="number of independent runs (columns of the figure); default %(default)s")
    p.add_argument("--seed", type=int, default=d.seed,
                   help="base seed; run r draws from numpy default_rng([seed, r]); default %(default)s")
    p.add_argument("--horizon", type=float, default=d.horizon,
                   help="integrate over t in [0, HORIZON]; default %(default)s")
    p.add_argument("--points", type=int, default=d.points,
                   help="number of equally spaced output times; default %(default)s")
    p.add_argument("--target-sd", type=float, default=d.target_sd,
                   help="sd of the entries of the factors W_i* of T (paper: 0.2); default %(default)s")
    p.add_argument("--w-sd", type=float, default=d.w_sd,
                   help="sd of the entries of BP's random W(0) (not in the paper); default %(default)s")
    p.add_argument("--r-sd", type=float, default=d.r_sd,
                   help="sd of the entries of the random R(0) (not in the paper); default %(default)s")
    p.add_argument("--threshold", type=float, default=d.threshold,
                   help="summary: first time e(t) <= THRESHOLD * e(0); default %(default)s")
    p.add_argument("--solver", default=d.solver, choices=["RK45", "RK23", "DOP853"],
                   help="scipy solve_ivp explicit Runge-Kutta method (the system is not stiff; "
                        "LSODA did not finish one run at the default widths in 60 s where RK45 "
                        "takes about 1 s); default %(default)s")
    p.add_argument("--rtol", type=float, default=d.rtol,
                   help=f"solver relative tolerance, in [{RTOL_RANGE[0]:.3g}, {RTOL_RANGE[1]:g}]; "
                        "default %(default)s")
    p.add_argument("--atol", type=float, default=d.atol,
                   help=f"solver absolute tolerance, in (0, {ATOL_RANGE[1]:g}]; default %(default)s")
    p.add_argument("--out", type=path_arg, default=SWEEP_OUT, metavar="DIR",
                   help="output folder (created if missing); default %(default)s")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


@command_line("python -m sims.epsilon_sweep")
def main(argv: Sequence[str] | None = None) -> int:
    """Run the sweep, write its outputs atomically, print the summary table."""
    parser = _parser()
    a = parser.parse_args(argv)
    cfg = SweepConfig(eps=tuple(a.eps), widths=tuple(a.widths), runs=a.runs, seed=a.seed,
                      horizon=a.horizon, points=a.points, target_sd=a.target_sd, w_sd=a.w_sd,
                      r_sd=a.r_sd, threshold=a.threshold, solver=a.solver, rtol=a.rtol,
                      atol=a.atol)
    validate_or_exit(parser, cfg)
    problem = memory_problem(memory_need(cfg))
    if problem:
        parser.error(f"--widths {' '.join(map(str, cfg.widths))} at --points {cfg.points}: "
                     f"{problem}")
    for name in OUTPUTS:
        require_writable(parser, "--out", a.out / name, file=True)
    try:
        results = run_sweep(cfg, progress=not a.quiet)
    except SolverError as exc:
        report_error("python -m sims.epsilon_sweep", exc)
        return 1
    from figures.fig12 import plot_figure12  # plotting (matplotlib) only once the numbers exist

    summary = summarize(results, cfg.eps, cfg.threshold)
    atomic_write_text(a.out / "curves.csv", curves_csv(results))
    atomic_write_text(a.out / "summary.csv", summary.csv())
    figs = plot_figure12(a.out / "curves.csv", a.out / "figure12", rtol=cfg.rtol)
    print(summary.table(cfg.threshold))
    print(f"wrote {a.out / 'curves.csv'}, {a.out / 'summary.csv'}, "
          + ", ".join(str(f) for f in figs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
