"""``python -m deepnets.rulebench``: its tables from run folders, and its one-line refusals
(issue 19: a missing folder, a file, a folder not named like the grid's, runs trained with
``--val-size 0`` and an empty folder each ended in a traceback or a blank table)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepnets import rulebench

PROG = "python -m deepnets.rulebench"


def _run(root: Path, name: str, val_error: float | None, seed: int = 0) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    names = ["conv 32 5x5", "full 500", "output"]
    (folder / "config.json").write_text(json.dumps(
        {"seed": seed, "epochs": 2, "weight_layer_names": names}))
    probe = {n: {"delta_angle": 40.0, "update_angle": 30.0, "weight_angle": 20.0} for n in names}
    (folder / "log.jsonl").write_text("".join(
        json.dumps({"epoch": e, "train_error": 0.5 / e, "val_error": val_error,
                    "corr": [0.1 * e, None, 0.3], "alignment": probe}) + "\n" for e in (1, 2)))
    return folder


def _error(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    try:
        code = rulebench.main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.strip().splitlines()[-1]


def test_table_means_over_seeds_and_shows_runs_without_validation(tmp_path: Path, capsys) -> None:
    _run(tmp_path, "simpnet-cifar10-urfb-s0", 0.40)
    _run(tmp_path, "simpnet-cifar10-urfb-s1", 0.50, seed=1)
    _run(tmp_path, "simpnet-cifar10-frfb-s0", None)  # trained with --val-size 0
    assert rulebench.main(["table", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| URFB | 0.450 ± 0.071 | s0: 0.400, s1: 0.500 | 0.250 ± 0.000 | 0.20 / - / 0.30 |" in out
    assert "| FRFB | - | s0: - | 0.250 |" in out


@pytest.mark.parametrize("case", ["missing", "file", "empty", "no finished epoch"])
def test_table_refuses_a_folder_without_runs(tmp_path: Path, capsys, case: str) -> None:
    runs = tmp_path / "runs"
    if case == "file":
        runs.write_text("x")
    elif case != "missing":
        runs.mkdir()
    if case == "no finished epoch":
        (_run(runs, "simpnet-cifar10-urfb-s0", 0.4) / "log.jsonl").write_text("")
    code, line = _error(["table", str(runs)], capsys)
    why = {"missing": " table: error: RUNS {}: no such folder",
           "file": " table: error: RUNS {}: is a file, not a folder",
           "empty": ": error: {} holds no run with a finished epoch",
           "no finished epoch": ": error: {} holds no run with a finished epoch"}[case]
    assert line.startswith(f"{PROG}{why.format(runs)}")
    assert code == (2 if case in ("missing", "file") else 1)


def test_table_leaves_out_folders_not_named_like_the_grids(tmp_path: Path, capsys) -> None:
    _run(tmp_path, "simpnet-cifar10-urfb-s0", 0.4)
    _run(tmp_path, "my-run", 0.3)
    assert rulebench.main(["table", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert f"note: {tmp_path / 'my-run'} left out: not named <model>-cifar10-<rule>-s<seed>" in captured.err
    assert "| URFB |" in captured.out


def test_run_has_help_for_every_flag() -> None:
    sub = rulebench.build_parser()._subparsers._group_actions[0].choices
    for command in ("run", "table"):
        missing = [a.dest for a in sub[command]._actions if not a.help]
        assert missing == [], command


@pytest.mark.parametrize("argv, flag", [(["--seeds", "-1"], "--seeds"), (["--lr", "nan"], "--lr"),
                                        (["--val-size", "-1"], "--val-size"),
                                        (["--epochs", "0"], "--epochs")])
def test_run_refuses_bad_values_before_any_work(tmp_path: Path, capsys, argv: list[str],
                                                flag: str) -> None:
    """The error names the subcommand, as argparse's own errors of ``run``'s flags do."""
    code, line = _error(["run", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o"), *argv],
                        capsys)
    assert code == 2 and line.startswith(f"{PROG} run: error: argument {flag}:")
    assert not (tmp_path / "o").exists()


def test_a_rule_or_model_given_twice_is_one_run(tmp_path: Path, capsys) -> None:
    """``--rules bp bp`` trained the same folder twice; ``--seeds 0 0`` was one run already."""
    argv = ["run", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o"), "--rules", "bp",
            "urfb", "bp", "--models", "simpnet", "simpnet", "--seeds", "0", "0", "--device", "cpu",
            "--estimate-steps", "0", "--dry-run"]
    assert rulebench.main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"2 runs in {tmp_path / 'o'} ")
    assert out[1:] == ["  simpnet-cifar10-bp-s0: new", "  simpnet-cifar10-urfb-s0: new"]


@pytest.mark.parametrize("case", ["no data", "train size"])
def test_run_refuses_bad_data_before_listing_or_making_anything(tmp_path: Path, capsys,
                                                                cifar: Path, case: str) -> None:
    """A missing --data-dir or a --train-size beyond it listed the runs, then failed, and left
    an empty --out behind."""
    data, size = (tmp_path / "none", "20") if case == "no data" else (cifar, "100000000")
    argv = ["run", "--data-dir", str(data), "--out", str(tmp_path / "o"), "--rules", "bp",
            "--models", "simpnet", "--seeds", "0", "--val-size", "10", "--train-size", size,
            "--device", "cpu", "--estimate-steps", "0", "--quiet"]
    code, line = _error(argv, capsys)
    why = "CIFAR-10 not found" if case == "no data" else "argument --train-size: 100000000 exceeds"
    assert code == 2 and line.startswith(f"{PROG}: error: {why}")
    assert capsys.readouterr().out == "" and not (tmp_path / "o").exists()
    # a dry run without an estimate does not read the data, as the suite's
    assert rulebench.main([*argv, "--dry-run"]) == 0
