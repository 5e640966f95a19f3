"""deepnets.evaluate: the printed ``loss L error E`` line agrees with a direct evaluation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import deepnets.evaluate as evaluate_mod
import deepnets.train as train_mod
from deepnets.checkpoint import load_network, read_log
from deepnets.data import load_dataset
from deepnets.losses import hinge_loss_value
from deepnets.minidata import write_cifar10

TINY = "conv 4 3x3; maxpool 3; drop .5; full 16; output"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("eval")
    (root / "data").mkdir()
    write_cifar10(root / "data", n=8)
    run = root / "run"
    assert (
        train_mod.main(
            [
                "--arch",
                TINY,
                "--data-dir",
                str(root / "data"),
                "--val-size",
                "8",
                "--batch-size",
                "8",
                "--epochs",
                "2",
                "--out",
                str(run),
                "--quiet",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    return root / "data", run


def printed(capsys: pytest.CaptureFixture) -> tuple[float, float]:
    out = capsys.readouterr().out
    m = re.fullmatch(r"loss (\d+\.\d{4}) error (\d\.\d{4})\n", out)
    assert m, out
    return float(m.group(1)), float(m.group(2))


def test_prints_loss_and_error_of_the_test_split(
    trained: tuple[Path, Path], capsys: pytest.CaptureFixture
) -> None:
    data, run = trained
    assert (
        evaluate_mod.main(
            ["--run", str(run), "--data", "cifar10", "--data-dir", str(data), "--split", "test"]
        )
        == 0
    )
    loss, error = printed(capsys)
    net = load_network(run).eval()
    test = load_dataset("cifar10", data, "test")
    with torch.no_grad():
        logits = net(test.x.float() / 255)
    mu = 1 / 9  # the hinge loss's default 1/(C-1)
    assert loss == pytest.approx(float(hinge_loss_value(logits, test.y, mu).mean()), abs=1e-4)
    assert error == pytest.approx(float((logits.argmax(1) != test.y).float().mean()), abs=1e-4)


def test_val_split_reproduces_the_logged_validation_numbers(
    trained: tuple[Path, Path], capsys: pytest.CaptureFixture
) -> None:
    _, run = trained
    assert evaluate_mod.main(["--run", str(run), "--split", "val"]) == 0  # data: the run's own
    loss, error = printed(capsys)
    last = read_log(run)[-1]
    assert loss == pytest.approx(last["val_loss"], abs=1e-4) and error == pytest.approx(
        last["val_error"], abs=1e-4
    )


def test_errors_are_one_line(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data, run = trained
    assert evaluate_mod.main(["--run", str(tmp_path)]) == 2
    assert "config.json not found" in capsys.readouterr().err
    assert (
        evaluate_mod.main(["--run", str(run), "--data", "cifar100", "--data-dir", str(data)]) == 2
    )
    assert "cifar-100-python.tar.gz" in capsys.readouterr().err
    assert json.loads((run / "config.json").read_text())["loss"] == "hinge"


def test_bad_device_is_named(trained: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    _, run = trained
    assert evaluate_mod.main(["--run", str(run), "--device", "gpu"]) == 2
    err = capsys.readouterr().err
    assert "--device 'gpu' is not a torch device" in err and "corrupt" not in err
