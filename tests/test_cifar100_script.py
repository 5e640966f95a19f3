"""results/cifar10-paper/cifar100.sh: Figure 5's right half (CIFAR-100) in one command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deepnets.experiments.testresult import read_test
from deepnets.training.minidata import write_cifar100

REPO = Path(__file__).parents[1]
SCRIPT = REPO / "results" / "cifar10-paper" / "cifar100.sh"

pytestmark = pytest.mark.skipif(shutil.which("sh") is None, reason="needs sh")


def _script(*args: str, out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(out)}
    return subprocess.run(["sh", str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          check=False)


def test_it_trains_scores_and_draws_every_protocol_of_the_left_half(tmp_path: Path) -> None:
    """Six protocols (one seed, one epoch, a tiny archive here), each run with its test.json
    scored on the archive's own test split and drawn in Figure 5."""
    write_cifar100(tmp_path, n=40, archive=True)
    archive = tmp_path / "cifar-100-python.tar.gz"
    out = tmp_path / "cifar100"
    small = ("--seeds", "0", "--epochs", "1", "--train-size", "20", "--val-size", "10",
             "--batch-size", "10", "--device", "cpu", "--estimate-steps", "0", "--probe-size", "4",
             "--quiet")
    done = _script(str(archive), *small, out=out)
    assert done.returncode == 0, done.stderr
    scored = {p.name: read_test(p) for p in out.glob("*/*") if (p / "config.json").is_file()}
    assert sorted(scored) == sorted(f"simpnet-cifar100-{p}-s0" for p in
                                    ("urfb", "frfb", "urfb-50", "frfb-50", "bp", "bp-h"))
    assert all(r is not None and r["images"] == 40 for r in scored.values())
    assert (out / "figures" / "figure5.png").is_file()


@pytest.mark.parametrize("args, message", [
    ((), "usage: sh results/cifar10-paper/cifar100.sh CIFAR100_ARCHIVE"),
    (("nowhere.tar.gz",), "nowhere.tar.gz: no such file or folder"),
])
def test_bad_input_is_one_line_and_trains_nothing(tmp_path: Path, args: tuple[str, ...],
                                                  message: str) -> None:
    done = _script(*args, out=tmp_path / "cifar100")
    assert done.returncode == 2 and message in done.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "cifar100").exists()
