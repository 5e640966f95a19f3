"""sims.epsilon and its CLI sims.epsilon_sweep: Section 5.1's claim on the Figure 12 setting,
outputs, and CLI errors."""

import csv
from pathlib import Path

import numpy as np
import pytest

from sims.epsilon import SweepConfig, run_sweep, summarize
from sims.epsilon_sweep import main
from sims.linear import SolverError

SMALL = ["--widths", "8", "6", "6", "3", "--runs", "2", "--points", "41", "--quiet"]


@pytest.fixture(scope="module")
def figure12_results():
    cfg = SweepConfig()                              # widths 40, 100, 100, 10; 3 runs; 5 algorithms
    return cfg, run_sweep(cfg, progress=False)


def test_figure12_setting_error_decreases_and_eps_ordering_holds(figure12_results) -> None:
    cfg, results = figure12_results
    for res in results:
        for tr in [res.bp] + res.feedback:
            assert tr.error[0, -1] < 1e-9 * tr.error[0, 0]          # negligible error at the end
            first = np.flatnonzero(tr.error[0] < 1e-6 * tr.error[0, 0])[0]
            assert np.all(np.diff(tr.error[0, : first + 1]) < 0)   # decreasing until then
    summary = summarize(results, cfg.eps, cfg.threshold)
    assert summary.decreasing.all(), summary.table(cfg.threshold)
    assert np.all(np.diff(summary.t_feedback, axis=1) < 0)


def test_summary_detects_a_broken_ordering(figure12_results) -> None:
    cfg, results = figure12_results
    reversed_eps = tuple(reversed(cfg.eps))        # label the curves with ε in reverse
    summary = summarize(results, reversed_eps, cfg.threshold)
    assert not summary.decreasing.any()
    assert "time decreases with eps in 0 of 3 runs" in summary.table(cfg.threshold)


def test_cli_writes_curves_summary_and_figure(tmp_path: Path, capsys) -> None:
    out = tmp_path / "sweep"
    assert main(SMALL + ["--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["curves.csv", "figure12.pdf",
                                                     "figure12.png", "summary.csv"]
    with open(out / "curves.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["run", "method", "epsilon", "t", "error", "corr_1", "corr_2",
                             "corr_3"]
    assert len(rows) == 2 * 5 * 41
    bp = [r for r in rows if r["method"] == "bp"]
    assert all(r["epsilon"] == "" and r["corr_1"] == "" for r in bp)
    fb = [r for r in rows if r["method"] == "feedback"]
    assert {r["epsilon"] for r in fb} == {"0.0", "0.25", "0.5", "1.0"}
    assert (out / "figure12.png").read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "decreasing in eps" in printed and "of 2 runs" in printed
    with open(out / "summary.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 2 * 5


@pytest.mark.parametrize("args, flag", [
    (["--eps", "-0.5"], "--eps"),
    (["--widths", "5", "3"], "--widths"),
    (["--runs", "0"], "--runs"),
    (["--horizon", "nan"], "--horizon"),
    (["--points", "1"], "--points"),
    (["--r-sd", "-1"], "--r-sd"),
    (["--threshold", "2"], "--threshold"),
    (["--eps", "x"], "--eps"),
    (["--eps", "0.5"], "--eps: give at least two values"),
    (["--widths", "100000", "100000", "10", "--points", "2"], "GiB of memory"),
])
def test_cli_bad_arguments_exit_2_naming_the_flag(args: list[str], flag: str, tmp_path: Path,
                                                  capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(args + ["--out", str(tmp_path / "o"), "--quiet"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_cli_out_that_is_a_file(tmp_path: Path, capsys) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    for out in (f, f / "sub"):
        with pytest.raises(SystemExit) as exc:
            main(SMALL + ["--out", str(out)])
        assert exc.value.code == 2
        assert "--out" in capsys.readouterr().err.strip().splitlines()[-1]


def _failing_solver(*args: object, **kwargs: object) -> None:
    raise SolverError("the solver failed at t=0.1 (step size too small)")


def test_cli_solver_failure_leaves_nothing_on_disk(tmp_path: Path, capsys,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sims.epsilon_sweep.run_sweep", _failing_solver)
    out = tmp_path / "o"
    code = main(["--widths", "3", "4", "4", "2", "--runs", "1", "--quiet", "--out", str(out)])
    assert code == 1
    assert "failed" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux's /proc")
def test_cli_out_that_cannot_be_created_fails_before_the_sweep(
        capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    # this sweep fails in the solver (exit 1): exit 2 proves --out was checked before it ran
    monkeypatch.setattr("sims.epsilon_sweep.run_sweep", _failing_solver)
    with pytest.raises(SystemExit) as exc:
        main(["--widths", "3", "4", "4", "2", "--runs", "1", "--quiet", "--out", "/proc/x"])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "failed" not in captured.err
    assert captured.err.strip().splitlines()[-1].startswith(
        "python -m sims.epsilon_sweep: error: --out /proc/x: cannot write there")


def test_cli_output_name_taken_by_a_folder_fails_before_the_sweep(tmp_path: Path,
                                                                   capsys) -> None:
    (tmp_path / "summary.csv").mkdir()
    with pytest.raises(SystemExit) as exc:
        main(SMALL + ["--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--out" in err and "summary.csv" in err
    assert not (tmp_path / "curves.csv").exists()
