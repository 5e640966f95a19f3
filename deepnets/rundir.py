"""Run folders: the one reader and writer of ``config.json`` and ``log.jsonl``.

A run folder holds ``config.json`` (the run's :class:`deepnets.config.TrainConfig`, serialised),
``log.jsonl`` (one JSON record per finished epoch) and ``checkpoint.pt`` (see
:mod:`deepnets.checkpoint`). Everything that reads runs -- training, evaluation, the suite and
the figures -- reads them through this module, which needs no torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from urfb_common import atomic_write_text

__all__ = ["CHECKPOINT", "CONFIG", "LOG", "RENAMED_KEYS", "RunError", "read_config", "read_log",
           "with_current_keys", "write_config", "write_log"]

CONFIG = "config.json"
LOG = "log.jsonl"
CHECKPOINT = "checkpoint.pt"
#: ``config.json`` keys renamed in schema 3 (old name -> name today): the run's untied and frozen
#: layers took the names the network's own config (``net``) gives them.
RENAMED_KEYS = {"untie": "untied", "freeze": "frozen"}


class RunError(ValueError):
    """A run folder that is missing, incomplete or inconsistent; the message names the file."""


def with_current_keys(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the keys of older schemas renamed to today's (:data:`RENAMED_KEYS`)."""
    return {RENAMED_KEYS.get(key, key): value for key, value in config.items()}


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's ``config.json`` as a dict (checked to be a JSON object), with today's key names
    (:func:`with_current_keys`) whatever schema wrote it."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise RunError(f"{path} not found: {run_dir} is not a training run folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"corrupt {path}: {exc}") from None
    if not isinstance(data, dict):
        raise RunError(f"corrupt {path}: expected a JSON object, found {type(data).__name__}")
    return with_current_keys(data)


def write_config(run_dir: str | Path, config: dict[str, Any]) -> None:
    """Write ``config.json`` atomically."""
    atomic_write_text(Path(run_dir) / CONFIG, json.dumps(config, indent=2, sort_keys=True) + "\n")


def read_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """The epoch records of ``log.jsonl`` (empty when the run has not finished an epoch)."""
    path = Path(run_dir) / LOG
    if not path.is_file():
        return []
    try:
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                   if line.strip()]
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"corrupt {path}: {exc}") from None
    if not all(isinstance(r, dict) for r in records):
        raise RunError(f"corrupt {path}: every line must be a JSON object")
    return records


def write_log(run_dir: str | Path, records: list[dict[str, Any]]) -> None:
    """Rewrite ``log.jsonl`` atomically, one JSON object per line."""
    atomic_write_text(Path(run_dir) / LOG, "".join(json.dumps(r) + "\n" for r in records))
