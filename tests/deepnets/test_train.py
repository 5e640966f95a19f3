"""deepnets.train on a miniature CIFAR-10: logs, resume, divergence, Ctrl-C, Figure 9's protocol,
and one-line errors (exit 2) for bad input that leave nothing half-written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import deepnets.train as train_mod
from deepnets.nn.alignment import probe_batch
from deepnets.nn.network import feedback_norms
from deepnets.nn.saturation import preactivation_sizes, saturated_fractions
from deepnets.training import capture, trainer
from deepnets.training.checkpoint import TRAINED_CONFIG, load_best, load_checkpoint, load_network
from deepnets.training.config import SCHEMA_VERSION, TrainConfig
from deepnets.training.data import load_dataset, split_train_val
from deepnets.training.minidata import write_cifar10
from deepnets.training.rundir import read_log

TINY = "conv 4 3x3; maxpool 3; drop .5; full 16; drop .3; output"
TWO_CONV = "conv 4 3x3; conv 4 3x3; maxpool 3; full 8; output"


def args(
    cifar: Path, out: Path, *extra: str, epochs: int = 3, arch: str | None = TINY
) -> list[str]:
    return [
        *(["--arch", arch] if arch else []),
        "--data", "cifar10", "--data-dir", str(cifar), "--val-size", "8", "--batch-size", "8",
        "--epochs", str(epochs), "--out", str(out), "--quiet", "--device", "cpu",
        "--probe-size", "4", *extra,
    ]  # fmt: skip


def one_line_error(capsys: pytest.CaptureFixture, *fragments: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def argparse_error(capsys: pytest.CaptureFixture, *fragments: str) -> str:
    """argparse's usage lines, then one error line that names the argument."""
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("python -m deepnets.train: error: argument "), last
    for fragment in fragments:
        assert fragment in last, last
    return last


def assert_same_state(a: Path, b: Path, best: bool = True) -> None:
    sa, sb = load_checkpoint(a), load_checkpoint(b)
    assert sa is not None and sb is not None and sa["epoch"] == sb["epoch"]
    assert sa["net"].keys() == sb["net"].keys()
    for key in sa["net"]:
        assert torch.equal(sa["net"][key], sb["net"][key]), key
    assert torch.equal(sa["torch_rng"], sb["torch_rng"]) and torch.equal(
        sa["order_rng"], sb["order_rng"]
    )
    strip = [{k: v for k, v in r.items() if "seconds" not in k} for r in read_log(a)]
    assert strip == [{k: v for k, v in r.items() if "seconds" not in k} for r in read_log(b)]
    if best:  # the validation-chosen weights too
        ba, bb = load_best(a), load_best(b)
        assert ba is not None and bb is not None
        assert (ba["epoch"], ba["val_error"]) == (bb["epoch"], bb["val_error"])
        for key in ba["net"]:
            assert torch.equal(ba["net"][key], bb["net"][key]), key


def kill_at_call(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """Ctrl-C during the n-th SGD step of the run (counted from 1)."""
    real, calls = capture.train_step_on_device, []

    def step(*a: object, **k: object) -> object:
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(capture, "train_step_on_device", step)


def test_writes_config_log_and_checkpoint(cifar: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert train_mod.main(args(cifar, out, "--method", "urfb", "--seed", "5")) == 0
    config = json.loads((out / "config.json").read_text())
    for key in ("schema_version", "arch", "method", "epsilon", "loss", "connectivity",
                "update_order", "sat_scale", "mu", "lr", "batch_size", "seed", "split_seed",
                "epochs", "train_size", "val_size", "data", "data_dir", "dataset_label",
                "data_fingerprint", "untied", "frozen", "from_run", "output_feedback", "device",
                "probe_size", "net", "weight_layer_names", "classes", "bias", "untied_init"):
        assert key in config, key
    assert config["schema_version"] == SCHEMA_VERSION and config["train_size"] == 32  # 40 - 8 held out
    # the paper's protocol by default: Remark 1's order, no biases (eq. (1))
    assert config["update_order"] == "sequential" and config["bias"] is False
    assert config["net"]["bias"] is False
    assert not any("bias" in k for k in load_network(out).state_dict())
    assert config["sat_scale"] == 0.5 and config["seed"] == 5 and config["dataset_label"] == "CIFAR-10"
    assert config["data_fingerprint"].startswith("40:")
    assert len(config["weight_layer_names"]) == 3 and config["net"]["arch"] == TINY
    log = read_log(out)
    assert [r["epoch"] for r in log] == [1, 2, 3]
    for r in log:
        assert 0 <= r["train_error"] <= 1 and 0 <= r["val_error"] <= 1 and r["seconds"] > 0
    # the logged correlations are those of the network the checkpoint holds (Figures 10-11)
    assert log[-1]["corr"] == pytest.approx(load_network(out).correlations(), abs=1e-12)
    assert log[0]["corr"] != log[-1]["corr"]
    # the share of saturated units, on the probe's images (4 validation images, by the seed)
    val = split_train_val(load_dataset("cifar10", cifar, "train"), 8, config["split_seed"])[1]
    probe_x, _ = probe_batch(val.x, val.y, 4, 5)
    assert log[-1]["saturated"] == pytest.approx(
        saturated_fractions(load_network(out), probe_x), abs=1e-12)
    assert list(log[-1]["saturated"]) == ["conv0", "full1"]  # not the output layer
    assert log[-1]["preactivation"] == pytest.approx(
        preactivation_sizes(load_network(out), probe_x), abs=1e-12)
    logged, held = ([v for pair in norms for v in pair]
                    for norms in (log[-1]["norm"], feedback_norms(load_network(out).weight_layers)))
    assert logged == pytest.approx(held, abs=1e-12)
    assert log[0]["norm"] != log[-1]["norm"]
    assert load_checkpoint(out)["epoch"] == 3  # type: ignore[index]
    # best.pt: the weights of the epoch of lowest validation error, the earliest of equals
    vals = [r["val_error"] for r in log]
    best = load_best(out)
    assert best is not None and best["epoch"] == 1 + vals.index(min(vals))
    assert best["val_error"] == min(vals)
    chosen = load_network(out, which="best").correlations()
    assert chosen == pytest.approx(log[best["epoch"] - 1]["corr"], abs=1e-12)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_output_files_follow_the_umask(cifar: Path, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        assert train_mod.main(args(cifar, tmp_path / "run", epochs=1)) == 0
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "run").iterdir()}
    assert modes == {"config.json": 0o644, "log.jsonl": 0o644, "checkpoint.pt": 0o644,
                     "best.pt": 0o644}


@pytest.mark.parametrize("kill_at_step", [6, 9])  # mid-epoch 2; first step of epoch 3
def test_ctrl_c_then_resume_equals_uninterrupted_run(
    cifar: Path, tmp_path: Path, kill_at_step: int, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert train_mod.main(args(cifar, whole)) == 0
    with monkeypatch.context() as m:
        kill_at_call(m, kill_at_step)
        assert train_mod.main(args(cifar, broken)) == 130
    done = (kill_at_step - 1) // 4  # 4 steps per epoch
    one_line_error(capsys, f"interrupted: {broken / 'checkpoint.pt'} keeps epoch {done}",
                   "--resume")
    assert len(read_log(broken)) == done == load_checkpoint(broken)["epoch"]  # type: ignore[index]
    torch.manual_seed(12345)  # a fresh process would have a different global RNG state
    assert train_mod.main(args(cifar, broken, "--resume")) == 0
    assert_same_state(whole, broken)


def test_ctrl_c_in_the_first_epoch_leaves_nothing(
    cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    kill_at_call(monkeypatch, 2)
    assert train_mod.main(args(cifar, tmp_path / "run")) == 130
    one_line_error(capsys, "interrupted: no epoch had finished, nothing was kept")
    assert not (tmp_path / "run").exists()


def test_ctrl_c_while_saving_names_the_checkpoint_on_disk(
    cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Interrupted while epoch 2's checkpoint is written: the message names epoch 1, which the
    checkpoint on disk holds; interrupted in epoch 1's, nothing is left."""
    real, calls = trainer.ckpt.save_checkpoint, []

    def save(run_dir: Path, state: dict) -> None:
        calls.append(1)
        if len(calls) in (2, 4):
            raise KeyboardInterrupt
        real(run_dir, state)

    monkeypatch.setattr(trainer.ckpt, "save_checkpoint", save)
    assert train_mod.main(args(cifar, tmp_path / "a")) == 130  # saves: 1 ok, 2 interrupted
    one_line_error(capsys, "keeps epoch 1")
    assert load_checkpoint(tmp_path / "a")["epoch"] == 1  # type: ignore[index]
    calls.append(1)
    assert train_mod.main(args(cifar, tmp_path / "b")) == 130  # save 4: epoch 1's
    one_line_error(capsys, "nothing was kept")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("killed_in", ["save_best", "save_checkpoint"])
def test_killed_while_keeping_the_best_epoch_then_resume_keeps_the_same_best(
    cifar: Path, tmp_path: Path, killed_in: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """best.pt is written before the epoch's checkpoint: a run stopped while writing either
    redoes the epoch on resuming and ends with the best.pt of an uninterrupted run. (Seed 1's
    validation error improves in epoch 2, so epoch 2 writes best.pt.)"""
    extra = ("--seed", "1")
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert train_mod.main(args(cifar, whole, *extra)) == 0
    vals = [r["val_error"] for r in read_log(whole)]
    assert vals[1] < vals[0]  # the premise: epoch 2 is a new best
    real, calls = getattr(trainer.ckpt, killed_in), []

    def save(run_dir: Path, *a: object) -> None:
        calls.append(1)
        if len(calls) == 2:  # epoch 2's
            raise KeyboardInterrupt
        real(run_dir, *a)

    with monkeypatch.context() as m:
        m.setattr(trainer.ckpt, killed_in, save)
        assert train_mod.main(args(cifar, broken, *extra)) == 130
    assert load_checkpoint(broken)["epoch"] == 1  # type: ignore[index]
    assert train_mod.main(args(cifar, broken, *extra, "--resume")) == 0
    assert_same_state(whole, broken)


def test_sigkill_of_a_real_process_then_resume(cifar: Path, tmp_path: Path) -> None:
    """A real ``deepnets.train`` process killed by SIGKILL resumes to the uninterrupted state."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    argv = args(cifar, killed, epochs=30)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "deepnets.train", *argv], env=env)
    deadline = time.monotonic() + 60
    while not read_log(killed) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(read_log(killed))
    if done >= 30:
        pytest.skip("the run finished before it could be killed")
    assert train_mod.main(args(cifar, killed, "--resume", epochs=30)) == 0
    assert train_mod.main(args(cifar, whole, epochs=30)) == 0
    assert_same_state(whole, killed)


def test_kill_between_checkpoint_and_log_line(
    cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after epoch 2's checkpoint but before its log line: resume restores the line."""
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert train_mod.main(args(cifar, whole)) == 0
    real_write = trainer.write_log

    def killed(run_dir: Path, records: list) -> None:
        if len(records) == 2:
            raise KeyboardInterrupt
        real_write(run_dir, records)

    with monkeypatch.context() as m:
        m.setattr(trainer, "write_log", killed)
        assert train_mod.main(args(cifar, broken)) == 130
    assert len(read_log(broken)) == 1 and load_checkpoint(broken)["epoch"] == 2  # type: ignore[index]
    assert train_mod.main(args(cifar, broken, "--resume")) == 0
    assert_same_state(whole, broken)


def test_resume_extends_a_finished_run(cifar: Path, tmp_path: Path) -> None:
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert train_mod.main(args(cifar, whole, epochs=3)) == 0
    assert train_mod.main(args(cifar, parts, epochs=1)) == 0
    assert train_mod.main(args(cifar, parts, "--resume", epochs=3)) == 0
    assert_same_state(whole, parts)


def test_same_as_repeats_a_run_number_for_number(
    cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``--same-as RUN`` trains a new run with RUN's settings: the same weights, RNG states, log
    and config (what makes a committed run checkable by rerunning it); --epochs may differ, any
    other setting may not."""
    first, again, longer = tmp_path / "first", tmp_path / "again", tmp_path / "longer"
    assert train_mod.main(args(cifar, first, "--seed", "3", "--method", "urfb", epochs=2)) == 0
    assert train_mod.main(["--same-as", str(first), "--out", str(again), "--quiet"]) == 0
    assert_same_state(first, again)
    assert (first / "config.json").read_text() == (again / "config.json").read_text()
    assert train_mod.main(["--same-as", str(first), "--out", str(longer), "--epochs", "3",
                           "--quiet"]) == 0
    strip = [{k: v for k, v in r.items() if "seconds" not in k} for r in read_log(longer)]
    assert strip[:2] == [{k: v for k, v in r.items() if "seconds" not in k}
                         for r in read_log(first)] and len(strip) == 3
    capsys.readouterr()
    for argv, fragment in (
        (["--seed", "4"], "--seed 4 differs from the run's config.json (3); --same-as repeats"),
        (["--resume"], "--same-as starts a new run; --resume continues the one in --out"),
    ):
        assert train_mod.main(["--same-as", str(first), "--out", str(tmp_path / "x"),
                               *argv]) == 2
        one_line_error(capsys, fragment)
    assert train_mod.main(["--same-as", str(tmp_path / "none"), "--out", str(tmp_path / "y")]) == 2
    one_line_error(capsys, "config.json not found")
    # a run started from another run's weights cannot be repeated: those may have moved on
    started = tmp_path / "started"
    assert train_mod.main(args(cifar, started, "--from", str(first), "--copy", "0",
                               "--method", "urfb", epochs=1)) == 0
    capsys.readouterr()
    assert train_mod.main(["--same-as", str(started), "--out", str(tmp_path / "z")]) == 2
    one_line_error(capsys, "started from the weights of another (--from", "cannot be repeated")
    # other data: refused by its fingerprint, unless --force-data
    other = tmp_path / "other-data"
    write_cifar10(other, n=9)
    same_other = ["--same-as", str(first), "--data-dir", str(other), "--quiet"]
    assert train_mod.main([*same_other, "--out", str(tmp_path / "o1")]) == 2
    one_line_error(capsys, "is not the data the run was trained on")
    assert train_mod.main([*same_other, "--out", str(tmp_path / "o2"), "--force-data"]) == 0


def test_a_run_configured_before_the_papers_defaults_resumes_exactly(
    cifar: Path, tmp_path: Path
) -> None:
    """A run folder written before the defaults became the paper's protocol (schema 2: no
    ``bias`` key, ``update_order`` "simultaneous", a "net" without ``bias``, no best.pt)
    resumes with its own settings and ends bit-identical to an uninterrupted run of them."""
    old_way = ("--update-order", "simultaneous", "--bias")
    whole, old = tmp_path / "whole", tmp_path / "old"
    assert train_mod.main(args(cifar, whole, *old_way, epochs=3)) == 0
    assert train_mod.main(args(cifar, old, *old_way, epochs=1)) == 0
    config = json.loads((old / "config.json").read_text())
    del config["bias"], config["net"]["bias"]
    config["schema_version"] = 2
    (old / "config.json").write_text(json.dumps(config))
    (old / "best.pt").unlink()
    assert any("bias" in k for k in load_network(old).state_dict())  # rebuilt with its biases
    assert train_mod.main(args(cifar, old, "--resume", epochs=3)) == 0
    assert_same_state(whole, old, best=False)
    resumed = json.loads((old / "config.json").read_text())
    assert resumed["update_order"] == "simultaneous" and resumed["bias"] is True
    assert resumed["schema_version"] == SCHEMA_VERSION


def test_an_untied_run_of_schema_3_resumes_exactly_with_its_independent_start(
        cifar: Path, tmp_path: Path) -> None:
    """An untied run written before untied layers started replicated (schema 3: no
    ``untied_init``, every location drawn apart) resumes into the state of an uninterrupted
    ``--untied-init independent`` run, and rebuilds its start as it was drawn."""
    untied = ("--arch", TWO_CONV, "--untied", "0", "--method", "urfb")
    whole, old, paper = tmp_path / "whole", tmp_path / "old", tmp_path / "paper"
    assert train_mod.main(args(cifar, whole, *untied, "--untied-init", "independent",
                               arch=None)) == 0
    assert train_mod.main(args(cifar, paper, *untied, arch=None)) == 0
    assert train_mod.main(args(cifar, old, *untied, "--untied-init", "independent", epochs=1,
                               arch=None)) == 0
    config = json.loads((old / "config.json").read_text())
    del config["untied_init"], config["net"]["untied_init"]
    (old / "config.json").write_text(json.dumps({**config, "schema_version": 3}))
    state = load_checkpoint(old)
    assert state is not None
    kept = {k: v for k, v in json.loads(state[TRAINED_CONFIG]).items() if k != "untied_init"}
    state[TRAINED_CONFIG] = json.dumps({**kept, "schema_version": 3})
    torch.save(state, old / "checkpoint.pt")
    net = load_network(old)
    assert net.config["untied_init"] == "independent"
    assert train_mod.main(args(cifar, old, "--resume", epochs=3, arch=None)) == 0
    assert_same_state(whole, old)
    assert json.loads((old / "config.json").read_text())["untied_init"] == "independent"
    first = [load_checkpoint(r)["net"]["layers.0.weight"] for r in (whole, paper)]
    assert not torch.equal(*first)  # the two starts are two experiments


def test_a_run_with_a_schema_2_config_json_resumes_exactly(cifar: Path, tmp_path: Path) -> None:
    """A run folder written before ``untie``/``freeze`` took the network's names and before the
    paper's defaults (schema 2: no ``bias`` key, biases on every layer, the simultaneous order)
    resumes, with the old flag spellings, into the state of an uninterrupted run."""
    layers = ("--untied", "0", "--frozen", "1", "--update-order", "simultaneous", "--bias")
    whole, old = tmp_path / "whole", tmp_path / "old"
    assert train_mod.main(args(cifar, whole, *layers, epochs=3)) == 0
    assert train_mod.main(args(cifar, old, *layers, epochs=1)) == 0
    config = json.loads((old / "config.json").read_text())
    config["untie"], config["freeze"] = config.pop("untied"), config.pop("frozen")
    del config["bias"], config["net"]["bias"]
    config["schema_version"] = 2
    (old / "config.json").write_text(json.dumps(config))
    assert train_mod.main(args(cifar, old, "--resume", "--untie", "0", "--freeze", "1",
                               epochs=3)) == 0
    assert_same_state(whole, old)
    rewritten = json.loads((old / "config.json").read_text())
    assert rewritten["schema_version"] == SCHEMA_VERSION
    assert (rewritten["untied"], rewritten["frozen"]) == ([0], [1]) == (
        rewritten["net"]["untied"], rewritten["net"]["frozen"])
    assert "untie" not in rewritten and "freeze" not in rewritten
    assert rewritten["update_order"] == "simultaneous" and rewritten["bias"] is True


def test_resume_refuses_changed_settings(
    cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    assert train_mod.main(args(cifar, out, epochs=1)) == 0
    assert train_mod.main(args(cifar, out, "--resume", "--lr", "0.5")) == 2
    one_line_error(capsys, "--lr 0.5 differs from the run's config.json (0.1)")
    assert train_mod.main(args(cifar, out)) == 2
    one_line_error(capsys, "already holds a run; pass --resume")
    assert train_mod.main(args(cifar, out, "--resume", epochs=2)) == 0  # extends it to 2
    capsys.readouterr()
    assert train_mod.main(args(cifar, out, "--resume", epochs=1)) == 2
    one_line_error(capsys, f"--epochs 1 is below the 2 epochs {out} has trained")


def test_a_run_that_diverges_keeps_its_last_finite_checkpoint(
    cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    real, calls = capture.train_step_on_device, []

    def poisoned(net: torch.nn.Module, *a: object, **k: object) -> object:
        calls.append(1)
        if len(calls) == 7:  # epoch 2: the output weights blow up, the loss becomes non-finite
            with torch.no_grad():
                net.weight_layers[-1].weight.fill_(float("inf"))
        return real(net, *a, **k)

    out = tmp_path / "run"
    monkeypatch.setattr(capture, "train_step_on_device", poisoned)
    assert train_mod.main(args(cifar, out)) == 1
    one_line_error(capsys, "non-finite training loss or weights in epoch 2",
                   f"{out / 'checkpoint.pt'} keeps epoch 1, the last finite state")
    assert [r["epoch"] for r in read_log(out)] == [1]
    state = load_checkpoint(out)
    assert state is not None and state["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in state["net"].values() if t.is_floating_point())
    monkeypatch.setattr(capture, "train_step_on_device", real)
    assert train_mod.main(args(cifar, out, "--resume")) == 0  # the kept state trains on


def test_bad_input_is_one_line_exit_2(
    cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert train_mod.main(args(cifar, tmp_path / "a", arch="conv 4 3x3; pool 3; output")) == 2
    one_line_error(capsys, "item 2 ('pool 3')")
    assert train_mod.main(args(tmp_path / "nothing", tmp_path / "b")) == 2
    one_line_error(capsys, "cifar-10-python.tar.gz")
    for flag in ("--train-size", "--train-subset"):  # the old name still works
        assert train_mod.main(args(cifar, tmp_path / "c", flag, "1000")) == 2
        one_line_error(capsys, "--train-size 1000 exceeds the 32 training images")
    assert train_mod.main(args(cifar, tmp_path / "d", "--frozen", "7")) == 2
    one_line_error(capsys, "--frozen [7]: the network has weight layers 0..2")
    with pytest.raises(SystemExit) as exc:
        train_mod.main(args(cifar, tmp_path / "e", "--lr", "-1"))
    assert exc.value.code == 2
    argparse_error(capsys, "--lr", "must be positive")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "extra,arch,message",
    [
        (("--untied", "1"), TINY, "--untied [1]: not conv layers (the conv layers are [0])"),
        ((), "conv 4 3x3; maxpool 3", "--arch 'conv 4 3x3; maxpool 3': the architecture must end"),
        ((), "full 99999999; output", "--arch 'full 99999999; output': a weight layer of shape (99999999, 3072)"),
        (("--lr", "1e300"), TINY, "--lr 1e+300: must be positive and at most 1e6"),
        (("--epsilon", "1e30"), TINY, "--epsilon 1e+30: must be in [0, 1e6]"),
        (("--epsilon", "nan"), TINY, "--epsilon nan: must be in [0, 1e6]"),
        (("--method", "frfb", "--epsilon", "0.5"), TINY, "--epsilon 0.5: applies to --method urfb only"),
        (("--mu", "inf"), TINY, "--mu inf: must be in [0, 1]"),
        (("--connectivity", "1.5"), TINY, "--connectivity 1.5: must be in (0, 1]"),
        (("--device", "gpu7"), TINY, "--device 'gpu7' is not a torch device"),
        (("--device", "meta"), TINY, "--device 'meta': training runs on cpu or cuda (cuda:N) only"),
        (("--device", "mps"), TINY, "--device 'mps': training runs on cpu or cuda (cuda:N) only"),
        (("--device", "xpu:0"), TINY, "--device 'xpu:0': training runs on cpu or cuda"),
        (("--mu", "1e308"), TINY, "--mu 1e+308: must be in [0, 1] (Appendix 1"),
        (("--resume",), TINY, "config.json not found"),
        (("--copy", "0"), TINY, "--copy needs --from RUN_DIR"),
        (("--frozen", "0-2"), TINY, "--frozen [0, 1, 2] freezes every weight layer"),
        (("--force-data",), TINY, "--force-data applies to --resume and --same-as only"),
    ],
)
def test_bad_flag_is_named_in_one_line_exit_2_and_nothing_is_written(
    cifar: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    extra: tuple[str, ...],
    arch: str,
    message: str,
) -> None:
    # (an extra --device overrides args()'s --device cpu: argparse keeps the last one given)
    assert train_mod.main(args(cifar, tmp_path / "run", *extra, arch=arch)) == 2
    one_line_error(capsys, message)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("flag", "value", "fragments"),
    [
        ("--untied", "2-0", ("argument --untied/--untie", "the range 2-0 is reversed")),
        ("--frozen", "2-0", ("argument --frozen/--freeze", "the range 2-0 is reversed")),
        ("--copy", "1,3-2", ("argument --copy", "the range 3-2 is reversed")),
        ("--seed", "99999999999999999999",
         ("argument --seed", "99999999999999999999 is outside 0..9223372036854775807")),
        ("--seed", "-1", ("argument --seed", "outside 0..")),
        ("--cuda-graph", "yes", ("argument --cuda-graph", "invalid choice: 'yes'")),
    ],
)
def test_bad_values_rejected_by_the_parser(
    cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture, flag: str, value: str,
    fragments: tuple[str, ...],
) -> None:
    with pytest.raises(SystemExit) as exc:
        train_mod.main(args(cifar, tmp_path / "run", flag, value))
    assert exc.value.code == 2
    argparse_error(capsys, *fragments)
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_gpu_is_a_one_line_error(
    cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = args(cifar, tmp_path / "run")
    argv[argv.index("--device") + 1] = "cuda"
    assert train_mod.main(argv) == 2
    one_line_error(capsys, "--device cuda: no CUDA device is available")


def test_cuda_graph_on_the_cpu_is_a_one_line_error_and_resume_may_change_it(
    cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    assert train_mod.main(args(cifar, out, "--cuda-graph", "on", epochs=1)) == 2
    one_line_error(capsys, "--cuda-graph on needs a CUDA device (the run is on cpu)")
    assert not out.exists()
    assert train_mod.main(args(cifar, out, "--cuda-graph", "off", epochs=1)) == 0
    assert json.loads((out / "config.json").read_text())["cuda_graph"] == "off"
    assert train_mod.main(args(cifar, out, "--resume", "--cuda-graph", "auto", epochs=2)) == 0
    assert json.loads((out / "config.json").read_text())["cuda_graph"] == "auto"
    whole = tmp_path / "whole"
    assert train_mod.main(args(cifar, whole, epochs=2)) == 0
    assert_same_state(whole, out)


def test_out_onto_a_file_and_unreadable_data_are_one_line_errors(
    cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    for out in (afile, afile / "run"):
        assert train_mod.main(args(cifar, out)) == 2
        one_line_error(capsys, f"--out {out}: {afile} exists and is not a folder")
    assert train_mod.main(args(afile, tmp_path / "run")) == 2
    one_line_error(capsys, f"corrupt data file {afile}")


def test_out_at_an_unrelated_non_empty_folder_is_refused(
    cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert train_mod.main(args(cifar, mine)) == 2
    one_line_error(capsys, f"--out {mine} is a non-empty folder that holds no run")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert train_mod.main(args(cifar, empty, epochs=1)) == 0  # an empty folder is fine


def test_stale_temporary_checkpoint_is_removed_on_the_next_start(
    cifar: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    assert train_mod.main(args(cifar, out, epochs=1)) == 0
    (out / ".checkpoint.pt.k1ll3d.tmp.pt").write_bytes(b"half a checkpoint")  # left by kill -9
    assert train_mod.main(args(cifar, out, "--resume", epochs=2)) == 0
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "checkpoint.pt", "config.json",
                                                     "log.jsonl"]
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / ".config.json.abc.tmp.json").write_text("{")
    assert train_mod.main(args(cifar, fresh, epochs=1)) == 0
    assert sorted(p.name for p in fresh.iterdir()) == ["best.pt", "checkpoint.pt", "config.json",
                                                       "log.jsonl"]


def test_resume_with_a_missing_checkpoint_is_refused(
    cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    assert train_mod.main(args(cifar, out, epochs=2)) == 0
    (out / "checkpoint.pt").unlink()
    log_before = (out / "log.jsonl").read_text()
    assert train_mod.main(args(cifar, out, "--resume", epochs=3)) == 2
    one_line_error(capsys, f"{out / 'log.jsonl'} has 2 epochs but {out / 'checkpoint.pt'} is missing")
    assert (out / "log.jsonl").read_text() == log_before and not (out / "checkpoint.pt").exists()


def test_resume_on_other_data_needs_force_data(
    cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from deepnets.training.minidata import write_cifar10

    other = tmp_path / "other"
    other.mkdir()
    write_cifar10(other, n=9)
    out = tmp_path / "run"
    assert train_mod.main(args(cifar, out, epochs=1)) == 0
    before = (out / "config.json").read_text()
    assert train_mod.main(args(other, out, "--resume", epochs=2)) == 2
    one_line_error(capsys, f"--data-dir {other}: this data", "is not the data the run was trained",
                   "--force-data")
    assert (out / "config.json").read_text() == before and len(read_log(out)) == 1
    assert train_mod.main(args(other, out, "--resume", "--force-data", epochs=2)) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data_dir"] == str(other) and config["data_fingerprint"].startswith("45:")
    # the same data in another place is the same data
    assert train_mod.main(args(cifar / "cifar-10-batches-py", out, "--resume", epochs=3)) == 2
    capsys.readouterr()  # now the run's data is `other`
    assert train_mod.main(args(other / "cifar-10-batches-py", out, "--resume", epochs=3)) == 0


def test_a_checkpoint_of_another_network_names_the_shapes(
    cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert train_mod.main(args(cifar, a, epochs=1)) == 0
    assert train_mod.main(args(cifar, b, epochs=1, arch="conv 4 3x3; maxpool 3; full 8; output")) == 0
    (a / "checkpoint.pt").write_bytes((b / "checkpoint.pt").read_bytes())
    shapes = "layers.4.weight (10, 8) here (16, 1024)"
    assert train_mod.main(args(cifar, a, "--resume", epochs=2)) == 2
    one_line_error(capsys, f"{a / 'checkpoint.pt'} holds a different network", shapes)
    assert train_mod.main(args(cifar, tmp_path / "c", "--from", str(a), arch=None)) == 2
    one_line_error(capsys, f"{a / 'checkpoint.pt'} holds a different network", shapes)
    assert not (tmp_path / "c").exists()


MALFORMED = {  # name: (change to config.json, message)
    "array": ("[1, 2]", "expected a JSON object, found list"),
    "truncated": ('{"epochs": 3', "corrupt"),
    "missing key": ({"epochs": None}, "missing key 'epochs'"),
    "wrong type": ({"lr": "fast"}, "key 'lr' must be float, found 'fast'"),
    "bad net": ({"net": {"arch": 5}}, "bad 'net' description"),
}


def _malform(run: Path, change: object) -> None:
    config = json.loads((run / "config.json").read_text())
    if isinstance(change, dict):
        config.update(change)
        text = json.dumps({k: v for k, v in config.items() if v is not None})
    else:
        text = str(change)
    (run / "config.json").write_text(text)


@pytest.fixture(scope="module")
def finished_run(cifar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("finished") / "run"
    assert train_mod.main(args(cifar, run, epochs=1)) == 0
    return run


def _copy_run(run: Path, dest: Path) -> Path:
    dest.mkdir()
    for p in run.iterdir():
        (dest / p.name).write_bytes(p.read_bytes())
    return dest


@pytest.mark.parametrize("case", ["array", "truncated", "missing key", "wrong type"])
def test_resume_with_a_malformed_config_json_is_a_one_line_error(
    cifar: Path, finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture, case: str
) -> None:
    run = _copy_run(finished_run, tmp_path / "run")
    change, message = MALFORMED[case]
    _malform(run, change)
    assert train_mod.main(args(cifar, run, "--resume", epochs=2)) == 2
    one_line_error(capsys, str(run / "config.json"), message)
    assert len(read_log(run)) == 1


@pytest.mark.parametrize("case", ["array", "truncated", "bad net"])
def test_from_a_run_with_a_malformed_config_json_is_a_one_line_error(
    cifar: Path, finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture, case: str
) -> None:
    run = _copy_run(finished_run, tmp_path / "run")
    change, message = MALFORMED[case]
    _malform(run, change)
    assert train_mod.main(args(cifar, tmp_path / "new", "--from", str(run), arch=None)) == 2
    one_line_error(capsys, str(run / "config.json"), message)
    assert not (tmp_path / "new").exists()


def test_a_zip_without_data_imagefolder_says_which_data_to_use(
    image_zips: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    good = image_zips["good"]
    assert train_mod.main(args(good, tmp_path / "run")) == 2
    one_line_error(capsys, f"{good} is a zip archive", "use --data imagefolder")
    assert train_mod.main(args(good.parent, tmp_path / "run")) == 2  # a folder holding zips
    one_line_error(capsys, "holds .zip archives", "use --data imagefolder")
    assert not (tmp_path / "run").exists()


def test_a_damaged_zip_member_is_a_one_line_error(
    image_zips: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = args(image_zips["damaged"], tmp_path / "run")
    argv[argv.index("cifar10")] = "imagefolder"
    assert train_mod.main(argv) == 2
    one_line_error(capsys, f"corrupt data file {image_zips['damaged']}", "decompressing")
    assert not (tmp_path / "run").exists()


def test_one_class_data_is_refused_before_anything_is_written(
    image_zips: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = args(image_zips["one_class"], tmp_path / "run", epochs=1)
    argv[argv.index("cifar10")] = "imagefolder"
    argv[argv.index("--val-size") + 1] = "4"
    assert train_mod.main(argv) == 2
    one_line_error(capsys, "holds 1 class; a classifier needs at least 2")
    assert not (tmp_path / "run").exists()


def test_copying_a_bp_layer_into_a_feedback_network_names_the_missing_r(
    cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert train_mod.main(args(cifar, tmp_path / "bp", "--method", "bp", epochs=1)) == 0
    argv = args(cifar, tmp_path / "urfb", "--from", str(tmp_path / "bp"), "--copy", "0", epochs=1)
    assert train_mod.main(argv) == 2
    one_line_error(capsys, "--copy layer 0 of the --from run holds a different network",
                   "missing feedback", "method bp there, urfb here")


def test_train_size_and_the_split_seed(cifar: Path) -> None:
    base = TrainConfig(epochs=1, data_dir=str(cifar), val_size=8, train_size=5, seed=1)
    train, val = trainer.training_split(base)
    assert len(train) == 5 and len(val) == 8
    again = trainer.training_split(base.replace(seed=2))  # another seed: the same split
    assert torch.equal(train.x, again[0].x) and torch.equal(val.x, again[1].x)
    other = trainer.training_split(base.replace(split_seed=1))
    assert not torch.equal(val.x, other[1].x)


def test_figure9_protocol_copies_frozen_first_layer_and_unties_the_rest(
    cifar: Path, tmp_path: Path
) -> None:
    tied, untied = tmp_path / "tied", tmp_path / "untied"
    assert train_mod.main(args(cifar, tied, epochs=1, arch=TWO_CONV)) == 0
    argv = args(cifar, untied, "--from", str(tied), "--copy", "0", "--frozen", "0", "--untied",
                "1", "--seed", "7", epochs=2, arch=None)
    assert train_mod.main(argv) == 0
    before, after = load_network(tied), load_network(untied)
    assert json.loads((untied / "config.json").read_text())["arch"] == TWO_CONV  # taken from --from
    assert after.weight_layers[0].frozen and not after.weight_layers[1].frozen
    # The frozen, copied layer is exactly the earlier run's, after two more epochs of training.
    assert torch.equal(after.weight_layers[0].weight, before.weight_layers[0].weight)
    assert torch.equal(after.weight_layers[0].feedback, before.weight_layers[0].feedback)
    # The untied layer is new (locally connected: one weight set per location).
    assert after.weight_layers[1].weight.shape != before.weight_layers[1].weight.shape
    assert json.loads((untied / "config.json").read_text())["net"]["untied"] == [1]


def test_circuit_output_feedback_trains_like_the_closed_form(
    cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With S = 1 the simulated Appendix-1 circuit yields eq. (6)'s delta_L, so the runs agree."""
    import sims.circuits

    real, calls = sims.circuits.circuit_output_feedback, []

    def spy(*a: object, **k: object) -> torch.Tensor:
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(sims.circuits, "circuit_output_feedback", spy)
    closed, circuit = tmp_path / "closed", tmp_path / "circuit"
    assert train_mod.main(args(cifar, closed, "--probe-size", "0", epochs=1)) == 0
    assert not calls
    argv = args(cifar, circuit, "--output-feedback", "circuit", "--probe-size", "0", epochs=1)
    assert train_mod.main(argv) == 0
    assert len(calls) == 4  # one per training step; evaluation needs no feedback
    assert json.loads((circuit / "config.json").read_text())["output_feedback"] == "circuit"
    a, b = load_checkpoint(closed), load_checkpoint(circuit)
    assert a is not None and b is not None
    for key in a["net"]:
        torch.testing.assert_close(a["net"][key], b["net"][key], rtol=0, atol=1e-6, msg=key)


def test_a_run_without_sigma_prime_down_resumes_exactly_with_it(cifar: Path,
                                                                tmp_path: Path) -> None:
    """``--no-sigma-prime-down`` is the run's own setting: stored in config.json and in the
    network's description, kept by --resume (bit-identical to an uninterrupted run), and a
    different training from the default's."""
    flag = "--no-sigma-prime-down"
    whole, cut, default = tmp_path / "whole", tmp_path / "cut", tmp_path / "default"
    assert train_mod.main(args(cifar, whole, flag, epochs=2, arch=TWO_CONV)) == 0
    assert train_mod.main(args(cifar, cut, flag, epochs=1, arch=TWO_CONV)) == 0
    assert train_mod.main(args(cifar, cut, "--resume", epochs=2, arch=TWO_CONV)) == 0
    assert_same_state(whole, cut)
    config = json.loads((cut / "config.json").read_text())
    assert config["sigma_prime_down"] is False and config["net"]["sigma_prime_down"] is False
    assert load_network(cut).config["sigma_prime_down"] is False
    assert train_mod.main(args(cifar, default, epochs=2, arch=TWO_CONV)) == 0
    first = load_checkpoint(default)["net"]["layers.0.weight"]
    assert not torch.equal(first, load_checkpoint(whole)["net"]["layers.0.weight"])
