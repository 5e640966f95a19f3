"""deepnets.suite: the figures' protocol grids, skipping finished runs, resuming interrupted ones,
paired seeds, and one-line errors for data it cannot use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from deepnets import suite
from deepnets.experiments import grid as suite_grid
from deepnets.experiments import runs
from deepnets.nn.policy import resolve_precision
from deepnets.training import capture, trainer
from deepnets.training.checkpoint import load_checkpoint, load_network
from deepnets.training.minidata import tiny_cifar_folder
from deepnets.training.rundir import read_config, read_log


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_cifar_folder(tmp_path_factory.mktemp("data"))  # 10 classes x 4 images


def argv(data: Path, out: Path, *figures: str, epochs: int = 2,
         extra: tuple[str, ...] = ()) -> list[str]:
    return [*figures, "--data", "imagefolder", "--data-dir", str(data), "--out", str(out),
            "--epochs", str(epochs), "--train-size", "20", "--val-size", "10", "--batch-size",
            "10", "--device", "cpu", "--estimate-steps", "1", "--probe-size", "4", "--quiet",
            *extra]


def one_line_error(capsys: pytest.CaptureFixture, *fragments: str) -> None:
    err = capsys.readouterr().err
    assert err.startswith("python -m deepnets.suite: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err


def settings(**kw) -> runs.Settings:
    base = {"data_dirs": {"cifar10": Path("d")}, "cifar10_kind": "imagefolder",
            "batch_size": 500, "lr": 0.1, "val_size": 5000, "train_size": None, "device": "cpu",
            "dataset_label": None, "quiet": True}
    return runs.Settings(**{**base, **kw})


def test_grids_follow_section_4() -> None:
    names = [s.name for s in suite_grid.grid(5, 1000, 100)]
    assert len(names) == 12 and "simpnet-cifar100-frfb-50" in names and "simpnet-cifar10-bp-h" in names
    assert [s.name for s in suite_grid.grid(8, 1000, 100)] == ["simpnet-cifar10-urfb-untied"]
    assert suite_grid.grid(8, 1000, 100)[0].untied == (0,)
    fig9 = {s.name: s for s in suite_grid.grid(9, 1000, 100)}
    assert len(fig9) == 4 * 2 + 4 * 3  # BP, BP-H, URFB, FRFB: simpnet tied and untied, deepnet_s
    assert "simpnet-cifar10-bp-h-untied" in fig9
    pre, tied, untied = (fig9[f"deepnet_s-cifar10-urfb{x}"] for x in ("-pre", "", "-untied"))
    assert pre.epochs == 100 and not pre.untied and not pre.frozen
    assert tied.frozen == (0,) and not tied.untied and tied.from_run == pre.name
    assert untied.frozen == (0,) and untied.untied == (1, 2, 3, 4, 5) and untied.from_run == pre.name
    both = suite_grid.grids([4, 10, 11], 5, 1, protocols=["urfb", "frfb", "bp"])
    assert [s.name for s in both] == [
        "simpnet-cifar10-bp", "simpnet-cifar10-urfb", "simpnet-cifar10-frfb",
        "deepnet_s-cifar10-urfb-pre", "deepnet_s-cifar10-urfb-untied",
        "deepnet_s-cifar10-frfb-pre", "deepnet_s-cifar10-frfb-untied"]


def test_train_config_of_a_grid_run() -> None:
    untied = {s.name: s for s in suite_grid.grid(9, 1000, 100)}["deepnet_s-cifar10-urfb-untied"]
    spec = untied.with_seed(3)
    assert spec.name == "deepnet_s-cifar10-urfb-untied-s3"
    cfg = runs.train_config(spec, Path("runs"), settings())
    assert cfg.untied == (1, 2, 3, 4, 5) and cfg.frozen == (0,) and cfg.copy == (0,)
    assert cfg.from_run == str(Path("runs/deepnet_s-cifar10-urfb-pre-s3"))
    assert (cfg.seed, cfg.split_seed, cfg.method, cfg.epsilon, cfg.data) == (3, 0, "urfb", 1.0,
                                                                             "imagefolder")
    frfb50 = {s.name: s for s in suite_grid.grid(4, 10, 1)}["simpnet-cifar10-frfb-50"]
    cfg = runs.train_config(frfb50.with_seed(0), Path("runs"), settings(train_size=7))
    assert (cfg.method, cfg.connectivity, cfg.epsilon, cfg.train_size) == ("frfb", 0.5, None, 7)
    bp = {s.name: s for s in suite_grid.grid(4, 10, 1)}["simpnet-cifar10-bp"]
    assert runs.train_config(bp, Path("runs"), settings()).loss == "softmax"


def test_dry_run_lists_the_runs_and_bad_arguments_exit_2(tmp_path: Path, capsys) -> None:
    assert suite.main(["10", "--dry-run", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "simpnet-cifar10-urfb-s0: 1000 epochs, new" in out
    assert "simpnet-cifar10-frfb-s0: 1000 epochs" in out
    assert ", precision fp32):" in out.splitlines()[0]  # the plan says what new runs compute in
    assert not any(tmp_path.iterdir())
    assert suite.main(["10", "--dry-run", "--out", str(tmp_path), "--precision", "auto",
                       "--device", "cpu"]) == 0
    assert f", precision auto ({resolve_precision('auto', 'cpu')} here)):" in capsys.readouterr().out
    for bad, msg in ((["3"], "argument FIGURE: '3'"), (["4", "--epochs", "0"], "--epochs: must be >= 1"),
                     (["5", "--data-dir", "x"], "argument --cifar100-dir: required"),
                     (["8", "--protocols", "bp-h"], "select no run"),
                     (["10", "--lr", "inf"], "--lr: must be > 0 and finite"),
                     (["10", "--seeds", "-1"], "argument --seeds: each seed must be in 0..2**63-1"),
                     (["10", "--seeds", str(2**63)], "argument --seeds: each seed must be in"),
                     (["10", "--device", "gpu7"], "argument --device 'gpu7' is not a torch device"),
                     (["10", "--device", "cpu", "--cuda-graph", "on"],
                      "argument --cuda-graph on needs a CUDA device (--device is cpu)"),
                     (["10", "--out", str(Path(__file__))], "exists and is not a folder")):
        with pytest.raises(SystemExit) as exc:
            suite.main(bad)
        assert exc.value.code == 2 and msg in capsys.readouterr().err
    assert suite.main(["10", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "r")]) == 2
    one_line_error(capsys, "CIFAR-10 not found")


def _same_state(a: Path, b: Path) -> None:
    sa, sb = load_checkpoint(a), load_checkpoint(b)
    assert sa is not None and sb is not None and sa["epoch"] == sb["epoch"]
    for key in sa["net"]:
        assert torch.equal(sa["net"][key], sb["net"][key]), key


def test_runs_skip_finished_and_resume_interrupted(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    urfb = ("--protocols", "urfb")
    assert suite.main(argv(data, whole, "10", extra=urfb)) == 0
    run = whole / "simpnet-cifar10-urfb-s0"
    assert [r["epoch"] for r in read_log(run)] == [1, 2]
    cfg = read_config(run)
    assert (cfg["epochs"], cfg["train_size"], cfg["val_size"], cfg["batch_size"]) == (2, 20, 10, 10)
    assert "estimated time for the 1 runs left" in capsys.readouterr().out

    real, calls = capture.train_step_on_device, []

    def killed_in_epoch_2(*a: object, **k: object) -> object:
        calls.append(1)
        if len(calls) == 3:  # 2 steps per epoch: the first step of epoch 2
            raise KeyboardInterrupt
        return real(*a, **k)

    with monkeypatch.context() as m:
        m.setattr(capture, "train_step_on_device", killed_in_epoch_2)
        assert suite.main(argv(data, broken, "10", extra=(*urfb, "--estimate-steps", "0"))) == 130
    err = capsys.readouterr().err
    assert f"{broken / 'simpnet-cifar10-urfb-s0' / 'checkpoint.pt'} keeps epoch 1" in err
    assert "rerun the same command to resume the grid" in err
    assert "--resume" not in err  # the suite has no --resume (issue 19)
    assert [r["epoch"] for r in read_log(broken / "simpnet-cifar10-urfb-s0")] == [1]
    assert suite.main(argv(data, broken, "10", extra=urfb)) == 0
    assert "simpnet-cifar10-urfb-s0: 2 epochs, resume after epoch 1" in capsys.readouterr().out
    _same_state(run, broken / "simpnet-cifar10-urfb-s0")  # resumed == uninterrupted (CPU)

    trained = []

    def fake_run(cfg, out, *, resume=False, quiet=False, force_data=False):
        trained.append((cfg, Path(out), resume))

    monkeypatch.setattr(runs, "run", fake_run)
    assert suite.main(argv(data, broken, "10", extra=("--protocols", "urfb", "frfb"))) == 0
    out = capsys.readouterr().out
    assert "simpnet-cifar10-urfb-s0: 2 epochs, done" in out
    assert "simpnet-cifar10-frfb-s0: 2 epochs, new" in out
    [(cfg, folder, resume)] = trained
    assert folder == broken / "simpnet-cifar10-frfb-s0" and not resume
    assert (cfg.method, cfg.epochs, cfg.train_size) == ("frfb", 2, 20)


def test_seeds_make_paired_runs(data: Path, tmp_path: Path) -> None:
    """--seeds 0 1: the same held-out validation images, different weights."""
    assert suite.main(argv(data, tmp_path, "10", epochs=1,
                           extra=("--protocols", "frfb", "--seeds", "0", "1"))) == 0
    runs = [tmp_path / f"simpnet-cifar10-frfb-s{seed}" for seed in (0, 1)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [r.name for r in runs]
    configs = [trainer.stored_config(r) for r in runs]
    assert [c.seed for c in configs] == [0, 1] and configs[0].split_seed == configs[1].split_seed
    splits = [trainer.training_split(c) for c in configs]
    assert torch.equal(splits[0][1].x, splits[1][1].x) and torch.equal(splits[0][1].y, splits[1][1].y)
    assert torch.equal(splits[0][0].x, splits[1][0].x)  # the same training images too
    first = [load_network(r).weight_layers[0] for r in runs]
    assert not torch.equal(first[0].weight, first[1].weight)
    assert not torch.equal(first[0].feedback, first[1].feedback)


def test_a_train_size_larger_than_the_data_is_refused_before_training(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for flag in ("--train-size", "--train-subset"):
        bad = argv(data, tmp_path, "10", extra=(flag, "31"))  # 40 images, 10 held out
        assert suite.main(bad) == 2
        one_line_error(capsys, "argument --train-size: 31 exceeds the 30 training images")
    assert not any(tmp_path.iterdir())


def test_a_folder_of_another_scale_is_refused(data: Path, tmp_path: Path, capsys) -> None:
    frfb = ("--protocols", "frfb")
    assert suite.main(argv(data, tmp_path, "10", epochs=1, extra=frfb)) == 0
    capsys.readouterr()
    assert suite.main(argv(data, tmp_path, "10", epochs=1, extra=(*frfb, "--lr", "0.05"))) == 2
    one_line_error(capsys, "simpnet-cifar10-frfb-s0 holds another run: lr=0.1 (asked 0.05)")


def test_an_untied_run_started_independently_is_continued_with_its_flag(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    independent = ("--untied-init", "independent")
    assert suite.main(argv(data, tmp_path, "8", epochs=1, extra=independent)) == 0
    capsys.readouterr()
    assert suite.main(argv(data, tmp_path, "8", epochs=2)) == 2
    one_line_error(capsys, "untied_init='independent' (asked 'replicated')",
                   "pass --untied-init independent to continue it")
    assert suite.main(argv(data, tmp_path, "8", epochs=2, extra=independent)) == 0


def test_a_malformed_config_json_in_the_grid_is_a_one_line_error(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    frfb = ("--protocols", "frfb")
    assert suite.main(argv(data, tmp_path, "10", epochs=1, extra=frfb)) == 0
    config = tmp_path / "simpnet-cifar10-frfb-s0" / "config.json"
    good = json.loads(config.read_text())
    for text, message in (("[]", "expected a JSON object"), ("{", "corrupt"),
                          (json.dumps({**good, "seed": "zero"}), "key 'seed' must be int")):
        config.write_text(text)
        capsys.readouterr()
        assert suite.main(argv(data, tmp_path, "10", epochs=2, extra=frfb)) == 2
        one_line_error(capsys, str(config), message)


@pytest.mark.parametrize("estimate_steps", ["1", "0"])
def test_a_zip_holding_one_class_is_refused(
    image_zips: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture, estimate_steps: str
) -> None:
    bad = argv(image_zips["one_class"], tmp_path / "runs", "10",
               extra=("--protocols", "urfb", "--train-size", "4", "--val-size", "4",
                      "--estimate-steps", estimate_steps))
    assert suite.main(bad) == 2
    one_line_error(capsys, f"{image_zips['one_class']} holds 1 class; a classifier needs at least 2")
    assert not list((tmp_path / "runs").rglob("*.json*"))  # no half-made run folder


@pytest.mark.parametrize("estimate_steps", ["1", "0"])
def test_a_damaged_zip_member_is_a_one_line_error(
    image_zips: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture, estimate_steps: str
) -> None:
    bad = argv(image_zips["damaged"], tmp_path / "runs", "10",
               extra=("--protocols", "urfb", "--estimate-steps", estimate_steps))
    assert suite.main(bad) == 2
    one_line_error(capsys, f"corrupt data file {image_zips['damaged']}", "decompressing")
    assert not list((tmp_path / "runs").rglob("*.json*"))


def test_a_zip_without_data_imagefolder_says_which_data_to_use(
    image_zips: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bad = argv(image_zips["good"], tmp_path / "runs", "10", extra=("--protocols", "urfb"))
    bad.remove("--data")
    bad.remove("imagefolder")
    assert suite.main(bad) == 2
    one_line_error(capsys, "is a zip archive", "use --data imagefolder")


def test_deepnet_s_protocol_freezes_the_pretrained_first_layer(data: Path, tmp_path: Path) -> None:
    from figures.alignment import plot_figure11

    assert suite.main(argv(data, tmp_path / "runs", "11", epochs=1,
                           extra=("--protocols", "urfb", "--estimate-steps", "0"))) == 0
    pre = load_network(tmp_path / "runs" / "deepnet_s-cifar10-urfb-pre-s0")
    new = load_network(tmp_path / "runs" / "deepnet_s-cifar10-urfb-untied-s0")
    assert torch.equal(pre.weight_layers[0].weight, new.weight_layers[0].weight)  # copied, then frozen
    assert new.weight_layers[0].frozen and not new.weight_layers[1].frozen
    assert new.weight_layers[1].weight.dim() == 3  # untied: one filter per location
    sidecar = plot_figure11(tmp_path / "runs", tmp_path / "fig11")[-1].read_text()
    assert "deepnet_s-cifar10-urfb-untied-s0" in sidecar
    assert "untied [1, 2, 3, 4, 5], frozen [0]" in sidecar


def test_grid_runs_follow_the_papers_protocol_unless_told() -> None:
    """Remark 1's sequential order and no biases by default; --update-order and --bias
    reproduce the older runs' settings."""
    spec = suite_grid.grid(10, 3, 1)[0]
    cfg = runs.train_config(spec, Path("runs"), settings())
    assert (cfg.update_order, cfg.bias) == ("sequential", False)
    old = runs.train_config(spec, Path("runs"), settings(update_order="simultaneous", bias=True))
    assert (old.update_order, old.bias) == ("simultaneous", True)
    args = suite.build_parser().parse_args(["10"])
    assert (args.update_order, args.bias) == ("sequential", False)


def test_the_untied_start_is_part_of_untied_runs_only(tmp_path: Path) -> None:
    """Figure 9's grid mixes tied and untied runs: a folder of runs made with
    ``--untied-init independent`` goes on under either flag for its tied runs, and only its
    untied runs ask for the flag they were made with."""
    specs = {s.name: s.with_seed(0) for s in suite_grid.grid(9, 3, 1) if s.arch == "simpnet"}
    tied, untied = specs["simpnet-cifar10-urfb"], specs["simpnet-cifar10-urfb-untied"]
    for spec in (tied, untied):
        folder = tmp_path / spec.name
        folder.mkdir()
        made = runs.train_config(spec, tmp_path, settings(untied_init="independent"))
        (folder / "config.json").write_text(json.dumps(made.to_json_dict()))
    for flag in ("independent", "replicated"):
        assert runs.run_state(tied, tmp_path, settings(untied_init=flag)) == ("resume", 0)
    assert runs.run_state(untied, tmp_path, settings(untied_init="independent")) == ("resume", 0)
    with pytest.raises(suite_grid.SuiteError, match="pass --untied-init independent"):
        runs.run_state(untied, tmp_path, settings())


def test_a_run_of_the_older_defaults_is_named_and_kept_with_its_flags(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    older = ("--protocols", "frfb", "--update-order", "simultaneous", "--bias")
    assert suite.main(argv(data, tmp_path, "10", epochs=1, extra=older)) == 0
    capsys.readouterr()
    assert suite.main(argv(data, tmp_path, "10", epochs=1, extra=("--protocols", "frfb"))) == 2
    one_line_error(capsys, "update_order='simultaneous' (asked 'sequential')",
                   "bias=True (asked False)", "pass --update-order simultaneous --bias")
    assert suite.main(argv(data, tmp_path, "10", epochs=1, extra=(*older, "--dry-run"))) == 0
    assert "simpnet-cifar10-frfb-s0: 1 epochs, done" in capsys.readouterr().out


def _test_split(root: Path) -> Path:
    """An image-folder tree whose only split is ``test``: 10 classes x 2 other images."""
    from deepnets.training.minidata import write_imagefolder

    root.mkdir()
    write_imagefolder(root, side=32, classes=[f"class{c}" for c in range(10)], per_class=2, seed=9)
    (root / "train").rename(root / "test")
    return root


def test_evaluate_test_scores_each_finished_run_once_into_test_json(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from deepnets.experiments.scoring import evaluate_run
    from deepnets.experiments.testresult import read_test

    test_dir = _test_split(tmp_path / "test")
    out = tmp_path / "runs"
    grid = argv(data, out, "10", epochs=3, extra=("--evaluate-test", str(test_dir)))
    assert suite.main(grid) == 0
    printed = capsys.readouterr().out
    assert "scored 2 run(s) on the test split" in printed
    for name in ("simpnet-cifar10-urfb-s0", "simpnet-cifar10-frfb-s0"):
        run = out / name
        result = read_test(run)
        assert result is not None and result["images"] == 20 and result["epochs_done"] == 3
        vals = [r["val_error"] for r in read_log(run)]
        assert result["best"]["epoch"] == 1 + vals.index(min(vals))  # ties: the earliest
        assert result["best"]["val_error"] == min(vals) and result["last"]["epoch"] == 3
        for which in ("best", "last"):
            score = evaluate_run(run, "imagefolder", test_dir, "test", which=which)
            assert result[which]["error"] == score.error and result[which]["loss"] == score.loss
        assert not any("test" in key for r in read_log(run) for key in r)  # not in the log
        assert f"{name}: epoch {result['best']['epoch']} (validation" in printed
    missing = argv(data, tmp_path / "other", "10", extra=("--evaluate-test", str(tmp_path / "no")))
    with pytest.raises(SystemExit) as exc:  # refused before any training
        suite.main(missing)
    assert exc.value.code == 2 and not (tmp_path / "other").exists()
    assert "argument --evaluate-test" in capsys.readouterr().err
    before = (out / "simpnet-cifar10-urfb-s0" / "test.json").stat().st_mtime_ns
    assert suite.main(grid) == 0  # nothing to train, nothing to score again
    assert "scored 0 run(s)" in capsys.readouterr().out
    assert (out / "simpnet-cifar10-urfb-s0" / "test.json").stat().st_mtime_ns == before
    damaged = out / "simpnet-cifar10-urfb-s0" / "test.json"
    good = read_test(damaged.parent)
    damaged.write_text(damaged.read_text().replace('"error": ', '"error": "x", "was": ', 1))
    assert suite.main(grid) == 0  # a damaged test.json is scored again, not an error
    assert "scored 1 run(s)" in capsys.readouterr().out and read_test(damaged.parent) == good


def test_evaluate_test_without_test_scores_each_run_on_its_own_archive(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """CIFAR-100 runs are scored on their own archive's test split (Figure 5's right half);
    image-folder data has no such split and needs TEST, refused before any training."""
    from deepnets.experiments.testresult import read_test
    from deepnets.training.minidata import write_cifar100

    write_cifar100(tmp_path, n=40, archive=True)
    archive = tmp_path / "cifar-100-python.tar.gz"
    out = tmp_path / "runs"
    grid = ["5", "--datasets", "cifar100", "--cifar100-dir", str(archive), "--protocols", "urfb",
            "--out", str(out), "--epochs", "1", "--train-size", "20", "--val-size", "10",
            "--batch-size", "10", "--device", "cpu", "--estimate-steps", "0", "--probe-size",
            "4", "--quiet", "--data", "imagefolder", "--evaluate-test"]
    assert suite.main(grid) == 0  # image-folder CIFAR-10 data: not in this grid, no TEST needed
    result = read_test(out / "simpnet-cifar100-urfb-s0")
    assert result is not None and result["images"] == 40 and result["data_dir"] == str(archive)
    assert f"scored 1 run(s) on the test split of {archive}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        suite.main(argv(data, tmp_path / "other", "10", extra=("--evaluate-test",)))
    assert exc.value.code == 2 and not (tmp_path / "other").exists()
    assert capsys.readouterr().err.splitlines()[-1] == (
        "python -m deepnets.suite: error: argument --evaluate-test: image-folder data needs its "
        "test split named: --evaluate-test TEST (the CIFAR archives hold their own)")


def test_a_figure_right_after_a_bare_evaluate_test_is_named_not_taken_for_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """``--evaluate-test 5 --data-dir ...``: argparse would take 5 for TEST and then say only that
    FIGURE is missing; the error names the figure and the fix. A folder named 5 is a TEST."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        suite.main(["--evaluate-test", "5", "--out", "runs"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "python -m deepnets.suite: error: argument --evaluate-test: '5' would be read as TEST, a "
        "path: put FIGURE first (python -m deepnets.suite 5 ... --evaluate-test) or name the "
        "test split")
    (tmp_path / "5").mkdir()
    with pytest.raises(SystemExit):
        suite.main(["--evaluate-test", "5", "--out", "runs"])
    assert "the following arguments are required: FIGURE" in capsys.readouterr().err


def test_the_estimate_counts_validation_probe_checkpoint_and_set_up() -> None:
    """The estimate had only the SGD steps (1 s estimated, 2.6 s measured for a small run)."""
    times = runs.NetTimes(step=1.0, eval_image=0.01, probe=2.0, epoch_end=0.5, setup=3.0)
    s = settings(batch_size=100, val_size=200)
    per_epoch = 3 * 1.0 + 200 * 0.01 + 2.0 + 0.5  # 250 images: 3 steps
    assert runs.run_seconds(times, 250, s, 2, True) == pytest.approx(
        2 * per_epoch + len(trainer.EARLY_PROBE_STEPS) * 2.0 + 3.0)
    assert runs.run_seconds(times, 250, s, 2, False) == pytest.approx(2 * per_epoch + 3.0)
    spec = suite_grid.grid(10, 2, 1)[0]
    probed = runs.time_network(spec, 10, 8, 4, 1, "cpu")
    assert min(probed.step, probed.eval_image, probed.probe, probed.epoch_end) > 0
    assert runs.time_network(spec, 10, 8, 0, 1, "cpu").probe == 0


def test_the_estimate_times_the_network_the_runs_train(monkeypatch: pytest.MonkeyPatch) -> None:
    """With --no-sigma-prime-down the timed network sends R g down (its pools run apart)."""
    from deepnets.nn import models

    built = []

    def recording(*args, **kwargs):
        net = build(*args, **kwargs)
        built.append(net)
        return net

    build = models.build_net
    monkeypatch.setattr(models, "build_net", recording)
    spec = suite_grid.grid(10, 2, 1)[0]
    for down in (True, False):
        runs.time_network(spec, 10, 8, 0, 1, "cpu", sigma_prime_down=down)
    assert [n.config.get("sigma_prime_down", True) for n in built] == [True, False]


def test_the_estimate_names_the_data_by_its_label(data: Path, tmp_path: Path, capsys) -> None:
    assert suite.main(argv(data, tmp_path / "a", "10", extra=("--protocols", "urfb",
                                                              "--dry-run"))) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("estimated"))
    assert f"loading the data once: image folder {data} " in line and "cifar10" not in line
    assert suite.main(argv(data, tmp_path / "a", "10", extra=(
        "--protocols", "urfb", "--dry-run", "--dataset-label", "CIFAR-10 (JPEG)"))) == 0
    assert "loading the data once: CIFAR-10 (JPEG) " in capsys.readouterr().out
    assert runs.data_label("cifar100", settings()) == "CIFAR-100"
    assert runs.data_label("cifar10", settings(cifar10_kind="cifar10")) == "CIFAR-10"


def test_all_with_figure_numbers_says_what_all_means(capsys: pytest.CaptureFixture) -> None:
    """Issue 19: ``suite all 4`` said "'all' is not 'all' or one of ..."."""
    with pytest.raises(SystemExit) as exc:
        suite.main(["all", "4", "--dry-run"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "python -m deepnets.suite: error: argument FIGURE: 'all' already means every figure "
        "[4, 5, 6, 7, 8, 9, 10, 11]; give 'all' alone or figure numbers")


def test_the_suite_keeps_a_folder_to_its_setting(tmp_path: Path) -> None:
    """A folder of runs made with ``--no-sigma-prime-down`` goes on only with it."""
    spec = suite_grid.grid(10, 3, 1)[0].with_seed(0)
    folder = tmp_path / spec.name
    folder.mkdir()
    made = runs.train_config(spec, tmp_path, settings(sigma_prime_down=False))
    assert made.sigma_prime_down is False
    (folder / "config.json").write_text(json.dumps(made.to_json_dict()))
    assert runs.run_state(spec, tmp_path, settings(sigma_prime_down=False)) == ("resume", 0)
    with pytest.raises(suite_grid.SuiteError, match="made with --no-sigma-prime-down: pass it"):
        runs.run_state(spec, tmp_path, settings())
