"""A run folder is one process's at a time (two trainings or suites into one --out), SIGTERM
stops like Ctrl-C, running out of memory is one line, a --quiet run says what it did, and
log.jsonl is always JSON. Real processes where the case is about processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

import deepnets.train as train_mod
from deepnets import suite
from deepnets.training import rundir as rundir_module
from deepnets.training import trainer
from deepnets.training.checkpoint import load_checkpoint
from deepnets.training.minidata import tiny_cifar_folder
from deepnets.training.rundir import LOCK, FolderBusy, claim_folder, read_log, write_log

from .test_train import args, one_line_error

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
# deepnets.training.rundir loaded by its path: the holder starts in a blink (deepnets' package
# imports torch)
HOLD = """import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("rundir", sys.argv[2])
rundir = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rundir)
with rundir.claim_folder(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def hold(folder: Path) -> subprocess.Popen:
    """Another process that claims ``folder`` and keeps it (until killed)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), rundir_module.__file__],
                            env=ENV,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def wait_for_epochs(folder: Path, proc: subprocess.Popen, n: int = 1) -> None:
    deadline = time.monotonic() + 90
    while len(read_log(folder)) < n and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if proc.poll() is not None:
        pytest.skip("the training process ended before the test could act on it")


def test_claim_is_exclusive_and_survives_kill_9(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    with claim_folder(folder):
        assert (folder / LOCK).is_file()
        with pytest.raises(FolderBusy, match=f"pid {os.getpid()}"), claim_folder(folder):
            pass  # a second claim, even in this process, fails at once
    assert not (folder / LOCK).exists()  # released: the lock file goes
    holder = hold(folder)
    with pytest.raises(FolderBusy, match=f"in use by another process \\(pid {holder.pid} "), \
            claim_folder(folder):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert f"pid {holder.pid}" in (folder / LOCK).read_text()  # stale file of a dead process
    with claim_folder(folder):  # the kernel dropped the dead holder's lock: claimed again
        assert f"pid {os.getpid()}" in (folder / LOCK).read_text()


def test_a_training_into_a_claimed_folder_stops_at_once(
    cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The case of issue 19: the first process has not written config.json yet (it is loading
    its data), so the old "already holds a run" check passed for both."""
    out = tmp_path / "run"
    holder = hold(out)
    try:
        for extra in ((), ("--resume",)):
            start = time.monotonic()
            assert train_mod.main(args(cifar, out, *extra)) == 2
            assert time.monotonic() - start < 5
            one_line_error(capsys, f"--out {out} is in use by another process (pid {holder.pid}")
        assert sorted(p.name for p in out.iterdir()) == [LOCK]  # nothing written by the refused
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert train_mod.main(args(cifar, out, epochs=1)) == 0  # after kill -9: trains normally
    assert len(read_log(out)) == 1 and not (out / LOCK).exists()


def test_two_trainings_then_sigterm(cifar: Path, tmp_path: Path, capsys) -> None:
    """Two training processes into one --out (a real one, then this one): the second is refused
    while the first trains; SIGTERM then stops the first as Ctrl-C would (exit 143, the checkpoint named, no
    temporary file left), and the run resumes."""
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "deepnets.train", *args(cifar, out, epochs=500)],
                             env=ENV, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_epochs(out, first)
        for extra in ((), ("--resume",)):  # the second process: this one
            assert train_mod.main(args(cifar, out, *extra, epochs=500)) == 2
            one_line_error(capsys, f"in use by another process (pid {first.pid} ")
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    if first.returncode == 0:
        pytest.skip("the first training finished before SIGTERM came")
    assert first.returncode == 143, err
    done = load_checkpoint(out)["epoch"]  # type: ignore[index]
    assert err.count("\n") == 1 and f"{out / 'checkpoint.pt'} keeps epoch {done}" in err, err
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "checkpoint.pt", "config.json",
                                                     "log.jsonl"]
    assert train_mod.main(args(cifar, out, "--resume", epochs=done + 1)) == 0
    assert len(read_log(out)) == done + 1


def test_a_suite_into_a_claimed_folder_stops_at_once(tmp_path: Path, capsys) -> None:
    data = tiny_cifar_folder(tmp_path / "data")
    runs = tmp_path / "runs"
    base = ["10", "--protocols", "urfb", "--data", "imagefolder", "--data-dir", str(data),
            "--epochs", "1", "--train-size", "20", "--val-size", "10", "--batch-size", "10",
            "--device", "cpu", "--estimate-steps", "0", "--probe-size", "4", "--quiet"]
    for claimed in (runs, runs / "simpnet-cifar10-urfb-s0"):  # the suite's folder, a run's
        holder = hold(claimed)
        try:
            assert suite.main([*base, "--out", str(runs)]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and f"{claimed} is in use by another process" in err, err
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait()
    assert suite.main([*base, "--out", str(runs)]) == 0
    assert not (runs / LOCK).exists()


@pytest.mark.parametrize("exc", [
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough "
                 "memory: you tried to allocate 4000000000 bytes."),
    RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 bytes"),
    MemoryError(),
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
])
def test_out_of_memory_in_a_later_epoch_is_one_line_and_keeps_the_checkpoint(
    cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, exc: BaseException
) -> None:
    out = tmp_path / "run"
    real = trainer._train_epoch

    def epoch(s, n):
        if n == 2:
            raise exc
        return real(s, n)

    monkeypatch.setattr(trainer, "_train_epoch", epoch)
    assert train_mod.main(args(cifar, out)) == 2
    one_line_error(capsys, "error: out of memory")
    assert load_checkpoint(out)["epoch"] == 1 and len(read_log(out)) == 1  # type: ignore[index]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_other_runtime_errors_are_not_called_out_of_memory(
    cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trainer, "_train_epoch", lambda s, n: (_ for _ in ()).throw(
        RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):
        train_mod.main(args(cifar, tmp_path / "run"))


def test_a_quiet_run_prints_one_summary_line(cifar: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert train_mod.main(args(cifar, out, epochs=2)) == 0  # args() passes --quiet
    captured = capsys.readouterr()
    assert captured.err == ""
    val = read_log(out)[-1]["val_error"]
    assert captured.out == f"{out}: trained 2 epochs, 2 of 2 done, val_error {val:.4f}\n"


def test_log_jsonl_never_holds_bare_nan(tmp_path: Path) -> None:
    records = [{"epoch": 1, "corr": [float("nan"), 0.5], "alignment": {"a": float("inf")},
                "val_loss": float("-inf"), "x": (1.0, float("nan"))}]
    write_log(tmp_path, records)
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    parsed = json.loads(lines[0], parse_constant=lambda c: pytest.fail(f"bare {c} in the log"))
    assert parsed == {"epoch": 1, "corr": [None, 0.5], "alignment": {"a": None},
                      "val_loss": None, "x": [1.0, None]}


def test_a_connectivity_that_keeps_no_connection_is_refused(cifar: Path, tmp_path: Path,
                                                            capsys) -> None:
    out = tmp_path / "run"
    for tiny in ("1e-9", "1e-300"):
        assert train_mod.main(args(cifar, out, "--connectivity", tiny)) == 2
        one_line_error(capsys, f"--connectivity {float(tiny):g} keeps no connection of weight "
                       "layer 0: use a value in [")
        assert not out.exists()


def test_a_relative_data_dir_is_found_from_another_folder(
    cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """--data-dir is stored as typed and relative to the run folder, so --resume and evaluate
    work from another working directory; config.json holds no absolute path of this machine."""
    import shutil

    import deepnets.evaluate as evaluate_mod

    shutil.copytree(cifar, tmp_path / "data")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert train_mod.main(args(Path("../data"), Path("runs/x"), epochs=1)) == 0
    text = (tmp_path / "work" / "runs" / "x" / "config.json").read_text()
    config = json.loads(text)
    assert config["data_dir"] == "../data" and config["data_dir_from_run"] == "../../../data"
    assert str(tmp_path) not in text
    monkeypatch.chdir(tmp_path)
    run = ["--out", "work/runs/x", "--resume", "--epochs", "2", "--quiet", "--device", "cpu"]
    assert train_mod.main(run) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "work/runs/x/config.json").read_text())["data_dir"] == "data"
    monkeypatch.chdir(tmp_path / "work" / "runs")
    assert evaluate_mod.main(["--run", "x"]) == 0, capsys.readouterr().err
    assert "split val (8 images)" in capsys.readouterr().out


def test_evaluate_and_train_default_to_the_same_device() -> None:
    import deepnets.evaluate as evaluate_mod
    from deepnets.training.config import TrainConfig
    from deepnets.training.runconfig import build_parser

    assert evaluate_mod.build_parser().get_default("device") == "auto"
    assert TrainConfig(epochs=1, data_dir="d").device == "auto"
    assert "(default: auto)" in build_parser().format_help().replace("\n", " ").replace("  ", " ")


def test_sigterm_stops_the_suite_as_ctrl_c(tmp_path: Path) -> None:
    data = tiny_cifar_folder(tmp_path / "data")
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepnets.suite", "10", "--protocols", "urfb", "--data",
         "imagefolder", "--data-dir", str(data), "--epochs", "500", "--train-size", "20",
         "--val-size", "10", "--batch-size", "10", "--device", "cpu", "--estimate-steps", "0",
         "--probe-size", "4", "--quiet", "--out", str(runs)],
        env=ENV, stderr=subprocess.PIPE, text=True)
    run = runs / "simpnet-cifar10-urfb-s0"
    try:
        wait_for_epochs(run, proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert err.count("\n") == 1 and "checkpoint.pt keeps epoch" in err, err
    assert not [p for p in [*runs.iterdir(), *run.iterdir()] if p.name.startswith(".")]


def test_a_real_cpu_allocation_failure_under_a_memory_limit(cifar: Path, tmp_path: Path) -> None:
    """``ulimit -v`` in a real process: torch's allocator raises a plain RuntimeError, which
    is now a one-line "out of memory" (exit 2) leaving nothing behind."""
    limit = """import os, resource, sys
import deepnets.train as train
used = int(open("/proc/self/statm").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
resource.setrlimit(resource.RLIMIT_AS, (used + 600 * 2**20, used + 600 * 2**20))
sys.exit(train.main(sys.argv[1:]))
"""
    out = tmp_path / "run"
    argv = args(cifar, out, "--probe-size", "0", epochs=1, arch="full 60000; output")  # 737 MB
    proc = subprocess.run([sys.executable, "-c", limit, *argv], env=ENV, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("deepnets.train: error: out of memory: ") and \
        "DefaultCPUAllocator" in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not out.exists()


def test_a_refused_suite_leaves_no_empty_out_folder(tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    assert suite.main(["10", "--data-dir", str(tmp_path / "none"), "--out", str(runs),
                       "--device", "cpu"]) == 2
    assert "error:" in capsys.readouterr().err and not runs.exists()


def test_an_interrupt_just_after_a_checkpoint_names_the_epoch_it_holds(
    cifar: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (or SIGTERM) landing after epoch 2's checkpoint is written, before the session
    notes it: the message names the epoch the file holds, and the run resumes from there."""
    out = tmp_path / "run"
    real_save = trainer.ckpt.save_checkpoint

    def save_then_interrupt(run_dir: Path, state: dict) -> None:
        real_save(run_dir, state)
        if state["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer.ckpt, "save_checkpoint", save_then_interrupt)
    assert train_mod.main(args(cifar, out, epochs=3)) == 130
    one_line_error(capsys, f"{out / 'checkpoint.pt'} keeps epoch 2;")
    assert load_checkpoint(out)["epoch"] == 2  # type: ignore[index]
    monkeypatch.undo()
    assert train_mod.main(args(cifar, out, "--resume", epochs=3)) == 0
    assert [r["epoch"] for r in read_log(out)] == [1, 2, 3]


def test_an_interrupt_while_a_temporary_is_made_leaves_no_temporary(
    cifar: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM landing after atomic_path's mkstemp made the checkpoint's temporary file and
    before it noted the name left the file in the folder (seen in CI); the stop removes it."""
    out = tmp_path / "run"
    real_save = trainer.ckpt.save_checkpoint

    def interrupt_inside_mkstemp(run_dir: Path, state: dict) -> None:
        if state["epoch"] == 2:
            fd, _ = tempfile.mkstemp(prefix=".checkpoint.pt.", suffix=".tmp.pt", dir=run_dir)
            os.close(fd)
            raise KeyboardInterrupt
        real_save(run_dir, state)

    monkeypatch.setattr(trainer.ckpt, "save_checkpoint", interrupt_inside_mkstemp)
    assert train_mod.main(args(cifar, out, epochs=3)) == 130
    one_line_error(capsys, f"{out / 'checkpoint.pt'} keeps epoch 1;")
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "checkpoint.pt", "config.json",
                                                     "log.jsonl"]


def test_a_resumed_run_without_epochs_interrupted_after_its_first_checkpoint_keeps_it(
    cifar: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run folder whose first epoch never finished (config.json and an empty log, as a hard
    kill leaves it) is resumed; an interrupt right after epoch 1's checkpoint keeps it and says
    so (nothing is cleaned up: the run existed before)."""
    out = tmp_path / "run"
    real_save = trainer.ckpt.save_checkpoint

    def interrupt_at_first_save(run_dir: Path, state: dict) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.ckpt, "save_checkpoint", interrupt_at_first_save)
    assert train_mod.main(args(cifar, out, epochs=2)) == 130  # a new run: nothing kept
    one_line_error(capsys, "nothing was kept")
    assert not out.exists()  # a new run that never finished an epoch leaves nothing
    monkeypatch.undo()
    assert train_mod.main(args(cifar, out, epochs=1)) == 0
    (out / "checkpoint.pt").unlink()
    (out / "best.pt").unlink()
    write_log(out, [])  # as a hard kill in epoch 1 leaves the folder

    def save_then_interrupt(run_dir: Path, state: dict) -> None:
        real_save(run_dir, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.ckpt, "save_checkpoint", save_then_interrupt)
    assert train_mod.main(args(cifar, out, "--resume", epochs=2)) == 130
    one_line_error(capsys, f"{out / 'checkpoint.pt'} keeps epoch 1;")
    assert load_checkpoint(out)["epoch"] == 1  # type: ignore[index]
