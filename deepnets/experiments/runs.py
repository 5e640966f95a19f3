"""Training a grid's runs (the suite's and the rule benchmark's): their settings, state,
run-time estimate, training and test-split scores (Section 4).

Each :class:`~deepnets.experiments.grid.RunSpec` plus the grid's :class:`Settings` is a
:class:`deepnets.training.config.TrainConfig` (:func:`train_config`) trained by
:func:`deepnets.training.trainer.run` into ``<out>/<run name>``: finished runs are skipped,
interrupted ones resumed (:func:`run_state`), one after another in this process
(:func:`run_all`), through a launcher (:mod:`deepnets.experiments.launch`: N at once, or SLURM
jobs) or packed in one process (:func:`run_packed`, :mod:`deepnets.experiments.pack`).
:func:`estimate` times a few SGD steps of each network for the run-time estimate printed before
a grid starts; :func:`evaluate_test` scores finished runs on a test split into their
``test.json``. The command lines (``python -m deepnets.suite``, ``deepnets.rulebench``) pass
their name as ``prog`` for the messages.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from deepnets.experiments import launch, pack
from deepnets.experiments.grid import RunSpec, SuiteError
from deepnets.experiments.protocols import PROTOCOLS
from deepnets.experiments.scoring import score_test_split, split_reader
from deepnets.experiments.testresult import read_test_to_rescore, write_test
from deepnets.nn.models import MODELS
from deepnets.nn.policy import resolve_precision
from deepnets.training.config import OWN_FLAG_PARAMS, TrainConfig
from deepnets.training.optim import is_plain
from deepnets.training.rundir import CHECKPOINT, CONFIG, read_log
from deepnets.training.trainer import (
    EARLY_PROBE_STEPS,
    NonFiniteState,
    RunInterrupted,
    load_cached,
    run,
    stored_config,
)


@dataclass(frozen=True)
class Settings:
    """The settings shared by every run of a grid (the scale and the data)."""

    data_dirs: dict[str, Path]       # dataset -> folder/archive
    cifar10_kind: str                # "cifar10" (python version) | "imagefolder" (the JPEG zip)
    batch_size: int
    lr: float
    val_size: int
    train_size: int | None
    device: str
    dataset_label: str | None        # how results name the CIFAR-10 copy, e.g. its JPEG re-encoding
    quiet: bool
    split_seed: int = 0
    probe_size: int = 500
    cuda_graph: str = "auto"         # deepnets.training.capture: how a GPU runs the step
    # torch's deterministic algorithms (TrainConfig.deterministic); None: each run's own (off
    # for a new run)
    deterministic: bool | None = None
    update_order: str = "sequential"  # Remark 1 (the paper's protocol)
    bias: bool = False               # eq. (1) has none
    untied_init: str = "replicated"  # the author's code: one conv filter bank at every location
    sigma_prime_down: bool = True    # eq. (2); False: the author's code after April 2019
    shared_masks: bool = False       # R's connectivity mask is W's (Section 4 draws them apart)
    # deepnets.training.optim: a torch optimizer and step schedule (the defaults: the paper's plain
    # SGD)
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
        val_size=s.val_size, train_size=s.train_size, untied=spec.untied,
        untied_init=s.untied_init, frozen=spec.frozen,
        # Section 4.1: only the (frozen) first layer is taken, the rest start afresh
        copy=(0,) if spec.from_run else None,
        from_run=str(out / spec.from_run) if spec.from_run else None,
        probe_size=s.probe_size, device=s.device, cuda_graph=s.cuda_graph,
        deterministic=_deterministic(out / spec.name, s.deterministic), precision=s.precision,
        bias=s.bias and spec.arch not in MODELS,  # a named model (deepnets.rulebench's
        # resnet-mini) keeps its own biases, and its activations' derivatives
        sigma_prime_down=s.sigma_prime_down or spec.arch in MODELS,
        shared_masks=s.shared_masks,
        **s.optimizer_fields(),  # update_order too
        **{k: protocol.rule_params.get(k) for k in OWN_FLAG_PARAMS},  # urfb's --epsilon
        rule_params={k: v for k, v in protocol.rule_params.items() if k not in OWN_FLAG_PARAMS},
    )  # fmt: skip


def _deterministic(folder: Path, asked: bool | None) -> bool:
    """``--deterministic`` or ``--no-deterministic`` where given, else the run's own setting (a
    rerun of the suite continues each run as it was trained; a new run: off)."""
    if asked is not None:
        return asked
    return (folder / CONFIG).is_file() and stored_config(folder).deterministic


def run_state(spec: RunSpec, out: Path, s: Settings) -> tuple[str, int]:
    """``("new" | "resume" | "done", epochs logged)`` of a run folder.

    Raises SuiteError when the folder holds a run of another scale or setting (a different
    ``--out`` keeps both). ``train_size`` is compared only when it was asked for, since a run
    records the number it trained on.
    """
    folder = out / spec.name
    if not (folder / CONFIG).is_file():
        return "new", 0
    stored = stored_config(folder)
    have = stored.identity()
    # auto, and the evaluation precision (the suite has no flag for it): the run's own
    want = train_config(spec, out, s).resuming(stored).identity()
    if want["train_size"] is None:
        want["train_size"] = have["train_size"]
    for ids in (have, want):  # --out runs and --out $PWD/runs name the same source run
        if ids.get("from_run"):
            ids["from_run"] = str(Path(ids["from_run"]).expanduser().resolve())
    differ = [k for k in want if want[k] != have.get(k)]
    if differ:
        got = ", ".join(f"{k}={have.get(k)!r} (asked {want[k]!r})" for k in differ)
        hint = (" (a run made before the paper's protocol became the default: pass "
                "--update-order simultaneous --bias to continue it)"
                if {"update_order", "bias"} & set(differ) else
                " (an untied run made before untied layers started replicated: pass "
                "--untied-init independent to continue it)"
                if "untied_init" in differ else
                (" (a run made with --no-sigma-prime-down: pass it to continue it)"
                 if have.get("sigma_prime_down") is False else
                 " (a run made without --no-sigma-prime-down: leave it out to continue it)")
                if "sigma_prime_down" in differ else
                (" (a run made with --shared-masks: pass it to continue it)"
                 if have.get("shared_masks") else
                 " (a run made without --shared-masks: leave it out to continue it)")
                if "shared_masks" in differ else "")
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
                 device: str, budget_s: float = 5.0, precision: str = "fp32",
                 sigma_prime_down: bool = True) -> NetTimes:
    """:class:`NetTimes` of ``spec``'s network on random inputs, computing in ``precision``
    (``sigma_prime_down=False``: the network that sends R g down, whose pools run apart).

    One warm-up step, then up to ``steps`` timed steps while they fit in ``budget_s``; a
    warm-up slower than ``budget_s`` / 2 is itself the step's estimate (its set-up cost is then
    small). The validation pass and the probe are timed twice (the faster counts: the first
    call pays one-off costs), the checkpoint once.
    """
    import functools
    import io

    from deepnets.nn.alignment import alignment
    from deepnets.nn.losses import make_loss
    from deepnets.nn.models import build_net
    from deepnets.training.engine import evaluate, freeze, train_step

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    start = time.perf_counter()
    protocol = PROTOCOLS[spec.protocol]
    own = {} if spec.arch in MODELS else {"sigma_prime_down": sigma_prime_down}
    net = build_net(spec.arch, n_classes=n_classes, method=protocol.method,
                    connectivity=protocol.connectivity, untied=spec.untied,
                    **own, **protocol.rule_params).to(device)
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
    (:data:`deepnets.training.trainer.EARLY_PROBE_STEPS`); and the run's set-up."""
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
                                        precision=resolve_precision(s.precision, s.device),
                                        sigma_prime_down=s.sigma_prime_down)
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


def hms(seconds: float) -> str:
    """``seconds`` as ``<h>h<mm>m<ss>s``."""
    h, rem = divmod(round(seconds), 3600)
    return f"{h}h{rem // 60:02d}m{rem % 60:02d}s"


def kept(folder: Path) -> str:
    """What an interrupted run of the grid kept (its log has as many epochs as its checkpoint)."""
    done = len(read_log(folder)) if (folder / CHECKPOINT).is_file() else 0
    if not done:
        return f"{folder} had no finished epoch"
    return f"{folder / CHECKPOINT} keeps epoch {done}"


def evaluate_test(specs: Sequence[RunSpec], out: Path, test_dir: Path, s: Settings,
                  kind: str | None = None) -> int:
    """Score each finished run of ``specs`` on the test split of ``test_dir`` (format ``kind``,
    by default ``s.cifar10_kind``) into its ``test.json``, unless it holds that already; prints
    one line per run and returns how many runs were scored now."""
    scored = 0
    read_test_split = split_reader(kind or s.cifar10_kind, test_dir)
    for sp in specs:
        folder = out / sp.name
        done = len(read_log(folder)) if (folder / CONFIG).is_file() else 0
        if done < sp.epochs:
            print(f"  {sp.name}: not finished ({done}/{sp.epochs} epochs), not scored on the test "
                  "split")
            continue
        have = read_test_to_rescore(folder)
        if have is None or have.get("epochs_done") != done or have.get("data_dir") != str(test_dir):
            have = score_test_split(folder, kind or s.cifar10_kind, test_dir, device=s.device,
                                    dataset=read_test_split(folder))
            write_test(folder, have)
            scored += 1
        best = have.get("best")
        chosen = (f"epoch {best['epoch']} (validation {best['val_error']:.4f}): test error "
                  f"{best['error']:.4f}" if best else "no validation-chosen epoch")
        print(f"  {sp.name}: {chosen}; last epoch {have['last']['epoch']}: test error "
              f"{have['last']['error']:.4f}")
    print(f"scored {scored} run(s) on the test split of {test_dir} (written to test.json)")
    return scored


def run_all(todo: list[tuple[RunSpec, int]], out: Path, s: Settings,
             launcher: launch.Launcher | None = None, *, prog: str) -> int:
    """Train (or resume) each run in order in this process (the data is read once), or hand
    them to ``launcher`` (:mod:`deepnets.experiments.launch`: N at once here, or SLURM jobs), a
    retraining run only after the run it takes its first layer from. A run that diverges is
    reported and the grid goes on; 1 at the end if any did, 130 on Ctrl-C. ``prog`` names the CLI
    in the messages (the suite, or the rule benchmark that runs its grid through here)."""
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
            print(f"{prog}: interrupted: {kept(folder)}; rerun the same command to resume the "
                  "grid", file=sys.stderr)
            return 130
    if failed:
        print(f"{len(failed)} of {len(todo)} runs diverged: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"trained {len(todo)} runs in {out}" if todo
          else f"nothing to train: every run in {out} is done")
    return 0


def run_packed(todo: list[tuple[RunSpec, int]], out: Path, s: Settings, n: int, *,
               prog: str) -> int:
    """Train (or resume) the runs ``n`` at once in this process
    (:mod:`deepnets.experiments.pack`), a retraining run only after the run it takes its first
    layer from; reported as :func:`deepnets.experiments.launch.report` does, 130 on Ctrl-C.
    ``prog`` names the CLI in the messages."""
    jobs = [launch.Job(sp.name, train_config(sp, out, s), out / sp.name,
                       resume=(out / sp.name / CONFIG).is_file(),
                       after=out / sp.from_run if sp.from_run else None) for sp, _ in todo]
    try:
        return launch.report(pack.train_packed(jobs, n, s.device, progress=not s.quiet), out)
    except RunInterrupted as exc:
        print(f"{prog}: {exc}; rerun the same command to resume the grid",
              file=sys.stderr)
        return 130
