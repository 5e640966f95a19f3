"""The memory of this process as Linux reports it in ``/proc/self/status``, for the benchmarks
that print peak memory (``bench_step.py`` and ``bench_limit.py`` import it as ``proc_status``: a
script's own folder is on ``sys.path``)."""

from __future__ import annotations


def status_mib(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS now, VmHWM peak of this process), in MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")
