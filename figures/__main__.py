"""``python -m figures [all | 4 ... 12] --runs runs/ --out figures/out``: rebuild the paper's figures.

Builds every requested figure that has data (Figures 4-11 from training runs under ``--runs``,
Figure 12 from the ``curves.csv`` of ``python -m sims.epsilon_sweep``), writes PNG, PDF and a
``.txt`` sidecar stating the scale, lists the figures that lack data and why, and exits 0.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable
from pathlib import Path

from deepnets.runconfig import check_out_dir
from deepnets.suite import figure_numbers
from figures.alignment import plot_figure10, plot_figure11
from figures.errors import plot_figure4, plot_figure5, plot_figure6, plot_figure7, plot_figure9
from figures.filters import plot_figure8
from figures.runs import MissingDataError
from sims.fileio import atomic_write_text

FIG12_CAPTION = ("Top: comparison of log-error rates as a function of iteration for original BP and "
                 "for four different values of epsilon = 0, 0.25, .5, 1. Results for three runs of "
                 "the experiment. Last three rows, for each level of the network we show the "
                 "evolution of the correlation between the W and R^t weights, for each of the "
                 "values of epsilon.")

Plotter = Callable[[Path, Path], list[Path]]
#: Figures whose runs ``python -m deepnets.suite`` makes (Figure 12 comes from sims.epsilon_sweep).
SUITE_FIGURES = range(4, 12)


def plot_figure12(runs_dir: Path, out_stem: Path, curves_csv: Path | None = None) -> list[Path]:
    """Figure 12 (Section 5.1) from ``curves.csv``: the given file, else the first one under ``runs_dir``."""
    if curves_csv is None:
        found = sorted(runs_dir.rglob("curves.csv")) if runs_dir.is_dir() else []
        if not found:
            raise MissingDataError(f"no curves.csv under {runs_dir}: run `python -m sims.epsilon_sweep "
                                   f"--out {runs_dir / 'epsilon_sweep'}` or pass --curves-csv")
        curves_csv = found[0]
    elif not curves_csv.is_file():
        raise MissingDataError(f"--curves-csv {curves_csv} does not exist")
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


FIGURES: dict[int, Plotter] = {
    4: plot_figure4, 5: plot_figure5, 6: plot_figure6, 7: plot_figure7, 8: plot_figure8,
    9: plot_figure9, 10: plot_figure10, 11: plot_figure11, 12: plot_figure12,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m figures", description=__doc__.splitlines()[0])
    parser.add_argument("figures", nargs="*", metavar="FIGURE", default=["all"],
                        help="'all' (default) or figure numbers 4-12")
    parser.add_argument("--runs", type=Path, default=Path("runs"),
                        help="folder holding the training runs (any depth) and sims output (default runs/)")
    parser.add_argument("--out", type=Path, default=Path("figures/out"),
                        help="output folder for figureN.png/.pdf/.txt (default figures/out)")
    parser.add_argument("--curves-csv", type=Path, default=None,
                        help="Figure 12's curves.csv (default: the first found under --runs)")
    parser.add_argument("--json", action="store_true",
                        help="also print a JSON summary {built: {N: [paths]}, missing: {N: reason}}")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    numbers = figure_numbers(args.figures, list(FIGURES), parser)
    try:
        check_out_dir(args.out)
    except ValueError as exc:
        parser.error(f"argument {exc}")
    built: dict[int, list[str]] = {}
    missing: dict[int, str] = {}
    for n in numbers:
        stem = args.out / f"figure{n}"
        try:
            if n == 12:
                paths = plot_figure12(args.runs, stem, args.curves_csv)
            else:
                paths = FIGURES[n](args.runs, stem)
        except MissingDataError as exc:
            missing[n] = str(exc)
            continue
        built[n] = [str(p) for p in paths]
    for n, paths in built.items():
        print(f"figure {n}: {', '.join(paths)}")
    for n, reason in missing.items():
        hint = f" (runs: python -m deepnets.suite {n})" if n in SUITE_FIGURES else ""
        print(f"figure {n}: missing -- {reason}{hint}")
    print(f"{len(built)} built, {len(missing)} missing (runs: {args.runs}, out: {args.out})")
    if args.json:
        print(json.dumps({"built": built, "missing": missing}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
