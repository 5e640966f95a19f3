"""The benchmark scripts refuse arguments that cannot make a measurement, with a one-line error
before any work (issue 19: ``--seeds 0`` and ``--depth 1`` ended in tracebacks, and
``gpu_check.py`` with a missing data zip exited 0; later a file as ``--out`` or ``--runs``
ended in a traceback, and a negative ``--budget-s`` was taken)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CASES = [
    ("bench_depth.py", ["--depth", "1"], "--depth"),
    ("bench_depth.py", ["--seeds", "0"], "--seeds"),
    ("bench_depth.py", ["--widths", "0"], "--widths"),
    ("bench_sweep.py", ["--seeds", "0"], "--seeds"),
    ("bench_sweep.py", ["--points", "1"], "--points"),
    ("gpu_check.py", ["--data", "no/such/train.zip", "--smoke"], "--data"),
    ("gpu_check.py", ["--data", "README.md", "--budget-s", "-5", "--smoke"], "--budget-s"),
    ("gpu_check.py", ["--data", "README.md", "--budget-s", "nan", "--smoke"], "--budget-s"),
    ("gpu_check.py", ["--data", "README.md", "--out", "README.md", "--smoke"], "--out"),
    ("gpu_check.py", ["--data", "README.md", "--runs", "README.md", "--smoke"], "--runs"),
    ("gpu_check.py", ["--data", "README.md", "--test", "no/such/test.zip", "--smoke"], "--test"),
]


@pytest.mark.parametrize("script, argv, flag", CASES, ids=[f"{s} {a[0]} {a[1]}" for s, a, _ in CASES])
def test_benchmark_scripts_refuse_what_cannot_be_measured(tmp_path: Path, script: str,
                                                          argv: list[str], flag: str) -> None:
    extra = ["--out", str(tmp_path / "out")] if script == "gpu_check.py" else []
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *extra, *argv],
                          capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert re.search(rf": error: (argument )?{flag}\b", proc.stderr.strip().splitlines()[-1])
    assert list(tmp_path.iterdir()) == []
