"""``python -m figures [all | 4 ... 12 16 ... 19] --runs runs/ --out out/figures``: rebuild the figures.

Builds every requested figure that has data (Figures 4-11 from the training runs under
``--runs``, Figure 12 from the ``curves.csv`` of ``python -m sims.epsilon_sweep``: one inside
``--runs`` if there is one, else where ``make sweep`` writes it), writes PNG, PDF and a ``.txt`` sidecar stating the scale and
seeds, and lists the figures that lack data and why. Figures 16-19 are not in the paper (its
Figures 13-15 are Appendix 1's circuits, drawn by ``python -m sims.circuits``): 16 is the gap of
URFB and FRFB to BP-H against depth, 17 and 18 the alignment probe's angles per layer on
simpnet and deepernet (claim 6), 19 simpnet's weight norms and saturated units per layer. Runs
that differ only in seed are drawn together (mean, min-max band); where runs of one seed repeat,
or other data was used, a note on stderr says which run is drawn and why. Exit status: 0 when at least one figure was built,
1 when none could be, 2 for bad arguments (an unknown figure, a ``--runs`` folder or
``--curves-csv`` file that does not exist, an ``--out`` folder that cannot be written or
holds a folder where a figure's file goes).

Three comparisons of run families are subcommands, each with its own ``--help``:
``python -m figures bf16-paired --runs DIR --out DIR`` (issue 18's bf16 against fp32 check,
:mod:`figures.bf16_paired`), ``python -m figures protocol-choice --paper DIR --variant
NAME=DIR ...`` (issue 20's protocol choices against the paper's protocol,
:mod:`figures.protocol_choice`) and ``python -m figures same-runs A B`` (are two sets of runs
the same, number for number? :mod:`figures.same_runs`). A fourth, ``python -m figures budget-c
--into DIR``, links the runs budget C's figures draw into one folder per set of figures
(:mod:`figures.budget_c`; ``results/cifar10-paper/figures.sh`` uses it).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable
from pathlib import Path

from figures import bf16_paired, budget_c, protocol_choice, same_runs
from figures.alignment import plot_figure10, plot_figure11
from figures.angles import plot_figure17, plot_figure18
from figures.errors import plot_figure4, plot_figure5, plot_figure6, plot_figure7, plot_figure9
from figures.filters import plot_figure8
from figures.gap import plot_figure16
from figures.growth import plot_figure19
from figures.runs import MissingDataError, Run, choice_notes, find_runs, readable_scores
from urfb_common import (
    FIGURES_OUT,
    SWEEP_OUT,
    OneLineParser,
    atomic_write_text,
    command_line,
    figure_numbers,
    path_arg,
    require_existing,
    require_no_folder_at,
    require_writable,
)

FIG12_CAPTION = ("Top: comparison of log-error rates as a function of iteration for original BP and "
                 "for four different values of epsilon = 0, 0.25, .5, 1. Results for three runs of "
                 "the experiment. Last three rows, for each level of the network we show the "
                 "evolution of the correlation between the W and R^t weights, for each of the "
                 "values of epsilon.")

Plotter = Callable[[list[Run], Path], list[Path]]
#: Figures drawn from training runs (``python -m deepnets.suite`` makes them); 12 is the sweep's.
#: 16-19 are this toolkit's own (not in the paper).
RUN_FIGURES: dict[int, Plotter] = {
    4: plot_figure4, 5: plot_figure5, 6: plot_figure6, 7: plot_figure7, 8: plot_figure8,
    9: plot_figure9, 10: plot_figure10, 11: plot_figure11, 16: plot_figure16,
    17: plot_figure17, 18: plot_figure18, 19: plot_figure19,
}
KNOWN = sorted([*RUN_FIGURES, 12])
#: The suite's figure numbers for runs (16-19 draw the runs of Figures 4-7's grids).
SUITE_FIGURE = {16: "4 7", 17: "4", 18: "7", 19: "4"}
DEFAULT_RUNS = Path("runs")
#: The files of figure N in ``--out``: ``figureN.png``, ``.pdf`` and the ``.txt`` sidecar.
OUTPUT_SUFFIXES = (".png", ".pdf", ".txt")
#: ``make sweep`` (``python -m sims.epsilon_sweep``) writes Figure 12's data here.
CURVES_NAME = "curves.csv"
DEFAULT_CURVES = SWEEP_OUT / CURVES_NAME
#: Subcommands: name -> its ``main(argv)`` (the rest of the command line is its own).
SUBCOMMANDS: dict[str, Callable[[list[str]], int]] = {
    "bf16-paired": bf16_paired.main, "protocol-choice": protocol_choice.main,
    "same-runs": same_runs.main, "budget-c": budget_c.main,
}


def plot_figure12(curves_csv: Path, out_stem: Path) -> list[Path]:
    """Figure 12 (Section 5.1) from a ``curves.csv`` of ``python -m sims.epsilon_sweep``."""
    if not curves_csv.is_file():
        raise MissingDataError(f"no {curves_csv}: run `make sweep` (python -m sims.epsilon_sweep) "
                               "or pass --curves-csv")
    from figures.fig12 import plot_figure12 as plot
    try:
        paths = plot(curves_csv, out_stem)
    except ValueError as exc:  # a curves.csv that is not sims.epsilon_sweep's
        raise MissingDataError(str(exc)) from None
    return [*paths, _figure12_sidecar(curves_csv, out_stem)]


def _figure12_sidecar(curves_csv: Path, out_stem: Path) -> Path:
    """The scale of a Section 5.1 sweep read back from its curves.csv: runs, epsilons, horizon, layers."""
    with open(curves_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    eps = sorted({float(r["epsilon"]) for r in rows if r["method"] == "feedback"})
    layers = sum(k.startswith("corr_") for k in rows[0])
    text = ["Figure 12", "", f"Paper's caption: {FIG12_CAPTION}", "",
            "Scale (paper: 3 runs, epsilon 0, .25, .5, 1, widths 40-100-100-10, 1000 iterations):",
            (f"- {curves_csv}: {len({r['run'] for r in rows})} runs; epsilon {eps}; "
             f"t up to {max(float(r['t']) for r in rows):g}; {layers} weight layers")]
    dest = Path(f"{out_stem}.txt")
    atomic_write_text(dest, "\n".join(text) + "\n")
    return dest


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m figures``."""
    parser = OneLineParser(prog="python -m figures", description=__doc__.splitlines()[0])
    parser.add_argument("figures", nargs="*", metavar="FIGURE", default=["all"],
                        help="'all' (default) or figure numbers 4-12, 16-19; or a subcommand "
                             f"first ({', '.join(SUBCOMMANDS)}; see its --help)")
    parser.add_argument("--runs", type=path_arg, default=None,
                        help=f"folder holding the training runs, at any depth (default {DEFAULT_RUNS}/; "
                             "a folder given here must exist)")
    parser.add_argument("--out", type=path_arg, default=FIGURES_OUT,
                        help=f"output folder for figureN.png/.pdf/.txt (default {FIGURES_OUT}/)")
    parser.add_argument("--curves-csv", type=path_arg, default=None,
                        help=f"Figure 12's curves.csv (default: one inside --runs, else "
                             f"{DEFAULT_CURVES}, where `make sweep` writes it; a file given here "
                             "must exist)")
    parser.add_argument("--json", action="store_true",
                        help="also print a JSON summary {built: {N: [paths]}, missing: {N: reason}}")
    return parser


def _inputs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[Path, Path]:
    """The runs folder and curves.csv to read: a path given must exist; a default may be absent.
    Without ``--curves-csv``, a sweep's ``curves.csv`` inside the ``--runs`` folder (at any
    depth) is Figure 12's data, else the default's."""
    if args.runs is not None:
        require_existing(parser, "--runs", args.runs)
    if args.curves_csv is not None:
        require_existing(parser, "--curves-csv", args.curves_csv, file=True)
        return args.runs or DEFAULT_RUNS, args.curves_csv
    found = sorted(args.runs.rglob(CURVES_NAME)) if args.runs is not None else []
    if len(found) > 1:
        print(f"figures: note: Figure 12 from {found[0]}, the first of {len(found)} "
              f"{CURVES_NAME} under --runs (--curves-csv picks another)", file=sys.stderr)
    return args.runs or DEFAULT_RUNS, found[0] if found else DEFAULT_CURVES


def _read_runs(runs_dir: Path, numbers: list[int]) -> list[Run]:
    """The runs under ``runs_dir`` (read once, when a figure needs them; one with a corrupt
    test.json is skipped, with a note); a note on stderr for each description that several runs
    share."""
    if not any(n in RUN_FIGURES for n in numbers):
        return []
    runs = readable_scores(find_runs(runs_dir))
    for note in choice_notes(runs):
        print(f"figures: note: {note}", file=sys.stderr)
    return runs


def _plot(n: int, runs: list[Run], runs_dir: Path, curves_csv: Path, stem: Path) -> list[Path]:
    """Draw figure ``n`` at ``stem``; :class:`MissingDataError` says why it cannot be drawn."""
    if n == 12:
        return plot_figure12(curves_csv, stem)
    if not runs_dir.is_dir():
        raise MissingDataError(f"no runs folder {runs_dir}")
    return RUN_FIGURES[n](runs, stem)


def _build(numbers: list[int], runs: list[Run], runs_dir: Path, curves_csv: Path,
           out: Path) -> tuple[dict[int, list[str]], dict[int, str]]:
    """Build each figure: ``({N: paths written}, {N: why it is missing})``."""
    built: dict[int, list[str]] = {}
    missing: dict[int, str] = {}
    for n in numbers:
        try:
            built[n] = [str(p) for p in _plot(n, runs, runs_dir, curves_csv, out / f"figure{n}")]
        except MissingDataError as exc:
            hint = (f" (runs: python -m deepnets.suite {SUITE_FIGURE.get(n, n)})"
                    if n in RUN_FIGURES else "")
            missing[n] = f"{exc}{hint}"
    return built, missing


@command_line("python -m figures")
def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0: something built, 1: nothing could be)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        numbers = figure_numbers(args.figures, KNOWN)
    except ValueError as exc:
        parser.error(str(exc))
    runs_dir, curves_csv = _inputs(parser, args)
    require_writable(parser, "--out", args.out)
    require_no_folder_at(parser, "--out", args.out,
                         [f"figure{n}{suffix}" for n in numbers for suffix in OUTPUT_SUFFIXES])
    runs = _read_runs(runs_dir, numbers)
    built, missing = _build(numbers, runs, runs_dir, curves_csv, args.out)
    for n, paths in built.items():
        print(f"figure {n}: {', '.join(paths)}")
    for n, reason in missing.items():
        print(f"figure {n}: missing -- {reason}")
    print(f"{len(built)} built, {len(missing)} missing (runs: {runs_dir}, out: {args.out})")
    if args.json:
        print(json.dumps({"built": built, "missing": missing}))
    if not built:
        print(f"{parser.prog}: error: none of figures {numbers} could be built (see above)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
