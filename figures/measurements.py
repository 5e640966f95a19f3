"""``homogeneity.json``: Figure 8's numbers for an untied run, kept in its run folder (no torch).

Checkpoints are not committed, so what Figure 8 measures on a trained untied layer
(:func:`figures.filters.homogeneity`) is written beside ``config.json`` by ``python -m figures
homogeneity`` (:mod:`figures.homogeneity`) and read from there by the report. Its layout::

    {"epoch": E, "layer": i, "trained": t, "start": s, "chance": c, "untied_init": "replicated"}

``trained``: the mean correlation of a channel's filters across the interior locations of the
first untied layer at the last checkpoint (epoch E); ``start``: the same at the run's start;
``chance``: between different channels at one location.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deepnets.training.rundir import RunError, read_json
from urfb_common import atomic_write_text

__all__ = ["HOMOGENEITY", "read_homogeneity", "write_homogeneity"]

HOMOGENEITY = "homogeneity.json"
_KEYS = ("epoch", "layer", "trained", "start", "chance", "untied_init")


def read_homogeneity(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's ``homogeneity.json``, or None when it has none; :class:`RunError` when it
    cannot be read as one."""
    path = Path(run_dir) / HOMOGENEITY
    if not path.is_file():
        return None
    data = read_json(path)
    if not isinstance(data, dict) or any(k not in data for k in _KEYS):
        raise RunError(f"corrupt {path}: not a Figure 8 measurement (keys {', '.join(_KEYS)})")
    numbers = [data[k] for k in _KEYS if k != "untied_init"]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in numbers):
        raise RunError(f"corrupt {path}: {', '.join(_KEYS[:-1])} must be numbers")
    return data


def write_homogeneity(run_dir: str | Path, numbers: dict[str, Any]) -> None:
    """Write ``homogeneity.json`` atomically."""
    atomic_write_text(Path(run_dir) / HOMOGENEITY,
                      json.dumps(numbers, indent=2, sort_keys=True) + "\n")
