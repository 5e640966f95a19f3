"""benchmarks/gpu_check.sh is ready to run on a lent GPU: its --smoke scale runs end to end here
(on the CPU, where nothing can be captured) and writes every output the GPU run would."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

import deepnets.train as train_mod
from deepnets.experiments.scoring import evaluate_run
from deepnets.experiments.testresult import read_test
from deepnets.training.minidata import write_imagefolder
from deepnets.training.rundir import read_log

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_smoke_writes_every_output(tmp_path: Path) -> None:
    data, test, out, runs = (tmp_path / d for d in ("data", "test", "out", "runs"))
    classes = [f"c{i}" for i in range(10)]
    for folder, seed in ((data, 1), (test, 2)):
        folder.mkdir()
        write_imagefolder(folder, side=32, classes=classes, per_class=5, seed=seed)
    (test / "train").rename(test / "test")  # an image-folder tree with a test split only
    env = {**os.environ, "OUT": str(out), "RUNS": str(runs), "URFB_DATA": str(data),
           "URFB_TEST": str(test), "PYTHON": sys.executable, "BUDGET_S": "200"}
    proc = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--smoke"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {p.name for p in out.iterdir()} == {"machine.txt", "pytest_cuda.log", "gpu_check.log",
                                               "gpu_check.json", "suite.log", "suite-bf16.log",
                                               "runs.tar.gz"}
    assert ("pytest -k 'cuda_graph_replay or cuda_pack or deterministic_cuda': exit 0"
            in (out / "machine.txt").read_text())
    report = json.loads((out / "gpu_check.json").read_text())
    assert max(r["max_abs_diff"] for r in report["agreement"]) == 0.0  # CPU against itself
    assert len(report["step_times"]) == 9 and all("step_s" in r for r in report["step_times"])
    assert all("needs a CUDA device" in r["on_error"] for r in report["step_times"])
    packs = report["pack_times"]  # (b) packed: 2 runs of simpnet and of deepernet, eager here
    assert [(r["arch"], r["runs"]) for r in packs] == [("simpnet", 2), ("deepernet", 2)]
    assert all(r["step_s_per_run"] > 0 and not r["captured"] for r in packs)
    assert report["projections"]["simpnet_grid_of_18_runs_minutes_1000_epochs_packed"] > 0
    ends = report["epoch_end_costs"]  # (b) the rest of an epoch, part by part
    assert [r["arch"] for r in ends] == ["simpnet", "deepernet"]
    assert all(r[f"{part}_s"] > 0 for r in ends for part in (
        "validation", "probe", "saturation", "correlations", "save_best", "save_checkpoint",
        "write_log"))
    assert all(r["checkpoint_bytes"] > 1e6 for r in ends)
    assert report["grid_cuda_graph"] == "off" and report["grids"][0]["status"] == "exit 0"
    assert "--pack 18" in report["grids"][0]["command"]
    protocols = ("bp", "bp-h", "urfb", "frfb", "urfb-50", "frfb-50")
    assert sorted(r["run"] for r in report["paper_scale"]) == sorted(
        f"simpnet-cifar10-{p}-s{s}" for p in protocols for s in range(3))
    assert report["grid_run_epochs"] == 18 and report["grid_run_epochs_per_second"] > 0
    assert report["pack_epoch_seconds"] == max(r["median_epoch_seconds"]
                                               for r in report["paper_scale"])
    bf16 = report["bf16_paired"]  # (c) the bf16 pairs of the grid's urfb and frfb runs
    assert bf16["status"] == "exit 0" and "--precision bf16" in bf16["command"]
    assert sorted(r["run"] for r in bf16["runs"]) == sorted(
        f"simpnet-cifar10-{p}-s{s}" for p in ("urfb", "frfb") for s in range(3))
    assert all(json.loads((runs / "bf16" / r["run"] / "config.json").read_text())["precision"]
               == "bf16" for r in bf16["runs"])
    scores = report["test_scores"]  # (e) every run scored on the test split, once it stopped
    assert sorted(r["run"] for r in scores) == sorted(
        [r["run"] for r in report["paper_scale"]] + [f"bf16/{r['run']}" for r in bf16["runs"]])
    for row in scores:
        result = json.loads((runs / row["run"] / "test.json").read_text())
        assert result["images"] == 50 and result["split"] == "test"
        assert result["best"]["epoch"] == 1 == result["last"]["epoch"]
        assert 0.0 <= row["best_test_error"] == result["best"]["error"] <= 1.0
    with tarfile.open(out / "runs.tar.gz") as tar:
        names = tar.getnames()
    assert len(names) == 72 and not any(n.endswith(".pt") for n in names)  # 18 + 6 runs, 3 files
    assert sum(n.endswith("/test.json") for n in names) == 24
    assert all((runs / r["run"] / "checkpoint.pt").is_file() for r in report["paper_scale"])
    suite_log = (out / "suite.log").read_text()
    assert "trained 18 runs" in suite_log
    assert str(out) not in suite_log and str(runs) not in suite_log  # logged as $OUT, $RUNS


def _gpu_check() -> Any:
    """benchmarks/gpu_check.py as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("_gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scoring_on_the_test_split_survives_a_run_it_cannot_score(
    image_zips: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """(e): every run is scored with its validation-chosen and last weights, as deepnets.evaluate
    scores them; a run without a validation split has no chosen epoch; a run whose checkpoint
    is gone is logged and left out, the others still scored and packed; a second pass keeps
    the scores it finds."""
    gpu_check, data = _gpu_check(), image_zips["good"]
    runs, out = tmp_path / "runs", tmp_path / "out"
    out.mkdir()
    for name, val_size in (("a", "8"), ("b", "0")):
        assert train_mod.main(["--arch", "conv 4 3x3; maxpool 3; full 16; output", "--data",
                               "imagefolder", "--data-dir", str(data), "--val-size", val_size,
                               "--batch-size", "8", "--epochs", "2", "--lr", "0.5", "--out",
                               str(runs / name), "--quiet", "--device", "cpu",
                               "--probe-size", "4"]) == 0
    (runs / "c").mkdir()
    for f in ("config.json", "log.jsonl"):  # a run whose checkpoints are gone
        (runs / "c" / f).write_bytes((runs / "a" / f).read_bytes())
    capsys.readouterr()
    rows = gpu_check.score_runs_on_test(runs, data, "cpu", out)
    assert [r["run"] for r in rows] == ["a", "b"]
    assert "c: not scored (RunError" in capsys.readouterr().out
    a, b = (read_test(runs / n) for n in ("a", "b"))
    assert a is not None and b is not None and not (runs / "c" / "test.json").exists()
    val = [r["val_error"] for r in read_log(runs / "a")]
    assert a["best"]["epoch"] == 1 + val.index(min(val)) and a["last"]["epoch"] == 2
    for which in ("best", "last"):
        want = evaluate_run(runs / "a", "imagefolder", data, "test", "cpu", which=which)
        assert (a[which]["error"], a[which]["loss"]) == pytest.approx((want.error, want.loss))
    assert a["images"] == 20 and "best" not in b and b["last"]["epoch"] == 2
    assert rows[0]["best_test_error"] == a["best"]["error"] and rows[1]["best_epoch"] is None
    with tarfile.open(out / "runs.tar.gz") as tar:
        assert {"gpu-runs/a/test.json", "gpu-runs/b/test.json"} <= set(tar.getnames())
    (runs / "a" / "best.pt").unlink()  # scored already: kept, not scored again
    assert gpu_check.score_runs_on_test(runs, data, "cpu", out) == rows


def test_a_resumed_grid_counts_only_the_epochs_of_its_own_call(tmp_path: Path) -> None:
    """The H200's second call resumed the first's runs and reported 7.6 run-epochs a second,
    the first call's epochs counted in; its own were 4.4 a second."""
    gpu_check = _gpu_check()
    runs, out = tmp_path / "runs", tmp_path / "out"
    out.mkdir()
    record = {"train_seconds": 1.0, "seconds": 1.5, "val_error": 0.5}

    def log_epochs(n: int) -> None:
        for name in ("a", "b"):
            (runs / name).mkdir(parents=True, exist_ok=True)
            (runs / name / "config.json").write_text("{}")
            (runs / name / "log.jsonl").write_text("".join(
                json.dumps({**record, "epoch": e}) + "\n" for e in range(1, n + 1)))

    log_epochs(3)  # the call before: 6 run-epochs
    before = gpu_check.logged_run_epochs(runs)
    log_epochs(5)  # this call: 4 more
    report: dict = {}
    gpu_check.refresh_grid_outputs(argparse.Namespace(runs=runs, out=out), report,
                                   started=gpu_check.time.monotonic() - 2.0, before=before)
    assert (before, report["grid_run_epochs"], report["grid_run_epochs_this_call"]) == (6, 10, 4)
    assert 1.0 < report["grid_run_epochs_per_second"] <= 2.0  # 4 epochs in just over 2 s
