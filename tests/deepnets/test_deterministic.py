"""``deterministic``: training under torch's deterministic algorithms (the same numbers on every
rerun on a GPU), a setting of how the run is computed, not of the run itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from deepnets import suite
from deepnets.experiments import grid as suite_grid
from deepnets.experiments import runs
from deepnets.train import main as train_main
from deepnets.training import trainer
from deepnets.training.config import TrainConfig
from deepnets.training.rundir import read_log
from figures.same_runs import TIMINGS

TINY = "conv 4 3x3; maxpool 3; full 8; output"


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
        "implementation; train without --deterministic" in err, err
    assert not (tmp_path / "run").exists()  # a run that failed before its first epoch
    assert not torch.are_deterministic_algorithms_enabled()


def test_the_suite_passes_it_and_resumes_a_run_of_the_other_setting(
    cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = suite_grid.grid(4, 3, 1)[0].with_seed(0)
    s = runs.Settings({"cifar10": Path("d")}, "imagefolder", 500, 0.1, 5000, None, "cpu", None,
                      True, deterministic=True)
    made = runs.train_config(spec, tmp_path, s)
    assert made.deterministic
    folder = tmp_path / spec.name
    folder.mkdir()
    plain = made.replace(deterministic=False)
    (folder / "config.json").write_text(json.dumps(plain.to_json_dict()))
    assert runs.run_state(spec, tmp_path, s) == ("resume", 0)  # how it runs, not which run
    made_settings: list[runs.Settings] = []
    monkeypatch.setattr(suite, "Settings",
                        lambda *a, **k: made_settings.append(runs.Settings(*a, **k))
                        or made_settings[-1])
    assert suite.main(["4", "--epochs", "1", "--data", "cifar10", "--data-dir", str(cifar),
                       "--val-size", "8", "--out", str(tmp_path / "grid"), "--deterministic",
                       "--dry-run"]) == 0
    assert [x.deterministic for x in made_settings] == [True]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", ["urfb", "bp"])
def test_deterministic_cuda_runs_are_the_same_number_for_number(
    cifar: Path, tmp_path: Path, method: str
) -> None:
    """On a GPU two runs of one seed give the same log only with --deterministic (without it,
    cuDNN's kernels may sum in another order: results/cifar10-paper-h200-run2/README.md)."""
    made = [tmp_path / f"run{i}" for i in range(2)]
    for run in made:
        assert train_main(_argv(cifar, run, "--deterministic", "--method", method, epochs=2,
                                device="cuda")) == 0
    assert _numbers(made[0]) == _numbers(made[1])
