"""Kinds of bad input, each tried on every CLI that it can reach (issue 19): a full disk or a
file-size limit, ``~`` in an output path, an empty or too long output name, a terminal that
cannot encode the output. One test per kind, looping over the CLIs, so that a new CLI or a new
writer that skips the shared mechanism (``urfb_common``) fails here.

The full-disk test runs every CLI's ``main`` in one child process under ``RLIMIT_FSIZE`` (with
SIGXFSZ ignored, so that ``write`` fails with EFBIG as on a full disk); run as a script, this
module is that child.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import signal
import subprocess
import sys
import traceback
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: (CLI module, its prog as its error lines name it).
PROGS = {
    "deepnets.train": "deepnets.train", "deepnets.suite": "python -m deepnets.suite",
    "deepnets.rulebench": "python -m deepnets.rulebench",
    "sims.epsilon_sweep": "python -m sims.epsilon_sweep",
    "sims.depth_sweep": "python -m sims.depth_sweep", "sims.circuits.__main__": "python -m sims.circuits",
    "theory.__main__": "python -m theory", "figures.__main__": "python -m figures",
    "figures.report": "python -m figures.report",
}
TRAIN = ["--epochs", "1", "--batch-size", "10", "--val-size", "10", "--probe-size", "0",
         "--device", "cpu", "--quiet"]
SMALL_SWEEP = ["--eps", "0", "1", "--widths", "4", "3", "2", "--runs", "1", "--points", "11",
               "--quiet"]
SMALL_DEPTHS = ["--depths", "2", "--seeds", "1", "--n-in", "4", "--hidden", "4", "--n-out", "2",
                "--eps", "0", "1", "--no-bp", "--quiet"]
#: A check of ``python -m theory`` that takes a tenth of a second.
THEORY_CHECK = ["--only", "eq10"]


def _run_main(module: str, argv: list[str]) -> dict[str, Any]:
    """``main(argv)`` of a CLI module in this process: exit status, stdout, stderr, and the
    traceback of any exception that escaped it."""
    out, err = io.StringIO(), io.StringIO()
    result: dict[str, Any] = {"traceback": None}
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            result["code"] = import_module(module).main(argv)
        except SystemExit as exc:
            result["code"] = exc.code
        except BaseException:  # noqa: BLE001 (what is reported is the point)
            result["code"], result["traceback"] = None, traceback.format_exc()
    return {**result, "out": out.getvalue(), "err": err.getvalue()}


def _child(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run each case's CLI with the file-size limit ``limit`` (bytes) in force."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    results = []
    for case in cases:
        resource.setrlimit(resource.RLIMIT_FSIZE, (case["limit"], hard))
        try:
            results.append(_run_main(case["module"], case["argv"]))
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    return results


# ---------------------------------------------------------------- inputs the CLIs read


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A miniature CIFAR-10 (40 training images), two finished synthetic run folders (Figure
    4's simpnet BP and URFB) and a document with a report block."""
    from deepnets.training.minidata import write_cifar10

    root = tmp_path_factory.mktemp("inputs")
    write_cifar10(root / "cifar", n=8)
    runs = root / "runs"
    for method, loss, epsilon in (("bp", "softmax", None), ("urfb", "hinge", 1.0)):
        folder = runs / f"simpnet-cifar10-{method}-s0"
        folder.mkdir(parents=True)
        config = {"schema_version": 2, "arch": "simpnet", "method": method, "loss": loss,
                  "connectivity": 1.0, "epsilon": epsilon,
                  "seed": 0, "epochs": 2, "val_size": 10, "train_size": 30, "data": "cifar10",
                  "untie": [], "freeze": [], "from_run": None, "copy": None,
                  "weight_layer_names": ["conv 32 5x5", "full 500", "output"],
                  "net": {"arch": "simpnet", "n_classes": 10}}
        (folder / "config.json").write_text(json.dumps(config))
        (folder / "log.jsonl").write_text("".join(
            json.dumps({"epoch": e, "train_error": 0.9 / e, "val_error": 0.95 / e,
                        "train_loss": 1.0, "val_loss": 1.0, "corr": [0.1, 0.2, 0.3]}) + "\n"
            for e in (1, 2)))
    (root / "doc.md").write_text("# results\n\n<!-- report:rule -->\nold\n<!-- /report:rule -->\n")
    return {"cifar": root / "cifar", "runs": runs, "doc": root / "doc.md"}


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if ".tmp" in p.name or ".write-probe" in p.name]


# ---------------------------------------------------------------- full disk


def test_every_cli_on_a_full_disk_says_so_keeps_the_old_files_and_leaves_no_partial_file(
        inputs: dict[str, Path], tmp_path: Path) -> None:
    old = b"what was there before"
    kept = {tmp_path / "sweep" / "curves.csv", tmp_path / "depth" / "depth_sweep.csv",
            tmp_path / "circuits" / "fig13_transfer_functions.png", tmp_path / "theory.md",
            tmp_path / "figures" / "figure4.png"}
    for path in kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(old)
    doc = tmp_path / "doc.md"
    doc.write_bytes(inputs["doc"].read_bytes())
    cifar = ["--data-dir", str(inputs["cifar"])]
    # limit: bytes a file may grow to; 16 KB lets a run write config.json but not checkpoint.pt
    cases = [
        {"module": "deepnets.train", "limit": 16384,
         "argv": [*cifar, *TRAIN, "--out", str(tmp_path / "train")]},
        {"module": "deepnets.suite", "limit": 16384,
         "argv": ["4", "--archs", "simpnet", "--protocols", "urfb", *cifar, *TRAIN,
                  "--estimate-steps", "0", "--out", str(tmp_path / "suite")]},
        {"module": "deepnets.rulebench", "limit": 16384,
         "argv": ["run", *cifar, "--rules", "urfb", "--models", "simpnet", "--seeds", "0",
                  "--train-size", "20", *TRAIN, "--estimate-steps", "0",
                  "--out", str(tmp_path / "rulebench")]},
        {"module": "sims.epsilon_sweep", "limit": 1,
         "argv": [*SMALL_SWEEP, "--out", str(tmp_path / "sweep")]},
        {"module": "sims.depth_sweep", "limit": 1,
         "argv": [*SMALL_DEPTHS, "--out", str(tmp_path / "depth")]},
        {"module": "sims.circuits.__main__", "limit": 3000,  # a PNG cut mid-write
         "argv": ["--samples", "0", "--S", "1", "--mu", "0.5", "--M", "4", "--K", "1", "--quiet",
                  "--plot", str(tmp_path / "circuits")]},
        {"module": "theory.__main__", "limit": 1,
         "argv": [*THEORY_CHECK, "--quiet", "--out", str(tmp_path / "theory.md")]},
        {"module": "figures.__main__", "limit": 3000,
         "argv": ["4", "--runs", str(inputs["runs"]), "--out", str(tmp_path / "figures")]},
        {"module": "figures.report", "limit": 1,
         "argv": ["--update", str(doc)]},  # the committed runs of results/
    ]
    assert {c["module"] for c in cases} == set(PROGS)
    up_front = {"module": "theory.__main__", "limit": 0,  # ulimit -f 0: refused before the work
                "argv": [*THEORY_CHECK, "--quiet", "--out", str(tmp_path / "new.md")]}
    # temporary files in tmp_path too (the report's committed copy of a run being trained)
    proc = subprocess.run([sys.executable, __file__, json.dumps([*cases, up_front])], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for case, result in zip(cases, results):
        prog, what = PROGS[case["module"]], f"{case['module']}: {result}"
        assert result["traceback"] is None, what
        assert result["code"] == 1, what
        last = result["err"].strip().splitlines()[-1]
        assert last.startswith(f"{prog}: error: no space left on {tmp_path}"), what
        assert last.endswith(("(File too large)", "(No space left on device)")), what
    result = results[-1]
    assert result["code"] == 2 and result["out"] == "", result
    assert result["err"].strip().splitlines()[-1] == (
        f"python -m theory: error: --out {tmp_path}: no space left: the file-size limit "
        "(ulimit -f) is 0")
    assert _temporaries(tmp_path) == []
    assert all(p.read_bytes() == old for p in kept)
    assert doc.read_bytes() == inputs["doc"].read_bytes()
    for run_root in ("suite", "rulebench"):  # a run that finished no epoch leaves nothing
        assert not any(p.is_file() for p in (tmp_path / run_root).rglob("*"))
    assert not (tmp_path / "train").exists()


def test_every_cli_refuses_a_full_disk_before_its_work(
        inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system without a free block is found by the up-front check of the output path
    (``theory --out`` used to compute for 18 s first)."""
    full = os.statvfs(tmp_path)
    monkeypatch.setattr(os, "statvfs", lambda _: os.statvfs_result(
        (full.f_bsize, full.f_frsize, full.f_blocks, 0, 0, *full[5:])))
    for module, argv, flag, _ in OUTPUTS:
        line = _one_line_error(module, [*_argv(argv, inputs), flag, str(tmp_path / "out")])
        assert flag in line and line.endswith("no space left on the device"), line
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_that_does_not_fit_keeps_the_old_one(tmp_path: Path) -> None:
    """torch.save of a path reports a full disk as "unexpected pos"; the checkpoint writer
    hands torch an open file, so that the errno survives."""
    script = f"""
import resource, signal, sys, torch
sys.path.insert(0, {str(ROOT)!r})
from deepnets.training.checkpoint import save_checkpoint
from urfb_common import NoSpaceError
save_checkpoint({str(tmp_path)!r}, {{"net": {{}}, "records": []}})
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
try:
    save_checkpoint({str(tmp_path)!r}, {{"net": {{"w": torch.zeros(10000)}}, "records": []}})
except NoSpaceError as exc:
    print(exc)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (f"no space left on {tmp_path / 'checkpoint.pt'} "
                                   "(File too large)")
    import torch

    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["net"] == {}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


# ---------------------------------------------------------------- the other kinds, in process


def _call(module: str, argv: list[str]) -> tuple[int | None, str]:
    """Exit status and stderr of ``main(argv)``; fails on an escaped exception."""
    result = _run_main(module, argv)
    assert result["traceback"] is None, result["traceback"]
    return result["code"], result["err"]


def _one_line_error(module: str, argv: list[str]) -> str:
    """The message of a one-line usage error (exit status 2) of ``main(argv)``."""
    code, err = _call(module, argv)
    line = err.strip().splitlines()[-1]
    assert code == 2 and ": error: " in line, (code, err)
    assert len(line) < 400, line
    return line


#: (module, argv before the output flag, output flag, a file or a folder) of every output path
#: a CLI writes to; ``{cifar}`` and ``{runs}`` are the module fixture's inputs.
OUTPUTS = [
    ("deepnets.train", ["--data-dir", "{cifar}", *TRAIN], "--out", "folder"),
    ("deepnets.suite", ["4", "--archs", "simpnet", "--protocols", "urfb", "--data-dir", "{cifar}",
                        *TRAIN, "--estimate-steps", "0"], "--out", "folder"),
    ("deepnets.rulebench", ["run", "--data-dir", "{cifar}", "--rules", "urfb", "--models",
                            "simpnet", "--seeds", "0", "--train-size", "20", *TRAIN,
                            "--estimate-steps", "0"], "--out", "folder"),
    ("sims.epsilon_sweep", SMALL_SWEEP, "--out", "folder"),
    ("sims.depth_sweep", SMALL_DEPTHS, "--out", "folder"),
    ("sims.circuits.__main__", ["--samples", "0", "--S", "1", "--mu", "0.5", "--M", "4", "--K",
                                "1", "--quiet"], "--json", "file"),
    ("theory.__main__", [*THEORY_CHECK, "--quiet", "--format", "markdown"], "--out", "file"),
    ("figures.__main__", ["4", "--runs", "{runs}"], "--out", "folder"),
]


def _argv(argv: list[str], inputs: dict[str, Path]) -> list[str]:
    return [a.format(cifar=inputs["cifar"], runs=inputs["runs"]) for a in argv]


@pytest.mark.parametrize("module, argv, flag, kind", OUTPUTS, ids=[o[0] for o in OUTPUTS])
def test_every_output_flag_expands_tilde(inputs: dict[str, Path], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, module: str,
                                         argv: list[str], flag: str, kind: str) -> None:
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    name = "x.md" if kind == "file" else "x"
    code, err = _call(module, [*_argv(argv, inputs), f"{flag}=~/{name}"])
    assert code == 0, err
    assert list(cwd.iterdir()) == []  # no literal ./~
    written = home / name
    assert written.is_file() if kind == "file" else any(written.iterdir())


def test_the_python_api_expands_tilde(inputs: dict[str, Path], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import deepnets

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    cfg = deepnets.TrainConfig(epochs=1, batch_size=10, val_size=10, probe_size=0, device="cpu",
                               data_dir=str(inputs["cifar"]))
    result = deepnets.run(cfg, "~/run", quiet=True)
    assert result.out == tmp_path / "run" and (tmp_path / "run" / "checkpoint.pt").is_file()
    assert not (tmp_path / "~").exists()


def test_the_python_api_refuses_an_empty_run_folder(inputs: dict[str, Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import deepnets

    monkeypatch.chdir(tmp_path)
    cfg = deepnets.TrainConfig(epochs=1, data_dir=str(inputs["cifar"]))
    with pytest.raises(deepnets.ConfigError, match="--out must not be empty"):
        deepnets.run(cfg, "")
    assert list(tmp_path.iterdir()) == []


#: Every path flag, with what the CLI needs before it to reach that flag's check.
PATH_FLAGS = [(m, a, f) for m, a, f, _ in OUTPUTS] + [
    ("sims.circuits.__main__", [], "--plot"),
    ("figures.__main__", [], "--runs"), ("figures.__main__", [], "--curves-csv"),
    ("figures.report", [], "--update"), ("figures.report", [], "--runs-a"),
    ("deepnets.evaluate", [], "--run"), ("deepnets.rulebench", ["table"], None),
    ("deepnets.suite", ["4"], "--data-dir"), ("deepnets.train", ["--data-dir", "d"], "--from"),
]


@pytest.mark.parametrize("module, argv, flag", PATH_FLAGS,
                         ids=[f"{m}{f or ' RUNS'}" for m, _, f in PATH_FLAGS])
def test_every_path_flag_refuses_an_empty_path(inputs: dict[str, Path], module: str,
                                               argv: list[str], flag: str | None) -> None:
    given = [flag, ""] if flag else [""]
    line = _one_line_error(module, [*_argv(argv, inputs), *given])
    assert "must not be empty" in line and (flag or "argument RUNS") in line


@pytest.mark.parametrize("module, argv, flag", PATH_FLAGS,
                         ids=[f"{m}{f or ' RUNS'}" for m, _, f in PATH_FLAGS])
def test_every_path_flag_refuses_a_tilde_user_that_does_not_exist(
        inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str,
        argv: list[str], flag: str | None) -> None:
    """``--out=~nosuchuser/x`` made a literal ``./~nosuchuser`` folder."""
    monkeypatch.chdir(tmp_path)
    given = f"~nosuchuser-urfb/{'x.md' if module == 'theory.__main__' else 'x'}"
    line = _one_line_error(module, [*_argv(argv, inputs), *([f"{flag}={given}"] if flag else
                                                            [given])])
    assert "no user 'nosuchuser-urfb'" in line and (flag or "argument RUNS") in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["a" * 300, "é" * 150], ids=["300 ASCII", "150 two-byte"])
@pytest.mark.parametrize("module, argv, flag, kind", OUTPUTS, ids=[o[0] for o in OUTPUTS])
def test_every_output_flag_refuses_a_name_over_255_bytes(
        inputs: dict[str, Path], tmp_path: Path, module: str, argv: list[str], flag: str,
        kind: str, name: str) -> None:
    line = _one_line_error(module, [*_argv(argv, inputs), flag, str(tmp_path / name)])
    assert flag in line and "255 bytes" in line
    assert list(tmp_path.iterdir()) == []


def test_a_file_name_of_250_bytes_is_written_atomically(tmp_path: Path) -> None:
    """The temporary beside it would be longer than 255 bytes: its name is cut, not the write."""
    dest = tmp_path / ("t" * 247 + ".md")
    code, err = _call("theory.__main__", [*THEORY_CHECK, "--quiet", "--out", str(dest)])
    assert code == 0, err
    assert [p.name for p in tmp_path.iterdir()] == [dest.name]


#: Every CLI's --help, and runs that print non-ASCII text (escaped: True).
PRINTING = [(m, ["--help"], m == "sims.epsilon_sweep")  # "strengths ε >= 0"
            for m in [*PROGS, "deepnets.evaluate", "figures.summary"]] + [
    ("theory.__main__", ["--only", "eq11", "--quiet", "--format", "markdown"], True),  # d(e²)/dt
]


@pytest.mark.parametrize("module, argv, escaped", PRINTING,
                         ids=[f"{m} {a[0]}" for m, a, _ in PRINTING])
def test_every_cli_prints_on_an_ascii_terminal(monkeypatch: pytest.MonkeyPatch, module: str,
                                               argv: list[str], escaped: bool) -> None:
    """``PYTHONIOENCODING=ascii``: a character the terminal lacks is printed as an escape."""
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="ascii", errors="strict"))
    try:
        code = import_module(module).main(argv)
    except SystemExit as exc:  # --help
        code = exc.code
    sys.stdout.flush()
    assert code == 0
    text = raw.getvalue().decode("ascii")
    assert len(text) > 100 and (not escaped or "\\u" in text or "\\x" in text)


def test_rulebench_table_prints_on_an_ascii_terminal(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "simpnet-cifar10-urfb-s0"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"seed": 0, "epochs": 1}))
    (folder / "log.jsonl").write_text(json.dumps({"train_error": 0.5, "val_error": 0.6}) + "\n")
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="ascii", errors="strict"))
    assert import_module("deepnets.rulebench").main(["table", str(tmp_path)]) == 0
    sys.stdout.flush()
    assert "W\\u2013R" in raw.getvalue().decode("ascii")  # "W–Rᵗ corr"


#: Every solver-tolerance flag of sims and theory, with a value above and one below its range.
TOLERANCES = [(m, f, v) for m, a in (("sims.epsilon_sweep", SMALL_SWEEP),
                                     ("sims.depth_sweep", SMALL_DEPTHS))
              for f, v in (("--rtol", "10"), ("--rtol", "0.01"), ("--rtol", "1e-20"),
                           ("--atol", "1e-3"), ("--atol", "0"), ("--atol", "nan"))]


@pytest.mark.parametrize("module, flag, value", TOLERANCES)
def test_every_tolerance_flag_is_refused_outside_its_range(tmp_path: Path, module: str,
                                                           flag: str, value: str) -> None:
    line = _one_line_error(module, [flag, value, "--out", str(tmp_path)])
    assert f"{flag}: must lie in " in line
    assert list(tmp_path.iterdir()) == []

if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
