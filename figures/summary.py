"""``python -m figures.summary --runs runs/``: the numbers behind Section 4's six claims, as Markdown.

Prints (for ``docs/results.md``) one table of final errors per run, with the validation error at
the first, middle and last epoch (claims 2 and 6: speed of convergence) and the test error of the
validation-chosen epoch where the run was scored (``test.json``), and one table of the
W-R^t correlation of each layer at the first and last epoch (claim 5, Figures 10-11).
"""

from __future__ import annotations

import sys
from pathlib import Path

from deepnets.experiments.protocols import PROTOCOLS
from deepnets.rules import RULES
from figures.runs import Run, find_runs, readable_scores, train_size
from urfb_common import OneLineParser, command_line, path_arg, require_existing


def _label(run: Run) -> str:
    """The protocol's label in the paper's spelling, else the config's method."""
    return PROTOCOLS[run.protocol].label if run.protocol else str(run.config.get("method"))


def _val_at(run: Run, fraction: float) -> str:
    rows = [r for r in run.log if r.get("val_error") is not None]
    if not rows:
        return "-"
    return f"{rows[max(0, round(fraction * len(rows)) - 1)]['val_error']:.4f}"


def _test(r: Run) -> str:
    """The test error of the validation-chosen epoch's weights, from the run's ``test.json``."""
    best = (r.test_result() or {}).get("best")
    return f"{best['error']:.4f} (ep. {best['epoch']})" if best else "not scored"


def error_table(runs: list[Run]) -> str:
    """Markdown table: per run its scale, final / intermediate errors and its test error."""
    lines = [("| run | arch | protocol | layers | classes | epochs | train images | final train error "
              "| final val error | val error ep. 1 / mid / last | best val error (epoch) "
              "| test error at the validation-chosen epoch |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        vals = [(row["val_error"], row["epoch"]) for row in r.log if row.get("val_error") is not None]
        best = f"{min(vals)[0]:.4f} ({min(vals)[1]})" if vals else "-"
        kind = ("untied" if r.untied else "tied") + (f", frozen {list(r.frozen)}" if r.frozen else "")
        final_val = f"{r.final('val_error'):.4f}" if r.log[-1].get("val_error") is not None else "-"
        lines.append(
            f"| {r.name} | {r.arch} | {_label(r)} | {kind} | {r.n_classes} "
            f"| {r.epochs_done}/{r.config.get('epochs')} | {train_size(r)} "
            f"| {r.final('train_error'):.4f} | {final_val} "
            f"| {_val_at(r, 1 / len(r.log))} / {_val_at(r, 0.5)} / {_val_at(r, 1.0)} | {best} "
            f"| {_test(r)} |")
    return "\n".join(lines)


def correlation_table(runs: list[Run]) -> str:
    """Markdown table: for each URFB / FRFB run, corr(W_l, R_l^t) per layer at the first and last epoch."""
    lines = ["| run | protocol | corr per layer (input->output), epoch 1 | last epoch | max over epochs |",
             "|---|---|---|---|---|"]
    for r in runs:
        rows = [row for row in r.log if row.get("corr")]
        rule = RULES.get(r.config.get("method"))
        if rule is None or rule.error_path != "R" or not rows:  # no R: bp, direct feedback
            continue
        n = len(rows[0]["corr"])
        peak = [max(row["corr"][i] for row in rows) for i in range(n)]
        lines.append(f"| {r.name} | {_label(r)} | {_fmt(rows[0]['corr'])} (ep. {rows[0]['epoch']}) "
                     f"| {_fmt(rows[-1]['corr'])} (ep. {rows[-1]['epoch']}) | {_fmt(peak)} |")
    return "\n".join(lines)


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{c:.3f}" for c in values)


def summarize(runs_dir: str | Path) -> str:
    """Both tables for every run under ``runs_dir``, with its dataset copy(ies)."""
    runs = readable_scores(find_runs(runs_dir))
    if not runs:
        return f"no runs under {runs_dir}"
    data = sorted({str(r.config.get("dataset_label") or r.config.get("data")) for r in runs})
    return "\n\n".join([f"Runs under `{runs_dir}`; data: {', '.join(data)}.",
                        "### Error rates", error_table(runs),
                        "### Weight alignment", correlation_table(runs)])


@command_line("python -m figures.summary")
def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m figures.summary", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=path_arg, default=Path("runs"), help="folder of run folders (default runs/)")
    args = parser.parse_args(argv)
    require_existing(parser, "--runs", args.runs)
    print(summarize(args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
