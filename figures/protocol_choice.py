"""Issue 20, part 1: what the protocol choices change, measured against the paper's protocol.

The paper's protocol is the sequential update order (Remark 1: a layer's W and R are updated
before its error goes down) and no biases (eq. (1)). ``python -m figures protocol-choice
--paper DIR --variant simultaneous=DIR --variant bias=DIR`` reads the runs of the paper's
protocol under ``--paper`` and those of each variant under its folder (``deepnets.suite`` writes
``<arch>-cifar10-<protocol>-s<seed>/``; runs are recognised by their ``config.json``), pairs
each variant run with the paper-protocol run of its rule and seed (:mod:`figures.paired`) and
prints one table: per choice and rule, the paper-protocol error, the variant's, d = variant -
paper per seed, the verdict rule's close test (margin 0.05) and its directional test (is the
variant worse or better?), at the error endpoint (test error at each run's validation-chosen
epoch where every run was scored, else the validation error there), with the mean of the last
epochs as the other endpoint (**fragile** where the two disagree); below it, each layer's curves
(corr(W, Rᵗ), the probe's angles, the share of saturated units) variant against paper. ``--out
FILE`` also writes it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from figures.paired import RuleComparison, compare_families, layers_table, unpaired_note
from figures.rows import chosen_endpoint, table
from figures.runs import MissingDataError, Run, choice_notes, find_runs, readable_scores
from figures.stats import CONTRADICTS, SUPPORTS
from urfb_common import (
    OneLineParser,
    atomic_write_text,
    command_line,
    path_arg,
    require_existing,
    require_outside,
    require_writable,
)

__all__ = ["build_parser", "choice_rows", "choice_table", "main", "worse_or_better"]

PROG = "python -m figures protocol-choice"
HEADER = ["choice", "rule", "epochs compared", "endpoint", "paper protocol: mean ± sd [per seed]",
          "variant: mean ± sd [per seed]", "d = variant − paper: mean ± sd [per seed]",
          "close (\\|d\\| < 0.05)", "variant worse or better (d > 0: worse)"]


#: Before the table of each layer's curves.
LAYERS_INTRO = ("Each layer's curves over the same epochs (corr(W, Rᵗ), the probe's angles, the "
                "share of saturated units; the mean of the window; not part of the verdict, they "
                "locate a difference):")


def worse_or_better(verdict: str) -> str:
    """The directional test of d = variant - paper in words: ``worse``, ``better`` or
    ``neither shown``."""
    return {SUPPORTS: "worse", CONTRADICTS: "better"}.get(verdict, "neither shown")


def _fragile(verdict: str, alt: str | None, fragile: bool) -> str:
    return f"**{verdict}**" + (f", **fragile** ({alt} on the mean of the last epochs)"
                               if fragile else "")


def choice_rows(choice: str, comparisons: Sequence[RuleComparison]) -> list[list[str]]:
    """One table line per rule of one choice (``comparisons``: variant against paper)."""
    rows = []
    for c in comparisons:
        close, greater = c.close, c.greater
        one = " (one seed)" if close.cmp.n < 2 else ""
        endpoint = chosen_endpoint([("paper", c.ends_b), ("variant", c.ends_a)], c.epochs[-1])
        rows.append([choice, c.title, c.budget, endpoint,
                     close.b, close.a,
                     close.cmp.summary.compact(signed=True),
                     _fragile(close.verdict, close.alt_verdict, close.fragile) + one,
                     _fragile(worse_or_better(greater.verdict),
                              worse_or_better(greater.alt_verdict or ""), greater.fragile) + one])
    return rows


def choice_table(paper: Sequence[Run], variants: dict[str, Sequence[Run]]) -> tuple[str, list[str]]:
    """The table of every variant (``{choice: runs}``) against ``paper`` (runs), and notes
    (what each variant's runs differ in, what could not be paired). ``paper`` may hold more
    descriptions than a variant (it is often the whole grid): only the variant's are noted."""
    rows, notes, used = [], [], set()
    layers: list[tuple[str, RuleComparison]] = []
    for choice, runs in variants.items():
        if not runs:
            notes.append(f"{choice}: no run with a logged epoch yet")
            continue
        comparisons, left = compare_families(runs, paper, choice, (choice, "paper-protocol"),
                                             note_lone_b=False)
        notes += [f"{choice}: {n}" for n in left]
        if not comparisons:
            notes.append(f"{choice}: no rule has a run of one seed in both folders")
            continue
        rows += choice_rows(choice, comparisons)
        layers += [(f"{choice}, {c.title}", c) for c in comparisons]
        used |= {c.protocol for c in comparisons}
        notes += [f"{choice}: {n}" for n in choice_notes(runs)]
        for c in comparisons:
            note = unpaired_note(c, choice, "paper-protocol")
            if note:
                notes.append(f"{choice}: {note}")
            differs = ", ".join(f"{k} ({v[1]} → {v[0]})" for k, v in c.settings.items())
            notes.append(f"{choice}, {c.title}: the paired runs differ in "
                         f"{differs or 'no recorded setting'}")
    if not rows:
        raise MissingDataError("no variant run pairs with a paper-protocol run: " + "; ".join(notes))
    # repeated paper-protocol runs of the rules a variant pairs with
    notes += [f"paper-protocol: {n}" for n in choice_notes(r for r in paper if r.protocol in used)]
    text = table(HEADER, rows)
    if any(c.layers for _, c in layers):
        text += ("\n\n" + LAYERS_INTRO + "\n\n"
                 + layers_table(layers, "variant", "paper protocol"))
    return text, notes


def _variant(text: str) -> tuple[str, Path]:
    """argparse ``type`` of ``--variant NAME=DIR``."""
    name, sep, folder = text.partition("=")
    if not sep or not name.strip() or not folder.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=DIR (e.g. simultaneous=runs/sim)")
    return name.strip(), path_arg(folder)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--paper", type=path_arg, required=True,
                        help="folder holding the paper-protocol runs (sequential order, no "
                             "biases), at any depth")
    parser.add_argument("--variant", type=_variant, action="append", required=True,
                        metavar="NAME=DIR",
                        help="a protocol choice and the folder of its runs; once per choice, "
                             "e.g. --variant simultaneous=runs/sim --variant bias=runs/bias")
    parser.add_argument("--out", type=path_arg, default=None,
                        help="also write the table and its notes to this markdown file")
    return parser


@command_line(PROG)
def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m figures protocol-choice``: 0 when the table was made."""
    parser = build_parser()
    args = parser.parse_args(argv)
    require_existing(parser, "--paper", args.paper)
    names = [name for name, _ in args.variant]
    if len(set(names)) != len(names):
        parser.error(f"--variant: a choice named twice ({', '.join(names)})")
    for name, folder in args.variant:
        require_existing(parser, f"--variant {name}", folder)
        if folder.resolve() == args.paper.resolve():
            parser.error(f"--variant {name} {folder}: is the --paper folder; its runs would be "
                         "compared with themselves")
    if args.out is not None:
        require_writable(parser, "--out", args.out, file=True)
        require_outside(parser, "--out", args.out, (args.paper, *(f for _, f in args.variant)))
    try:
        text, notes = choice_table(
            readable_scores(find_runs(args.paper)),
            {name: readable_scores(find_runs(folder)) for name, folder in args.variant})
    except MissingDataError as exc:
        parser.error(str(exc))
    out = text + ("\n\nNotes:\n\n" + "\n".join(f"- {n}." for n in notes) if notes else "") + "\n"
    if args.out is not None:
        atomic_write_text(args.out, out)
    print(out, end="")
    return 0
