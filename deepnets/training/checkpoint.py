"""The atomic per-epoch ``checkpoint.pt`` of a run folder (see :mod:`deepnets.training.rundir`), and
``best.pt`` beside it.

A checkpoint holds everything that makes ``--resume`` end bit-identical (on the CPU) to an
uninterrupted run: the network's state (W, R, biases, masks), torch's global RNG state (dropout
draws from it), the CUDA RNG state when trained on a GPU, the data-order generator's state,
the number of finished epochs and the epoch records already logged; with a torch optimizer
(:mod:`deepnets.training.optim`) also its state (momentum buffers, Adam's moments) and its
schedule's; and the config it was trained with (:data:`TRAINED_CONFIG`), which a resume checks
``config.json`` against. R is a parameter since issue 17 (a buffer before): its key and
tensor are the same, so older checkpoints load.

``best.pt`` holds the network's state after the epoch of lowest validation error (the earliest
of equals), with that epoch and error: what validation chooses, to be scored on the test split
(``python -m deepnets.evaluate --which best``). It is written, atomically, before the epoch's
checkpoint, so that a run killed between the two writes it again, the same, on resuming.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepnets.nn.models import MODELS, build_net
from deepnets.nn.network import FeedbackNet
from deepnets.training.rundir import CHECKPOINT, RunError, read_config, read_log
from urfb_common import atomic_file, clipped

__all__ = ["BEST", "TRAINED_CONFIG", "WHICH", "load_best", "load_checkpoint", "load_network",
           "load_state_checked", "save_best", "save_checkpoint"]

BEST = "best.pt"
#: The checkpoint's key for the config of the run that wrote it (``TrainConfig.to_json_dict()``
#: as a JSON string); absent from checkpoints written before it was kept.
TRAINED_CONFIG = "trained_config"
#: Which weights of a run to load: the validation-chosen epoch's or the last epoch's.
WHICH = ("best", "last")


def save_checkpoint(run_dir: str | Path, state: dict[str, Any]) -> None:
    """Write ``checkpoint.pt`` atomically (the old one survives a crash mid-write; a full disk
    raises :class:`urfb_common.NoSpaceError`). torch writes to an open file, not a path, so
    that a failed write keeps its errno (on a path torch reports only "unexpected pos").
    Ctrl-C or SIGTERM (:func:`deepnets.training.stops.sigterm_as_interrupt`) mid-write raises
    ``KeyboardInterrupt``, as anywhere else in a run: torch's zip writer, closed while the
    interrupt unwinds, reports it as a ``RuntimeError`` ("unexpected pos") instead."""
    _save_atomically(Path(run_dir) / CHECKPOINT, state)


def _save_atomically(dest: Path, obj: dict[str, Any]) -> None:
    """``torch.save(obj)`` into ``dest`` through :func:`urfb_common.atomic_file`; an interrupt
    mid-write is raised as the ``KeyboardInterrupt`` it is (torch reports it as a
    ``RuntimeError``)."""
    with atomic_file(dest) as fh:
        try:
            torch.save(obj, fh)
        except RuntimeError as exc:
            interrupt = _interrupt_behind(exc)
            if interrupt is None:
                raise
            raise interrupt from None


def _interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The ``KeyboardInterrupt`` in ``exc``'s chain of causes and contexts, if any."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if isinstance(link, KeyboardInterrupt):
            return link
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return None


def save_best(run_dir: str | Path, epoch: int, val_error: float,
              net_state: dict[str, Any]) -> None:
    """Write ``best.pt`` atomically (as :func:`save_checkpoint`): the network's state after
    ``epoch`` and its validation error. An interrupt mid-write is a ``KeyboardInterrupt`` here
    too (on an H200 a packed grid stopped at its deadline inside this write ended in a
    traceback, not in "interrupted")."""
    _save_atomically(Path(run_dir) / BEST,
                     {"epoch": int(epoch), "val_error": float(val_error), "net": net_state})


def load_best(
    run_dir: str | Path, map_location: str | torch.device = "cpu"
) -> dict[str, Any] | None:
    """``best.pt``'s dict (``epoch``, ``val_error``, ``net``), or ``None`` when there is none."""
    return _load(Path(run_dir) / BEST, map_location, {"epoch", "val_error", "net"},
                 "", "a deepnets.train best-epoch file")


def load_checkpoint(
    run_dir: str | Path, map_location: str | torch.device = "cpu"
) -> dict[str, Any] | None:
    """The checkpoint's dict, or ``None`` when the run has not finished an epoch yet."""
    return _load(Path(run_dir) / CHECKPOINT, map_location, {"net"}, "checkpoint ",
                 "a deepnets.train checkpoint")


def _load(path: Path, map_location: str | torch.device, keys: set[str], kind: str,
          what: str) -> dict[str, Any] | None:
    """The dict saved at ``path`` (None when there is no file), which must hold ``keys``; a
    damaged file is a one-line :class:`RunError` ("corrupt <kind><path>: ...")."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 (torch raises many types for a damaged file)
        # an empty or foreign file gives a bare message ("", or "101", a pickle opcode)
        raise RunError(f"corrupt {kind}{path}: not {what} ({type(exc).__name__}: "
                       f"{clipped(str(exc)) or 'no detail'})") from None
    if not isinstance(state, dict) or not keys <= set(state):
        raise RunError(f"corrupt {kind}{path}: not {what}")
    return state


def load_state_checked(module: nn.Module, state: dict[str, Any], where: str) -> None:
    """``module.load_state_dict(state)``, with a one-line :class:`RunError` naming the entries
    whose shapes differ (or that are missing or unexpected) when ``state`` is another network's."""
    own = module.state_dict()
    problems = [
        f"{k} {tuple(state[k].shape)} here {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(v.shape)
    ]
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing:
        problems.append(f"missing {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}")
    if extra:
        problems.append(f"unexpected {', '.join(extra[:4])}{' ...' if len(extra) > 4 else ''}")
    if problems:
        raise RunError(f"{where} holds a different network: {'; '.join(problems)}")
    module.load_state_dict(state)


def _why_missing(run_dir: str | Path) -> str:
    """Why a checkpoint file of a run folder may be absent, from its log."""
    try:
        epochs = len(read_log(run_dir))
    except RunError:
        epochs = 0
    if not epochs:
        return "the run has not finished an epoch"
    return (f"its log has {epochs} epoch{'s' if epochs > 1 else ''}, so the file was removed or "
            "stayed on the machine that trained the run (checkpoints are not committed)")


def _check_net_agrees(config: dict[str, Any], path: Path) -> None:
    """Refuse a config.json whose ``net`` description (what the checkpoint is built from) and
    top-level settings (what the loss, the data and the figures read) name different values of
    one setting, as an edit by hand of one of them would."""
    for key, value in config["net"].items():
        if key in config and config[key] != value:
            raise RunError(f"{path}: {key} is {config[key]!r} but the 'net' description says "
                           f"{value!r} (edited by hand?); the checkpoint is built from 'net'")


def load_network(run_dir: str | Path, map_location: str | torch.device = "cpu",
                 which: str = "last") -> FeedbackNet:
    """The trained network of a run: its last checkpoint (``which="last"``) or the epoch of
    lowest validation error (``"best"``, ``best.pt``); its frozen layers come back frozen."""
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    config = read_config(run_dir)
    state = load_checkpoint(run_dir, map_location) if which == "last" else None
    if which == "best":
        state = load_best(run_dir, map_location)
        if state is None:
            last = (" use --which last" if (Path(run_dir) / CHECKPOINT).is_file() else
                    f" nor is {CHECKPOINT} there")
            raise RunError(f"{Path(run_dir) / BEST} not found: {_why_missing(run_dir)}, or the "
                           "run has no validation split (--val-size 0) or was trained before the "
                           f"best epoch was kept;{last}")
    if state is None:
        raise RunError(f"{Path(run_dir) / CHECKPOINT} not found: {_why_missing(run_dir)}")
    if not isinstance(config.get("net"), dict):
        raise RunError(f"{Path(run_dir) / 'config.json'}: no 'net' description of the network")
    description = dict(config["net"])
    if description.get("arch") not in MODELS:  # written before the bias option: it had biases
        description.setdefault("bias", True)
        # written before untied layers started replicated: each location drew its own filters
        description.setdefault("untied_init", "independent")
    try:
        net = build_net(**description)
    except (TypeError, ValueError, AttributeError) as exc:
        raise RunError(f"{Path(run_dir) / 'config.json'}: bad 'net' description: {exc}") from None
    _check_net_agrees(config, Path(run_dir) / "config.json")
    where = Path(run_dir) / (BEST if which == "best" else CHECKPOINT)
    load_state_checked(net, state["net"], str(where))
    return net.to(map_location)
