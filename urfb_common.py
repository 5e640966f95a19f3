"""Utilities shared by every urfb package (theory, sims, deepnets, figures); imports none of them.

* Atomic file output: a writer fills a temporary file beside the destination and renames it
  into place (``os.replace`` is atomic on POSIX), so a reader sees the old file or the new one,
  never half of one. New files get the permissions the user's umask gives (normally 0644).
* Up-front checks of output paths: a CLI proves that it can write where it was told to *before*
  any computation, and stops with a one-line error naming the flag when it cannot.
* uint8 images -> floats in [0, 1], the paper's only preprocessing (Section 4).
* The default output folders of the quick start (under the git-ignored ``out/``), so that
  ``make sweep`` writes Figure 12's data where ``python -m figures`` reads it; the FIGURE
  arguments (``all`` or numbers) shared by ``python -m figures`` and ``python -m deepnets.suite``;
  the memory left to a process, for CLIs that refuse a job that cannot fit.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "FIGURES_OUT",
    "OUT_ROOT",
    "SWEEP_OUT",
    "TEMP_SUFFIX",
    "OutputPathError",
    "atomic_append_line",
    "atomic_path",
    "atomic_write_text",
    "available_memory",
    "check_out_dir",
    "check_out_file",
    "figure_numbers",
    "images_to_float",
    "remove_stale_temps",
    "require_existing",
    "require_writable",
    "validate_or_exit",
]

#: The git-ignored folder (relative to the working directory) of every CLI's default output.
OUT_ROOT = Path("out")
#: ``python -m sims.epsilon_sweep``'s default ``--out``: its ``curves.csv`` is Figure 12's data.
SWEEP_OUT = OUT_ROOT / "epsilon_sweep"
#: ``python -m figures``' default ``--out``.
FIGURES_OUT = OUT_ROOT / "figures"

#: Every temporary file of :func:`atomic_path` is named ``.<dest name>.<random>.tmp<suffix>``.
TEMP_SUFFIX = ".tmp"


class OutputPathError(ValueError):
    """An output path that cannot be written; the message names the flag and the reason."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success rename it onto ``dest``.

    The caller writes the whole file to the yielded path (with any library: ``torch.save``,
    ``fig.savefig``, ``np.savetxt``). On an exception the temporary file is removed and
    ``dest`` is left untouched. The file ends with mode ``0666 & ~umask``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{dest.name}.", suffix=TEMP_SUFFIX + dest.suffix, dir=dest.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, dest)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_text(dest: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``dest`` atomically (UTF-8)."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_append_line(dest: str | os.PathLike[str], line: str) -> None:
    """Append one line to a text file atomically: all old lines plus ``line``, or unchanged."""
    dest = Path(dest)
    old = dest.read_text(encoding="utf-8") if dest.exists() else ""
    atomic_write_text(dest, old + line.rstrip("\n") + "\n")


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files that an :func:`atomic_path` killed mid-write (``kill -9``)
    left in ``folder``; returns what was removed. Call it when a program (re)starts there."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [
        p
        for p in folder.iterdir()
        if p.is_file() and p.name.startswith(".") and TEMP_SUFFIX in p.suffixes
    ]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def _writable_folder_problem(folder: Path) -> str | None:
    """Why ``folder`` could not be created and written into, or None when it can.

    Tried for real: the missing folders are created, a probe file is written and everything
    created is removed again (permission bits alone do not tell: root passes ``os.access`` on
    ``/proc``, where nothing can be created).
    """
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        return f"{existing} exists and is not a folder"
    created: list[Path] = []
    try:
        for missing in reversed([folder, *folder.parents]):
            if not missing.exists():
                missing.mkdir()
                created.append(missing)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot write there ({exc.strerror or exc})"
    finally:
        for made in reversed(created):
            with contextlib.suppress(OSError):
                made.rmdir()
    return None


def check_out_dir(folder: str | os.PathLike[str], flag: str = "--out") -> None:
    """Raise :class:`OutputPathError` naming ``flag`` unless ``folder`` is, or can become, a
    writable folder. Nothing is left behind by the check."""
    folder = Path(folder).expanduser()
    problem = _writable_folder_problem(folder)
    if problem is not None:
        raise OutputPathError(f"{flag} {folder}: {problem}")


def check_out_file(path: str | os.PathLike[str], flag: str = "--out") -> None:
    """Raise :class:`OutputPathError` naming ``flag`` unless a file can be written at ``path``."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputPathError(f"{flag} {path}: is a folder; give a file name")
    check_out_dir(path.parent if str(path.parent) else Path("."), flag)


def require_writable(parser: Any, flag: str, path: str | os.PathLike[str], *, file: bool = False) -> None:
    """For CLIs: ``parser.error`` (one line, exit 2) naming ``flag`` unless ``path`` (a folder,
    or with ``file=True`` a file) can be written."""
    try:
        (check_out_file if file else check_out_dir)(path, flag)
    except OutputPathError as exc:
        parser.error(str(exc))


def require_existing(parser: Any, flag: str, path: str | os.PathLike[str], *, file: bool = False) -> None:
    """For CLIs: ``parser.error`` (one line, exit 2) naming ``flag`` unless ``path`` is an
    existing folder (with ``file=True``: an existing file)."""
    path = Path(path).expanduser()
    if not path.exists():
        parser.error(f"{flag} {path}: no such {'file' if file else 'folder'}")
    if file and path.is_dir():
        parser.error(f"{flag} {path}: is a folder; give a file in it")
    if not file and not path.is_dir():
        parser.error(f"{flag} {path}: is a file, not a folder")


def validate_or_exit(parser: Any, config: Any) -> None:
    """For CLIs: ``config.validate()``; its ``ValueError("field_name: why")`` becomes
    ``parser.error("--field-name: why")`` (one line, exit 2)."""
    try:
        config.validate()
    except ValueError as exc:
        name, _, why = str(exc).partition(": ")
        parser.error(f"--{name.replace('_', '-')}: {why}")


def images_to_float(x: Any, dtype: Any = None) -> Any:
    """uint8 images (a torch tensor) -> floats in [0, 1] (Section 4: no other preprocessing).

    ``dtype`` defaults to float32; floating-point input is returned unchanged.
    """
    if x.is_floating_point():
        return x
    return (x.float() if dtype is None else x.to(dtype)).div_(255.0)


def figure_numbers(items: Sequence[str], known: Iterable[int]) -> list[int]:
    """The FIGURE arguments of a CLI as sorted numbers: ``all`` or none gives every one of
    ``known``. Raises ValueError with a one-line message naming the first bad item (a CLI
    passes it to ``parser.error``)."""
    known = sorted(known)
    if not items or list(items) == ["all"]:
        return known
    for item in items:
        if not item.isdigit() or int(item) not in known:
            raise ValueError(f"argument FIGURE: {item!r} is not 'all' or one of {known}")
    return sorted({int(item) for item in items})


def available_memory() -> int | None:
    """Bytes of memory a new allocation can still get (``MemAvailable`` of ``/proc/meminfo``,
    else the physical memory); None where the system does not say."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None
