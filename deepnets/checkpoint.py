"""Run folders: ``config.json``, ``log.jsonl`` and the atomic per-epoch ``checkpoint.pt``.

A checkpoint holds everything that makes ``--resume`` end bit-identical (on the CPU) to an
uninterrupted run: the network's state (W, R, biases, masks), torch's global RNG state (dropout
draws from it), the CUDA RNG state when trained on a GPU, the data-order generator's state,
the number of finished epochs and the epoch records already logged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from deepnets.network import FeedbackNet
from sims.fileio import atomic_path, atomic_write_text

CONFIG = "config.json"
LOG = "log.jsonl"
CHECKPOINT = "checkpoint.pt"


class RunError(ValueError):
    """A run folder that is missing, incomplete or inconsistent; the message names the file."""


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's ``config.json``."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise RunError(f"{path} not found: {run_dir} is not a training run folder")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunError(f"corrupt {path}: {exc}") from None


def write_config(run_dir: str | Path, config: dict[str, Any]) -> None:
    """Write ``config.json`` atomically."""
    atomic_write_text(Path(run_dir) / CONFIG, json.dumps(config, indent=2, sort_keys=True) + "\n")


def read_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """The epoch records of ``log.jsonl`` (empty when the run has not finished an epoch)."""
    path = Path(run_dir) / LOG
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        return [json.loads(line) for line in lines if line.strip()]
    except json.JSONDecodeError as exc:
        raise RunError(f"corrupt {path}: {exc}") from None


def write_log(run_dir: str | Path, records: list[dict[str, Any]]) -> None:
    """Rewrite ``log.jsonl`` atomically, one JSON object per line."""
    atomic_write_text(Path(run_dir) / LOG, "".join(json.dumps(r) + "\n" for r in records))


def save_checkpoint(run_dir: str | Path, state: dict[str, Any]) -> None:
    """Write ``checkpoint.pt`` atomically (the old one survives a crash mid-write)."""
    with atomic_path(Path(run_dir) / CHECKPOINT) as tmp:
        torch.save(state, tmp)


def load_checkpoint(
    run_dir: str | Path, map_location: str | torch.device = "cpu"
) -> dict[str, Any] | None:
    """The checkpoint's dict, or ``None`` when the run has not finished an epoch yet."""
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 (torch raises many types for a damaged file)
        raise RunError(f"corrupt checkpoint {path}: {exc}") from None


def load_network(run_dir: str | Path, map_location: str | torch.device = "cpu") -> FeedbackNet:
    """The trained network of a run (its last checkpoint); its frozen layers come back frozen."""
    config = read_config(run_dir)
    state = load_checkpoint(run_dir, map_location)
    if state is None:
        raise RunError(f"{Path(run_dir) / CHECKPOINT} not found: the run has not finished an epoch")
    net = FeedbackNet(**config["net"])
    net.load_state_dict(state["net"])
    return net.to(map_location)
