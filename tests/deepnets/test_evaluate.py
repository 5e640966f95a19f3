"""deepnets.evaluate: the printed ``split S (N images): loss L error E`` line agrees with a direct
evaluation; the run's own splits refuse other data; every error is one line (exit 2)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import deepnets.evaluate as evaluate_mod
import deepnets.train as train_mod
from deepnets.nn.losses import hinge_loss_value
from deepnets.nn.saturation import saturated_fractions
from deepnets.training.checkpoint import load_network
from deepnets.training.data import Dataset, load_dataset
from deepnets.training.minidata import write_cifar10
from deepnets.training.rundir import read_log

TINY = "conv 4 3x3; maxpool 3; drop .5; full 16; output"


def train_argv(data: Path, run: Path, *extra: str, arch: str = TINY) -> list[str]:
    return ["--arch", arch, "--data-dir", str(data), "--val-size", "8", "--batch-size", "8",
            "--epochs", "2", "--out", str(run), "--quiet", "--device", "cpu", "--probe-size", "4",
            *extra]


@pytest.fixture(scope="module")
def trained(cifar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("eval") / "run"
    assert train_mod.main(train_argv(cifar, run)) == 0
    return run


@pytest.fixture
def run_copy(trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained run that a test may damage."""
    dest = tmp_path / "run"
    dest.mkdir()
    for p in trained.iterdir():
        (dest / p.name).write_bytes(p.read_bytes())
    return dest


def printed(capsys: pytest.CaptureFixture, split: str, n: int, which: str = "best",
            epoch: int | None = None) -> tuple[float, float]:
    out = capsys.readouterr().out
    m = re.fullmatch(rf"split {split} \({n} images\), epoch (\d+) \({which}\): "
                     rf"loss (\d+\.\d{{4}}) error (\d\.\d{{4}})\n", out)
    assert m, out
    assert epoch is None or int(m.group(1)) == epoch, out
    return float(m.group(2)), float(m.group(3))


def one_line_error(capsys: pytest.CaptureFixture, *fragments: str) -> None:
    err = capsys.readouterr().err
    assert err.startswith("deepnets.evaluate: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err


def test_prints_loss_and_error_of_the_test_split(
    cifar: Path, trained: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["--run", str(trained), "--data", "cifar10", "--data-dir", str(cifar), "--split", "test",
            "--which", "last"]
    assert evaluate_mod.main(argv) == 0
    loss, error = printed(capsys, "test", 8, "last", epoch=2)
    net = load_network(trained).eval()
    test = load_dataset("cifar10", cifar, "test")
    with torch.no_grad():
        logits = net(test.x.float() / 255)
    mu = 1 / 9  # the hinge loss's default 1/(C-1)
    assert loss == pytest.approx(float(hinge_loss_value(logits, test.y, mu).mean()), abs=1e-4)
    assert error == pytest.approx(float((logits.argmax(1) != test.y).float().mean()), abs=1e-4)


def test_saturation_prints_each_layers_saturated_share(
    cifar: Path, trained: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["--run", str(trained), "--data", "cifar10", "--data-dir", str(cifar), "--split", "test",
            "--which", "last", "--saturation"]
    assert evaluate_mod.main(argv) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    test = load_dataset("cifar10", cifar, "test")
    want = saturated_fractions(load_network(trained), test.x)
    assert list(want) == ["conv0", "full1"]
    assert line == "saturated units (sigma'(h) = 0): " + ", ".join(
        f"{name} {share:.3f}" for name, share in want.items())


def test_norms_prints_each_layers_w_and_r(cifar: Path, trained: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    argv = ["--run", str(trained), "--data", "cifar10", "--data-dir", str(cifar), "--split", "test",
            "--which", "last", "--norms"]
    assert evaluate_mod.main(argv) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    layers = load_network(trained).weight_layers
    parts = [f"{name} W {float(m.weight.detach().double().norm()):.4g}, "
             f"R {float(m.feedback.double().norm()):.4g}"
             for name, m in zip(("conv0", "full1", "output"), layers)]
    assert line == "Frobenius norms: " + "; ".join(parts)  # full connectivity: no split



def test_norms_split_r_by_ws_mask_at_half_connectivity(cifar: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "half"
    assert train_mod.main(train_argv(cifar, run, "--connectivity", "0.5", "--epochs", "1")) == 0
    capsys.readouterr()
    assert evaluate_mod.main(["--run", str(run), "--which", "last", "--norms"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    output = load_network(run).weight_layers[-1]
    rt = output.feedback_as_weight().detach().double()
    kept = output.mask_weight > 0
    assert line.endswith(f"; output W {float(output.weight.detach().double().norm()):.4g}, "
                         f"R {float(rt.norm()):.4g}, R where W is kept {float(rt[kept].norm()):.4g}, "
                         f"R where W is masked {float(rt[~kept].norm()):.4g}")


def dropout_logits(trained: Path, cifar: Path, seed: int, masks: int
                   ) -> tuple[torch.Tensor, Dataset]:
    """The trained net's test logits with its dropout on, the mean over ``masks`` masks drawn
    from ``seed``; and the test split."""
    net = load_network(trained)
    net.eval()
    net.layers[2].train()  # the drop .5 layer
    test = load_dataset("cifar10", cifar, "test")
    torch.manual_seed(seed)
    with torch.no_grad():
        return sum(net(test.x.float() / 255) for _ in range(masks)) / masks, test


def test_dropout_seed_scores_the_network_a_training_step_computes_with(
    cifar: Path, trained: Path, capsys: pytest.CaptureFixture
) -> None:
    """``--dropout-seed S``: dropout on (masks from S, the same numbers again for the same S),
    as training runs the network; the default scores without it."""
    argv = ["--run", str(trained), "--data", "cifar10", "--data-dir", str(cifar), "--split",
            "test", "--which", "last"]
    assert evaluate_mod.main([*argv, "--dropout-seed", "3"]) == 0
    out = capsys.readouterr().out
    m = re.fullmatch(r"split test \(8 images\), epoch 2 \(last, dropout on \(seed 3\)\): "
                     r"loss (\d+\.\d{4}) error (\d\.\d{4})\n", out)
    assert m, out
    logits, test = dropout_logits(trained, cifar, seed=3, masks=1)
    mu = 1 / 9
    assert float(m.group(1)) == pytest.approx(
        float(hinge_loss_value(logits, test.y, mu).mean()), abs=1e-4)
    assert evaluate_mod.main([*argv, "--dropout-seed", "3"]) == 0
    assert capsys.readouterr().out == out
    assert evaluate_mod.main(argv) == 0
    without, _ = printed(capsys, "test", 8, "last", epoch=2)
    assert without != pytest.approx(float(m.group(1)), abs=1e-4)  # dropout changed the loss
    # --saturation counts with dropout on too: full1 sits after the drop .5 layer
    assert evaluate_mod.main([*argv, "--dropout-seed", "3", "--saturation"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    torch.manual_seed(3)
    want = saturated_fractions(load_network(trained), test.x, dropout=True)
    assert want != saturated_fractions(load_network(trained), test.x)
    assert line == "saturated units (sigma'(h) = 0, dropout on (seed 3)): " + ", ".join(
        f"{name} {share:.3f}" for name, share in want.items())


def test_val_is_the_default_and_reproduces_the_logged_validation_numbers(
    trained: Path, capsys: pytest.CaptureFixture
) -> None:
    log = read_log(trained)
    assert evaluate_mod.main(["--run", str(trained), "--which", "last"]) == 0  # split val
    loss, error = printed(capsys, "val", 8, "last", epoch=2)
    assert loss == pytest.approx(log[-1]["val_loss"], abs=1e-4)
    assert error == pytest.approx(log[-1]["val_error"], abs=1e-4)
    # --which best (the default): the epoch of lowest validation error, the earliest of equals
    vals = [r["val_error"] for r in log]
    chosen = vals.index(min(vals))
    assert evaluate_mod.main(["--run", str(trained)]) == 0
    loss, error = printed(capsys, "val", 8, "best", epoch=chosen + 1)
    assert loss == pytest.approx(log[chosen]["val_loss"], abs=1e-4)
    assert error == pytest.approx(log[chosen]["val_error"], abs=1e-4)


def test_best_is_the_validation_chosen_epoch_not_the_last(
    cifar: Path, run_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """best.pt and the last checkpoint hold different weights when validation chose an earlier
    epoch: scored on the test split, each gives its own network's numbers."""
    other = tmp_path / "other"
    assert train_mod.main(train_argv(cifar, other, "--seed", "3")) == 0
    capsys.readouterr()  # train's summary line
    (run_copy / "best.pt").write_bytes((other / "best.pt").read_bytes())  # other weights
    argv = ["--run", str(run_copy), "--data", "cifar10", "--data-dir", str(cifar),
            "--split", "test"]
    test = load_dataset("cifar10", cifar, "test")
    for which, source in (("best", other), ("last", run_copy)):
        assert evaluate_mod.main([*argv, "--which", which]) == 0
        _, error = printed(capsys, "test", 8, which)
        net = load_network(source, which=which).eval()
        with torch.no_grad():
            want = float((net(test.x.float() / 255).argmax(1) != test.y).float().mean())
        assert error == pytest.approx(want, abs=1e-4)
    (run_copy / "best.pt").unlink()
    assert evaluate_mod.main(argv) == 2
    one_line_error(capsys, "best.pt not found", "--which last")


def test_the_run_s_own_splits_refuse_other_data_unless_forced(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    write_cifar10(other, n=9)
    for split in ("val", "train"):
        assert evaluate_mod.main(["--run", str(trained), "--data-dir", str(other),
                                  "--split", split]) == 2
        one_line_error(capsys, f"--data-dir {other}", "is not the data the run was trained on",
                       "--force-data")
    assert evaluate_mod.main(["--run", str(trained), "--data-dir", str(other), "--split", "val",
                              "--force-data"]) == 0
    printed(capsys, "val", 8)
    # a separate test set is the normal use of other data
    assert evaluate_mod.main(["--run", str(trained), "--data-dir", str(other),
                              "--split", "test"]) == 0
    printed(capsys, "test", 9)


def test_errors_are_one_line(
    cifar: Path, trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert evaluate_mod.main(["--run", str(tmp_path)]) == 2
    one_line_error(capsys, "config.json not found")
    assert evaluate_mod.main(["--run", str(trained), "--data", "cifar100",
                              "--data-dir", str(cifar)]) == 2
    one_line_error(capsys, "cifar-100-python.tar.gz")
    assert evaluate_mod.main(["--run", str(trained), "--split", "valid"]) == 2
    one_line_error(capsys, "has splits ['test', 'train'], not 'valid'")
    assert json.loads((trained / "config.json").read_text())["loss"] == "hinge"


def test_bad_device_is_named(trained: Path, capsys: pytest.CaptureFixture) -> None:
    assert evaluate_mod.main(["--run", str(trained), "--device", "gpu"]) == 2
    err = capsys.readouterr().err
    assert "--device 'gpu' is not a torch device" in err and "corrupt" not in err


def test_a_checkpoint_of_another_network_names_the_shapes(
    cifar: Path, run_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    other = tmp_path / "other"
    assert train_mod.main(train_argv(cifar, other, arch="conv 6 3x3; maxpool 3; full 16; output")) == 0
    (run_copy / "checkpoint.pt").write_bytes((other / "checkpoint.pt").read_bytes())
    assert evaluate_mod.main(["--run", str(run_copy), "--which", "last"]) == 2
    one_line_error(capsys, f"{run_copy / 'checkpoint.pt'} holds a different network",
                   "layers.0.weight (6, 3, 3, 3) here (4, 3, 3, 3)")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "expected a JSON object, found list"),
        ("{", "corrupt"),
        ({"drop": "epochs"}, "missing key 'epochs'"),
        ({"batch_size": "8"}, "key 'batch_size' must be int, found '8'"),
        ({"net": None}, "no 'net' description"),
        ({"net": {"arch": 5}}, "bad 'net' description"),
        ({"sat_scale": 0.25}, "sat_scale is 0.25 but the 'net' description says 0.5"),
    ],
)
def test_a_malformed_config_json_is_a_one_line_error(
    run_copy: Path, capsys: pytest.CaptureFixture, text: object, message: str
) -> None:
    if isinstance(text, dict):
        config = json.loads((run_copy / "config.json").read_text())
        changes = dict(text)
        config.pop(changes.pop("drop", ""), None)
        text = json.dumps({**config, **changes})
    (run_copy / "config.json").write_text(str(text))
    assert evaluate_mod.main(["--run", str(run_copy)]) == 2
    one_line_error(capsys, str(run_copy / "config.json"), message)


def test_a_damaged_zip_member_is_a_one_line_error(
    trained: Path, image_zips: dict[str, Path], capsys: pytest.CaptureFixture
) -> None:
    damaged = image_zips["damaged"]
    argv = ["--run", str(trained), "--data", "imagefolder", "--data-dir", str(damaged),
            "--split", "test"]
    assert evaluate_mod.main(argv) == 2
    one_line_error(capsys, f"corrupt data file {damaged}", "decompressing")
    argv[argv.index(str(damaged))] = str(image_zips["good"])  # the same zip undamaged works
    assert evaluate_mod.main(argv) == 0
    printed(capsys, "test", 20)


def test_data_that_does_not_fit_the_run_is_a_one_line_error(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from deepnets.training.minidata import write_imagefolder

    small = tmp_path / "small"
    small.mkdir()
    write_imagefolder(small, side=8, classes=[f"c{i}" for i in range(10)], per_class=1)
    (small / "train").rename(small / "test")
    assert evaluate_mod.main(["--run", str(trained), "--data", "imagefolder", "--data-dir",
                              str(small), "--split", "test"]) == 2
    one_line_error(capsys, "--data imagefolder (10 classes, images (3, 8, 8)) does not fit the run "
                   "(10 classes, images (3, 32, 32))")


def test_a_split_reader_reads_the_split_once_for_many_runs(
    cifar: Path, trained: Path, run_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``split_reader`` (the suite's --evaluate-test and gpu_check's scoring of many runs): one
    read of the test split, and each run's test.json as if it had read the split itself."""
    from deepnets.experiments import scoring

    alone = [scoring.score_test_split(run, "cifar10", cifar) for run in (trained, run_copy)]
    reads = []
    load_split = scoring.load_split
    monkeypatch.setattr(scoring, "load_split",
                        lambda *a, **k: reads.append(1) or load_split(*a, **k))
    read = scoring.split_reader("cifar10", cifar)
    shared = [scoring.score_test_split(run, "cifar10", cifar, dataset=read(run))
              for run in (trained, run_copy)]
    assert shared == alone and len(reads) == 1
    with pytest.raises(ValueError, match="other than the run's own"):
        scoring.split_reader("cifar10", cifar, "val")


def test_dropout_samples_scores_the_mean_logits_of_k_masks_and_predictions_their_classes(
    cifar: Path, trained: Path, capsys: pytest.CaptureFixture
) -> None:
    """``--dropout-seed S --dropout-samples K``: the logits are the mean over K masks drawn from
    S, batch by batch; ``--predictions`` prints the share of images put in each class by those
    logits, the largest first; ``--saturation`` says it counts under one mask."""
    argv = ["--run", str(trained), "--data", "cifar10", "--data-dir", str(cifar), "--split",
            "test", "--which", "last", "--dropout-seed", "3", "--dropout-samples", "4",
            "--batch-size", "3"]
    assert evaluate_mod.main([*argv, "--predictions", "--saturation"]) == 0
    first, saturation, shares = capsys.readouterr().out.splitlines()
    m = re.fullmatch(r"split test \(8 images\), epoch 2 \(last, dropout on \(seed 3\), mean "
                     r"logits of 4 masks\): loss (\d+\.\d{4}) error (\d\.\d{4})", first)
    assert m, first
    net = load_network(trained)
    net.eval()
    net.layers[2].train()  # the drop .5 layer
    test = load_dataset("cifar10", cifar, "test")
    torch.manual_seed(3)
    with torch.no_grad():
        logits = torch.cat([sum(net(test.x[s:s + 3].float() / 255) for _ in range(4)) / 4
                            for s in (0, 3, 6)])
    assert float(m.group(1)) == pytest.approx(
        float(hinge_loss_value(logits, test.y, 1 / 9).mean()), abs=1e-4)
    assert float(m.group(2)) == pytest.approx(
        float((logits.argmax(1) != test.y).float().mean()), abs=1e-4)
    counts = torch.bincount(logits.argmax(1), minlength=10).tolist()
    order = sorted(range(10), key=lambda c: -counts[c])
    assert shares == ("predicted classes (share of images, dropout on (seed 3), mean logits of "
                      "4 masks): " + ", ".join(f"{test.classes[c]} {counts[c] / 8:.3f}"
                                              for c in order))
    assert saturation.startswith("saturated units (sigma'(h) = 0, dropout on (seed 3), one "
                                 "mask): conv0 ")
    # without dropout: the shares of the plain network's classes
    assert evaluate_mod.main(argv[:-6] + ["--predictions"]) == 0
    plain = capsys.readouterr().out.splitlines()[-1]
    with torch.no_grad():
        counts = torch.bincount(load_network(trained).eval()(test.x.float() / 255).argmax(1),
                                minlength=10).tolist()
    assert plain == "predicted classes (share of images): " + ", ".join(
        f"{test.classes[c]} {counts[c] / 8:.3f}" for c in sorted(range(10), key=lambda c: -counts[c]))


def test_dropout_samples_needs_a_dropout_seed_and_a_positive_count(
    trained: Path, capsys: pytest.CaptureFixture
) -> None:
    assert evaluate_mod.main(["--run", str(trained), "--dropout-samples", "3"]) == 2
    one_line_error(capsys, "--dropout-samples", "--dropout-seed")
    for bad in ("0", "-2", "x"):
        with pytest.raises(SystemExit) as exc:
            evaluate_mod.main(["--run", str(trained), "--dropout-seed", "1",
                               "--dropout-samples", bad])
        assert exc.value.code == 2  # argparse: its usage, then the one error line
        assert "error: argument --dropout-samples: " in capsys.readouterr().err.splitlines()[-1]


def test_dropout_layers_choose_which_dropout_layers_drop(
    cifar: Path, trained: Path, capsys: pytest.CaptureFixture
) -> None:
    """``--dropout-layers 0``: the tiny net's one dropout layer drops, the same numbers as
    ``--dropout-seed`` alone; a layer the net lacks, a negative index, no seed, or
    ``--saturation`` beside it are one-line errors."""
    argv = ["--run", str(trained), "--data", "cifar10", "--data-dir", str(cifar), "--split",
            "test", "--which", "last", "--dropout-seed", "3"]
    assert evaluate_mod.main(argv) == 0
    every = capsys.readouterr().out
    assert evaluate_mod.main([*argv, "--dropout-layers", "0"]) == 0
    chosen = capsys.readouterr().out
    assert chosen == every.replace("dropout on (seed 3)", "dropout on in layers 0 (seed 3)")
    assert evaluate_mod.main([*argv, "--dropout-layers", "1"]) == 2
    one_line_error(capsys, "--dropout-layers 1", "1 dropout layers")
    assert evaluate_mod.main([*argv[:-2], "--dropout-layers", "0"]) == 2
    one_line_error(capsys, "--dropout-layers", "--dropout-seed")
    assert evaluate_mod.main([*argv, "--dropout-layers", "0", "--saturation"]) == 2
    one_line_error(capsys, "--saturation", "--dropout-layers")
    with pytest.raises(SystemExit):
        evaluate_mod.main([*argv, "--dropout-layers", "-1"])
    assert "error: argument --dropout-layers: " in capsys.readouterr().err.splitlines()[-1]
