"""deepnets.suite: the figures' protocol grids, skipping finished runs, resuming interrupted ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import deepnets.train as train_mod
from deepnets import suite
from deepnets.checkpoint import load_checkpoint, read_config, read_log
from deepnets.minidata import tiny_cifar_folder


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_cifar_folder(tmp_path_factory.mktemp("data"))


def argv(data: Path, out: Path, *figures: str, epochs: int = 2, extra: tuple[str, ...] = ()) -> list[str]:
    return [*figures, "--data", "imagefolder", "--data-dir", str(data), "--out", str(out),
            "--epochs", str(epochs), "--train-subset", "20", "--val-size", "10", "--batch-size", "10",
            "--device", "cpu", "--estimate-steps", "1", "--quiet", *extra]


def test_grids_follow_section_4() -> None:
    names = [s.name for s in suite.grid(5, 1000, 100)]
    assert len(names) == 12 and "simpnet-cifar100-frfb-50" in names and "simpnet-cifar10-bp-h" in names
    assert [s.name for s in suite.grid(8, 1000, 100)] == ["simpnet-cifar10-urfb-untied"]
    assert suite.grid(8, 1000, 100)[0].untie == (0,)
    fig9 = {s.name: s for s in suite.grid(9, 1000, 100)}
    assert len(fig9) == 3 * 2 + 3 * 3
    pre, tied, untied = (fig9[f"deepnet_s-cifar10-urfb{x}"] for x in ("-pre", "", "-untied"))
    assert pre.epochs == 100 and not pre.untie and not pre.freeze
    assert tied.freeze == (0,) and not tied.untie and tied.from_run == pre.name
    assert untied.freeze == (0,) and untied.untie == (1, 2, 3, 4, 5) and untied.from_run == pre.name
    both = suite.grids([4, 10, 11], 5, 1, protocols=["urfb", "frfb", "bp"])
    assert [s.name for s in both] == [
        "simpnet-cifar10-bp", "simpnet-cifar10-urfb", "simpnet-cifar10-frfb",
        "deepnet_s-cifar10-urfb-pre", "deepnet_s-cifar10-urfb-untied",
        "deepnet_s-cifar10-frfb-pre", "deepnet_s-cifar10-frfb-untied"]
    pre_argv = suite.train_argv(untied, Path("runs"), suite.Settings(
        {"cifar10": Path("d")}, "imagefolder", 500, 0.1, 0, 5000, None, "cpu", None, True), False)
    assert pre_argv[pre_argv.index("--untie") + 1] == "1,2,3,4,5"
    assert pre_argv[pre_argv.index("--from") + 1:pre_argv.index("--from") + 4] == [
        str(Path("runs/deepnet_s-cifar10-urfb-pre")), "--copy", "0"]


def test_dry_run_lists_the_runs_and_bad_arguments_exit_2(tmp_path: Path, capsys) -> None:
    assert suite.main(["10", "--dry-run", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "simpnet-cifar10-urfb: 1000 epochs, new" in out and "simpnet-cifar10-frfb: 1000 epochs" in out
    assert not any(tmp_path.iterdir())
    for bad, msg in ((["3"], "argument FIGURE: '3'"), (["4", "--epochs", "0"], "--epochs: must be >= 1"),
                     (["5", "--data-dir", "x"], "argument --cifar100-dir: required"),
                     (["8", "--protocols", "bp-h"], "select no run"),
                     (["10", "--lr", "inf"], "--lr: must be > 0 and finite"),
                     (["10", "--seed", "-1"], "--seed: must be >= 0"),
                     (["10", "--device", "gpu7"], "argument --device 'gpu7' is not a torch device"),
                     (["10", "--out", str(Path(__file__))], "is a file, not a folder")):
        with pytest.raises(SystemExit) as exc:
            suite.main(bad)
        assert exc.value.code == 2 and msg in capsys.readouterr().err
    assert suite.main(["10", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "r")]) == 2
    assert "error: CIFAR-10 not found" in capsys.readouterr().err


def _same_state(a: Path, b: Path) -> None:
    sa, sb = load_checkpoint(a), load_checkpoint(b)
    assert sa["epoch"] == sb["epoch"]
    for key in sa["net"]:
        assert torch.equal(sa["net"][key], sb["net"][key]), key


def test_runs_skip_finished_and_resume_interrupted(data: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert suite.main(argv(data, whole, "10", extra=("--protocols", "urfb"))) == 0
    run = whole / "simpnet-cifar10-urfb"
    assert [r["epoch"] for r in read_log(run)] == [1, 2]
    cfg = read_config(run)
    assert (cfg["epochs"], cfg["train_subset"], cfg["val_size"], cfg["batch_size"]) == (2, 20, 10, 10)
    assert "estimated time for the 1 runs left" in capsys.readouterr().out

    real_epoch = train_mod._train_epoch

    def killed_in_epoch_2(*args, **kwargs):
        if args[5] == 2:  # the epoch number
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(train_mod, "_train_epoch", killed_in_epoch_2)
    assert suite.main(argv(data, broken, "10", extra=("--protocols", "urfb"))) == 130
    assert "interrupted in" in capsys.readouterr().err
    assert [r["epoch"] for r in read_log(broken / "simpnet-cifar10-urfb")] == [1]
    monkeypatch.setattr(train_mod, "_train_epoch", real_epoch)
    capsys.readouterr()
    assert suite.main(argv(data, broken, "10", extra=("--protocols", "urfb"))) == 0
    assert "simpnet-cifar10-urfb: 2 epochs, resume after epoch 1" in capsys.readouterr().out
    _same_state(run, broken / "simpnet-cifar10-urfb")  # resumed == uninterrupted (CPU, same seed)

    calls = []
    monkeypatch.setattr(train_mod, "main", lambda a: calls.append(a) or 0)
    assert suite.main(argv(data, broken, "10", extra=("--protocols", "urfb", "frfb"))) == 0
    out = capsys.readouterr().out
    assert "simpnet-cifar10-urfb: 2 epochs, done" in out and "simpnet-cifar10-frfb: 2 epochs, new" in out
    assert len(calls) == 1 and "simpnet-cifar10-frfb" in calls[0][calls[0].index("--out") + 1]
    assert "--resume" not in calls[0]
    assert calls[0][calls[0].index("--method") + 1] == "frfb"


def test_a_train_subset_larger_than_the_data_is_refused_before_training(
        data: Path, tmp_path: Path, capsys) -> None:
    bad = argv(data, tmp_path, "10", extra=("--train-subset", "31"))  # 40 images, 10 held out
    assert suite.main(bad) == 2
    assert "argument --train-subset: 31 exceeds the 30 training images" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_folder_of_another_scale_is_refused(data: Path, tmp_path: Path, capsys) -> None:
    assert suite.main(argv(data, tmp_path, "10", epochs=1, extra=("--protocols", "frfb"))) == 0
    capsys.readouterr()
    assert suite.main(argv(data, tmp_path, "10", epochs=1, extra=("--protocols", "frfb", "--lr", "0.05"))) == 2
    err = capsys.readouterr().err
    assert "simpnet-cifar10-frfb holds another run: lr=0.1 (asked 0.05)" in err


def test_deepnet_s_protocol_freezes_the_pretrained_first_layer(data: Path, tmp_path: Path) -> None:
    from deepnets.checkpoint import load_network
    from figures.alignment import plot_figure11

    assert suite.main(argv(data, tmp_path / "runs", "11", epochs=1,
                           extra=("--protocols", "urfb", "--estimate-steps", "0"))) == 0
    pre = load_network(tmp_path / "runs" / "deepnet_s-cifar10-urfb-pre")
    new = load_network(tmp_path / "runs" / "deepnet_s-cifar10-urfb-untied")
    assert torch.equal(pre.weight_layers[0].weight, new.weight_layers[0].weight)  # copied, then frozen
    assert new.weight_layers[0].frozen and not new.weight_layers[1].frozen
    assert new.weight_layers[1].weight.dim() == 3  # untied: one filter per location
    sidecar = plot_figure11(tmp_path / "runs", tmp_path / "fig11")[-1].read_text()
    assert "deepnet_s-cifar10-urfb-untied" in sidecar and "untied [1, 2, 3, 4, 5], frozen [0]" in sidecar
