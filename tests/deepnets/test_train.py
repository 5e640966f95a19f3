"""deepnets.train on a miniature CIFAR-10: logs, resume, divergence, Figure 9's protocol."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import deepnets.train as train_mod
from deepnets.checkpoint import load_checkpoint, load_network, read_log
from deepnets.minidata import write_cifar10
from deepnets.runconfig import DEFAULTS

TINY = "conv 4 3x3; maxpool 3; drop .5; full 16; drop .3; output"
TWO_CONV = "conv 4 3x3; conv 4 3x3; maxpool 3; full 8; output"


@pytest.fixture(scope="module")
def cifar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, n=8)  # 40 training images, 8 test images
    return root


def args(
    cifar: Path, out: Path, *extra: str, epochs: int = 3, arch: str | None = TINY
) -> list[str]:
    return [
        *(["--arch", arch] if arch else []),
        "--data",
        "cifar10",
        "--data-dir",
        str(cifar),
        "--val-size",
        "8",
        "--batch-size",
        "8",
        "--epochs",
        str(epochs),
        "--out",
        str(out),
        "--quiet",
        "--device",
        "cpu",
        *extra,
    ]


def assert_same_state(a: Path, b: Path) -> None:
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


def test_writes_config_log_and_checkpoint(cifar: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert train_mod.main(args(cifar, out, "--method", "urfb", "--seed", "5")) == 0
    config = json.loads((out / "config.json").read_text())
    for key in (
        "arch",
        "method",
        "epsilon",
        "loss",
        "connectivity",
        "update_order",
        "sat_scale",
        "mu",
        "lr",
        "batch_size",
        "seed",
        "epochs",
        "train_subset",
        "val_size",
        "data",
        "data_dir",
        "dataset_label",
        "untie",
        "freeze",
        "from_run",
        "output_feedback",
        "device",
        "net",
        "weight_layer_names",
    ):
        assert key in config, key
    assert (
        config["sat_scale"] == 0.5 and config["seed"] == 5 and config["dataset_label"] == "CIFAR-10"
    )
    assert len(config["weight_layer_names"]) == 3 and config["net"]["arch"] == TINY
    log = read_log(out)
    assert [r["epoch"] for r in log] == [1, 2, 3]
    for r in log:
        assert 0 <= r["train_error"] <= 1 and 0 <= r["val_error"] <= 1 and r["seconds"] > 0
        assert math.isfinite(r["train_loss"]) and math.isfinite(r["val_loss"])
        assert len(r["corr"]) == 3 and all(-1 <= c <= 1 for c in r["corr"])
    assert load_checkpoint(out)["epoch"] == 3  # type: ignore[index]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


@pytest.mark.parametrize("kill_at_step", [6, 9])  # mid-epoch 2; first step of epoch 3
def test_kill_and_resume_equals_uninterrupted_run(
    cifar: Path, tmp_path: Path, kill_at_step: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = tmp_path / "whole"
    assert train_mod.main(args(cifar, whole)) == 0

    real_step, calls = train_mod.train_step, []

    def killed(*a: object, **k: object) -> object:
        calls.append(1)
        if len(calls) == kill_at_step:
            raise KeyboardInterrupt  # the process dies here: nothing after it runs
        return real_step(*a, **k)

    broken = tmp_path / "broken"
    monkeypatch.setattr(train_mod, "train_step", killed)
    with pytest.raises(KeyboardInterrupt):
        train_mod.main(args(cifar, broken))
    monkeypatch.setattr(train_mod, "train_step", real_step)
    assert len(read_log(broken)) == (kill_at_step - 1) // 4
    torch.manual_seed(12345)  # a fresh process would have a different global RNG state
    assert train_mod.main(args(cifar, broken, "--resume")) == 0
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
    real_write, calls = train_mod.ckpt.write_log, []

    def killed(run_dir: Path, records: list) -> None:
        calls.append(1)
        if len(records) == 2:
            raise KeyboardInterrupt
        real_write(run_dir, records)

    monkeypatch.setattr(train_mod.ckpt, "write_log", killed)
    with pytest.raises(KeyboardInterrupt):
        train_mod.main(args(cifar, broken))
    monkeypatch.setattr(train_mod.ckpt, "write_log", real_write)
    assert len(read_log(broken)) == 1 and load_checkpoint(broken)["epoch"] == 2  # type: ignore[index]
    assert train_mod.main(args(cifar, broken, "--resume")) == 0
    assert_same_state(whole, broken)


def test_resume_extends_a_finished_run(cifar: Path, tmp_path: Path) -> None:
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert train_mod.main(args(cifar, whole, epochs=3)) == 0
    assert train_mod.main(args(cifar, parts, epochs=1)) == 0
    assert train_mod.main(args(cifar, parts, "--resume", epochs=3)) == 0
    assert_same_state(whole, parts)


def test_resume_refuses_changed_settings(
    cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    assert train_mod.main(args(cifar, out, epochs=1)) == 0
    assert train_mod.main(args(cifar, out, "--resume", "--lr", "0.5")) == 2
    assert "--lr 0.5 differs from the run's config.json (0.1)" in capsys.readouterr().err
    assert train_mod.main(args(cifar, out)) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err
    assert train_mod.main(args(cifar, out, "--resume", epochs=2)) == 0  # extends it to 2
    capsys.readouterr()
    assert train_mod.main(args(cifar, out, "--resume", epochs=1)) == 2
    assert f"--epochs 1 is below the 2 epochs {out} has already trained" in capsys.readouterr().err


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(
    cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    real_step, calls = train_mod.train_step, []

    def poisoned(net: torch.nn.Module, *a: object, **k: object) -> object:
        calls.append(1)
        if len(calls) == 7:  # epoch 2: the output weights blow up, the engine's loss becomes NaN
            with torch.no_grad():
                net.weight_layers[-1].weight.fill_(float("inf"))
        return real_step(net, *a, **k)

    out = tmp_path / "run"
    monkeypatch.setattr(train_mod, "train_step", poisoned)
    assert train_mod.main(args(cifar, out)) == 1
    err = capsys.readouterr().err
    assert re.search(r"non-finite training loss \((nan|inf)\) at epoch 2, batch 3/4", err)
    assert "keeps epoch 1" in err
    assert [r["epoch"] for r in read_log(out)] == [1]
    state = load_checkpoint(out)
    assert state is not None and state["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in state["net"].values() if t.is_floating_point())


def test_bad_input_is_one_line_exit_2(
    cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert train_mod.main(args(cifar, tmp_path / "a", arch="conv 4 3x3; pool 3; output")) == 2
    assert "item 2 ('pool 3')" in capsys.readouterr().err
    assert train_mod.main(args(tmp_path / "nothing", tmp_path / "b")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cifar-10-python.tar.gz" in err
    assert train_mod.main(args(cifar, tmp_path / "c", "--train-subset", "1000")) == 2
    assert "--train-subset 1000 exceeds the 32 training images" in capsys.readouterr().err
    assert train_mod.main(args(cifar, tmp_path / "d", "--freeze", "7")) == 2
    assert "--freeze [7]: the network has weight layers 0..2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        train_mod.main(args(cifar, tmp_path / "e", "--lr", "-1"))
    assert exc.value.code == 2


@pytest.mark.parametrize(
    "extra,arch,message",
    [
        (("--untie", "1"), TINY, "--untie [1]: not conv layers (the conv layers are [0])"),
        ((), "conv 4 3x3; maxpool 3", "--arch 'conv 4 3x3; maxpool 3': the architecture must end"),
        (("--epsilon", "nan"), TINY, "--epsilon nan must be finite"),
        (("--mu", "inf"), TINY, "--mu inf must be >= 0 and finite"),
        (("--connectivity", "1.5"), TINY, "--connectivity 1.5 must be in (0, 1]"),
        (("--device", "gpu7"), TINY, "--device 'gpu7' is not a torch device"),
        (("--resume",), TINY, "config.json not found"),
        (("--copy", "0"), TINY, "--copy needs --from RUN_DIR"),
        (("--freeze", "0-2"), TINY, "--freeze [0, 1, 2] freezes every weight layer"),
    ],
)
def test_bad_flag_is_named_in_one_line_exit_2(
    cifar: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    extra: tuple[str, ...],
    arch: str,
    message: str,
) -> None:
    # (an extra --device overrides args()'s --device cpu: argparse keeps the last one given)
    assert train_mod.main(args(cifar, tmp_path / "run", *extra, arch=arch)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run" / "config.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_gpu_is_a_one_line_error(
    cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = args(cifar, tmp_path / "run")
    argv[argv.index("--device") + 1] = "cuda"
    assert train_mod.main(argv) == 2
    assert "--device cuda: no CUDA device is available" in capsys.readouterr().err


def test_out_onto_a_file_and_unreadable_data_are_one_line_errors(
    cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    for out in (afile, afile / "run"):
        assert train_mod.main(args(cifar, out)) == 2
        assert f"--out {out}: {afile} is a file, not a folder" in capsys.readouterr().err
    assert train_mod.main(args(afile, tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert f"corrupt data file {afile}" in err and err.count("\n") == 1


def test_copying_a_bp_layer_into_a_feedback_network_names_the_missing_r(
    cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert train_mod.main(args(cifar, tmp_path / "bp", "--method", "bp", epochs=1)) == 0
    argv = args(cifar, tmp_path / "urfb", "--from", str(tmp_path / "bp"), "--copy", "0", epochs=1)
    assert train_mod.main(argv) == 2
    err = capsys.readouterr().err
    assert "--copy layer 0 from the --from run (method bp)" in err
    assert 'Missing key(s) in state_dict: "feedback"' in err and err.count("\n") == 1


def test_train_subset_and_seeded_split(cifar: Path, tmp_path: Path) -> None:
    cfg = {
        **DEFAULTS,
        "data_dir": str(cifar),
        "val_size": 8,
        "train_subset": 5,
        "seed": 1,
    }
    train, val = train_mod.prepare_data(cfg)
    assert len(train) == 5 and len(val) == 8
    train2, val2 = train_mod.prepare_data(cfg)
    assert torch.equal(train.x, train2.x) and torch.equal(val.x, val2.x)


def test_figure9_protocol_copies_frozen_first_layer_and_unties_the_rest(
    cifar: Path, tmp_path: Path
) -> None:
    tied, untied = tmp_path / "tied", tmp_path / "untied"
    assert train_mod.main(args(cifar, tied, epochs=1, arch=TWO_CONV)) == 0
    assert (
        train_mod.main(
            args(
                cifar,
                untied,
                "--from",
                str(tied),
                "--copy",
                "0",
                "--freeze",
                "0",
                "--untie",
                "1",
                "--seed",
                "7",
                epochs=2,
                arch=None,
            )
        )
        == 0
    )
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
    assert train_mod.main(args(cifar, closed, epochs=1)) == 0
    assert not calls
    assert train_mod.main(args(cifar, circuit, "--output-feedback", "circuit", epochs=1)) == 0
    assert len(calls) == 4  # one per training step; evaluation needs no feedback
    assert json.loads((circuit / "config.json").read_text())["output_feedback"] == "circuit"
    a, b = load_checkpoint(closed), load_checkpoint(circuit)
    assert a is not None and b is not None
    for key in a["net"]:
        torch.testing.assert_close(a["net"][key], b["net"][key], rtol=0, atol=1e-6, msg=key)
