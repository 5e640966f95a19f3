"""Training a :class:`TrainConfig` into a run folder: ``run(cfg, out)`` (Sections 3-4).

Plain SGD with a fixed step (paper: 0.1, batch 500) or a torch optimizer and step schedule
(``--optimizer``, ``--lr-steps``: :mod:`deepnets.training.optim`; run eagerly, their states in the
checkpoint), a validation split held out of the training set (paper: 5,000 images, drawn by
``split_seed`` so that every seed sees the same split), one ``log.jsonl`` record and one
atomic checkpoint per epoch. A resumed run ends in the
same state (bit-identical on the CPU) as an uninterrupted one.

Each ``log.jsonl`` record: ``train_loss`` / ``train_error``, means over the epoch's mini-batches
in training mode (dropout on, each batch scored before its update); ``val_loss`` /
``val_error`` in eval mode after the epoch (``null`` with ``val_size`` 0); ``seconds`` (wall
time of the epoch, validation and probe included), ``train_seconds``, ``probe_seconds``,
``cpu_seconds``; ``corr``, per weight layer, the Pearson correlation of W and R^t (Figures
10-11); ``norm``, per weight layer, the Frobenius norms [|W|, |R|]; ``alignment``, the probe
of :mod:`deepnets.nn.alignment` after the epoch, per layer; ``saturated``, per saturating
layer, the share of its units at sigma'(h) = 0 on the probe's images, and ``preactivation``,
the mean of their |s h| there (1 at the threshold; :mod:`deepnets.nn.saturation`, Remark 2);
for a network with untied layers, ``homogeneity``, per untied layer, how alike a channel's
filters are across locations and the chance level (:mod:`deepnets.nn.homogeneity`, Figure 8).
Epoch 1's record also holds ``alignment_steps``: the probe before the first update and after
updates 1, 2, 5, 10, 20, 50 and 100 (claim 6 is about the first iterations); and, with untied
layers, ``homogeneity_start``: ``homogeneity`` before the first update.

Beside the last checkpoint the run keeps ``best.pt``: the weights after the epoch of lowest
validation error so far (the earliest of equals; :mod:`deepnets.training.checkpoint`), which is what
validation chooses for the test split. The test split is never read during training.

On the GPU the data lives on the device as uint8; batches are gathered and dropout drawn there,
the epoch's metrics accumulate on the device (the loop synchronises once per epoch), and the
step is replayed from a CUDA graph (:mod:`deepnets.training.capture`, ``cuda_graph``). The epoch's
order is one permutation drawn on the CPU (resumable from its generator's state) and copied over
once.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from deepnets.nn.alignment import alignment, probe_batch, summary
from deepnets.nn.arch import parse_arch
from deepnets.nn.homogeneity import untied_homogeneity
from deepnets.nn.losses import make_loss
from deepnets.nn.models import MODELS, build_net
from deepnets.nn.network import FeedbackNet, feedback_norms
from deepnets.nn.policy import resolve_precision
from deepnets.nn.saturation import saturation_record
from deepnets.training import checkpoint as ckpt
from deepnets.training.capture import TrainStepper
from deepnets.training.config import ConfigError, TrainConfig, clipped, shown
from deepnets.training.data import (
    Dataset,
    batch_indices,
    data_mismatch,
    load_dataset,
    split_train_val,
)
from deepnets.training.engine import evaluate, untie
from deepnets.training.optim import build_optimizer
from deepnets.training.rundir import (
    CHECKPOINT,
    CONFIG,
    LOG,
    RunError,
    claim_folder,
    data_dir_from_run,
    read_config,
    read_log,
    write_config,
    write_log,
)
from urfb_common import check_out_dir, remove_stale_temps, user_path

__all__ = ["EARLY_PROBE_STEPS", "NonFiniteState", "RunInterrupted", "RunResult", "resolve_device",
           "run", "stored_config"]

#: Updates after which epoch 1 is probed (0: before the first update).
EARLY_PROBE_STEPS = (0, 1, 2, 5, 10, 20, 50, 100)
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class NonFiniteState(RuntimeError):
    """Training produced a NaN or infinite loss or weight; the run stopped."""


class RunInterrupted(RuntimeError):
    """Ctrl-C stopped the run; the message says where its last checkpoint is."""


@dataclass(frozen=True)
class RunResult:
    """What :func:`run` did: the run folder, its config as stored, the epochs now logged."""

    out: Path
    config: TrainConfig
    epochs_done: int
    trained: int


# ---------------------------------------------------------------- devices and data


def resolve_device(name: str, flag: str = "--device") -> str:
    """``auto`` -> cuda when available, else cpu; any other name must be a CPU or an existing
    CUDA device (torch also knows ``meta``, ``mps``, ``xpu``, ...: not usable for training here)."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"{flag} {shown(name)} is not a torch device (cpu, cuda, cuda:1, auto)"
                          ) from None
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"{flag} {shown(name)}: training runs on cpu or cuda (cuda:N) only; "
                          "use --device auto, cpu or cuda")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{flag} {name}: no CUDA device is available")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"{flag} {name}: this machine has CUDA devices 0.."
                          f"{torch.cuda.device_count() - 1}")
    return name


_DATA_CACHE: dict[tuple[str, str, float], Dataset] = {}


def load_cached(kind: str, data_dir: str) -> Dataset:
    """The training split of a data set, read once per process (the suite's runs share it)."""
    path = Path(data_dir).expanduser()
    key = (kind, str(path.resolve()), path.stat().st_mtime if path.exists() else 0.0)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()  # keep one data set in memory
        _DATA_CACHE[key] = load_dataset(kind, path, "train")
    return _DATA_CACHE[key]


def training_split(cfg: TrainConfig) -> tuple[Dataset, Dataset]:
    """(training images, validation images) of ``cfg``: ``val_size`` held out by ``split_seed``,
    then the first ``train_size`` of the rest."""
    full = load_cached(cfg.data, cfg.data_dir)
    if not 0 <= cfg.val_size < len(full):
        raise ConfigError(f"--val-size {cfg.val_size} must be in 0..{len(full) - 1} "
                          f"({cfg.data_dir} has {len(full)} images)")
    train, val = split_train_val(full, cfg.val_size, cfg.split_seed)
    if cfg.train_size is not None:
        if cfg.train_size > len(train):
            raise ConfigError(f"--train-size {cfg.train_size} exceeds the {len(train)} training "
                              f"images left after --val-size {cfg.val_size}")
        train = train.subset(torch.arange(cfg.train_size))
    return train, val


def _seed_from(seed: int, stream: int) -> int:
    """Independent 63-bit seeds for the data order (stream 1) and dropout (stream 2)."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0] >> 1)


# ---------------------------------------------------------------- network and loss


def build_network(cfg: TrainConfig, in_shape: tuple[int, ...], n_classes: int) -> FeedbackNet:
    """A fresh network from the config, with ``frozen`` applied (``from_run`` not yet): a
    :class:`FeedbackNet`, or for a named model a :class:`deepnets.nn.models.ConvertedNet`."""
    # a named model keeps its own biases and has no untied layers
    own_biases = {} if cfg.arch in MODELS else {"bias": cfg.bias, "untied_init": cfg.untied_init,
                                                "sigma_prime_down": cfg.sigma_prime_down,
                                                "shared_masks": cfg.shared_masks}
    try:
        net = build_net(
            cfg.arch, in_shape=in_shape, n_classes=n_classes, method=cfg.method,
            epsilon=cfg.epsilon, connectivity=cfg.connectivity, sat_scale=cfg.sat_scale,
            untied=cfg.untied, symmetric_init=cfg.symmetric_init, seed=cfg.seed, frozen=cfg.frozen,
            **own_biases, **cfg.rule_params,
        )  # fmt: skip
    except ValueError as exc:  # e.g. a layer too large for this machine's memory
        raise ConfigError(f"--arch {shown(cfg.arch)}: {clipped(str(exc))}") from None
    _check_connections(net, cfg.connectivity)
    return net


def _check_connections(net: FeedbackNet, connectivity: float) -> None:
    """Refuse a ``connectivity`` whose random masks keep none of a layer's W or R entries (the
    layer would pass nothing; its W-R correlation would be NaN)."""
    masks = [(i, m) for i, layer in enumerate(net.weight_layers)
             for m in (getattr(layer, "mask_weight", None), getattr(layer, "mask_feedback", None))
             if m is not None]
    empty = [i for i, m in masks if not bool(m.any())]
    if empty:
        smallest = min(int(m.numel()) for _, m in masks)
        raise ConfigError(
            f"--connectivity {connectivity:g} keeps no connection of weight layer {empty[0]}: "
            f"use a value in [{min(1.0, 10 / smallest):.2g}, 1] for this network (its smallest "
            f"layer has {smallest} weights)")


def copy_layers(net: FeedbackNet, cfg: TrainConfig) -> None:
    """Figure 9's protocol: replace the ``copy`` layers (default: all) of ``net`` by the trained
    layers of the ``from_run`` run; a copied layer that this run unties gets the conv's W and R
    at every location (:func:`deepnets.training.engine.untie`)."""
    assert cfg.from_run is not None
    src = ckpt.load_network(cfg.from_run)
    if parse_arch(src.config["arch"]) != parse_arch(cfg.arch):
        raise ConfigError(f"--arch differs from the --from run's ({src.config['arch']})")
    for key in ("in_shape", "n_classes"):
        if src.config[key] != net.config[key]:
            raise ConfigError(f"--from run has {key} {src.config[key]}, this data {net.config[key]}")
    if src.config.get("bias") != net.config.get("bias"):
        had = "has biases" if src.config.get("bias") else "has no biases"
        raise ConfigError(f"--from run {had}; give the same --bias setting to copy its layers")
    if bool(src.config.get("shared_masks")) != cfg.shared_masks:  # the masks are copied too
        had = "gave R W's mask" if src.config.get("shared_masks") else "drew R's mask apart"
        raise ConfigError(f"--from run {had}; give the same --shared-masks setting to copy its "
                          "layers")
    copy = range(len(net.weight_layers)) if cfg.copy is None else cfg.copy
    to_untie = [i for i in copy if i in cfg.untied and i not in set(src.config.get("untied") or ())]
    if to_untie:
        src = untie(src, to_untie)
    for i in copy:
        try:
            ckpt.load_state_checked(net.weight_layers[i], src.weight_layers[i].state_dict(),
                                    f"--copy layer {i} of the --from run")
        except RunError as exc:
            raise ConfigError(f"{exc} (method {src.config['method']} there, {cfg.method} here; "
                              "a bp layer has no R to copy)") from None


def build_loss(cfg: TrainConfig, n_classes: int) -> LossFn:
    """The loss; ``output_feedback="circuit"`` takes eq. (6) from the Appendix-1 circuit."""
    feedback = None
    if cfg.output_feedback == "circuit":
        from sims.circuits import circuit_output_feedback

        feedback = circuit_output_feedback
    return make_loss(cfg.loss, n_classes, mu=cfg.mu, output_feedback=feedback)


# ---------------------------------------------------------------- the run folder


def stored_config(out: Path) -> TrainConfig:
    """The config of the run in ``out`` (its ``config.json``, checked)."""
    return TrainConfig.from_json_dict(read_config(out), str(out / CONFIG))


def _check_new_folder(out: Path) -> None:
    if (out / CONFIG).is_file():
        raise ConfigError(f"--out {out} already holds a run; pass --resume to continue it")
    if out.is_dir() and any(p for p in out.iterdir() if not p.name.startswith(".")):
        raise ConfigError(f"--out {out} is a non-empty folder that holds no run: "
                          "give a new or empty folder")


def _check_resume(
    out: Path, cfg: TrainConfig, force_data: bool
) -> tuple[TrainConfig, dict[str, Any] | None]:
    """The stored config, checked against ``cfg`` (same run, epochs not below those done), and
    the run's checkpoint (None when no epoch has finished)."""
    stored = stored_config(out)
    if cfg.train_size is None:  # "all": the run recorded how many that was
        cfg = cfg.replace(train_size=stored.train_size)
    cfg = cfg.resuming(stored)  # auto, and an evaluation precision left open: the run's own
    mine, theirs = cfg.identity(), stored.identity()
    differ = [k for k in theirs if mine.get(k) != theirs.get(k)]
    if differ:
        got = ", ".join(f"{k}={mine.get(k)!r} (the run has {theirs.get(k)!r})" for k in differ)
        raise ConfigError(f"--resume: {got}; --resume continues a run with its own settings")
    done = len(read_log(out))
    if done and not (out / CHECKPOINT).is_file():
        raise RunError(f"{out / LOG} has {done} epochs but {out / CHECKPOINT} is missing: "
                       "cannot resume; start a new run in another folder")
    state = ckpt.load_checkpoint(out)
    if state is not None:  # the checkpoint, not the log, says where training resumes
        done = len(state["records"])
    if cfg.epochs < done:
        raise ConfigError(f"--epochs {cfg.epochs} is below the {done} epochs {out} has trained")
    resumed = stored.replace(epochs=cfg.epochs, device=cfg.device, cuda_graph=cfg.cuda_graph,
                             deterministic=cfg.deterministic, data_dir=cfg.data_dir,
                             data_fingerprint=stored.data_fingerprint if not force_data else None)
    return resumed, state


def _check_trained_settings(out: Path, cfg: TrainConfig, state: dict[str, Any]) -> None:
    """The resumed run's settings (its ``config.json``) against those its checkpoint was
    trained with: a one-line :class:`RunError` when they differ (a precision edited by hand
    would go on training the checkpoint's weights in another arithmetic, say). The checkpoint's
    config is read back by today's code (an older schema upgraded, rule parameters added since
    filled in with their defaults), so that only settings differ, not their layout. Checkpoints
    without a config, or with one this code cannot read, are not checked."""
    kept = state.get(ckpt.TRAINED_CONFIG)
    if not isinstance(kept, str):
        return
    try:
        trained = _settings_json(TrainConfig.from_json_dict(json.loads(kept)))
    except ValueError:  # undecodable JSON, or a ConfigError
        return
    now = _settings_json(cfg)
    differ = [k for k in trained if k in now and now[k] != trained[k]]
    if differ:
        pairs = ", ".join(f"{k}={now[k]!r} there, {trained[k]!r} in the checkpoint"
                          for k in differ)
        raise RunError(f"{out / CONFIG} does not match the settings {out / CHECKPOINT} was "
                       f"trained with: {pairs}; restore config.json, or start a new run in "
                       "another folder")


def _settings_json(cfg: TrainConfig) -> dict[str, Any]:
    """``cfg``'s identity as JSON reads it back (lists for tuples), for comparison."""
    return json.loads(json.dumps(cfg.identity(), sort_keys=True))


def _check_data(cfg: TrainConfig, fingerprint: str, n_train: int) -> TrainConfig:
    why = data_mismatch(cfg.data_fingerprint, fingerprint) if cfg.data_fingerprint else None
    if why:
        raise ConfigError(
            f"--data-dir {cfg.data_dir}: this data (fingerprint {fingerprint}) is not the data the "
            f"run was trained on ({cfg.data_fingerprint}: {why}); pass --force-data to train on "
            "it anyway"
        )
    return cfg.replace(data_fingerprint=fingerprint, train_size=n_train)


def _state_is_finite(net: FeedbackNet) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in net.state_dict().values()
               if t.is_floating_point())


@contextlib.contextmanager
def _fp32_exact(device: str) -> Iterator[None]:
    """fp32 means fp32 on the GPU too: no TF32 in matmuls or convolutions."""
    if not device.startswith("cuda"):
        yield
        return
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


#: cuBLAS's workspace settings under which its kernels are deterministic (torch's notes on
#: reproducibility); the trainer sets the first where ``CUBLAS_WORKSPACE_CONFIG`` is unset.
CUBLAS_DETERMINISTIC = (":4096:8", ":16:8")


@contextlib.contextmanager
def deterministic_algorithms(on: bool, device: str = "cpu") -> Iterator[None]:
    """With ``on`` (``TrainConfig.deterministic``): torch's deterministic algorithms and the
    deterministic kernels of cuDNN and oneDNN (the CPU's), restored afterwards; on a CUDA
    ``device`` also cuBLAS's workspace setting (``CUBLAS_WORKSPACE_CONFIG``, set for the rest of
    the process where unset; another value is refused). An operation without a deterministic
    kernel raises a one-line :class:`ConfigError` naming it."""
    if not on:
        yield
        return
    if device.startswith("cuda"):
        workspace = os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC[0])
        if workspace not in CUBLAS_DETERMINISTIC:
            good = " or ".join(CUBLAS_DETERMINISTIC)
            raise ConfigError(f"--deterministic: CUBLAS_WORKSPACE_CONFIG is {workspace!r}, under "
                              f"which cuBLAS is not deterministic ({good} is; unset it and the "
                              "trainer sets the first)")
    backends = torch.backends.cudnn, torch.backends.mkldnn
    old = (torch.are_deterministic_algorithms_enabled(),
           torch.is_deterministic_algorithms_warn_only_enabled(),
           [b.deterministic for b in backends], torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True)
    for backend in backends:
        backend.deterministic = True
    torch.backends.cudnn.benchmark = False
    try:
        yield
    except RuntimeError as exc:
        if "torch.use_deterministic_algorithms(True)" not in str(exc):
            raise
        what = str(exc).split(", but you set")[0].strip()
        raise ConfigError(f"--deterministic: {clipped(what)}; train without it (a run with "
                          "epochs kept: --resume --no-deterministic)") from None
    finally:
        torch.use_deterministic_algorithms(old[0], warn_only=old[1])
        for backend, was in zip(backends, old[2]):
            backend.deterministic = was
        torch.backends.cudnn.benchmark = old[3]


# ---------------------------------------------------------------- the loop


@dataclass
class _Session:
    out: Path
    cfg: TrainConfig
    train: Dataset
    val: Dataset
    net: FeedbackNet
    loss_fn: LossFn
    order: torch.Generator
    records: list[dict[str, Any]]
    probe: tuple[torch.Tensor, torch.Tensor] | None
    stepper: TrainStepper
    quiet: bool
    #: the torch optimizer and its schedule (None: the paper's plain SGD)
    schedule: torch.optim.lr_scheduler.LRScheduler | None = None


def _probe(s: _Session) -> dict[str, Any] | None:
    if s.probe is None:
        return None
    return summary(alignment(s.net, *s.probe, s.loss_fn, precision=s.cfg.eval_precision))


def _train_epoch(
    s: _Session, epoch: int
) -> Generator[None, None, tuple[float, float, list[dict[str, Any]]]]:
    """The epoch's training steps, yielding after each one (:mod:`deepnets.experiments.pack`
    interleaves the steps of several runs there); returns (train loss, train error, early
    probes)."""
    cfg, n = s.cfg, len(s.train)
    early = EARLY_PROBE_STEPS if epoch == 1 and s.probe is not None else ()
    steps = [{"step": 0, "alignment": _probe(s)}] if 0 in early else []
    s.stepper.start_epoch()
    bar = tqdm(batch_indices(n, cfg.batch_size, s.order, s.train.x.device),
               total=math.ceil(n / cfg.batch_size), desc=f"epoch {epoch}", leave=False,
               disable=s.quiet, file=sys.stderr)
    for b, idx in enumerate(bar, start=1):
        s.stepper.step(idx)
        if b in early:
            steps.append({"step": b, "alignment": _probe(s)})
        yield
    loss_sum, errors = s.stepper.totals()
    train_loss = float(loss_sum) / n  # the epoch's one synchronisation
    if not math.isfinite(train_loss) or not _state_is_finite(s.net):
        raise NonFiniteState(f"non-finite training loss or weights in epoch {epoch}")
    return train_loss, int(errors) / n, steps


def _epoch(s: _Session, epoch: int) -> Generator[None, None, None]:
    """One epoch: its training steps (yielding after each), validation, the log record and the
    checkpoint. :func:`run` drains it; :mod:`deepnets.experiments.pack` advances several runs' in
    turn."""
    start = untied_homogeneity(s.net) if epoch == 1 else {}  # the weights before any update
    t0, cpu0 = time.perf_counter(), time.process_time()
    train_loss, train_err, steps = yield from _train_epoch(s, epoch)
    train_seconds = time.perf_counter() - t0
    if s.schedule is not None:
        s.schedule.step()  # the schedule counts epochs (--lr-steps)
    val_loss, val_err = (evaluate(s.net, s.val.x, s.val.y, s.loss_fn,
                                  precision=s.cfg.eval_precision) if len(s.val)
                         else (None, None))
    t1 = time.perf_counter()
    probe = _probe(s)
    record: dict[str, Any] = {
        "epoch": epoch, "train_loss": train_loss, "train_error": train_err,
        "val_loss": val_loss, "val_error": val_err,
        "seconds": time.perf_counter() - t0, "train_seconds": train_seconds,
        "probe_seconds": time.perf_counter() - t1, "cpu_seconds": time.process_time() - cpu0,
        "corr": [None if c is None else float(c) for c in s.net.correlations()],
        "norm": feedback_norms(s.net.weight_layers),
    }  # fmt: skip
    if probe is not None:
        record["alignment"] = probe
        record.update(saturation_record(s.net, s.probe[0]))
    if steps:
        record["alignment_steps"] = steps
    homogeneity = untied_homogeneity(s.net)
    if homogeneity:
        record["homogeneity"] = homogeneity
    if start:
        record["homogeneity_start"] = start
    if val_err is not None and _improves(s.records, val_err):  # before the checkpoint: a run
        ckpt.save_best(s.out, epoch, val_err, s.net.state_dict())  # killed between redoes it
    records = [*s.records, record]  # s.records grows only once the checkpoint holds it
    device = s.cfg.device
    ckpt.save_checkpoint(s.out, {
        "epoch": epoch, "net": s.net.state_dict(), "records": records,
        "torch_rng": torch.get_rng_state(), "order_rng": s.order.get_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.startswith("cuda") else None,
        ckpt.TRAINED_CONFIG: json.dumps(s.cfg.to_json_dict(), sort_keys=True),
        **_optimizer_state(s.schedule),
    })  # fmt: skip
    s.records = records
    write_log(s.out, s.records)
    if not s.quiet:
        val_text = "" if val_err is None else f" val_loss {val_loss:.4f} val_error {val_err:.4f}"
        tqdm.write(f"{s.out.name} epoch {epoch}: train_loss {train_loss:.4f} "
                   f"train_error {train_err:.4f}{val_text} ({record['seconds']:.1f} s)",
                   file=sys.stderr)


def _improves(records: list[dict[str, Any]], val_error: float) -> bool:
    """Whether ``val_error`` is below every validation error of ``records`` (ties: the earliest
    epoch stays the best)."""
    return all(r.get("val_error") is None or val_error < r["val_error"] for r in records)


def _setup(cfg: TrainConfig, out: Path, resume: bool, force_data: bool, quiet: bool) -> _Session:
    cfg = cfg.replace(device=resolve_device(cfg.device))
    if cfg.cuda_graph == "on" and not cfg.device.startswith("cuda"):
        raise ConfigError(f"--cuda-graph on needs a CUDA device (the run is on {cfg.device})")
    state = None
    if resume:
        cfg, state = _check_resume(out, cfg, force_data)
    else:
        _check_new_folder(out)
        cfg = cfg.replace(precision=resolve_precision(cfg.precision, cfg.device))
    train, val = training_split(cfg)
    cfg = _check_data(cfg, train.fingerprint, len(train))
    in_shape, n_classes = tuple(train.x.shape[1:]), len(train.classes)
    if n_classes < 2:
        raise ConfigError(f"--data-dir {cfg.data_dir} holds {n_classes} class; "
                          "a classifier needs at least 2")
    loss_fn = build_loss(cfg, n_classes)
    net = build_network(cfg, in_shape, n_classes)
    if cfg.from_run is not None and state is None:
        copy_layers(net, cfg)
    order = torch.Generator().manual_seed(_seed_from(cfg.seed, 1))
    torch.manual_seed(_seed_from(cfg.seed, 2))  # dropout draws from the global generator
    records: list[dict[str, Any]] = []
    if state is not None:
        ckpt.load_state_checked(net, state["net"], str(out / CHECKPOINT))
        _check_trained_settings(out, cfg, state)
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and cfg.device.startswith("cuda"):
            torch.cuda.set_rng_state(state["cuda_rng"], cfg.device)
        order.set_state(state["order_rng"])
        records = state["records"]
    device = cfg.device
    train, val, net = train.to(device), val.to(device), net.to(device)
    source = val if len(val) else train
    probe = probe_batch(source.x, source.y, cfg.probe_size, cfg.seed) if cfg.probe_size else None
    schedule = _schedule(cfg, net, state, out)
    eager = cfg.output_feedback == "circuit" or schedule is not None
    stepper = TrainStepper(net, loss_fn, train.x, train.y, lr=cfg.lr, batch_size=cfg.batch_size,
                           update_order=cfg.update_order, precision=cfg.precision,
                           mode="off" if eager else cfg.cuda_graph,
                           optimizer=None if schedule is None else schedule.optimizer)
    # Written last: a set-up that fails writes nothing.
    write_config(out, {**cfg.to_json_dict(), "net": net.config,
                       "data_dir_from_run": data_dir_from_run(out, cfg.data_dir),
                       "weight_layer_names": net.weight_layer_names, "classes": train.classes})
    write_log(out, records)  # drops a line logged after the last checkpoint, if killed there
    return _Session(out, cfg, train, val, net, loss_fn, order, records, probe, stepper, quiet,
                    schedule)


def _schedule(cfg: TrainConfig, net: nn.Module, state: dict[str, Any] | None,
              out: Path) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The run's torch optimizer and schedule (:mod:`deepnets.training.optim`), resumed from the
    checkpoint's states; None for the paper's plain SGD. Build after ``net`` is on its device."""
    if cfg.plain_sgd:
        return None
    optimizer, schedule = build_optimizer(
        net, cfg.optimizer, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
        lr_steps=cfg.lr_steps, lr_gamma=cfg.lr_gamma)
    if state is not None:
        if not isinstance(state.get("optimizer"), dict) or not isinstance(state.get("schedule"),
                                                                          dict):
            raise RunError(f"{out / CHECKPOINT} holds no optimizer state: cannot resume "
                           f"--optimizer {cfg.optimizer} exactly")
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
    return schedule


def _optimizer_state(schedule: torch.optim.lr_scheduler.LRScheduler | None) -> dict[str, Any]:
    """The checkpoint's entries for the optimizer's and the schedule's states (none for plain
    SGD)."""
    if schedule is None:
        return {}
    return {"optimizer": schedule.optimizer.state_dict(), "schedule": schedule.state_dict()}


def drain(steps: Iterator[None]) -> None:
    """Run a step generator (:func:`_epoch`) to its end."""
    for _ in steps:
        pass


def run(cfg: TrainConfig, out: str | Path, *, resume: bool = False, quiet: bool = False,
        force_data: bool = False) -> RunResult:
    """Train ``cfg`` into the run folder ``out`` (a new one, or with ``resume`` the run there,
    continued to ``cfg.epochs``). Raises :class:`ConfigError`, :class:`RunError` or
    :class:`deepnets.training.data.DataError` for bad input (before anything is written),
    :class:`NonFiniteState` when training diverged (the last checkpoint, all finite, is kept)
    and :class:`RunInterrupted` on Ctrl-C. A new run that fails before its first epoch leaves
    no files behind."""
    if not str(out).strip():
        raise ConfigError("--out must not be empty: give a run folder")
    out = user_path(out)
    check_out_dir(out)
    existed = out.exists()
    try:
        with claim_folder(out):  # a second training into ``out`` stops here at once
            return _run_claimed(cfg, out, resume, quiet, force_data, existed)
    finally:
        if not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a new run that failed before its first epoch leaves no folder


def _run_claimed(cfg: TrainConfig, out: Path, resume: bool, quiet: bool, force_data: bool,
                 existed: bool) -> RunResult:
    """:func:`run` once this process holds ``out``'s lock."""
    remove_stale_temps(out)
    s: _Session | None = None
    try:
        device = resolve_device(cfg.device)
        with _fp32_exact(device), deterministic_algorithms(cfg.deterministic, device):
            s = _setup(cfg, out, resume, force_data, quiet)
            start = len(s.records) + 1
            for epoch in tqdm(range(start, s.cfg.epochs + 1), desc=out.name, initial=start - 1,
                              total=s.cfg.epochs, disable=quiet, file=sys.stderr):
                drain(_epoch(s, epoch))
    except KeyboardInterrupt:
        done = _kept_epochs(out, resume, s)
        where = (f"{out / CHECKPOINT} keeps epoch {done}; rerun with --resume to continue"
                 if done else "no epoch had finished, nothing was kept")
        _clean_failed_start(out, resume, s)
        raise RunInterrupted(f"interrupted: {where}") from None
    except NonFiniteState as exc:
        done = len(s.records) if s is not None else 0
        kept = (f"{out / CHECKPOINT} keeps epoch {done}, the last finite state" if done
                else "no checkpoint was written")
        _clean_failed_start(out, resume, s)
        raise NonFiniteState(f"{exc}; training stopped, {kept}; try a smaller --lr") from None
    except BaseException:
        _clean_failed_start(out, resume, s)
        raise
    return RunResult(out, s.cfg, len(s.records), s.cfg.epochs - start + 1)


def _kept_epochs(out: Path, resume: bool, s: _Session | None) -> int:
    """Epochs that ``out``'s checkpoint holds once an interrupt has stopped the session ``s``.
    An interrupt that lands between the checkpoint's write and the session's note of it leaves
    the file one epoch ahead of ``s.records`` (the log catches up on resume), so the file is
    asked; a new run with no recorded epoch keeps nothing (:func:`_clean_failed_start`)."""
    if s is None or not (s.records or resume):
        return 0
    state = ckpt.load_checkpoint(out)
    return int(state["epoch"]) if state is not None else len(s.records)


def _clean_failed_start(out: Path, resume: bool, s: _Session | None) -> None:
    """A run stopped early leaves no temporary file: an interrupt that lands while
    :func:`urfb_common.atomic_path` creates one, before it has noted the name, leaves it behind
    (seen once in CI after a SIGTERM). A new run that never finished an epoch leaves nothing
    behind (``s`` is None when the set-up failed, which writes nothing; :func:`run` removes the
    folder if it made it)."""
    remove_stale_temps(out)  # this process holds the folder's lock: every temporary is its own
    if resume or s is None or s.records:
        return
    for name in (CONFIG, LOG, CHECKPOINT, ckpt.BEST):  # a checkpoint saved as Ctrl-C came goes too
        (out / name).unlink(missing_ok=True)
