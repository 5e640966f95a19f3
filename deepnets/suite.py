"""``python -m deepnets.suite FIGURE ...``: run the protocol grid behind Figures 4-11 (Section 4).

Grids (CIFAR-10 unless said; hinge loss for every protocol but ``bp``):

* 4: simpnet x {bp, bp-h, urfb, frfb, urfb-50, frfb-50};   5: the same on CIFAR-10 and CIFAR-100
* 6: deepnet and deepernet x the six protocols;            7: deepernet x the six protocols
* 8: simpnet untied, urfb;  10: simpnet x {urfb, frfb}
* 9: simpnet tied and untied x {bp, urfb, frfb}, and deepnet_s with Section 4.1's protocol:
  train tied (``--pretrain-epochs``, paper 100 of 1000), freeze its first layer, retrain the
  rest from scratch, tied and untied;   11: deepnet_s as in 9 for {urfb, frfb}

Run folders (under ``--out``): ``<arch>-<dataset>-<protocol>[-untied]-s<seed>``, and for
deepnet_s ``deepnet_s-cifar10-<protocol>-pre-s<seed>`` (the tied pretraining) beside the
retrained ``deepnet_s-cifar10-<protocol>-s<seed>`` and ``...-untied-s<seed>``. ``--seeds 0 1 2``
repeats every run for each seed; a seed changes W, R, masks, data order and dropout, while the
held-out validation images (``--split-seed``) stay the same, so the runs of two protocols are
paired seed by seed. Paper scale is the default (1000 epochs, batch 500, step 0.1); ``--epochs``
and ``--train-size`` shrink it and every run records its scale in ``config.json``. Each run is a
:class:`deepnets.config.TrainConfig` trained by :func:`deepnets.trainer.run`; finished runs are
skipped, interrupted ones resumed, and a run-time estimate from a few timed SGD steps is printed
before the grid starts (one run after another; ``--jobs`` and ``--pack`` do not shorten it).
``--pack N`` trains up to N runs at once in this process, a step of each in turn
(:mod:`deepnets.pack`: on a GPU each run's captured step on its own stream); a packed run's
folder is the single run's. Every run uses the paper's protocol -- the sequential update order
of Remark 1 and no biases -- unless ``--update-order simultaneous`` / ``--bias`` say otherwise
(a torch optimizer's runs take the simultaneous order).

``--evaluate-test TEST`` then scores every finished CIFAR-10 run once on TEST's test split --
the weights of its epoch of lowest validation error, and its last weights -- and writes the
result to the run folder's ``test.json`` (:mod:`deepnets.testresult`; never to ``log.jsonl``:
the test split is not looked at during training). A run already scored at its current epoch
on the same test data is not scored again.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from deepnets import launch, pack
from deepnets.arch import WEIGHT_KINDS, parse_arch
from deepnets.capture import CUDA_GRAPH_MODES
from deepnets.config import OWN_FLAG_PARAMS, PRECISION_CHOICES, ConfigError, TrainConfig
from deepnets.data import DataError
from deepnets.models import MODELS
from deepnets.optim import add_optimizer_flags, is_plain
from deepnets.policy import resolve_precision
from deepnets.protocols import PROTOCOLS
from deepnets.rundir import CHECKPOINT, CONFIG, RunError, claim_folder, read_log
from deepnets.scoring import score_test_split
from deepnets.stops import out_of_memory, sigterm_as_interrupt
from deepnets.testresult import read_test, write_test
from deepnets.trainer import (
    EARLY_PROBE_STEPS,
    NonFiniteState,
    RunInterrupted,
    load_cached,
    resolve_device,
    run,
    stored_config,
)
from urfb_common import (
    OneLineParser,
    OutputPathError,
    check_out_dir,
    command_line,
    figure_numbers,
    path_arg,
    report_error,
)

ALL = tuple(name for name, p in PROTOCOLS.items() if 4 in p.figures)  # Section 4's six
UNTIE = ("bp", "urfb", "frfb")
FIGURES = (4, 5, 6, 7, 8, 9, 10, 11)
PROG = "python -m deepnets.suite"


class SuiteError(ValueError):
    """A grid that cannot run as asked; the message names the argument or the run folder."""


@dataclass(frozen=True)
class RunSpec:
    """One training run of a grid: its folder name and the ``deepnets.train`` settings it differs by."""

    name: str
    arch: str
    protocol: str
    dataset: str                     # "cifar10" | "cifar100"
    epochs: int
    untied: tuple[int, ...] = ()
    frozen: tuple[int, ...] = ()
    from_run: str | None = None      # folder name of the run whose weights are taken (deepnet_s)
    role: str = field(default="", compare=False)
    seed: int = 0

    def with_seed(self, seed: int) -> RunSpec:
        """The same run for another seed: ``-s<seed>`` ends its folder name (and its source's)."""
        source = None if self.from_run is None else f"{self.from_run}-s{seed}"
        return replace(self, name=f"{self.name}-s{seed}", from_run=source, seed=seed)


def conv_layers(arch: str) -> list[int]:
    """Indices (into the weight layers, input->output) of the convolutional layers of ``arch``."""
    weights = [s for s in parse_arch(arch) if s.kind in WEIGHT_KINDS]
    return [i for i, s in enumerate(weights) if s.kind == "conv"]


def _plain(arch: str, dataset: str, protocols: Sequence[str], epochs: int,
           untied: bool = False) -> list[RunSpec]:
    untied_layers = tuple(conv_layers(arch)) if untied else ()
    return [RunSpec(f"{arch}-{dataset}-{p}{'-untied' if untied else ''}", arch, p, dataset, epochs,
                    untied=untied_layers) for p in protocols]


def _deepnet_s(protocols: Sequence[str], epochs: int, pretrain_epochs: int,
               untied_only: bool) -> list[RunSpec]:
    """Section 4.1: tied pretraining, then first layer frozen and the rest retrained from scratch."""
    rest = tuple(conv_layers("deepnet_s")[1:])
    specs = []
    for p in protocols:
        base = f"deepnet_s-cifar10-{p}"
        specs.append(RunSpec(f"{base}-pre", "deepnet_s", p, "cifar10", pretrain_epochs, role="pretrain"))
        if not untied_only:
            specs.append(RunSpec(base, "deepnet_s", p, "cifar10", epochs, frozen=(0,),
                                 from_run=f"{base}-pre", role="retrain tied"))
        specs.append(RunSpec(f"{base}-untied", "deepnet_s", p, "cifar10", epochs, untied=rest,
                             frozen=(0,), from_run=f"{base}-pre", role="retrain untied"))
    return specs


def grid(figure: int, epochs: int, pretrain_epochs: int,
         protocols: Sequence[str] | None = None) -> list[RunSpec]:
    """The runs behind one figure; ``protocols`` (if given) keeps only those protocols."""
    def pick(default: Sequence[str]) -> list[str]:
        return [p for p in default if protocols is None or p in protocols]

    if figure == 4:
        return _plain("simpnet", "cifar10", pick(ALL), epochs)
    if figure == 5:
        return [s for d in ("cifar10", "cifar100") for s in _plain("simpnet", d, pick(ALL), epochs)]
    if figure == 6:
        return [s for a in ("deepnet", "deepernet") for s in _plain(a, "cifar10", pick(ALL), epochs)]
    if figure == 7:
        return _plain("deepernet", "cifar10", pick(ALL), epochs)
    if figure == 8:
        return _plain("simpnet", "cifar10", pick(("urfb",)), epochs, untied=True)
    if figure == 9:
        return (_plain("simpnet", "cifar10", pick(UNTIE), epochs)
                + _plain("simpnet", "cifar10", pick(UNTIE), epochs, untied=True)
                + _deepnet_s(pick(UNTIE), epochs, pretrain_epochs, untied_only=False))
    if figure == 10:
        return _plain("simpnet", "cifar10", pick(("urfb", "frfb")), epochs)
    if figure == 11:
        return _deepnet_s(pick(("urfb", "frfb")), epochs, pretrain_epochs, untied_only=True)
    raise SuiteError(f"argument FIGURE: {figure} is not one of {list(FIGURES)}")


def grids(figures: Sequence[int], epochs: int, pretrain_epochs: int,
          protocols: Sequence[str] | None = None) -> list[RunSpec]:
    """The union of several figures' runs, each once, pretraining before its retraining."""
    seen: dict[str, RunSpec] = {}
    for f in figures:
        for spec in grid(f, epochs, pretrain_epochs, protocols):
            seen.setdefault(spec.name, spec)
    return list(seen.values())


@dataclass(frozen=True)
class Settings:
    """The settings shared by every run of a grid (the scale and the data)."""

    data_dirs: dict[str, Path]       # dataset -> folder/archive
    cifar10_kind: str                # "cifar10" (python version) | "imagefolder" (e.g. the JPEG zip)
    batch_size: int
    lr: float
    val_size: int
    train_size: int | None
    device: str
    dataset_label: str | None        # how results name the CIFAR-10 copy, e.g. its JPEG re-encoding
    quiet: bool
    split_seed: int = 0
    probe_size: int = 500
    cuda_graph: str = "auto"         # deepnets.capture: how a GPU runs the step
    update_order: str = "sequential"  # Remark 1 (the paper's protocol)
    bias: bool = False               # eq. (1) has none
    # deepnets.optim: a torch optimizer and step schedule (the defaults: the paper's plain SGD)
    optimizer: str = "sgd"
    momentum: float | None = None
    weight_decay: float = 0.0
    lr_steps: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    precision: str = "fp32"          # TrainConfig.precision; auto: resolved by each new run

    def optimizer_fields(self) -> dict[str, Any]:
        """The TrainConfig fields of the optimizer; a torch optimizer steps all layers at once,
        so its runs take the simultaneous order (plain SGD keeps ``update_order``)."""
        given = {"optimizer": self.optimizer, "momentum": self.momentum,
                 "weight_decay": self.weight_decay, "lr_steps": self.lr_steps,
                 "lr_gamma": self.lr_gamma}
        plain = is_plain(self.optimizer, self.weight_decay, self.lr_steps)
        return {**given, "update_order": self.update_order if plain else "simultaneous"}


def train_config(spec: RunSpec, out: Path, s: Settings) -> TrainConfig:
    """The :class:`TrainConfig` of one run of the grid."""
    protocol = PROTOCOLS[spec.protocol]
    kind = s.cifar10_kind if spec.dataset == "cifar10" else "cifar100"
    return TrainConfig(
        epochs=spec.epochs, data_dir=str(s.data_dirs.get(spec.dataset, "")) or "-",
        arch=spec.arch, method=protocol.method, loss=protocol.loss,
        connectivity=protocol.connectivity, lr=s.lr, batch_size=s.batch_size, seed=spec.seed,
        split_seed=s.split_seed, data=kind,
        dataset_label=s.dataset_label if spec.dataset == "cifar10" else None,
        val_size=s.val_size, train_size=s.train_size, untied=spec.untied, frozen=spec.frozen,
        # Section 4.1: only the (frozen) first layer is taken, the rest start afresh
        copy=(0,) if spec.from_run else None,
        from_run=str(out / spec.from_run) if spec.from_run else None,
        probe_size=s.probe_size, device=s.device, cuda_graph=s.cuda_graph, precision=s.precision,
        bias=s.bias and spec.arch not in MODELS,  # a named model (deepnets.rulebench's
        # resnet-mini) keeps its own biases
        **s.optimizer_fields(),  # update_order too
        **{k: protocol.rule_params.get(k) for k in OWN_FLAG_PARAMS},  # urfb's --epsilon
        rule_params={k: v for k, v in protocol.rule_params.items() if k not in OWN_FLAG_PARAMS},
    )  # fmt: skip


def run_state(spec: RunSpec, out: Path, s: Settings) -> tuple[str, int]:
    """``("new" | "resume" | "done", epochs logged)`` of a run folder.

    Raises SuiteError when the folder holds a run of another scale or setting (a different
    ``--out`` keeps both). ``train_size`` is compared only when it was asked for, since a run
    records the number it trained on.
    """
    folder = out / spec.name
    if not (folder / CONFIG).is_file():
        return "new", 0
    have = stored_config(folder).identity()
    want = train_config(spec, out, s).identity()
    if want["train_size"] is None:
        want["train_size"] = have["train_size"]
    if want["precision"] == "auto":  # the run keeps the precision it was trained in
        want["precision"], want["eval_precision"] = have["precision"], have["eval_precision"]
    for ids in (have, want):  # --out runs and --out $PWD/runs name the same source run
        if ids.get("from_run"):
            ids["from_run"] = str(Path(ids["from_run"]).expanduser().resolve())
    differ = [k for k in want if want[k] != have.get(k)]
    if differ:
        got = ", ".join(f"{k}={have.get(k)!r} (asked {want[k]!r})" for k in differ)
        hint = (" (a run made before the paper's protocol became the default: pass "
                "--update-order simultaneous --bias to continue it)"
                if {"update_order", "bias"} & set(differ) else "")
        raise SuiteError(f"{folder} holds another run: {got}{hint}; use another --out or "
                         "remove it")
    done = len(read_log(folder))
    return ("done" if done >= spec.epochs else "resume"), done


@dataclass(frozen=True)
class NetTimes:
    """Seconds a network's pieces of a run take (:func:`time_network`): everything the trainer
    does per epoch besides the SGD steps is counted too (validation, the alignment probe, the
    checkpoint), and the run's set-up once."""

    step: float          # one SGD step on a batch
    eval_image: float    # the validation pass, per image
    probe: float         # one alignment probe (0 without one)
    epoch_end: float     # writing the epoch's checkpoint
    setup: float         # building the network


def time_network(spec: RunSpec, n_classes: int, batch: int, probe_size: int, steps: int,
                 device: str, budget_s: float = 5.0, precision: str = "fp32") -> NetTimes:
    """:class:`NetTimes` of ``spec``'s network on random inputs, computing in ``precision``.

    One warm-up step, then up to ``steps`` timed steps while they fit in ``budget_s``; a
    warm-up slower than ``budget_s`` / 2 is itself the step's estimate (its set-up cost is then
    small). The validation pass and the probe are timed twice (the faster counts: the first
    call pays one-off costs), the checkpoint once.
    """
    import functools
    import io

    from deepnets.alignment import alignment
    from deepnets.engine import evaluate, freeze, train_step
    from deepnets.losses import make_loss
    from deepnets.models import build_net

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    start = time.perf_counter()
    protocol = PROTOCOLS[spec.protocol]
    net = build_net(spec.arch, n_classes=n_classes, method=protocol.method,
                    connectivity=protocol.connectivity, untied=spec.untied,
                    **protocol.rule_params).to(device)
    freeze(net, spec.frozen)
    setup = time.perf_counter() - start
    loss_fn = make_loss(protocol.loss, n_classes)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, n_classes, (batch,), generator=gen).to(device)

    def timed(work: object, *a: object) -> float:
        begin = time.perf_counter()
        work(*a)  # type: ignore[operator]
        sync()
        return time.perf_counter() - begin

    step = functools.partial(train_step, precision=precision)
    first = timed(step, net, x, y, loss_fn)
    times: list[float] = [] if first <= budget_s / 2 else [first]
    while len(times) < steps and sum(times) < budget_s:
        times.append(timed(step, net, x, y, loss_fn))
    score = functools.partial(evaluate, precision=precision)
    eval_image = min(timed(score, net, x, y, loss_fn) for _ in range(2)) / batch
    probe = 0.0
    if probe_size:
        px = torch.rand(probe_size, 3, 32, 32, generator=gen).to(device)
        py = torch.randint(0, n_classes, (probe_size,), generator=gen).to(device)
        probe = min(timed(functools.partial(alignment, precision=precision), net, px, py,
                          loss_fn) for _ in range(2))
    epoch_end = timed(torch.save, net.state_dict(), io.BytesIO())
    return NetTimes(sum(times) / len(times), eval_image, probe, epoch_end, setup)


def run_seconds(times: NetTimes, n_train: int, s: Settings, epochs_left: int,
                first_epoch_left: bool) -> float:
    """Seconds of ``epochs_left`` epochs of one run: per epoch its SGD steps, the validation
    pass, the probe and the checkpoint; epoch 1 also probes after its first updates
    (:data:`deepnets.trainer.EARLY_PROBE_STEPS`); and the run's set-up."""
    per_epoch = (math.ceil(n_train / s.batch_size) * times.step + s.val_size * times.eval_image
                 + times.probe + times.epoch_end)
    early = len(EARLY_PROBE_STEPS) * times.probe if first_epoch_left else 0.0
    return per_epoch * epochs_left + early + times.setup


def estimate(todo: list[tuple[RunSpec, int]], sizes: dict[str, tuple[int, int, float]],
             s: Settings, steps: int) -> tuple[float, dict[str, float]]:
    """Seconds the remaining epochs of ``todo`` will take (:func:`run_seconds` of each), plus
    loading each data set once. ``sizes``: dataset -> (training images, classes, seconds to
    load it)."""
    per_net: dict[tuple, NetTimes] = {}
    per_run: dict[str, float] = {}
    for spec, done in todo:
        n_train, n_classes, _ = sizes[spec.dataset]
        key = (spec.arch, spec.protocol, spec.untied, spec.frozen, n_classes)
        if key not in per_net:
            per_net[key] = time_network(spec, n_classes, min(s.batch_size, n_train),
                                        min(s.probe_size, s.val_size or n_train), steps, s.device,
                                        precision=resolve_precision(s.precision, s.device))
        per_run[spec.name] = run_seconds(per_net[key], n_train, s, spec.epochs - done, done == 0)
    return sum(per_run.values()) + sum(v[2] for v in sizes.values()), per_run


def data_label(dataset: str, s: Settings) -> str:
    """How the grid's output names a data set: ``--dataset-label``, else CIFAR-10 / CIFAR-100
    for the python versions, else "image folder <path>" (as :class:`TrainConfig` names it)."""
    if dataset == "cifar10" and s.dataset_label:
        return s.dataset_label
    if dataset == "cifar10" and s.cifar10_kind == "imagefolder":
        return f"image folder {s.data_dirs.get('cifar10', '')}"
    return {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}[dataset]


def dataset_sizes(datasets: set[str], s: Settings) -> dict[str, tuple[int, int, float]]:
    """Per dataset: training-set size (after the held-out split and any subset), class count,
    and the seconds loading it took."""
    sizes = {}
    for d in sorted(datasets):
        kind = s.cifar10_kind if d == "cifar10" else "cifar100"
        start = time.perf_counter()
        ds = load_cached(kind, str(s.data_dirs[d]))
        load_s = time.perf_counter() - start
        if len(ds.classes) < 2:
            raise SuiteError(f"argument --data-dir: {s.data_dirs[d]} holds {len(ds.classes)} "
                             "class; a classifier needs at least 2")
        n = len(ds) - s.val_size
        if n <= 0:
            raise SuiteError(f"argument --val-size: {s.val_size} leaves no training images of "
                             f"{len(ds)} in {s.data_dirs[d]}")
        if s.train_size is not None and s.train_size > n:
            raise SuiteError(f"argument --train-size: {s.train_size} exceeds the {n} training "
                             f"images left in {s.data_dirs[d]} after --val-size {s.val_size}")
        sizes[d] = (s.train_size or n, len(ds.classes), load_s)
    return sizes


def _hms(seconds: float) -> str:
    h, rem = divmod(round(seconds), 3600)
    return f"{h}h{rem // 60:02d}m{rem % 60:02d}s"


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
                   "down (Remark 1, the paper's; default); simultaneous: all from one backward pass")
    p.add_argument("--bias", action="store_true",
                   help="give every weight layer a bias (default: none, as eq. (1))")
    p.add_argument("--probe-size", type=int, default=500,
                   help="validation images of the alignment probe logged every epoch; 0: none")
    p.add_argument("--device", default="auto",
                   help="torch device: cpu, cuda, cuda:1 or auto (cuda when available; default)")
    p.add_argument("--precision", choices=PRECISION_CHOICES, default="fp32",
                   help="arithmetic of every run, recorded in its config.json (deepnets.train "
                   "--precision): fp32 (default), bf16, or auto (bf16 on a CPU with AMX tiles or "
                   "a CUDA device with bf16 tensor cores, fp32 elsewhere; a resumed run keeps "
                   "its own). The default stays fp32 until issue 18's paired convergence check "
                   "(results/bf16-paired) shows bf16 learns as well")
    p.add_argument("--cuda-graph", choices=CUDA_GRAPH_MODES, default="auto",
                   help="on a GPU, replay each run's training step as a CUDA graph: auto (eager "
                   "if the capture fails; default), on, off")
    p.add_argument("--dataset-label", help="how results name the CIFAR-10 copy, e.g. "
                   "'CIFAR-10 (JPEG re-encoding)' (default: deepnets.train's)")
    p.add_argument("--evaluate-test", type=Path, metavar="TEST",
                   help="after training, score every finished CIFAR-10 run once on the test "
                   "split of TEST (format --data; e.g. the JPEG copy's test.zip): its "
                   "validation-chosen and last weights, written to the run's test.json")
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
                   "step of each in turn (deepnets.pack): on a GPU each run replays its own "
                   "CUDA graph on its own stream, so that the runs' kernels overlap; on the CPU "
                   "no faster than one by one (default 1: one run after another)")
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
    if args.evaluate_test is not None and not args.evaluate_test.exists():
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


@command_line(PROG)
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
    dirs = {"cifar10": args.data_dir, "cifar100": args.cifar100_dir}
    for d in {sp.dataset for sp in specs}:
        if dirs[d] is None and not args.dry_run:
            flag = "--data-dir" if d == "cifar10" else "--cifar100-dir"
            parser.error(f"argument {flag}: required by the {d} runs "
                         f"(or leave them out with --datasets)")
    s = Settings({k: v for k, v in dirs.items() if v is not None}, args.data, args.batch_size,
                 args.lr, args.val_size, args.train_size, args.device, args.dataset_label,
                 args.quiet, args.split_seed, args.probe_size, args.cuda_graph,
                 args.update_order, args.bias,
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


def _plan_and_run(args: argparse.Namespace, specs: list[RunSpec], figures: Sequence[int],
                  s: Settings, launcher: launch.Launcher) -> int:
    """List the grid's runs with their state and time estimate, then train what is left."""
    train_config(specs[0], args.out, s)  # bad optimizer settings: one line, before any run
    states = [(sp, *run_state(sp, args.out, s)) for sp in specs]
    print(f"{len(specs)} runs in {args.out} (figures {', '.join(map(str, figures))}; "
          f"{args.epochs} epochs, batch {s.batch_size}, lr {s.lr}, "
          f"train size {s.train_size or 'all'}, val {s.val_size}, "
          f"seeds {' '.join(map(str, dict.fromkeys(args.seeds)))}, device {s.device}):")
    todo = [(sp, done) for sp, state, done in states if state != "done"]
    per_run: dict[str, float] = {}
    if todo and args.estimate_steps and all(sp.dataset in s.data_dirs for sp, _ in todo):
        sizes = dataset_sizes({sp.dataset for sp, _ in todo}, s)
        # with SLURM the jobs resolve --device on their nodes; the estimate is made here
        here = s if launcher.kind == "local" else replace(s, device=resolve_device("auto"))
        total, per_run = estimate(todo, sizes, here, args.estimate_steps)
    for sp, state, done in states:
        what = {"done": "done", "new": "new", "resume": f"resume after epoch {done}"}[state]
        eta = f", ~{_hms(per_run[sp.name])}" if sp.name in per_run else ""
        role = f" [{sp.role}]" if sp.role else ""
        print(f"  {sp.name}{role}: {sp.epochs} epochs, {what}{eta}")
    if todo and args.estimate_steps and not per_run:
        print("no run-time estimate: the data folders of the runs left were not given")
    if per_run:
        load = ", ".join(f"{data_label(d, s)} {v[2]:.0f} s" for d, v in sizes.items())
        print(f"estimated time for the {len(todo)} runs left: {_hms(total)} on {here.device} "
              f"(from up to {args.estimate_steps} timed steps per network, its validation pass, "
              f"probe and checkpoint, plus loading the data once: {load})")
    if args.dry_run:
        return 0
    if args.pack > 1 and todo:
        status = _run_packed(todo, args.out, s, args.pack)
    else:
        status = _run_all(todo, args.out, s, launcher)
    if args.evaluate_test is not None and status in (0, 1):
        evaluate_test([sp for sp in specs if sp.dataset == "cifar10"], args.out,
                      args.evaluate_test, s)
    return status


def _kept(folder: Path) -> str:
    """What an interrupted run of the grid kept (its log has as many epochs as its checkpoint)."""
    done = len(read_log(folder)) if (folder / CHECKPOINT).is_file() else 0
    return f"{folder / CHECKPOINT} keeps epoch {done}" if done else f"{folder} had no finished epoch"


def evaluate_test(specs: Sequence[RunSpec], out: Path, test_dir: Path, s: Settings) -> int:
    """Score each finished run of ``specs`` on the test split of ``test_dir`` (format
    ``s.cifar10_kind``) into its ``test.json``, unless it holds that already; prints one line
    per run and returns how many runs were scored now."""
    scored = 0
    for sp in specs:
        folder = out / sp.name
        done = len(read_log(folder)) if (folder / CONFIG).is_file() else 0
        if done < sp.epochs:
            print(f"  {sp.name}: not finished ({done}/{sp.epochs} epochs), not scored on the test "
                  "split")
            continue
        have = read_test(folder)
        if have is None or have.get("epochs_done") != done or have.get("data_dir") != str(test_dir):
            have = score_test_split(folder, s.cifar10_kind, test_dir, device=s.device)
            write_test(folder, have)
            scored += 1
        best = have.get("best")
        chosen = (f"epoch {best['epoch']} (validation {best['val_error']:.4f}): test error "
                  f"{best['error']:.4f}" if best else "no validation-chosen epoch")
        print(f"  {sp.name}: {chosen}; last epoch {have['last']['epoch']}: test error "
              f"{have['last']['error']:.4f}")
    print(f"scored {scored} run(s) on the test split of {test_dir} (written to test.json)")
    return scored


def _run_all(todo: list[tuple[RunSpec, int]], out: Path, s: Settings,
             launcher: launch.Launcher | None = None, prog: str = PROG) -> int:
    """Train (or resume) each run in order in this process (the data is read once), or hand
    them to ``launcher`` (:mod:`deepnets.launch`: N at once here, or SLURM jobs), a retraining
    run only after the run it takes its first layer from. A run that diverges is reported and
    the grid goes on; 1 at the end if any did, 130 on Ctrl-C. ``prog`` names the CLI in the
    messages (the suite, or the rule benchmark that runs its grid through here)."""
    if launcher is not None and not launcher.serial and todo:
        jobs = [launch.Job(sp.name, train_config(sp, out, s), out / sp.name,
                           resume=(out / sp.name / CONFIG).is_file(),
                           quiet=s.quiet or launcher.kind == "local",  # no N bars at once
                           after=out / sp.from_run if sp.from_run else None) for sp, _ in todo]
        try:
            return launch.launch(jobs, launcher, out, progress=not s.quiet)
        except RunInterrupted as exc:
            print(f"{prog}: {exc}; rerun the same command to resume the grid",
                  file=sys.stderr)
            return 130
    failed: list[str] = []
    bar = tqdm(todo, desc="suite", unit="run", disable=s.quiet, file=sys.stderr)
    for sp, _ in bar:
        bar.set_postfix_str(sp.name)
        folder = out / sp.name
        try:
            run(train_config(sp, out, s), folder, resume=(folder / CONFIG).is_file(), quiet=s.quiet)
        except NonFiniteState as exc:
            print(f"{prog}: run {folder} diverged: {exc}", file=sys.stderr)
            failed.append(sp.name)
        except RunInterrupted:  # its message's advice (train's --resume) is not the suite's
            print(f"{prog}: interrupted: {_kept(folder)}; rerun the same command to resume the "
                  "grid", file=sys.stderr)
            return 130
    if failed:
        print(f"{len(failed)} of {len(todo)} runs diverged: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"trained {len(todo)} runs in {out}" if todo else f"nothing to train: every run in {out} is done")
    return 0


def _run_packed(todo: list[tuple[RunSpec, int]], out: Path, s: Settings, n: int) -> int:
    """Train (or resume) the runs ``n`` at once in this process (:mod:`deepnets.pack`), a
    retraining run only after the run it takes its first layer from; reported as
    :func:`deepnets.launch.report` does, 130 on Ctrl-C."""
    jobs = [launch.Job(sp.name, train_config(sp, out, s), out / sp.name,
                       resume=(out / sp.name / CONFIG).is_file(),
                       after=out / sp.from_run if sp.from_run else None) for sp, _ in todo]
    try:
        return launch.report(pack.train_packed(jobs, n, s.device, progress=not s.quiet), out)
    except RunInterrupted as exc:
        print(f"python -m deepnets.suite: {exc}; rerun the same command to resume the grid",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
