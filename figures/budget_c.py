"""Which runs budget C's figures draw (``results/cifar10-paper/figures.sh``).

``python -m figures budget-c --into DIR`` links run folders of the working tree into three
folders of ``DIR``, one per set of figures, each run at its step's budget: scored on the test
split at the last epoch it logged (its ``test.json``; a run trained on toward a later budget
keeps the test.json of the earlier one and is left out until it has a new one):

- ``mixed`` (Figures 4, 5, 6, 7, 10, 11, 16, 17, 18, 19): every run of ``--paper`` but tied BP and
  BP-H, which come from ``--choices``' simultaneous order (in the paper's order softmax BP does
  not learn: docs/results.md, "BP in the paper's order");
- ``paper`` (Figures 8, 9): every run of ``--paper``, all in the paper's order;
- ``simultaneous`` (Figures 4, 6, 7, 18 with every rule in the simultaneous order): tied URFB, BP
  and BP-H of the simultaneous order, and tied FRFB of ``--paper`` (the order does not move
  FRFB's fixed R).

In ``mixed`` and ``simultaneous`` a group of runs (one network, rule and protocol, all seeds) is
drawn from ``runs-200/`` beside ``--paper`` (BP and BP-H: ``runs-200-simultaneous/``) once
every seed of the group has its longer run there at its budget, never part of a group: the rule
of :func:`longer_groups`, by which :mod:`figures.report` reads budget C's committed runs.
``simultaneous`` leaves out a tied pretraining run another run started from (deepnet_s's 5
tied epochs, Section 4.1).
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from deepnets.training.rundir import RunError
from figures.runs import Run, find_runs, pretraining_runs
from urfb_common import (
    OneLineParser,
    command_line,
    path_arg,
    require_existing,
    require_outside,
    require_writable,
)

__all__ = ["BP_ORDER_FOLDER", "BP_REFERENCES", "DEFAULT_CHOICES", "DEFAULT_PAPER",
           "LONG_FOLDER", "LONG_SIMULTANEOUS_FOLDER", "ORDER_FREE_METHOD", "at_budget",
           "build_parser", "figure_sets", "link_sets", "longer_groups", "main"]

PROG = "python -m figures budget-c"
#: Issue 20's runs: the paper's protocol, toward convergence (results/cifar10-paper/run.sh).
DEFAULT_PAPER = Path("results/cifar10-paper/runs")
#: Issue 20's protocol choices: ``paper/`` (the paper's protocol) and one folder per variant.
DEFAULT_CHOICES = Path("results/protocol-choice")
#: BP and BP-H in the simultaneous order, inside the protocol-choice folder: the order the
#: paper's BP was most likely run in (in the sequential order softmax BP does not learn, and the
#: author's code cannot run BP; docs/results.md, "BP in the paper's order").
BP_ORDER_FOLDER = "simultaneous"
BP_REFERENCES = ("bp", "bp-h")
#: The rule whose runs stand for both orders.
ORDER_FREE_METHOD = "frfb"
#: Beside budget C's runs folder: simpnet runs trained to 200 epochs (results/cifar10-paper/run.sh,
#: step 9), URFB and FRFB in the paper's order, and BP and BP-H in the simultaneous order. Each
#: replaces the group of budget C (of ``choices/simultaneous``) it extends once every seed of
#: that group has its longer run there (:func:`longer_groups`).
LONG_FOLDER = "runs-200"
LONG_SIMULTANEOUS_FOLDER = "runs-200-simultaneous"


def longer_groups(runs: list[Run], longer: list[Run]) -> list[Run]:
    """``runs`` with each group (one description and data setting: :attr:`Run.key`,
    :attr:`Run.data_key`) replaced by the runs of that group in ``longer`` once ``longer`` holds
    a run of each of its seeds, each with more epochs; a group's runs come from one folder,
    never part from each (its test errors and common epoch would mix two budgets). Groups only
    ``longer`` holds are added."""
    def key(run: Run) -> tuple:
        return run.key, run.data_key

    extended: dict[tuple, dict[int, Run]] = defaultdict(dict)
    for run in longer:
        per_seed = extended[key(run)]
        if run.seed not in per_seed or run.epochs_done > per_seed[run.seed].epochs_done:
            per_seed[run.seed] = run
    groups: dict[tuple, list[Run]] = defaultdict(list)
    for run in runs:
        groups[key(run)].append(run)
    kept: list[Run] = []
    for k, group in groups.items():
        alt = extended.pop(k, {})
        if all(r.seed in alt and alt[r.seed].epochs_done > r.epochs_done for r in group):
            kept += alt.values()
        else:
            kept += group
    return kept + [r for alt in extended.values() for r in alt.values()]


def at_budget(run: Run) -> bool:
    """Whether ``run``'s test.json scores the last epoch its log holds."""
    test = run.test_result()
    return test is not None and test.get("epochs_done") == run.epochs_done


def _scored(folder: Path) -> list[Run]:
    return [r for r in find_runs(folder) if at_budget(r)]


def _is_reference(run: Run) -> bool:
    return run.protocol in BP_REFERENCES and not run.untied


def figure_sets(paper: Path = DEFAULT_PAPER,
                choices: Path = DEFAULT_CHOICES) -> dict[str, list[Run]]:
    """The runs of each set of figures, ``mixed``, ``paper`` and ``simultaneous`` (see the
    module's docstring)."""
    paper = Path(paper)
    runs = _scored(paper)
    simultaneous = _scored(Path(choices) / BP_ORDER_FOLDER)
    longer = _scored(paper.parent / LONG_FOLDER)
    longer_simultaneous = _scored(paper.parent / LONG_SIMULTANEOUS_FOLDER)
    references = [r for r in simultaneous if _is_reference(r)]
    pre = pretraining_runs(runs)
    order_free = [r for r in runs
                  if r.protocol == ORDER_FREE_METHOD and not r.untied and r.name not in pre]
    moved = [r for r in simultaneous
             if not r.untied and r.protocol in ("urfb", *BP_REFERENCES)]
    return {
        "mixed": (longer_groups([r for r in runs if not _is_reference(r)], longer)
                  + longer_groups(references, longer_simultaneous)),
        "paper": runs,
        "simultaneous": (
            longer_groups(order_free, [r for r in longer if r.protocol == ORDER_FREE_METHOD])
            + longer_groups(moved, longer_simultaneous)),
    }


def link_sets(into: Path, sets: dict[str, list[Run]]) -> None:
    """``into/<set>/<run folder's name>``, a symbolic link to each run folder of each set;
    :class:`RunError`, before any link is made, when two runs of one set share a name (a figure
    would draw one of them)."""
    for name, runs in sets.items():
        seen: dict[str, Path] = {}
        for run in runs:
            if run.path.name in seen:
                raise RunError(f"{run.path} and {seen[run.path.name]} share a name in the set "
                               f"{name}")
            seen[run.path.name] = run.path
    for name, runs in sets.items():
        folder = into / name
        folder.mkdir(parents=True)
        for run in runs:
            (folder / run.path.name).symlink_to(run.path.resolve(), target_is_directory=True)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--into", type=path_arg, required=True,
                        help="an empty or new folder: the three sets' folders go in it")
    parser.add_argument("--paper", type=path_arg, default=DEFAULT_PAPER,
                        help=f"budget C's runs in the paper's order (default {DEFAULT_PAPER})")
    parser.add_argument("--choices", type=path_arg, default=DEFAULT_CHOICES,
                        help="the protocol-choice runs, with the simultaneous order's in "
                             f"{BP_ORDER_FOLDER}/ (default {DEFAULT_CHOICES})")
    return parser


@command_line(PROG)
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m figures budget-c``: 0 when the sets were linked."""
    parser = build_parser()
    args = parser.parse_args(argv)
    require_existing(parser, "--paper", args.paper)
    require_existing(parser, "--choices", args.choices)
    # links inside a folder it reads would be read again as runs of that folder
    require_outside(parser, "--into", args.into,
                    (args.paper, args.paper.parent / LONG_FOLDER,
                     args.paper.parent / LONG_SIMULTANEOUS_FOLDER, args.choices))
    # os.path's tests, unlike Path's, are False for a name too long (require_writable says so)
    if os.path.isfile(args.into):
        parser.error(f"--into {args.into}: is a file; give a new or empty folder")
    if os.path.isdir(args.into) and any(args.into.iterdir()):
        parser.error(f"--into {args.into}: not an empty folder")
    require_writable(parser, "--into", args.into)
    try:
        sets = figure_sets(args.paper, args.choices)
    except (OSError, RunError) as exc:
        parser.error(str(exc))
    if not any(sets.values()):  # empty folders would draw empty figures
        parser.error(f"--paper {args.paper}: no run scored on the test split at the last epoch "
                     "it logged (its test.json), nor a run of --choices: no set has a run")
    try:
        link_sets(args.into, sets)
    except RunError as exc:
        parser.error(str(exc))
    except OSError as exc:
        parser.error(f"--into {args.into}: {exc.strerror or exc}")
    for name, runs in sets.items():
        folders = sorted({str(r.path.parent) for r in runs})
        print(f"{name}: {len(runs)} runs from {', '.join(folders) or 'nowhere'}")
    return 0
