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


def _last(argv: list[str], flag: str) -> list[str]:
    """The values after the last ``flag`` of ``argv`` (argparse's last one wins)."""
    i = len(argv) - 1 - argv[::-1].index(flag)
    rest = argv[i + 1:]
    return rest[:next((j for j, a in enumerate(rest) if a.startswith("--")), len(rest))]


def test_each_group_gets_its_epochs_order_and_folder(tmp_path: Path) -> None:
    """What the script hands the suite (a stand-in python records it): the CIFAR-10 half's
    epochs and orders (run.sh steps 8 and 9), the archive made absolute before the script
    leaves the caller's folder (a relative path with a space here, CDPATH exported), and the
    caller's arguments last."""
    calls = tmp_path / "calls"
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{calls}.$$"; echo "{calls}.$$" >> "{calls}"\n')
    fake.chmod(0o755)
    folder = tmp_path / "a b"
    folder.mkdir()
    (folder / "c 100.tar.gz").write_bytes(b"")
    env = {**os.environ, "PYTHON": str(fake), "OUT": str(tmp_path / "out"),
           "CDPATH": str(tmp_path)}
    done = subprocess.run(["sh", str(SCRIPT), "a b/c 100.tar.gz", "--seeds", "0"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    argvs = [Path(f).read_text().splitlines() for f in calls.read_text().split()]
    suites = [a for a in argvs if a[1] == "deepnets.suite"]
    got = {(tuple(_last(a, "--protocols")), _last(a, "--epochs")[0],
            (_last(a, "--update-order") if "--update-order" in a else ["sequential"])[0],
            Path(_last(a, "--out")[0]).name) for a in suites}
    assert got == {(("urfb", "frfb"), "200", "sequential", "runs-200"),
                   (("urfb-50", "frfb-50"), "100", "sequential", "runs"),
                   (("bp", "bp-h"), "200", "simultaneous", "runs-200-simultaneous")}
    assert all(_last(a, "--cifar100-dir") == [str(folder / "c 100.tar.gz")] for a in suites)
    assert all(_last(a, "--seeds") == ["0"] and "--evaluate-test" in a for a in suites)
    figure = next(a for a in argvs if a[1] == "figures")
    assert _last(figure, "--runs") == [str(tmp_path / "out")]
