"""Issue 18's paired check: is bf16 as good as fp32 for learning?

``python -m figures bf16-paired --runs DIR --out DIR`` reads the run folders under ``--runs``
(``results/bf16-paired/run.sh`` writes ``<rule>-<precision>-s<seed>/``; the runs are told apart
by their ``config.json``'s ``precision``, never by their names), pairs each bf16 run with the fp32
run of its rule and seed (:mod:`figures.paired`) and writes ``bf16-paired.md`` (the verdict
sentence, the close test of the errors at both endpoints, each layer's curves) and
``bf16-paired.png/.pdf`` (with the ``.txt`` sidecar naming every run drawn): validation error, corr(W, Rᵗ) (Figures 10-11's measure) and the probe's
angles per layer, fp32 solid and bf16 dashed, the mean over seeds with a min-max band.

The verdict is the rule's close test (margin 0.05, ``docs/results.md``) of bf16's error against
fp32's, per rule; bf16 is as good as fp32 when it supports for every rule. Runs still training
are compared at the epochs every pair reached, and the text says how far that is from the
check's plan (URFB and FRFB x 3 seeds x 100 epochs).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from matplotlib import colormaps
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from deepnets import PROTOCOLS
from figures.angles import epoch_series
from figures.caption import write_sidecar
from figures.paired import (
    ANGLE_KEYS,
    LayerRow,
    RuleComparison,
    by_setting,
    close_table,
    compare_families,
    corr_series,
    layers_table,
    unpaired_note,
)
from figures.runs import (
    MissingDataError,
    Run,
    Seeds,
    choice_notes,
    find_runs,
    readable_scores,
)
from figures.stats import CLOSE_MARGIN, SUPPORTS, every
from figures.style import legend, method_color, new_figure, plot_seeds, save_figure
from urfb_common import (
    OneLineParser,
    atomic_write_text,
    command_line,
    path_arg,
    require_existing,
    require_no_folder_at,
    require_writable,
)

__all__ = ["PLAN_EPOCHS", "PLAN_RULES", "PLAN_SEEDS", "bf16_comparisons", "build_parser",
           "main", "markdown", "plot_bf16_paired", "precision", "verdict_sentence"]

PROG = "python -m figures bf16-paired"
#: The check issue 18 asks for: simpnet URFB and FRFB x 3 seeds x at least 100 epochs.
PLAN_RULES, PLAN_SEEDS, PLAN_EPOCHS = ("urfb", "frfb"), 3, 100
#: The stem of the files written into ``--out``.
STEM = "bf16-paired"
PRECISION_STYLES = {"fp32": "-", "bf16": "--"}
CURVE_LABELS = {"corr": "corr(W, R$^t$)", "delta_angle": "delta_angle (°)",
                "local_delta_angle": "local_delta_angle (°)"}


def precision(run: Run) -> str:
    """The run's precision (``config.json``; runs written before the key existed were fp32)."""
    return str(run.config.get("precision") or "fp32")


def bf16_comparisons(runs: Sequence[Run]) -> tuple[list[RuleComparison], list[str]]:
    """bf16 against fp32 (d = bf16 - fp32), per rule, and notes on what was left out;
    :class:`MissingDataError` when either precision has no run."""
    families = by_setting(runs, precision)
    for name in ("fp32", "bf16"):
        if not families.get(name):
            raise MissingDataError(f"no {name} run with a logged epoch (found: "
                                   f"{', '.join(sorted(families)) or 'no runs'})")
    comparisons, notes = compare_families(families["bf16"], families["fp32"], "bf16 check",
                                         ("bf16", "fp32"))
    if not comparisons:
        raise MissingDataError("no rule has both an fp32 and a bf16 run of one seed: "
                               + "; ".join(notes))
    notes += [n for c in comparisons if (n := unpaired_note(c, "bf16", "fp32"))]
    notes += [f"{name}: {n}" for name in ("bf16", "fp32") for n in choice_notes(families[name])]
    for c in comparisons:
        other = {k: v for k, v in c.settings.items() if k != "precision"}
        if other:
            notes.append(f"{c.title}: the paired runs also differ in "
                         + ", ".join(f"{k} ({v[0]} vs {v[1]})" for k, v in other.items()))
    return comparisons, notes


def _shortfall(comparisons: Sequence[RuleComparison]) -> list[str]:
    have = {c.protocol for c in comparisons}
    out = [f"no {PROTOCOLS[p].label} pair" for p in PLAN_RULES if p not in have]
    out += [f"{c.title} {c.a.n} paired seed{'s' if c.a.n != 1 else ''}" for c in comparisons
            if c.a.n < PLAN_SEEDS]
    out += [f"{c.title} at epoch {c.epochs[-1]}" for c in comparisons if c.epochs[-1] < PLAN_EPOCHS]
    return out


def _largest(layers: Sequence[LayerRow], quantity: str) -> LayerRow | None:
    rows = [x for x in layers if x.quantity == quantity]
    return max(rows, key=lambda x: abs(x.row.cmp.mean), default=None)


def verdict_sentence(comparisons: Sequence[RuleComparison]) -> str:
    """The check's verdict in words: holds for every rule, or where it fails (which rule, and
    the layer whose correlation and angle differ most between bf16 and fp32)."""
    overall = every(c.close.verdict for c in comparisons)
    fragile = [c.title for c in comparisons if c.close.fragile]
    per_rule = "; ".join(f"{c.title} {c.close.verdict}, d = bf16 − fp32 = "
                         f"{c.close.cmp.summary.compact(signed=True)} at {c.budget}"
                         for c in comparisons)
    if overall == SUPPORTS:
        text = (f"bf16 is as good as fp32 for learning at this budget: its error is within "
                f"{CLOSE_MARGIN:g} of fp32's by the verdict rule's close test for every rule "
                f"({per_rule})")
    else:
        failing = [c for c in comparisons if c.close.verdict != SUPPORTS]
        where = []
        for c in failing:
            parts = []
            for quantity in ("corr(W, Rᵗ)", "delta_angle"):
                x = _largest(c.layers, quantity)
                if x is not None:
                    parts.append(f"{quantity} differs most in {x.layer} (d = "
                                 f"{x.row.cmp.summary.compact(x.row.digits, signed=True)}, "
                                 f"directional test: {x.row.verdict})")
            where.append(f"{c.title}" + (f": {'; '.join(parts)}" if parts else ""))
        text = (f"bf16 is not shown to be as good as fp32: the close test (m = {CLOSE_MARGIN:g}) "
                f"is {overall} ({per_rule}); where it does not support: " + " | ".join(where))
    if fragile:
        text += f"; fragile (the two endpoints disagree) for {', '.join(fragile)}"
    short = _shortfall(comparisons)
    if short:
        text += (f". Incomplete against the plan ({' and '.join(PROTOCOLS[p].label for p in PLAN_RULES)}"
                 f" × {PLAN_SEEDS} seeds × {PLAN_EPOCHS} epochs): {', '.join(short)}; the verdict "
                 "holds only for the budget it states")
    return text + "."


def markdown(comparisons: Sequence[RuleComparison], notes: Sequence[str], *,
             title: bool = True) -> str:
    """The report: (a title,) the verdict sentence, the errors' close test, each layer's
    curves, notes."""
    errors = ("Validation error (test error where every run was scored on the test split), "
              f"the verdict rule's close test, margin {CLOSE_MARGIN:g}:")
    layers = ("Each layer's curves over the same epochs (the mean of the window; not part of "
              "the verdict, they locate a difference):")
    text = ["# bf16 against fp32, paired by seed (issue 18)", ""] if title else []
    text += [verdict_sentence(comparisons), "", errors, "",
             close_table(comparisons, "bf16", "fp32"), "", layers, "",
             layers_table([(c.title, c) for c in comparisons], "bf16", "fp32")]
    if notes:
        text += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(text) + "\n"


def _curves(g: Seeds, quantity: str) -> list[tuple[str, dict[int, dict[int, float]]]]:
    names = g.layer_names()
    if quantity == "corr":
        return [(n, corr_series(g, i)) for i, n in enumerate(names)]
    return [(n, s) for n in names if any((s := epoch_series(g, n, quantity)).values())]


def plot_bf16_paired(comparisons: Sequence[RuleComparison], out_stem: str | Path) -> list[Path]:
    """One row per rule: validation error, corr(W, Rᵗ) per layer and the probe's angles per
    layer (columns), fp32 solid and bf16 dashed, mean over the paired seeds with a min-max band."""
    quantities = ["corr"] + [k for k in ANGLE_KEYS
                             if any(_curves(c.a, k) for c in comparisons)]
    fig, axes = new_figure(len(comparisons), 1 + len(quantities), width=3.0 * (1 + len(quantities)))
    cmap = colormaps["plasma"]
    for row, c in zip(axes, comparisons):
        groups = {"bf16": c.a, "fp32": c.b}
        ax = row[0]
        for name, g in groups.items():
            plot_seeds(ax, g.series("val_error"), color=method_color(c.protocol),
                       linestyle=PRECISION_STYLES[name], label=name)
        ax.set(xlabel="epoch", ylabel="validation error", title=c.title)
        legend(ax)
        names = c.a.layer_names()
        colors = {n: cmap(0.85 * i / max(len(names) - 1, 1)) for i, n in enumerate(names)}
        for ax, quantity in zip(row[1:], quantities):
            for name, g in groups.items():
                for layer, series in _curves(g, quantity):
                    plot_seeds(ax, series, color=colors[layer], linestyle=PRECISION_STYLES[name],
                               label=layer if name == "fp32" else None)
            ax.set(xlabel="epoch", ylabel=CURVE_LABELS[quantity], title=f"{c.label}: {quantity}")
            handles = [Line2D([], [], color="k", linestyle=s, label=p)
                       for p, s in PRECISION_STYLES.items()]
            legend(ax, handles=ax.get_legend_handles_labels()[0] + handles, fontsize=6)
        for ax in row:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    paths = save_figure(fig, out_stem)
    caption = ("Not in the paper: the speed issue's paired check. Per rule, validation error, "
               "corr(W, Rᵗ) per layer and the alignment probe's angles per layer (delta_angle: "
               "Lillicrap et al.'s global comparison; local_delta_angle: Akrout et al.'s), fp32 "
               "solid and bf16 dashed.")
    groups = [g for c in comparisons for g in (c.b, c.a)]
    return [*paths, write_sidecar(out_stem, "bf16 against fp32", caption, groups)]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=path_arg, required=True,
                        help="folder holding the fp32 and bf16 run folders, at any depth (read only)")
    parser.add_argument("--out", type=path_arg, required=True,
                        help=f"output folder for {STEM}.md, {STEM}.png, {STEM}.pdf and the "
                             f"figure's sidecar {STEM}.txt")
    return parser


@command_line(PROG)
def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m figures bf16-paired``: 0 when the report was written."""
    parser = build_parser()
    args = parser.parse_args(argv)
    require_existing(parser, "--runs", args.runs)
    require_writable(parser, "--out", args.out)
    require_no_folder_at(parser, "--out", args.out,
                         [f"{STEM}{suffix}" for suffix in (".md", ".png", ".pdf", ".txt")])
    try:
        comparisons, notes = bf16_comparisons(readable_scores(find_runs(args.runs)))
    except MissingDataError as exc:
        parser.error(f"--runs {args.runs}: {exc}")
    text = markdown(comparisons, notes)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / f"{STEM}.md", text)
    paths = [args.out / f"{STEM}.md", *plot_bf16_paired(comparisons, args.out / STEM)]
    print(text)
    print("written: " + ", ".join(map(str, paths)))
    return 0
