"""``python -m deepnets.rulebench``: the feedback-rule benchmark (docs/rules.md).

``run``: one grid of rules x models (:mod:`deepnets.experiments.rulebench`), trained as the
suite's grids are (:mod:`deepnets.experiments.runs`: each run a
:class:`deepnets.training.config.TrainConfig` trained by :func:`deepnets.training.trainer.run`;
finished runs are skipped, interrupted ones resumed, a run-time estimate is printed first):

* rules: every rule of the registry :data:`deepnets.rules.RULES`, each by its protocol of the
  same name (BP with softmax, the paper's BP; the others with the hinge loss and their default
  parameters, :data:`deepnets.experiments.protocols.PROTOCOLS`); ``--rules`` picks protocols
  (bp-h, ...);
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
import sys

from deepnets.experiments.grid import RunSpec, SuiteError
from deepnets.experiments.protocols import PROTOCOLS
from deepnets.experiments.rulebench import MODELS, PROG, RULE_GRID, TableError, grid, tables
from deepnets.experiments.runs import Settings, dataset_sizes, estimate, hms, run_all, run_state
from deepnets.nn.checks import LR_MAX
from deepnets.training.config import ConfigError
from deepnets.training.data import DataError
from deepnets.training.rundir import RunError
from deepnets.training.trainer import resolve_device
from urfb_common import (
    OneLineParser,
    command_line,
    path_arg,
    report_error,
    require_existing,
    require_writable,
)


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
    for subparser in (r, t):
        subparser.set_defaults(subparser=subparser)
    return p


def _check_numbers(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """``parser.error`` (``run``'s own parser: one line, exit 2) on a size, seed or step out of
    range."""
    for flag in ("epochs", "train_size", "batch_size", "val_size", "probe_size", "estimate_steps"):
        minimum = 1 if flag in ("epochs", "train_size", "batch_size") else 0
        if getattr(args, flag) < minimum:
            parser.error(f"argument --{flag.replace('_', '-')}: must be >= {minimum}")
    for flag in ("seeds", "resnet_seeds"):
        if any(not 0 <= seed < 2**63 for seed in getattr(args, flag)):
            parser.error(f"argument --{flag.replace('_', '-')}: each seed must be in 0..2**63-1")
    if not (math.isfinite(args.lr) and 0 < args.lr <= LR_MAX):
        parser.error(f"argument --lr: must be > 0 and at most {LR_MAX:g}")


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    _check_numbers(args, parser)
    require_writable(parser, "--out", args.out)
    try:
        device = resolve_device(args.device)
    except ConfigError as exc:
        parser.error(f"argument {exc}")
    specs = grid(args.rules, args.epochs, args.seeds, args.resnet_seeds, args.models)
    s = Settings({"cifar10": args.data_dir}, args.data, args.batch_size, args.lr,
                 args.val_size, args.train_size, device, args.dataset_label, args.quiet,
                 0, args.probe_size, update_order=args.update_order, bias=args.bias)
    existed = args.out.exists()
    try:
        return _plan_and_run(args, specs, s)
    except (SuiteError, RunError, ConfigError, DataError) as exc:
        report_error(PROG, exc)
        return 2
    finally:  # a grid that trained nothing leaves no empty --out behind (as the suite's)
        if not existed and args.out.is_dir() and not any(args.out.iterdir()):
            args.out.rmdir()


def _plan_and_run(args: argparse.Namespace, specs: list[RunSpec], s: Settings) -> int:
    """List the runs with their state and time estimate, then train what is left. The data is
    read first when it will be used (to train, or to time the estimate's steps): a missing
    ``--data-dir`` or a ``--train-size`` it cannot give is one line before anything is listed
    or made; a dry run without an estimate does not read it (as the suite's)."""
    states = [(sp, *run_state(sp, args.out, s)) for sp in specs]
    todo = [(sp, done) for sp, state, done in states if state != "done"]
    reads_data = bool(todo) and (args.estimate_steps > 0 or not args.dry_run)
    sizes = dataset_sizes({"cifar10"}, s) if reads_data else {}
    print(f"{len(specs)} runs in {args.out} ({args.epochs} epochs, batch {s.batch_size}, "
          f"lr {s.lr}, train size {s.train_size}, val {s.val_size}, device {s.device}):")
    per_run: dict[str, float] = {}
    if sizes and args.estimate_steps:
        total, per_run = estimate(todo, sizes, s, args.estimate_steps)
        print(f"estimated time for the {len(todo)} runs left: {hms(total)} "
              "(training and validation; the alignment probe comes on top)")
    for sp, state, done in states:
        eta = f", ~{hms(per_run[sp.name])}" if sp.name in per_run else ""
        print(f"  {sp.name}: {state}{f' after epoch {done}' if state == 'resume' else ''}{eta}")
    if args.dry_run:
        return 0
    return run_all(todo, args.out, s, prog=PROG)


@command_line(PROG)
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    parser = args.subparser  # a subcommand's errors name it: "python -m deepnets.rulebench run"
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
