"""Atomic file output shared by every package: nothing half-written is ever left on disk.

A writer fills a temporary file in the destination's folder and renames it into place
(``os.replace`` is atomic on POSIX), so a reader sees either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success rename it onto ``dest``.

    The caller writes the whole file to the yielded path (with any library: ``torch.save``,
    ``fig.savefig``, ``np.savetxt``). On an exception the temporary file is removed and
    ``dest`` is left untouched.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp" + dest.suffix, dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_text(dest: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``dest`` atomically (UTF-8)."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_append_line(dest: str | os.PathLike[str], line: str) -> None:
    """Append one line to a text file atomically: the file holds all old lines plus ``line``, or is unchanged."""
    dest = Path(dest)
    old = dest.read_text(encoding="utf-8") if dest.exists() else ""
    atomic_write_text(dest, old + line.rstrip("\n") + "\n")
