"""``python -m deepnets.rulebench``: the feedback-rule benchmark (docs/rules.md).

``run``: one grid of rules x models, trained through the suite's machinery (each run a
:class:`deepnets.training.config.TrainConfig` trained by :func:`deepnets.training.trainer.run`; finished runs are
skipped, interrupted ones resumed, a run-time estimate is printed first):

* rules: every rule of the registry :data:`deepnets.rules.RULES`, each by its protocol of the
  same name (BP with softmax, the paper's BP; the others with the hinge loss and their default
  parameters, :data:`deepnets.experiments.protocols.PROTOCOLS`); ``--rules`` picks protocols (bp-h, ...);
* models: ``simpnet`` (Section 4's architecture string) and ``resnet-mini`` (a plain torch
  ResNet-style model trained through :func:`deepnets.convert`, :mod:`deepnets.nn.models`);
* seeds: ``--seeds`` for simpnet, ``--resnet-seeds`` for resnet-mini.

Run folders: ``<model>-cifar10-<rule>-s<seed>`` under ``--out``.

``table RUNS``: the markdown tables of docs/rules.md from the run folders' ``config.json`` and
``log.jsonl``: final validation error (mean +- sd over seeds, and each seed), the W-R^t
correlation per layer and the alignment probe's angles (mean over layers, and per layer).
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepnets import suite
from deepnets.experiments.protocols import PROTOCOLS
from deepnets.nn.checks import LR_MAX
from deepnets.rules import RULES
from deepnets.training.config import ConfigError
from deepnets.training.data import DataError
from deepnets.training.rundir import CONFIG, RunError, read_config, read_log
from urfb_common import (
    OneLineParser,
    command_line,
    path_arg,
    report_error,
    require_existing,
    require_writable,
)

PROG = "python -m deepnets.rulebench"
#: The default grid: the protocol of every rule of the registry.
RULE_GRID = tuple(RULES)
MODELS = ("simpnet", "resnet-mini")


def grid(rules: Sequence[str], epochs: int, seeds: Sequence[int],
         resnet_seeds: Sequence[int], models: Sequence[str] = MODELS) -> list[suite.RunSpec]:
    """The runs: every model x rule, simpnet for each of ``seeds``, resnet-mini for each of
    ``resnet_seeds``; seed-major (every model and rule of the first seed first), so that a grid
    cut short has one complete seed."""
    out = []
    for seed in dict.fromkeys([*seeds, *resnet_seeds]):
        for model in models:
            if seed not in (seeds if model == "simpnet" else resnet_seeds):
                continue
            for rule in rules:
                spec = suite.RunSpec(f"{model}-cifar10-{rule}", model, rule, "cifar10", epochs)
                out.append(spec.with_seed(seed))
    return out


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train (or resume) the grid")
    r.add_argument("--data-dir", type=path_arg, required=True,
                   help="CIFAR-10: python-version archive/folder, or with --data imagefolder a .zip")
    r.add_argument("--data", choices=("cifar10", "imagefolder"), default="cifar10",
                   help="format of --data-dir (default cifar10)")
    r.add_argument("--dataset-label", help="e.g. 'CIFAR-10 (JPEG re-encoding)'")
    r.add_argument("--out", type=path_arg, required=True, help="folder of run folders")
    r.add_argument("--rules", nargs="+", choices=tuple(PROTOCOLS), default=list(RULE_GRID),
                   help=f"protocols to run (default: {' '.join(RULE_GRID)})")
    r.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                   help=f"models to train (default: {' '.join(MODELS)})")
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="simpnet seeds")
    r.add_argument("--resnet-seeds", type=int, nargs="+", default=[0], help="resnet-mini seeds")
    r.add_argument("--epochs", type=int, default=5, help="epochs per run (default 5)")
    r.add_argument("--train-size", type=int, default=10000,
                   help="training images of each run (default 10000)")
    r.add_argument("--val-size", type=int, default=5000,
                   help="images held out for validation (default 5000; 0: none, the tables "
                   "then show no validation error)")
    r.add_argument("--batch-size", type=int, default=500, help="SGD batch size (default 500)")
    r.add_argument("--lr", type=float, default=0.1, help="SGD step (default 0.1)")
    r.add_argument("--probe-size", type=int, default=500,
                   help="validation images of the alignment probe logged every epoch; 0: none "
                   "(default 500)")
    r.add_argument("--update-order", choices=("sequential", "simultaneous"), default="sequential",
                   help="sequential (Remark 1, the paper's; default) or simultaneous (the order "
                   "of the runs in docs/rules.md, made before the paper's protocol was the default)")
    r.add_argument("--bias", action="store_true",
                   help="biases on simpnet's layers (as the runs in docs/rules.md had; default: "
                   "none, as eq. (1)); resnet-mini keeps its own either way")
    r.add_argument("--device", default="auto",
                   help="torch device: cpu, cuda, cuda:1 or auto (cuda when available; default)")
    r.add_argument("--estimate-steps", type=int, default=2, help="0 skips the estimate")
    r.add_argument("--dry-run", action="store_true", help="list the runs and the estimate only")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    t = sub.add_parser("table", help="print docs/rules.md's tables from the run folders")
    t.add_argument("runs", type=path_arg, metavar="RUNS", help="the --out folder of 'run'")
    return p


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    for flag in ("epochs", "train_size", "batch_size", "val_size", "probe_size", "estimate_steps"):
        minimum = 1 if flag in ("epochs", "train_size", "batch_size") else 0
        if getattr(args, flag) < minimum:
            parser.error(f"argument --{flag.replace('_', '-')}: must be >= {minimum}")
    for flag in ("seeds", "resnet_seeds"):
        if any(not 0 <= seed < 2**63 for seed in getattr(args, flag)):
            parser.error(f"argument --{flag.replace('_', '-')}: each seed must be in 0..2**63-1")
    if not (math.isfinite(args.lr) and 0 < args.lr <= LR_MAX):
        parser.error(f"argument --lr: must be > 0 and at most {LR_MAX:g}")
    require_writable(parser, "--out", args.out)
    try:
        device = suite.resolve_device(args.device)
    except ConfigError as exc:
        parser.error(f"argument {exc}")
    specs = grid(args.rules, args.epochs, args.seeds, args.resnet_seeds, args.models)
    s = suite.Settings({"cifar10": args.data_dir}, args.data, args.batch_size, args.lr,
                       args.val_size, args.train_size, device, args.dataset_label, args.quiet,
                       0, args.probe_size, update_order=args.update_order, bias=args.bias)
    try:
        states = [(sp, *suite.run_state(sp, args.out, s)) for sp in specs]
        todo = [(sp, done) for sp, state, done in states if state != "done"]
        print(f"{len(specs)} runs in {args.out} ({args.epochs} epochs, batch {s.batch_size}, "
              f"lr {s.lr}, train size {s.train_size}, val {s.val_size}, device {device}):")
        per_run: dict[str, float] = {}
        if todo and args.estimate_steps:
            sizes = suite.dataset_sizes({"cifar10"}, s)
            total, per_run = suite.estimate(todo, sizes, s, args.estimate_steps)
            print(f"estimated time for the {len(todo)} runs left: {suite._hms(total)} "
                  "(training and validation; the alignment probe comes on top)")
        for sp, state, done in states:
            eta = f", ~{suite._hms(per_run[sp.name])}" if sp.name in per_run else ""
            print(f"  {sp.name}: {state}{f' after epoch {done}' if state == 'resume' else ''}{eta}")
        if args.dry_run:
            return 0
        return suite._run_all(todo, args.out, s, prog=PROG)
    except (suite.SuiteError, RunError, ConfigError, DataError) as exc:
        report_error(PROG, exc)
        return 2


# ------------------------------------------------------------------ the tables


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def _fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _angles(record: dict[str, Any], key: str, skip_output: bool = False) -> list[float]:
    probe = record.get("alignment") or {}
    items = list(probe.items())[:-1] if skip_output else list(probe.items())
    return [float(m[key]) for _, m in items if m.get(key) is not None]


#: A run folder of :func:`grid`: ``<model>-cifar10-<rule>-s<seed>``.
RUN_NAME = re.compile(r"(?P<model>.+)-cifar10-(?P<protocol>.+)-s(?P<seed>\d+)")


class TableError(ValueError):
    """A folder that holds no run the tables can show; the message says why."""


def collect(runs: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(model, protocol) -> per seed: config, final record, epochs. Folders that are not run
    folders of :func:`grid` are left out with a note on stderr."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for folder in sorted(p for p in runs.iterdir() if (p / CONFIG).is_file()):
        match = RUN_NAME.fullmatch(folder.name)
        if match is None:
            print(f"{PROG}: note: {folder} left out: not named <model>-cifar10-<rule>-s<seed>",
                  file=sys.stderr)
            continue
        cfg, log = read_config(folder), read_log(folder)
        if not log:
            continue
        out.setdefault((match["model"], match["protocol"]), []).append(
            {"seed": cfg.get("seed"), "config": cfg, "final": log[-1], "epochs": len(log),
             "done": len(log) == cfg.get("epochs"), "log": log})
    for v in out.values():
        v.sort(key=lambda r: int(r["seed"] or 0))
    if not out:
        raise TableError(f"{runs} holds no run with a finished epoch "
                         "(python -m deepnets.rulebench run --out DIR trains them)")
    return out


def tables(runs: Path) -> str:
    data = collect(runs)
    lines: list[str] = []
    order = [p for p in (*RULE_GRID, *PROTOCOLS) if p in {k[1] for k in data}]
    order = list(dict.fromkeys(order))
    for model in MODELS:
        keys = [(model, p) for p in order if (model, p) in data]
        if not keys:
            continue
        any_run = data[keys[0]][0]
        names = any_run["config"].get("weight_layer_names") or []
        header = ("| rule | final val error (mean ± sd) | per seed | final train error | "
                  "W–Rᵗ corr (per layer) | Δ angle ° (mean over layers) | ΔW angle ° (mean) "
                  "| W–Rᵗ angle ° (mean) |")
        lines += [f"### {model}", "", header, "|---|---|---|---|---|---|---|---|"]
        for key in keys:
            rows = data[key]
            label = PROTOCOLS[key[1]].label if key[1] in PROTOCOLS else key[1]
            val = [r["final"]["val_error"] for r in rows if r["final"].get("val_error") is not None]
            train = [r["final"]["train_error"] for r in rows]
            seeds = ", ".join(f"s{r['seed']}: {_fmt(r['final'].get('val_error'), 3)}"
                              + ("" if r["done"] else f" (epoch {r['epochs']})") for r in rows)
            corr_layers = list(zip(*[r["final"].get("corr") or [] for r in rows]))
            corr = " / ".join(
                "-" if any(c is None for c in col) else f"{statistics.mean(col):.2f}"
                for col in corr_layers)
            angle = {k: [statistics.mean(a) for r in rows if (a := _angles(r["final"], k))]
                     for k in ("delta_angle", "update_angle", "weight_angle")}
            lines.append(f"| {label} | {_mean_sd(val)} | {seeds} | {_mean_sd(train)} | {corr} | "
                         + " | ".join(_fmt(statistics.mean(v)) if v else "-"
                                      for v in angle.values()) + " |")
        lines += ["", f"Layers: {', '.join(names)}.", ""]
        lines += [(f"Per-layer angles (°, final epoch, mean over seeds) for {model}: Δ angle / "
                   "ΔW angle / W–Rᵗ angle"), "",
                  "| rule | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for key in keys:
            rows = data[key]
            label = PROTOCOLS[key[1]].label if key[1] in PROTOCOLS else key[1]
            cells = []
            for name in names:
                parts = []
                for k in ("delta_angle", "update_angle", "weight_angle"):
                    vals = [r["final"]["alignment"][name][k] for r in rows
                            if r["final"].get("alignment", {}).get(name, {}).get(k) is not None]
                    parts.append(_fmt(statistics.mean(vals), 0) if vals else "-")
                cells.append(" / ".join(parts))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


@command_line(PROG)
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "table":
        require_existing(parser, "RUNS", args.runs)
        try:
            print(tables(args.runs))
        except (RunError, TableError) as exc:
            report_error(PROG, exc)
            return 2 if isinstance(exc, RunError) else 1
        return 0
    return _run(args, parser)


if __name__ == "__main__":
    sys.exit(main())
