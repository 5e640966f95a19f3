"""``python -m deepnets.suite FIGURE ...``: run the protocol grid behind Figures 4-11 (Section 4).

Grids (CIFAR-10 unless said; hinge loss for every protocol but ``bp``):

* 4: simpnet x {bp, bp-h, urfb, frfb, urfb-50, frfb-50};   5: the same on CIFAR-10 and CIFAR-100
* 6: deepnet and deepernet x the six protocols;            7: deepernet x the six protocols
* 8: simpnet untied, urfb;  10: simpnet x {urfb, frfb}
* 9: simpnet tied and untied x {bp, bp-h, urfb, frfb}, and deepnet_s with Section 4.1's protocol:
  train tied (``--pretrain-epochs``, paper 100 of 1000), freeze its first layer, retrain the
  rest from scratch, tied and untied;   11: deepnet_s as in 9 for {urfb, frfb}

Run folders (under ``--out``): ``<arch>-<dataset>-<protocol>[-untied]-s<seed>``, and for
deepnet_s ``deepnet_s-cifar10-<protocol>-pre-s<seed>`` (the tied pretraining) beside the
retrained ``deepnet_s-cifar10-<protocol>-s<seed>`` and ``...-untied-s<seed>``. ``--seeds 0 1 2``
repeats every run for each seed; a seed changes W, R, masks, data order and dropout, while the
held-out validation images (``--split-seed``) stay the same, so the runs of two protocols are
paired seed by seed. Paper scale is the default (1000 epochs, batch 500, step 0.1); ``--epochs``
and ``--train-size`` shrink it and every run records its scale in ``config.json``. Each run is a
:class:`deepnets.training.config.TrainConfig` trained by :func:`deepnets.training.trainer.run`;
finished runs are skipped, interrupted ones resumed, and a run-time estimate from a few timed SGD
steps is printed before the grid starts (one run after another; ``--jobs`` and ``--pack`` do not
shorten it). ``--pack N`` trains up to N runs at once in this process, a step of each in turn
(:mod:`deepnets.experiments.pack`: on a GPU each run's captured step on its own stream); a packed
run's folder is the single run's. Every run uses the paper's protocol -- the sequential update order
of Remark 1 and no biases -- unless ``--update-order simultaneous`` / ``--bias`` say otherwise
(a torch optimizer's runs take the simultaneous order); untied layers start as the author's code
starts them, one conv filter bank at every location (``--untied-init independent``: drawn
separately).

``--evaluate-test TEST`` then scores every finished run once on a test split -- the weights of
its epoch of lowest validation error, and its last weights -- CIFAR-10 runs on TEST's (format
``--data``), CIFAR-100 runs on their own archive's (``--cifar100-dir``); ``--evaluate-test``
without TEST scores CIFAR-10 runs on the test split of their own python-version archive too
(an image folder's test images are a TEST of their own). It writes the result to the run
folder's ``test.json`` (:mod:`deepnets.experiments.testresult`; never to
``log.jsonl``: the test split is not looked at during training). A run already scored at its current
epoch on the same test data is not scored again.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from deepnets.experiments import launch
from deepnets.experiments.grid import ALL, FIGURES, RunSpec, SuiteError, grids
from deepnets.experiments.protocols import PROTOCOLS
from deepnets.experiments.runs import (
    Settings,
    data_label,
    dataset_sizes,
    estimate,
    evaluate_test,
    hms,
    run_all,
    run_packed,
    run_state,
    train_config,
)
from deepnets.nn.layers import UNTIED_INITS
from deepnets.nn.models import MODELS
from deepnets.nn.policy import resolve_precision
from deepnets.rules import RULES
from deepnets.training.capture import CUDA_GRAPH_MODES
from deepnets.training.config import PRECISION_CHOICES, ConfigError
from deepnets.training.data import DataError
from deepnets.training.optim import add_optimizer_flags
from deepnets.training.rundir import RunError, claim_folder
from deepnets.training.stops import out_of_memory, sigterm_as_interrupt
from deepnets.training.trainer import resolve_device
from urfb_common import (
    OneLineParser,
    OutputPathError,
    check_out_dir,
    command_line,
    figure_numbers,
    path_arg,
    report_error,
)

PROG = "python -m deepnets.suite"
#: ``--evaluate-test`` without TEST: each run is scored on its own archive's test split (not
#: a string: argparse would pass a string ``const`` through ``type``).
OWN_TEST = object()


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("figures", nargs="+", metavar="FIGURE",
                   help=f"figure numbers whose grid to run ({', '.join(map(str, FIGURES))}) or 'all'")
    p.add_argument("--data-dir", type=path_arg, help="CIFAR-10: the python-version archive/folder, or "
                   "with --data imagefolder an image-folder tree or .zip")
    p.add_argument("--data", choices=("cifar10", "imagefolder"), default="cifar10",
                   help="format of --data-dir (default cifar10)")
    p.add_argument("--cifar100-dir", type=path_arg, help="CIFAR-100 python-version archive/folder "
                   "(needed by Figure 5's right half)")
    p.add_argument("--datasets", nargs="+", choices=("cifar10", "cifar100"),
                   help="run only the runs on these datasets (default: all the figures need)")
    p.add_argument("--archs", nargs="+", choices=("simpnet", "deepnet", "deepernet", "deepnet_s"),
                   help="run only the runs of these architectures")
    p.add_argument("--protocols", nargs="+", choices=ALL,
                   help="run only these protocols (default: the figure's own set)")
    p.add_argument("--out", type=path_arg, default=Path("runs"), help="folder of run folders (default runs/)")
    p.add_argument("--epochs", type=int, default=1000, help="epochs per run (paper: 1000)")
    p.add_argument("--pretrain-epochs", type=int, default=None,
                   help="deepnet_s tied pretraining epochs (default epochs/10; paper: 100)")
    p.add_argument("--train-size", "--train-subset", dest="train_size", type=int, default=None,
                   help="train on the first N images of the training split (default: all)")
    p.add_argument("--val-size", type=int, default=5000, help="images held out for validation (paper: 5000)")
    p.add_argument("--batch-size", type=int, default=500, help="SGD batch size (paper: 500)")
    p.add_argument("--lr", type=float, default=0.1, help="SGD step (paper: 0.1)")
    g = p.add_argument_group("optimizer of every run (default: the paper's plain SGD; a torch "
                             "optimizer's runs take the simultaneous update order)")
    add_optimizer_flags(g, defaults=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="SEED",
                   help="run every run once per seed (W, R, masks, data order, dropout); "
                   "default: 0")
    p.add_argument("--split-seed", type=int, default=0,
                   help="seed of the held-out validation images, shared by every seed (default 0)")
    p.add_argument("--update-order", choices=("sequential", "simultaneous"), default="sequential",
                   help="sequential: each layer's W and R are updated before its feedback goes "
                   "down (Remark 1 read literally; default); simultaneous: all from one backward "
                   "pass (the author's code of the paper's era in effect; docs/results.md)")
    p.add_argument("--bias", action="store_true",
                   help="give every weight layer a bias (default: none, as eq. (1))")
    p.add_argument("--no-sigma-prime-down", dest="sigma_prime_down", action="store_false",
                   help="hidden layers send the error down as R g, without their sigma' (the "
                   "author's code after April 2019); default: R delta, delta = sigma' g (eq. (2))")
    p.add_argument("--shared-masks", action="store_true",
                   help="the 50%% protocols (urfb-50, frfb-50) only: R's connectivity mask is W's "
                   "(default: drawn separately, as Section 4)")
    p.add_argument("--untied-init", choices=UNTIED_INITS, default="replicated",
                   help="how untied layers start: replicated, one conv filter bank at every "
                   "location (the author's code; default); independent, drawn separately at "
                   "each location")
    p.add_argument("--probe-size", type=int, default=500,
                   help="validation images of the alignment probe logged every epoch; 0: none")
    p.add_argument("--device", default="auto",
                   help="torch device: cpu, cuda, cuda:1 or auto (cuda when available; default)")
    p.add_argument("--precision", choices=PRECISION_CHOICES, default="fp32",
                   help="arithmetic of every run, recorded in its config.json (deepnets.train "
                   "--precision): fp32 (default), bf16, or auto (bf16 on a CPU with AMX tiles or "
                   "a CUDA device with bf16 tensor cores, fp32 elsewhere; a resumed run keeps "
                   "its own). The evidence runs of results/cifar10-paper/run.sh pass auto: bf16 "
                   "held issue 18's paired convergence check on the CPU (results/bf16-paired)")
    p.add_argument("--cuda-graph", choices=CUDA_GRAPH_MODES, default="auto",
                   help="on a GPU, replay each run's training step as a CUDA graph: auto (eager "
                   "if the capture fails; default), on, off")
    p.add_argument("--deterministic", action=argparse.BooleanOptionalAction,
                   help="every run with torch's deterministic algorithms, or (--no-...) without "
                   "(deepnets.train --deterministic; default: a run already in --out keeps its "
                   "own, a new run is without)")
    p.add_argument("--dataset-label", help="how results name the CIFAR-10 copy, e.g. "
                   "'CIFAR-10 (JPEG re-encoding)' (default: deepnets.train's)")
    p.add_argument("--evaluate-test", type=Path, metavar="TEST", nargs="?", const=OWN_TEST,
                   help="after training, score every finished run once on a test split: "
                   "CIFAR-10 runs on TEST's (format --data; e.g. the JPEG copy's test.zip; "
                   "without TEST, the --data-dir archive's own), CIFAR-100 runs on the "
                   "--cifar100-dir archive's; its validation-chosen and last weights, written to "
                   "the run's test.json")
    p.add_argument("--estimate-steps", type=int, default=3,
                   help="SGD steps timed per network for the run-time estimate; 0 skips it")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their state, train nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    g = p.add_argument_group("launching (README: 'Grids on a cluster or on many cores')")
    g.add_argument("--launcher", choices=launch.LAUNCHERS, default="local",
                   help="local: on this machine (default); slurm: one SLURM job per run through "
                   "submitit (pip install 'urfb[cluster]')")
    g.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="local: train N runs at once, each with cores/N threads (default 1)")
    g.add_argument("--pack", type=int, default=1, metavar="N",
                   help="train up to N runs at once in this one process on the one device, a "
                   "step of each in turn (deepnets.experiments.pack): on a GPU each run replays "
                   "its own CUDA graph on its own stream, so that the runs' kernels overlap; on "
                   "the CPU no faster than one by one (default 1: one run after another)")
    g.add_argument("--slurm-partition", metavar="NAME", help="partition of the jobs")
    g.add_argument("--slurm-time", type=int, metavar="MINUTES",
                   help="time limit of each job (required); a run stopped by it is requeued "
                   "and resumes from its last epoch")
    g.add_argument("--slurm-gpus-per-job", type=int, metavar="N", help="GPUs of each job")
    g.add_argument("--slurm-cpus-per-job", type=int, metavar="N",
                   help="CPU cores of each job (also its torch threads)")
    g.add_argument("--slurm-mem-gb", type=float, metavar="GB", help="memory of each job")
    g.add_argument("--slurm-folder", type=path_arg, metavar="DIR",
                   help="submitit's logs, pickles and jobs.json (default: <out>/slurm)")
    g.add_argument("--slurm-wait", action="store_true",
                   help="wait for the jobs and report them (default: submit and return)")
    return p


_SLURM_FLAGS = ("slurm_partition", "slurm_time", "slurm_gpus_per_job", "slurm_cpus_per_job",
                "slurm_mem_gb", "slurm_folder", "slurm_wait")


def _launcher(args: argparse.Namespace, parser: argparse.ArgumentParser) -> launch.Launcher:
    """The launcher of ``--launcher``/``--jobs``/``--slurm-*``, checked (one-line errors)."""
    if args.jobs < 1:
        parser.error("argument --jobs: must be >= 1")
    if args.pack < 1:
        parser.error("argument --pack: must be >= 1")
    if args.pack > 1 and (args.jobs != 1 or args.launcher != "local"):
        parser.error("argument --pack: packs runs in this one process; not with --jobs or "
                     "--launcher slurm")
    if args.launcher != "slurm":
        for flag in _SLURM_FLAGS:
            if getattr(args, flag) not in (None, False):
                parser.error(f"argument --{flag.replace('_', '-')}: needs --launcher slurm")
        return launch.Launcher("local", args.jobs)
    if args.jobs != 1:
        parser.error("argument --jobs: applies to --launcher local (on SLURM every run is a job)")
    if args.slurm_time is None:
        parser.error("argument --slurm-time: required with --launcher slurm (minutes per job)")
    for flag, minimum in (("slurm_time", 1), ("slurm_gpus_per_job", 0), ("slurm_cpus_per_job", 1)):
        if getattr(args, flag) is not None and getattr(args, flag) < minimum:
            parser.error(f"argument --{flag.replace('_', '-')}: must be >= {minimum}")
    if args.slurm_mem_gb is not None and not (args.slurm_mem_gb > 0 and math.isfinite(args.slurm_mem_gb)):
        parser.error("argument --slurm-mem-gb: must be > 0 and finite")
    if args.slurm_partition is not None and not args.slurm_partition.strip():
        parser.error("argument --slurm-partition: must not be empty")
    if not launch.have_submitit():
        parser.error("argument --launcher slurm: needs submitit; pip install 'urfb[cluster]' "
                     "(or pip install submitit)")
    folder = args.slurm_folder or args.out / "slurm"
    try:
        check_out_dir(folder, "--slurm-folder")
    except OutputPathError as exc:
        parser.error(f"argument {exc}")
    return launch.Launcher("slurm", 1, launch.SlurmOptions(
        folder, args.slurm_time, args.slurm_partition, args.slurm_gpus_per_job,
        args.slurm_cpus_per_job, args.slurm_mem_gb, args.slurm_wait))


def _check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    for flag in ("epochs", "batch_size", "estimate_steps", "val_size", "split_seed", "probe_size"):
        minimum = 0 if flag in ("estimate_steps", "val_size", "split_seed", "probe_size") else 1
        if getattr(args, flag) < minimum:
            parser.error(f"argument --{flag.replace('_', '-')}: must be >= {minimum}")
    if any(not 0 <= seed < 2**63 for seed in args.seeds):
        parser.error("argument --seeds: each seed must be in 0..2**63-1")
    for flag in ("train_size", "pretrain_epochs"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"argument --{flag.replace('_', '-')}: must be >= 1")
    if not (args.lr > 0 and math.isfinite(args.lr)):
        parser.error("argument --lr: must be > 0 and finite")
    if (args.evaluate_test is OWN_TEST and args.data == "imagefolder"
            and (args.datasets is None or "cifar10" in args.datasets)):
        parser.error("argument --evaluate-test: image-folder data needs its test split named: "
                     "--evaluate-test TEST (the CIFAR archives hold their own)")
    if args.evaluate_test not in (None, OWN_TEST) and not args.evaluate_test.exists():
        parser.error(f"argument --evaluate-test: {args.evaluate_test}: no such file or folder "
                     "(checked before training)")
    try:
        check_out_dir(args.out)
        if args.launcher == "slurm" and args.device != "auto":  # the jobs' nodes have the GPUs
            try:
                torch.device(args.device)
            except RuntimeError:
                raise ConfigError(f"--device {args.device!r} is not a torch device") from None
        elif args.launcher != "slurm":
            args.device = resolve_device(args.device)
            if args.cuda_graph == "on" and not args.device.startswith("cuda"):
                raise ConfigError(f"--cuda-graph on needs a CUDA device (--device is {args.device})")
    except (OutputPathError, ConfigError) as exc:
        parser.error(f"argument {exc}")


def _has_masked_feedback(spec: RunSpec) -> bool:
    """Whether the run's protocol masks its R (connectivity < 1, a rule with an R) in a network
    built from an architecture string: what ``--shared-masks`` needs."""
    protocol = PROTOCOLS[spec.protocol]
    return (protocol.connectivity < 1.0 and RULES[protocol.method].error_path == "R"
            and spec.arch not in MODELS)


def _figure_read_as_test(argv: Sequence[str]) -> str | None:
    """The figure a user put right after a bare ``--evaluate-test`` (``--evaluate-test 5``):
    argparse reads it as TEST, a path, and then misses FIGURE."""
    names = {*map(str, FIGURES), "all"}
    for flag, value in zip(argv, argv[1:]):
        if flag == "--evaluate-test" and value in names and not Path(value).exists():
            return value
    return None


@command_line(PROG)
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    figure = _figure_read_as_test(sys.argv[1:] if argv is None else argv)
    if figure is not None:
        parser.error(f"argument --evaluate-test: {figure!r} would be read as TEST, a path: put "
                     f"FIGURE first ({PROG} {figure} ... --evaluate-test) or name the test split")
    args = parser.parse_args(argv)
    _check(args, parser)
    launcher = _launcher(args, parser)
    try:
        figures = figure_numbers(args.figures, FIGURES)
    except ValueError as exc:
        parser.error(str(exc))
    pre = args.pretrain_epochs or max(1, args.epochs // 10)
    specs = [sp.with_seed(seed) for seed in dict.fromkeys(args.seeds)
             for sp in grids(figures, args.epochs, pre, args.protocols)
             if (args.datasets is None or sp.dataset in args.datasets)
             and (args.archs is None or sp.arch in args.archs)]
    if not specs:
        parser.error("the figures, --datasets, --archs and --protocols given select no run")
    unmasked = sorted({sp.protocol for sp in specs if not _has_masked_feedback(sp)})
    if args.shared_masks and unmasked:
        parser.error(f"argument --shared-masks: no masked R to share in {', '.join(unmasked)} "
                     "(select the 50% protocols: --protocols urfb-50 frfb-50)")
    dirs = {"cifar10": args.data_dir, "cifar100": args.cifar100_dir}
    for d in {sp.dataset for sp in specs}:
        if dirs[d] is None and not args.dry_run:
            flag = "--data-dir" if d == "cifar10" else "--cifar100-dir"
            parser.error(f"argument {flag}: required by the {d} runs "
                         f"(or leave them out with --datasets)")
    s = Settings({k: v for k, v in dirs.items() if v is not None}, args.data, args.batch_size,
                 args.lr, args.val_size, args.train_size, args.device, args.dataset_label,
                 args.quiet, args.split_seed, args.probe_size, args.cuda_graph,
                 args.deterministic, args.update_order, args.bias, args.untied_init,
                 sigma_prime_down=args.sigma_prime_down, shared_masks=args.shared_masks,
                 optimizer=args.optimizer, momentum=args.momentum, weight_decay=args.weight_decay,
                 lr_steps=tuple(args.lr_steps), lr_gamma=args.lr_gamma,
                 precision=args.precision)
    existed = args.out.exists()
    with sigterm_as_interrupt() as stop:  # SIGTERM stops the grid as Ctrl-C does
        try:
            # one suite at a time per --out (each run folder is claimed again by its training)
            with contextlib.nullcontext() if args.dry_run else claim_folder(args.out):
                status = _plan_and_run(args, specs, figures, s, launcher)
        except (SuiteError, RunError, ConfigError, DataError, launch.LaunchError) as exc:
            report_error(PROG, exc)
            return 2
        except (MemoryError, RuntimeError) as exc:
            report_error(PROG, out_of_memory(exc))
            return 2
        except KeyboardInterrupt:  # while listing the runs or timing the estimate
            print(f"{PROG}: interrupted before any run started",
                  file=sys.stderr)
            return stop.exit_status()
        finally:  # a grid that trained nothing leaves no empty --out behind
            if not existed and args.out.is_dir() and not any(args.out.iterdir()):
                args.out.rmdir()
    return stop.exit_status() if status == 130 else status


def _precision_text(s: Settings) -> str:
    """``fp32``, ``bf16``, or ``auto (bf16 here)``: what new runs compute in (a resumed run
    keeps its own)."""
    if s.precision != "auto":
        return s.precision
    return f"auto ({resolve_precision('auto', s.device)} here)" if s.device != "auto" else "auto"


def _plan_and_run(args: argparse.Namespace, specs: list[RunSpec], figures: Sequence[int],
                  s: Settings, launcher: launch.Launcher) -> int:
    """List the grid's runs with their state and time estimate, then train what is left."""
    train_config(specs[0], args.out, s)  # bad optimizer settings: one line, before any run
    states = [(sp, *run_state(sp, args.out, s)) for sp in specs]
    print(f"{len(specs)} runs in {args.out} (figures {', '.join(map(str, figures))}; "
          f"{args.epochs} epochs, batch {s.batch_size}, lr {s.lr}, "
          f"train size {s.train_size or 'all'}, val {s.val_size}, "
          f"seeds {' '.join(map(str, dict.fromkeys(args.seeds)))}, device {s.device}, "
          f"precision {_precision_text(s)}):")
    todo = [(sp, done) for sp, state, done in states if state != "done"]
    per_run: dict[str, float] = {}
    if todo and args.estimate_steps and all(sp.dataset in s.data_dirs for sp, _ in todo):
        sizes = dataset_sizes({sp.dataset for sp, _ in todo}, s)
        # with SLURM the jobs resolve --device on their nodes; the estimate is made here
        here = s if launcher.kind == "local" else replace(s, device=resolve_device("auto"))
        total, per_run = estimate(todo, sizes, here, args.estimate_steps)
    for sp, state, done in states:
        what = {"done": "done", "new": "new", "resume": f"resume after epoch {done}"}[state]
        eta = f", ~{hms(per_run[sp.name])}" if sp.name in per_run else ""
        role = f" [{sp.role}]" if sp.role else ""
        print(f"  {sp.name}{role}: {sp.epochs} epochs, {what}{eta}")
    if todo and args.estimate_steps and not per_run:
        print("no run-time estimate: the data folders of the runs left were not given")
    if per_run:
        load = ", ".join(f"{data_label(d, s)} {v[2]:.0f} s" for d, v in sizes.items())
        print(f"estimated time for the {len(todo)} runs left: {hms(total)} on {here.device} "
              f"(from up to {args.estimate_steps} timed steps per network, its validation pass, "
              f"probe and checkpoint, plus loading the data once: {load})")
    if args.dry_run:
        return 0
    if args.pack > 1 and todo:
        status = run_packed(todo, args.out, s, args.pack, prog=PROG)
    else:
        status = run_all(todo, args.out, s, launcher, prog=PROG)
    if args.evaluate_test is not None and status in (0, 1):
        for dataset, test, kind in (("cifar10", args.evaluate_test, None),
                                    ("cifar100", OWN_TEST, "cifar100")):
            chosen = [sp for sp in specs if sp.dataset == dataset]
            if chosen:
                evaluate_test(chosen, args.out, s.data_dirs[dataset] if test is OWN_TEST else test,
                              s, kind)
    return status


if __name__ == "__main__":
    sys.exit(main())
