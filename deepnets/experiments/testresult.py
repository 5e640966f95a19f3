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

__all__ = ["TEST", "read_test", "read_test_to_rescore", "write_test"]

TEST = "test.json"


def read_test(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's ``test.json`` as a dict, or None when the run has not been scored;
    :class:`RunError` naming the file and field where a value its readers use is not what
    :func:`write_test` writes (:func:`_problem`)."""
    path = Path(run_dir) / TEST
    if not path.is_file():
        return None
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("last"), dict):
        raise RunError(f"corrupt {path}: not a deepnets test result")
    problem = _problem(data)
    if problem:
        raise RunError(f"corrupt {path}: {problem}")
    return data


def read_test_to_rescore(run_dir: str | Path) -> dict[str, Any] | None:
    """:func:`read_test` for a scorer: a damaged ``test.json`` counts as not scored, so that
    the run is scored again and the file rewritten (the figures refuse it instead)."""
    try:
        return read_test(run_dir)
    except RunError:
        return None


def _count(value: Any, least: int) -> bool:
    """``value`` is an int (not a bool) of at least ``least``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _problem(data: dict[str, Any]) -> str | None:
    """What is wrong where a test result is read (None: nothing): ``epochs_done`` an integer
    >= 0; ``last`` and ``best`` (absent or null for a run without a validation-chosen epoch)
    each an ``epoch`` >= 1 and an ``error`` in [0, 1]."""
    if "epochs_done" in data and not _count(data["epochs_done"], 0):
        return f"epochs_done {data['epochs_done']!r:.40} is not an integer >= 0"
    for key in ("last", "best"):
        part = data.get(key)
        if part is None and key == "best":
            continue
        if not isinstance(part, dict):
            return f"{key} is not an object"
        if not _count(part.get("epoch"), 1):
            return f"{key}.epoch {part.get('epoch')!r:.40} is not an integer >= 1"
        error = part.get("error")
        if (not isinstance(error, (int, float)) or isinstance(error, bool)
                or not 0 <= error <= 1):  # NaN fails the comparison too
            return f"{key}.error {error!r:.40} is not a number in [0, 1]"
    return None


def write_test(run_dir: str | Path, result: dict[str, Any]) -> None:
    """Write ``test.json`` atomically."""
    atomic_write_text(Path(run_dir) / TEST, json.dumps(result, indent=2, sort_keys=True) + "\n")
