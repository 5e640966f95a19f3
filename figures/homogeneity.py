"""``python -m figures homogeneity --runs DIR``: Figure 8's numbers, kept in each untied run folder.

Section 4.1: "the final connectivity matrix retains a strong spatial homogeneity". Figure 8 needs
a trained untied layer, and checkpoints are not committed; so this measures, from each untied
run's last checkpoint, the mean correlation of a channel's filters across the interior locations
of its first untied layer (:func:`figures.filters.homogeneity`: trained, at the start rebuilt
from the run's seed, and between different channels at one location, the chance level) and
writes it to the run's ``homogeneity.json`` (:mod:`figures.measurements`), where the report
(``python -m figures.report``, Figure 8's block) reads it from the committed files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from deepnets.training.rundir import RunError
from figures.filters import homogeneity
from figures.measurements import HOMOGENEITY, write_homogeneity
from figures.runs import MissingDataError, find_runs
from urfb_common import OneLineParser, command_line, path_arg, require_existing

__all__ = ["main", "measure"]

PROG = "python -m figures homogeneity"


def measure(run_dir: Path) -> dict[str, Any]:
    """Figure 8's numbers for the run in ``run_dir`` at its last checkpoint."""
    from deepnets.training.checkpoint import load_checkpoint, load_network

    net = load_network(run_dir)
    state = load_checkpoint(run_dir)
    return {"epoch": int(state["epoch"]) if state else 0, **homogeneity(net),
            "untied_init": net.config.get("untied_init", "independent")}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=path_arg, required=True,
                        help=f"folder holding run folders, at any depth: each untied run with a "
                             f"checkpoint gets its {HOMOGENEITY} (written atomically)")
    return parser


@command_line(PROG)
def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 when at least one run was measured."""
    parser = build_parser()
    args = parser.parse_args(argv)
    require_existing(parser, "--runs", args.runs)
    written = 0
    for run in find_runs(args.runs):
        if not run.untied:
            continue
        try:
            numbers = measure(run.path)
        except (RunError, MissingDataError) as exc:
            print(f"{PROG}: skipping {run.path}: {exc}", file=sys.stderr)
            continue
        write_homogeneity(run.path, numbers)
        written += 1
        print(f"{run.path / HOMOGENEITY}: epoch {numbers['epoch']}, trained "
              f"{numbers['trained']:.4f}, start {numbers['start']:.4f}, chance "
              f"{numbers['chance']:.4f}")
    if not written:
        parser.error(f"--runs {args.runs}: no untied run with a readable checkpoint")
    return 0
