"""CPU speed settings of a training process (issue 10): OpenMP threads sleep while they wait,
and the allocator keeps freed memory.

``import deepnets`` sets ``OMP_WAIT_POLICY=PASSIVE`` (unless the variable is set, and only if
torch has not been imported yet, since OpenMP reads it when it loads). By default GNU OpenMP's
idle threads spin for a while at the end of every parallel operator; on a shared machine the
spinning thread holds the core that its descheduled partner needs, and each of the ~100
parallel operators of a step then waits for a time slice. Measured on the 2-core development
machine at load 3-4: a simpnet urfb step 631 ms spinning, 285 ms sleeping (the old code: 1017
against 600 ms); with one thread the setting changes nothing. Sleeping costs a wake-up (tens of
microseconds) per operator on an idle machine.

A training step allocates and frees the same large tensors (activations, their gradients, the
dropout noise: tens of MB each) every step. glibc serves allocations above 32 MB (and, by
default, above its adaptive threshold) with ``mmap`` and returns them to the system on
``free``, so every step page-faults its working set in again: on this 2-core machine that made
an elementwise pass over a 64 MB tensor ~3x slower than the pass itself (``h * 0.5``: 48 ms
against 16 ms). :func:`keep_freed_memory` tells glibc to serve every allocation from the heap
(no ``mmap``) and never to trim it, so that a step reuses the pages of the step before. The
process's resident memory then stays at its peak instead of falling back between steps.

It changes no result (only where memory comes from) and does nothing where glibc's ``mallopt``
is not available (macOS, musl, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_done: bool | None = None


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse (see the module's docstring); idempotent.

    Returns whether the setting is in force (False where ``mallopt`` is unavailable)."""
    global _done
    if _done is None:
        _done = False
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            return False
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        # both return 1 on success; a trim threshold of 2**31 - 1 bytes means "never trim"
        _done = bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)) and bool(mallopt(_M_MMAP_MAX, 0))
    return _done
