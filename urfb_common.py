"""Utilities shared by every urfb package (theory, sims, deepnets, figures); imports none of them.

* Atomic file output: a writer fills a temporary file beside the destination and renames it
  into place (``os.replace`` is atomic on POSIX), so a reader sees the old file or the new one,
  never half of one. New files get the permissions the user's umask gives (normally 0644).
  A write that runs out of space (a full disk, a quota, ``ulimit -f``) raises
  :class:`NoSpaceError`, "no space left on <path>", and leaves the old file and no temporary.
* One normalisation of user paths (:func:`user_path`: ``~`` expanded), used by every writer,
  the up-front checks and the ``--out`` flags (:func:`path_arg`, which also refuses an
  empty path).
* Up-front checks of output paths: a CLI proves that it can write where it was told to *before*
  any computation, and stops with a one-line error naming the flag when it cannot.
* The entry of every CLI (:func:`command_line`): a full disk is one line and exit status 1,
  and a terminal that cannot show a character (``PYTHONIOENCODING=ascii``) gets an escape.
* uint8 images -> floats in [0, 1], the paper's only preprocessing (Section 4).
* The default output folders of the quick start (under the git-ignored ``out/``), so that
  ``make sweep`` writes Figure 12's data where ``python -m figures`` reads it; the FIGURE
  arguments (``all`` or numbers) shared by ``python -m figures`` and ``python -m deepnets.suite``;
  the memory left to a process, for CLIs that refuse a job that cannot fit.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import os
import resource
import signal
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = [
    "FIGURES_OUT",
    "OUT_ROOT",
    "SWEEP_OUT",
    "TEMP_SUFFIX",
    "NoSpaceError",
    "OneLineParser",
    "OutputPathError",
    "atomic_append_line",
    "atomic_file",
    "atomic_path",
    "atomic_write_text",
    "available_memory",
    "check_out_dir",
    "check_out_file",
    "clipped",
    "command_line",
    "figure_numbers",
    "images_to_float",
    "path_arg",
    "remove_stale_temps",
    "report_error",
    "require_existing",
    "require_no_folder_at",
    "require_outside",
    "require_writable",
    "user_path",
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


class NoSpaceError(OSError):
    """A write that failed for want of space: a full disk, a quota or the file-size limit
    (``ulimit -f``). The message is one line: ``no space left on <path> (<reason>)``."""


#: errno values that mean "no space for this write".
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
#: The longest file name (bytes) where the system does not say (``NAME_MAX`` of Linux, macOS).
NAME_MAX = 255


#: Longest error line of a CLI's argument parser (:class:`OneLineParser`).
ERROR_MAX = 300


def clipped(text: str, limit: int = 200) -> str:
    """A message (e.g. a library's, which may repeat the input) as one line of at most about
    ``limit`` characters."""
    one = " ".join(text.split())
    return one if len(one) <= limit else f"{one[:limit]}... (cut)"


#: Longest message of :func:`report_error` (room for a long path and the advice after it).
REPORT_MAX = 600


def report_error(prog: str, message: object) -> None:
    """Print a CLI's error as one line on stderr, ``PROG: error: MESSAGE``. A message over
    :data:`REPORT_MAX` characters (a library's may repeat the input whole) keeps its start and
    its end, where the advice usually is."""
    one = " ".join(str(message).split())
    if len(one) > REPORT_MAX:
        one = f"{one[:REPORT_MAX * 2 // 3]} ... (cut) ... {one[-REPORT_MAX // 3:]}"
    print(f"{prog}: error: {one}", file=sys.stderr)


class OneLineParser(argparse.ArgumentParser):
    """The ``ArgumentParser`` of every CLI: its error line stays one short line. argparse
    repeats a bad value whole (``invalid choice: '<100,000 characters>'``); here the message
    is cut to :data:`ERROR_MAX` characters. Sub-parsers (``add_subparsers``) are of this class
    too, as argparse makes them of the parent's class."""

    def error(self, message: str) -> NoReturn:
        super().error(clipped(message, ERROR_MAX))


def user_path(path: str | os.PathLike[str]) -> Path:
    """The one normalisation of a path a user gave: ``~`` and ``~user`` expanded (a shell does
    this only for an unquoted ``~`` at the start of a word, not in ``--out=~/x``)."""
    return Path(os.path.expanduser(os.fspath(path)))


def path_arg(text: str) -> Path:
    """argparse ``type`` of every path flag: :func:`user_path`, refusing an empty path
    (``--out ""`` would otherwise mean the working folder) and a ``~user`` that names no user
    (``os.path.expanduser`` leaves it as it is: a literal ``./~user`` folder would be made)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty; give a file or folder name")
    if text.startswith("~") and os.path.expanduser(text) == text:
        user = clipped(text[1:].split(os.sep, 1)[0], 60)
        why = f"no user {user!r} to expand ~{user}" if user else "no home folder to expand ~"
        raise argparse.ArgumentTypeError(f"{why} (for a file or folder named so, write ./~{user})")
    return user_path(text)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [e.__cause__, e.__context__]


def _no_space_reason(exc: BaseException, tmp: Path | None) -> str | None:
    """Why ``exc`` (raised while writing ``tmp``) is a lack of space, or None when it is not.

    An ``OSError`` with ENOSPC/EFBIG/EDQUOT anywhere in the exception's chain says so (libraries
    wrap it in errors of their own: torch in a ``RuntimeError`` "unexpected pos", matplotlib's
    writers in later errors of their clean-up). Some writers (torch on a path) drop the errno;
    for their ``OSError`` or ``RuntimeError`` the temporary file at the file-size limit, or a
    file system with no free block, tells."""
    for e in _exception_chain(exc):
        if isinstance(e, OSError) and e.errno in NO_SPACE_ERRNOS:
            return os.strerror(e.errno)
    if not isinstance(exc, (OSError, RuntimeError)) or tmp is None:
        return None
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    with contextlib.suppress(OSError):
        if soft != resource.RLIM_INFINITY and tmp.stat().st_size >= soft:
            return os.strerror(errno.EFBIG)
    with contextlib.suppress(OSError):
        if os.statvfs(tmp.parent).f_bavail == 0:
            return os.strerror(errno.ENOSPC)
    return None


def _temp_prefix(name: str, room: int) -> str:
    """``.<name>.`` cut so that the temporary's whole name keeps within ``NAME_MAX`` bytes
    (``room``: the bytes the random part and the suffix take)."""
    raw = os.fsencode(name)[: max(1, NAME_MAX - room - 2)]
    return f".{raw.decode('utf-8', 'ignore') or 'out'}."


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success rename it onto ``dest``.

    The caller writes the whole file to the yielded path (with any library: ``fig.savefig``,
    ``np.savetxt``; for ``torch.save`` use :func:`atomic_file`, so that a full disk keeps its
    errno). On an exception the temporary file is removed and ``dest`` is left untouched; a
    lack of space is raised as :class:`NoSpaceError`. The file ends with mode ``0666 & ~umask``.
    """
    dest = user_path(dest)
    if dest.is_dir():  # os.replace would fail after the whole file was written
        raise OutputPathError(f"{dest} is a folder: the file cannot be written there")
    suffix = TEMP_SUFFIX + dest.suffix
    if len(os.fsencode(suffix)) > NAME_MAX // 2:  # a pathological suffix: not repeated
        suffix = TEMP_SUFFIX
    tmp_path: Path | None = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(dest.name, 8 + len(os.fsencode(suffix))),
                                   suffix=suffix, dir=dest.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, dest)
    except Exception as exc:
        reason = _no_space_reason(exc, tmp_path)
        if reason is None:
            raise
        raise NoSpaceError(f"no space left on {dest} ({reason})") from None
    finally:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_file(dest: str | os.PathLike[str]) -> Iterator[Any]:
    """:func:`atomic_path` with the temporary opened for binary writing: for writers that
    take a file object (``torch.save(state, f)``), whose failed ``write`` then keeps its errno."""
    with atomic_path(dest) as tmp, open(tmp, "wb") as fh:
        yield fh


def atomic_write_text(dest: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``dest`` atomically (UTF-8)."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_append_line(dest: str | os.PathLike[str], line: str) -> None:
    """Append one line to a text file atomically: all old lines plus ``line``, or unchanged."""
    dest = user_path(dest)
    old = dest.read_text(encoding="utf-8") if dest.exists() else ""
    atomic_write_text(dest, old + line.rstrip("\n") + "\n")


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files that an :func:`atomic_path` killed mid-write (``kill -9``)
    left in ``folder``; returns what was removed. Call it when a program (re)starts there."""
    folder = user_path(folder)
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
    while not _exists(existing):
        if existing.parent == existing:
            break
        existing = existing.parent
    if _exists(existing) and not existing.is_dir():
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
        return _no_room(folder)
    except OSError as exc:
        return f"cannot write there ({exc.strerror or exc})"
    finally:
        for made in reversed(created):
            with contextlib.suppress(OSError):
                made.rmdir()


def _no_room(folder: Path) -> str | None:
    """Why no byte can be written in ``folder`` (a full file system, ``ulimit -f 0``), so that
    a CLI says so before its work rather than after it; None when there is room."""
    if resource.getrlimit(resource.RLIMIT_FSIZE)[0] == 0:
        return "no space left: the file-size limit (ulimit -f) is 0"
    try:
        stat = os.statvfs(folder)
        free = stat.f_bfree if os.geteuid() == 0 else stat.f_bavail  # root has the reserve
    except (OSError, AttributeError):  # no statvfs or geteuid (not POSIX)
        return None
    return "no space left on the device" if free == 0 else None


def _exists(path: Path) -> bool:
    """``path.exists()``, False where the path cannot even be looked up (a name too long)."""
    try:
        return path.exists()
    except OSError:
        return False


def _name_max(path: Path) -> int:
    """The longest file name (bytes) the file system of ``path`` (or its nearest existing
    parent) allows."""
    while not _exists(path) and path.parent != path:
        path = path.parent
    try:
        return int(os.pathconf(path, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return NAME_MAX


def _name_problem(path: Path) -> str | None:
    """Why ``path`` cannot name a file or folder: a part longer than its file system allows
    (checked first: ``Path.exists`` itself raises on such a name)."""
    limit = _name_max(path)
    for part in path.parts:
        if len(os.fsencode(part)) > limit:
            return (f"the name {_short(Path(part), 40)} is longer than the {limit} bytes a name "
                    "may have")
    return None


def _short(path: Path, limit: int = 120) -> str:
    """``path`` for a one-line message: a long one is cut in the middle."""
    text = str(path)
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 2:]}"


def check_out_dir(folder: str | os.PathLike[str], flag: str = "--out") -> None:
    """Raise :class:`OutputPathError` naming ``flag`` unless ``folder`` is, or can become, a
    writable folder. Nothing is left behind by the check."""
    folder = user_path(folder)
    problem = _name_problem(folder) or _writable_folder_problem(folder)
    if problem is not None:
        raise OutputPathError(f"{flag} {_short(folder)}: {problem}")


def check_out_file(path: str | os.PathLike[str], flag: str = "--out") -> None:
    """Raise :class:`OutputPathError` naming ``flag`` unless a file can be written at ``path``."""
    path = user_path(path)
    problem = _name_problem(path)
    if problem is not None:
        raise OutputPathError(f"{flag} {_short(path)}: {problem}")
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


def require_no_folder_at(parser: Any, flag: str, folder: str | os.PathLike[str],
                         names: Iterable[str]) -> None:
    """For CLIs that write files of fixed names into the folder ``flag`` names:
    ``parser.error`` (one line, exit 2) when one of ``names`` there is a folder, before any
    work (:func:`atomic_path` would refuse it after the other files were written)."""
    folder = user_path(folder)
    for name in names:
        if (folder / name).is_dir():
            parser.error(f"{flag} {folder}: {name} there is a folder, where that file goes "
                         "(move or remove it)")


def require_outside(parser: Any, flag: str, out: str | os.PathLike[str],
                    inputs: Iterable[str | os.PathLike[str]]) -> None:
    """For CLIs that read runs folders and write into ``out``: ``parser.error`` (one line,
    exit 2) when ``out`` lies inside one of the ``inputs`` folders (it would overwrite a run's
    file, a log say, or sit among the runs it was made from and be read as runs)."""
    target = user_path(out).resolve()
    for folder in inputs:
        if target.is_relative_to(user_path(folder).resolve()):
            parser.error(f"{flag} {out}: inside the runs folder {folder}; what it writes would "
                         "overwrite or sit among the runs it reads (write it elsewhere)")


def require_existing(parser: Any, flag: str, path: str | os.PathLike[str], *, file: bool = False) -> None:
    """For CLIs: ``parser.error`` (one line, exit 2) naming ``flag`` unless ``path`` is an
    existing folder (with ``file=True``: an existing file)."""
    path = user_path(path)
    problem = _name_problem(path)
    if problem is not None:
        parser.error(f"{flag} {_short(path)}: {problem}")
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
    if "all" in items:
        raise ValueError(f"argument FIGURE: 'all' already means every figure {known}; "
                         "give 'all' alone or figure numbers")
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


Main = Callable[..., int]


def _tolerant_streams() -> None:
    """stdout and stderr write an escape (``\\u03b5``) for a character their encoding lacks
    (``PYTHONIOENCODING=ascii``, a C locale) instead of raising UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            with contextlib.suppress(ValueError, OSError, AttributeError):
                stream.reconfigure(errors="backslashreplace")


def _file_size_limit_as_error() -> None:
    """A write past ``ulimit -f`` fails with EFBIG (handled like a full disk) instead of the
    default SIGXFSZ, which kills the process mid-write and leaves its temporary file behind."""
    with contextlib.suppress(AttributeError, ValueError):  # no SIGXFSZ; not the main thread
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _stdout_to_devnull() -> None:
    """Point stdout's file descriptor at ``os.devnull``, so that the interpreter's last flush
    of what a closed pipe did not take raises nothing more (Python's documented recipe)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):  # no descriptor (a StringIO)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def command_line(prog: str) -> Callable[[Main], Main]:
    """Decorate a CLI's ``main(argv) -> int``: the streams print any character
    (:func:`_tolerant_streams`), and a write that runs out of space (:class:`NoSpaceError`,
    raised by :func:`atomic_path`, which kept the old file; ``ulimit -f`` included) or finds a
    folder at its file's path (:class:`OutputPathError`) ends in one line on stderr,
    ``PROG: error: no space left on PATH (...)``, and exit status 1. A stdout closed by its
    reader (``python -m theory | head``) ends the program quietly, with exit status 1; Ctrl-C
    that the tool does not handle itself, with one line and exit status 130 (the outputs are
    written atomically: what was not finished is not there)."""

    def decorate(main: Main) -> Main:
        @functools.wraps(main)
        def entry(*args: Any, **kwargs: Any) -> int:
            _tolerant_streams()
            _file_size_limit_as_error()
            try:
                status = main(*args, **kwargs)
                sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
                return status
            except (NoSpaceError, OutputPathError) as exc:
                report_error(prog, exc)
                return 1
            except BrokenPipeError:
                _stdout_to_devnull()
                return 1
            except KeyboardInterrupt:  # a tool without its own handling (a sweep, the theory)
                print(f"{prog}: interrupted; nothing more was written", file=sys.stderr)
                return 130

        return entry

    return decorate
