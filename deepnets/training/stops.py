"""How the training CLIs stop when told to or when memory runs out.

* ``SIGTERM`` (``kill``, a batch system's stop) is handled like Ctrl-C: it raises
  ``KeyboardInterrupt`` in the main thread, so the run's atomic writers remove their temporary
  files, the last checkpoint is named and the process exits with ``128 + signal`` (143).
* Running out of memory has several faces: Python's ``MemoryError``, CUDA's
  ``torch.OutOfMemoryError`` and, for a CPU tensor that cannot be allocated (e.g. under
  ``ulimit -v``), a plain ``RuntimeError`` from torch's ``DefaultCPUAllocator``.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

import torch

__all__ = ["Stop", "out_of_memory", "sigterm_as_interrupt"]

#: Texts of torch's RuntimeError when a CPU allocation fails.
_CPU_ALLOCATION_FAILED = ("DefaultCPUAllocator", "can't allocate memory", "not enough memory")


@dataclass
class Stop:
    """The signal that stopped the process (None: none, or Ctrl-C's SIGINT)."""

    signum: int | None = None

    def exit_status(self) -> int:
        """``128 + signal``: 130 after Ctrl-C, 143 after SIGTERM."""
        return 128 + (self.signum or signal.SIGINT)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[Stop]:
    """While the block runs (in the main thread), SIGTERM raises ``KeyboardInterrupt``."""
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.signum = signum
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, old)


def out_of_memory(exc: BaseException) -> str:
    """A one-line "out of memory" message when ``exc`` says memory ran out; any other error is
    raised again (the CLIs catch ``MemoryError`` and ``RuntimeError`` and call this)."""
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or (
        isinstance(exc, RuntimeError) and any(t in str(exc) for t in _CPU_ALLOCATION_FAILED)
    ):
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"out of memory: {first[:200]}"
    raise exc
