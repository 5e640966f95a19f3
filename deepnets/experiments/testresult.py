"""``test.json``: a run's score on the test split, kept in its run folder (no torch).

The test split is never read during training: ``log.jsonl`` holds training and validation
numbers only. After training, ``python -m deepnets.suite ... --evaluate-test TEST`` scores each
finished run once on TEST and writes this file beside ``config.json``; the figures read it
from there. Its layout::

    {"data_dir": ..., "data": ..., "split": "test", "fingerprint": ..., "images": N,
     "epochs_done": E,
     "best": {"epoch": e, "val_error": v, "loss": ..., "error": ...},   # validation's choice
     "last": {"epoch": E, "val_error": ..., "loss": ..., "error": ...}}

``best`` is absent for a run without a validation split or without ``best.pt``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deepnets.training.rundir import RunError, read_json
from urfb_common import atomic_write_text

__all__ = ["TEST", "read_test", "write_test"]

TEST = "test.json"


def read_test(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's ``test.json`` as a dict, or None when the run has not been scored."""
    path = Path(run_dir) / TEST
    if not path.is_file():
        return None
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("last"), dict):
        raise RunError(f"corrupt {path}: not a deepnets test result")
    return data


def write_test(run_dir: str | Path, result: dict[str, Any]) -> None:
    """Write ``test.json`` atomically."""
    atomic_write_text(Path(run_dir) / TEST, json.dumps(result, indent=2, sort_keys=True) + "\n")
