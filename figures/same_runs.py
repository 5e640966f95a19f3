"""Are two sets of runs the same, number for number?

``python -m figures same-runs A B`` pairs the run folders under ``A`` and ``B`` (folders holding a
``config.json`` and a ``log.jsonl``, at any depth) by their path below ``A`` and ``B`` and compares
their logs epoch by epoch: every number both logged (errors, losses, corr(W, Rᵗ), the probe's
angles, the saturated shares) but the timings (:data:`TIMINGS`); a field one log has and the
other not (a newer trainer records more) is named, not compared. Per pair it prints each log's
length, the epochs both logged, how many of them are identical, the first that is not and the
fields that differ there; a pair with no epoch in common is not called identical. ``--out
FILE`` also writes the table. It checks a claim of reproducibility, e.g. the same grid trained
on two leases of a GPU (``results/cifar10-paper-h200-run2/README.md``), or a run repeated with
``deepnets.train --same-as``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepnets.training.rundir import LOG, RunError, read_log
from figures.rows import table
from figures.runs import MissingDataError, run_folders
from urfb_common import (
    OneLineParser,
    atomic_write_text,
    command_line,
    path_arg,
    require_existing,
    require_outside,
    require_writable,
)

__all__ = ["TIMINGS", "RunMatch", "build_parser", "compare_logs", "main", "markdown", "same_runs"]

PROG = "python -m figures same-runs"
#: The record fields that time an epoch: they differ between any two runs, and are not compared.
TIMINGS = frozenset({"seconds", "train_seconds", "probe_seconds", "cpu_seconds"})


@dataclass(frozen=True)
class RunMatch:
    """One run of ``A`` against the run at the same path in ``B``."""

    run: str
    lengths: tuple[int, int]  # the epochs each log holds
    epochs: int  # logged by both
    identical: int  # of those, the epochs whose records are equal (timings aside)
    first_difference: int | None  # the first epoch that is not, None when all are
    fields: tuple[str, ...]  # the fields that differ at that epoch
    unshared: tuple[str, ...] = ()  # fields only one of the two logs records, not compared

    @property
    def same(self) -> bool:
        """Identical over at least one epoch both logged."""
        return self.epochs > 0 and self.first_difference is None


def compare_logs(run: str, a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]]) -> RunMatch:
    """The two logs' records compared epoch by epoch, over the epochs and fields both logged."""
    pairs, unshared = [], set()
    for x, y in zip(a, b):
        shared = (x.keys() & y.keys()) - TIMINGS
        unshared |= (x.keys() ^ y.keys()) - TIMINGS
        pairs.append(({k: x[k] for k in shared}, {k: y[k] for k in shared}))
    differing = [i for i, (x, y) in enumerate(pairs) if x != y]
    lengths, others = (len(a), len(b)), tuple(sorted(unshared))
    if not differing:
        return RunMatch(run, lengths, len(pairs), len(pairs), None, (), others)
    x, y = pairs[differing[0]]
    fields = tuple(sorted(k for k in x if x[k] != y[k]))
    return RunMatch(run, lengths, len(pairs), len(pairs) - len(differing), differing[0] + 1,
                    fields, others)


def _by_path(root: Path) -> dict[str, Path]:
    """The run folders below ``root`` (:func:`figures.runs.run_folders`: symlinked ones too)
    with a log, by their path below ``root``."""
    return {str(f.relative_to(root)): f for f in run_folders(root) if (f / LOG).is_file()}


def same_runs(a: Path, b: Path) -> tuple[list[RunMatch], list[str]]:
    """Every run folder of ``a`` against the one at the same path in ``b``, and notes on the runs
    found on one side only; :class:`MissingDataError` when no path is in both."""
    runs_a, runs_b = _by_path(a), _by_path(b)
    shared = sorted(runs_a.keys() & runs_b.keys())
    # one folder reached from both sides (a link) would be called identical to itself
    both = [n for n in shared if runs_a[n].resolve() != runs_b[n].resolve()]
    if not both:
        raise MissingDataError(f"no run folder is at the same path under {a} and {b}"
                               + (" but the same folder itself (through a link)" if shared else ""))
    notes = [f"{name}: under {side} only" for side, runs, other in ((a, runs_a, runs_b),
                                                                    (b, runs_b, runs_a))
             for name in sorted(runs.keys() - other.keys())]
    notes += [f"{name}: one folder under {a} and {b} ({runs_a[name].resolve()}), not compared"
              for name in shared if name not in both]
    shown = {".": f"{a.name} against {b.name}"}  # A and B are run folders themselves
    return [compare_logs(shown.get(n, n), read_log(runs_a[n]), read_log(runs_b[n]))
            for n in both], notes


def markdown(matches: Sequence[RunMatch], notes: Sequence[str]) -> str:
    """The sentence, the table of every pair and the notes."""
    same = sum(m.same for m in matches)
    head = (f"{same} of {len(matches)} runs identical over the epochs both logged (every number "
            f"both logged but the timings).")
    rows = [[m.run, f"{m.lengths[0]}, {m.lengths[1]}", str(m.epochs), str(m.identical),
             "—" if m.first_difference is None else str(m.first_difference),
             ", ".join(m.fields) or "—", ", ".join(m.unshared) or "—"] for m in matches]
    text = head + "\n\n" + table(["run", "epochs logged (A, B)", "epochs compared",
                                  "identical epochs",
                                  "first differing epoch", "fields differing there",
                                  "fields one log only (not compared)"], rows)
    return text + ("\n\nNotes:\n\n" + "\n".join(f"- {n}." for n in notes) if notes else "")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", metavar="A", type=path_arg,
                        help="a folder of run folders (at any depth), or one run folder")
    parser.add_argument("b", metavar="B", type=path_arg,
                        help="the folder of the runs to compare them with")
    parser.add_argument("--out", type=path_arg, help="also write the table to this markdown file")
    return parser


@command_line(PROG)
def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m figures same-runs``: 0 when the table was made."""
    parser = build_parser()
    args = parser.parse_args(argv)
    require_existing(parser, "A", args.a)
    require_existing(parser, "B", args.b)
    if args.a.resolve() == args.b.resolve():
        parser.error(f"A {args.a} and B {args.b} are one folder: its runs would be called "
                     "identical to themselves")
    if args.out is not None:
        require_writable(parser, "--out", args.out, file=True)
        require_outside(parser, "--out", args.out, (args.a, args.b))
    try:
        matches, notes = same_runs(args.a, args.b)
    except (MissingDataError, RunError) as exc:
        parser.error(str(exc))
    text = f"`{PROG} {args.a} {args.b}`\n\n" + markdown(matches, notes) + "\n"
    if args.out is not None:
        atomic_write_text(args.out, text)
    print(text, end="")
    return 0
