"""Run folders: the one reader and writer of ``config.json`` and ``log.jsonl``.

A run folder holds ``config.json`` (the run's :class:`deepnets.training.config.TrainConfig`,
serialised), ``log.jsonl`` (one JSON record per finished epoch) and ``checkpoint.pt`` (see
:mod:`deepnets.training.checkpoint`). Everything that reads runs -- training, evaluation, the suite
and the figures -- reads them through this module, which needs no torch.

While a process trains in a folder it holds ``.lock`` there (:func:`claim_folder`), so that a
second training (or suite) started into the same folder stops at once instead of overwriting
the first one's files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from urfb_common import atomic_write_text

__all__ = ["CHECKPOINT", "CONFIG", "LOCK", "LOG", "RENAMED_KEYS", "FolderBusy", "RunError",
           "check_not_busy", "claim_folder", "data_dir_from_run", "find_data_dir", "read_config",
           "read_json", "read_log", "with_current_keys", "write_config", "write_log"]

CONFIG = "config.json"
LOG = "log.jsonl"
CHECKPOINT = "checkpoint.pt"
LOCK = ".lock"
#: ``config.json`` keys renamed in schema 3 (old name -> name today): the run's untied and frozen
#: layers took the names the network's own config (``net``) gives them.
RENAMED_KEYS = {"untie": "untied", "freeze": "frozen"}


class RunError(ValueError):
    """A run folder that is missing, incomplete or inconsistent; the message names the file."""


class FolderBusy(RunError):
    """Another process holds the folder's lock (it is training there)."""


@contextlib.contextmanager
def claim_folder(folder: str | Path, flag: str = "--out") -> Iterator[None]:
    """Hold ``folder``'s lock file ``.lock`` (created, with the folder, if missing) until the
    block ends; raise :class:`FolderBusy` at once if another process holds it.

    The lock is ``flock(2)`` on the file, not the file's existence, so the kernel drops it when
    its holder dies: after a ``kill -9`` the ``.lock`` left behind (it names the dead pid) is
    simply locked again by the next start. On release the file is removed while still locked;
    a process that opened it just before must then see that its file is no longer the one at
    ``.lock``, and tries again.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # BlockingIOError: held by a live process
            raise _busy(folder, fd, flag) from None
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = -1
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)  # the last holder removed it between our open and our lock
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def check_not_busy(folder: str | Path, flag: str = "--out") -> None:
    """Raise :class:`FolderBusy` if another process holds ``folder``'s lock (no side effect:
    nothing is created or claimed)."""
    path = Path(folder) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        raise _busy(Path(folder), fd, flag) from None
    os.close(fd)


def _busy(folder: Path, fd: int, flag: str) -> FolderBusy:
    """The error for a folder whose lock (open as ``fd``, closed here) another process holds."""
    holder = os.read(fd, 200).decode(errors="replace").strip()
    os.close(fd)
    by = f" ({holder})" if holder else ""
    return FolderBusy(f"{flag} {folder} is in use by another process{by}: one training at a "
                      "time per folder; wait for it to end or use another folder")


def data_dir_from_run(run_dir: str | Path, data_dir: str) -> str | None:
    """``data_dir`` relative to the run folder (stored beside the path as typed, so that the
    run finds its data from any working directory; never an absolute path of this machine),
    or None where no relative path exists (another drive)."""
    try:
        return os.path.relpath(Path(data_dir).expanduser().resolve(), Path(run_dir).resolve())
    except ValueError:
        return None


def find_data_dir(run_dir: str | Path, config: dict[str, Any]) -> str:
    """The run's data folder: ``data_dir`` as typed when it exists from here, else the one
    that ``data_dir_from_run`` names (relative to this working directory), else as typed."""
    typed = str(config.get("data_dir", ""))
    rel = config.get("data_dir_from_run")
    if Path(typed).expanduser().exists() or not isinstance(rel, str):
        return typed
    found = Path(run_dir) / rel
    return os.path.relpath(found.resolve()) if found.exists() else typed


def with_current_keys(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the keys of older schemas renamed to today's (:data:`RENAMED_KEYS`)."""
    return {RENAMED_KEYS.get(key, key): value for key, value in config.items()}


def read_json(path: Path) -> Any:
    """The JSON value of a run folder's file; :class:`RunError` ("corrupt PATH: ...") when it is
    not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"corrupt {path}: {exc}") from None


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's ``config.json`` as a dict (checked to be a JSON object), with today's key names
    (:func:`with_current_keys`) whatever schema wrote it."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise RunError(f"{path} not found: {run_dir} is not a training run folder")
    data = read_json(path)
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
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise RunError(f"corrupt {path}: {exc}") from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RunError(f"corrupt {path}: line {number} column {exc.colno}: "
                           f"{exc.msg}") from None
        if not isinstance(record, dict):
            raise RunError(f"corrupt {path}: line {number} is not a JSON object (every line "
                           "must be)")
        records.append(record)
    return records


def write_log(run_dir: str | Path, records: list[dict[str, Any]]) -> None:
    """Rewrite ``log.jsonl`` atomically, one JSON object per line; a NaN or infinite number
    (e.g. the correlation of a layer whose W is constant) is written as ``null``, since JSON
    has no NaN."""
    atomic_write_text(Path(run_dir) / LOG, "".join(
        json.dumps(_finite_or_null(r), allow_nan=False) + "\n" for r in records))


def _finite_or_null(value: Any) -> Any:
    """``value`` with every NaN or infinite float (at any depth) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    return value
