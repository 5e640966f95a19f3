"""``python -m sims.depth_sweep``: does fixed feedback degrade with depth in the linear dynamics?

Runs :mod:`sims.depth` (Section 5.1's problem at depths 2..8: BP, FRFB and URFB until e(t) falls
to a threshold of e(0)), writes ``depth_sweep.csv``, ``depth.png``/``.pdf`` and ``verdict.txt``
into ``--out`` and prints the verdict.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from sims.depth import DepthConfig, rows_csv, run_sweep, verdict
from sims.linear import ATOL_RANGE, RTOL_RANGE, SolverError
from sims.sweep_checks import check_or_exit
from sims.until import SOLVERS
from urfb_common import (
    OneLineParser,
    atomic_write_text,
    command_line,
    path_arg,
    report_error,
    validate_or_exit,
)

DEFAULT_OUT = Path("out/depth_sweep")
#: the files written into --out
OUTPUTS = ("depth_sweep.csv", "verdict.txt", "depth.png", "depth.pdf")


def _parser() -> argparse.ArgumentParser:
    d = DepthConfig()
    p = OneLineParser(
        prog="python -m sims.depth_sweep",
        description="The linear dynamics of Section 5 against depth: BP, FRFB (eps 0) and URFB "
                    "(eps 1) on Section 5.1's problem at depths 2..8; writes depth_sweep.csv, "
                    "depth.png/.pdf and verdict.txt and prints the verdict.",
        epilog="Not given by the paper, chosen here: R(0) and BP's W(0) entries N(0, 0.2^2) (as "
               "in sims.epsilon_sweep), T drawn through the network's own widths (--target), "
               "and the horizon in units of the BP time scale of T's top singular value.")
    a = p.add_argument
    a("--depths", type=int, nargs="+", default=list(d.depths), metavar="K",
      help="network depths k >= 2 (number of weight matrices); default %(default)s")
    a("--n-in", type=int, default=d.n_in, help="input width n_0; default %(default)s")
    a("--hidden", type=int, default=d.hidden, help="every hidden width; default %(default)s")
    a("--n-out", type=int, default=d.n_out, help="output width n_k; default %(default)s")
    a("--eps", type=float, nargs="+", default=list(d.eps), metavar="EPS",
      help="feedback update strengths (must include 0 = FRFB; the largest is URFB); "
           "default %(default)s")
    a("--no-bp", action="store_true", help="skip back-propagation")
    a("--seeds", type=int, default=d.seeds, help="seeds per depth; default %(default)s")
    a("--seed", type=int, default=d.seed,
      help="base seed; seed s of depth k draws from default_rng([SEED, k, s]); default %(default)s")
    a("--target", choices=["matched", "fixed"], default=d.target,
      help="T = product of k factors through the network's widths (matched) or Section 5.1's "
           "3 factors n_in-hidden-hidden-n_out at every depth (fixed); default %(default)s")
    a("--target-sd", type=float, default=d.target_sd,
      help="sd of the entries of T's factors (paper: 0.2); default %(default)s")
    a("--w-sd", type=float, default=d.w_sd,
      help="sd of BP's random W(0) entries (not in the paper); default %(default)s")
    a("--r-sd", type=float, default=d.r_sd,
      help="sd of the random R(0) entries (not in the paper); default %(default)s")
    a("--threshold", type=float, default=d.threshold,
      help="time to threshold: first t with e(t) <= THRESHOLD e(0); default %(default)s")
    a("--horizon", type=float, default=d.horizon,
      help="integrate up to HORIZON time units tau_k = 1/(k s_1^(2-2/k)); default %(default)s")
    a("--plateau-factor", type=float, default=d.plateau_factor,
      help="a plateau is a stretch where the best error so far improves by less than this "
           "factor; default %(default)s")
    a("--plateau-fraction", type=float, default=d.plateau_fraction,
      help="a run 'plateaus' when its longest plateau lasts at least this fraction of the run; "
           "default %(default)s")
    a("--batch", type=int, default=d.batch,
      help="feedback seeds per batched solve (0: all seeds of a depth and eps); default %(default)s")
    a("--bp-batch", type=int, default=d.bp_batch,
      help="BP seeds per batched solve (see benchmarks/bench_depth.py); default %(default)s")
    a("--solver", choices=sorted(SOLVERS), default=d.solver,
      help="scipy explicit Runge-Kutta method; default %(default)s")
    a("--rtol", type=float, default=d.rtol,
      help=f"solver relative tolerance, in [{RTOL_RANGE[0]:.3g}, {RTOL_RANGE[1]:g}]; "
           "default %(default)s")
    a("--atol", type=float, default=d.atol,
      help=f"solver absolute tolerance, in (0, {ATOL_RANGE[1]:g}]; default %(default)s")
    a("--out", type=path_arg, default=DEFAULT_OUT, metavar="DIR",
      help="output folder (created if missing); default %(default)s")
    a("--quiet", action="store_true", help="no progress bar")
    return p


def config_from_args(a: argparse.Namespace) -> DepthConfig:
    """The :class:`DepthConfig` of parsed arguments (not yet validated)."""
    return replace(DepthConfig(), depths=tuple(a.depths), n_in=a.n_in, hidden=a.hidden,
                   n_out=a.n_out, eps=tuple(a.eps), bp=not a.no_bp, seeds=a.seeds, seed=a.seed,
                   target=a.target, target_sd=a.target_sd, w_sd=a.w_sd, r_sd=a.r_sd,
                   threshold=a.threshold, horizon=a.horizon, plateau_factor=a.plateau_factor,
                   plateau_fraction=a.plateau_fraction, batch=a.batch, bp_batch=a.bp_batch,
                   solver=a.solver, rtol=a.rtol, atol=a.atol)


@command_line("python -m sims.depth_sweep")
def main(argv: Sequence[str] | None = None) -> int:
    """Run the sweep, write the CSV, the figure and the verdict atomically, print the verdict."""
    parser = _parser()
    a = parser.parse_args(argv)
    cfg = config_from_args(a)
    validate_or_exit(parser, cfg)
    check_or_exit(parser, cfg, cfg.target_widths, a.out, OUTPUTS)
    try:
        rows = run_sweep(cfg, progress=not a.quiet)
    except SolverError as exc:
        report_error("python -m sims.depth_sweep", exc)
        return 1
    from figures.depth import plot_depth  # plotting (matplotlib) only once the numbers exist

    text = verdict(rows, cfg)
    atomic_write_text(a.out / "depth_sweep.csv", rows_csv(rows))
    atomic_write_text(a.out / "verdict.txt", text + "\n")
    figs = plot_depth(a.out / "depth_sweep.csv", a.out / "depth")
    print(text)
    print(f"wrote {a.out / 'depth_sweep.csv'}, {a.out / 'verdict.txt'}, "
          + ", ".join(str(f) for f in figs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
