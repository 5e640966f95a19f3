"""``deterministic``: training under torch's deterministic algorithms (the same numbers on every
rerun on a GPU), a setting of how the run is computed, not of the run itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from deepnets import suite
from deepnets.experiments import grid as suite_grid
from deepnets.experiments import runs
from deepnets.experiments.launch import Job
from deepnets.experiments.pack import train_packed
from deepnets.train import main as train_main
from deepnets.training import trainer
from deepnets.training.config import ConfigError, TrainConfig
from deepnets.training.rundir import read_log
from figures.same_runs import TIMINGS

TINY = "conv 4 3x3; maxpool 3; full 8; output"
ROOT = Path(__file__).resolve().parents[2]


def _argv(data: Path, out: Path, *extra: str, epochs: int = 1, device: str = "cpu") -> list[str]:
    return ["--arch", TINY, "--data-dir", str(data), "--val-size", "8", "--batch-size", "8",
            "--epochs", str(epochs), "--out", str(out), "--quiet", "--device", device,
            "--probe-size", "4", *extra]


def _numbers(run: Path) -> list[dict[str, object]]:
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in read_log(run)]


def _stored(run: Path) -> dict[str, object]:
    return json.loads((run / "config.json").read_text())


def test_training_runs_under_deterministic_algorithms_and_restores_the_setting_after(
    cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[bool, bool, bool]] = []
    epoch = trainer._train_epoch

    def watched(*args: object, **kwargs: object) -> object:
        seen.append((torch.are_deterministic_algorithms_enabled(),
                     torch.backends.cudnn.deterministic, torch.backends.mkldnn.deterministic))
        return epoch(*args, **kwargs)

    monkeypatch.setattr(trainer, "_train_epoch", watched)
    assert train_main(_argv(cifar, tmp_path / "on", "--deterministic")) == 0
    assert train_main(_argv(cifar, tmp_path / "off")) == 0
    assert seen == [(True, True, True), (False, False, False)]
    assert not torch.are_deterministic_algorithms_enabled()
    assert not torch.backends.cudnn.deterministic and not torch.backends.mkldnn.deterministic


def test_it_is_stored_when_on_and_changes_no_number_on_the_cpu(cifar: Path, tmp_path: Path) -> None:
    """The CPU's kernels are deterministic already: the same run either way, number for number."""
    on, off = tmp_path / "on", tmp_path / "off"
    assert train_main(_argv(cifar, on, "--deterministic", epochs=2)) == 0
    assert train_main(_argv(cifar, off, epochs=2)) == 0
    assert _stored(on)["deterministic"] is True
    assert "deterministic" not in _stored(off)  # as a run made before the option
    assert _numbers(on) == _numbers(off)
    assert TrainConfig.from_json_dict(_stored(on)).deterministic


def test_a_resumed_run_keeps_its_setting_unless_given_and_is_the_same_run(
    cifar: Path, tmp_path: Path
) -> None:
    run, plain = tmp_path / "run", tmp_path / "plain"
    assert train_main(_argv(cifar, run, "--deterministic")) == 0
    assert train_main(_argv(cifar, run, "--resume", epochs=2)) == 0
    assert _stored(run)["deterministic"] is True
    assert train_main(_argv(cifar, run, "--resume", "--no-deterministic", epochs=3)) == 0
    assert "deterministic" not in _stored(run)
    assert train_main(_argv(cifar, plain, epochs=3)) == 0
    assert _numbers(run) == _numbers(plain)


def test_an_operation_without_a_deterministic_kernel_is_a_one_line_error(
    cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    epoch = trainer._train_epoch

    def with_put(*args: object, **kwargs: object) -> object:
        torch.zeros(3).put_(torch.tensor([0, 0]), torch.ones(2))  # none on the CPU either
        return epoch(*args, **kwargs)

    monkeypatch.setattr(trainer, "_train_epoch", with_put)
    assert train_main(_argv(cifar, tmp_path / "run", "--deterministic")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--deterministic: put_ does not have a deterministic " \
        "implementation; train without it" in err, err
    assert not (tmp_path / "run").exists()  # a run that failed before its first epoch
    assert not torch.are_deterministic_algorithms_enabled()


def test_on_a_gpu_cublas_s_workspace_is_set_where_unset_and_another_is_refused(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked before any CUDA call: no GPU needed."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    with trainer.deterministic_algorithms(True, "cpu"):
        assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    with trainer.deterministic_algorithms(True, "cuda:0"):
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":0:0")
    refused = ("^--deterministic: CUBLAS_WORKSPACE_CONFIG is ':0:0', under which cuBLAS is not "
               "deterministic \\(:4096:8 or :16:8 is;")
    with pytest.raises(ConfigError, match=refused), trainer.deterministic_algorithms(True, "cuda"):
        pass
    assert not torch.are_deterministic_algorithms_enabled()


def test_the_suite_passes_it_and_a_rerun_keeps_each_run_s_own_unless_given(
    cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = suite_grid.grid(4, 3, 1)[0].with_seed(0)

    def settings(deterministic: bool | None) -> runs.Settings:
        return runs.Settings({"cifar10": Path("d")}, "imagefolder", 500, 0.1, 5000, None, "cpu",
                             None, True, deterministic=deterministic)

    assert not runs.train_config(spec, tmp_path, settings(None)).deterministic  # a new run
    made = runs.train_config(spec, tmp_path, settings(True))
    assert made.deterministic
    folder = tmp_path / spec.name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(made.to_json_dict()))
    assert runs.train_config(spec, tmp_path, settings(None)).deterministic  # the run's own
    assert not runs.train_config(spec, tmp_path, settings(False)).deterministic
    assert runs.run_state(spec, tmp_path, settings(False)) == ("resume", 0)  # how, not which run
    made_settings: list[runs.Settings] = []
    monkeypatch.setattr(suite, "Settings",
                        lambda *a, **k: made_settings.append(runs.Settings(*a, **k))
                        or made_settings[-1])
    for flag, want in (("--deterministic", True), ("--no-deterministic", False), (None, None)):
        assert suite.main(["4", "--epochs", "1", "--data", "cifar10", "--data-dir", str(cifar),
                           "--val-size", "8", "--out", str(tmp_path / "grid"), "--dry-run",
                           *([flag] if flag else [])]) == 0
        assert made_settings.pop().deterministic is want


def test_packed_runs_each_step_under_their_own_setting(
    cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[int, set[bool]] = {0: set(), 1: set()}
    epoch = trainer._train_epoch

    def watched(s: trainer._Session, *args: object) -> object:
        steps = epoch(s, *args)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value
            seen[s.cfg.seed].add(torch.are_deterministic_algorithms_enabled())  # in the step
            yield

    monkeypatch.setattr(trainer, "_train_epoch", watched)
    jobs = [Job(f"s{seed}", TrainConfig(epochs=1, data_dir=str(cifar), arch=TINY, seed=seed,
                                        val_size=8, batch_size=8, probe_size=0, device="cpu",
                                        deterministic=seed == 1), tmp_path / f"s{seed}")
            for seed in (0, 1)]
    assert [o.status for o in train_packed(jobs, 2, "cpu", progress=False)] == ["ok", "ok"]
    assert seen == {0: {False}, 1: {True}}
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_deterministic_cuda_runs_are_the_same_number_for_number(cifar: Path, tmp_path: Path) -> None:
    """On a GPU two runs of one seed give the same log with --deterministic (without it, cuDNN's
    kernels may sum in another order: results/cifar10-paper-h200-run2/README.md). Each in a
    process of its own, as deepnets.train runs: cuBLAS reads its workspace setting once."""
    made = [tmp_path / f"run{i}" for i in range(2)]
    for run in made:
        argv = _argv(cifar, run, "--deterministic", epochs=2, device="cuda")  # URFB
        env = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
        subprocess.run([sys.executable, "-m", "deepnets.train", *argv], cwd=ROOT, env=env,
                       check=True, timeout=300)
    assert _numbers(made[0]) == _numbers(made[1])
