"""python -m sims.rule_sweep: CLI, outputs, reproducibility, bad input and the verdict test."""

from __future__ import annotations

import csv
import subprocess
import sys
import warnings

import numpy as np
import pytest

from sims.rule_sweep import (
    Row,
    SweepConfig,
    main,
    parse_rule,
    reduced_applies,
    run_sweep,
    trend,
    verdict,
)

SMALL = ["--depths", "2", "3", "--seeds", "2", "--n-in", "6", "--hidden", "6", "--n-out", "3",
         "--rules", "bp", "urfb:epsilon=0.5", "kp:decay=0.01", "usf", "frsf", "dfa", "--quiet"]

TINY = ["--depths", "2", "--n-in", "2", "--hidden", "2", "--n-out", "1", "--seeds", "1",
        "--quiet"]


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sims.rule_sweep", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def test_cli_writes_csv_verdict_and_figure_reproducibly(tmp_path) -> None:
    outs = []
    for name in ("a", "b"):
        res = _run(SMALL + ["--out", str(tmp_path / name)])
        assert res.returncode == 0, res.stderr
        outs.append((tmp_path / name / "rule_sweep.csv").read_text())
    assert outs[0] == outs[1]
    rows = list(csv.DictReader(outs[0].splitlines()))
    assert len(rows) == 2 * 6 * 2
    assert {"depth", "rule", "params", "seed", "t_threshold", "reached", "angle_1", "angle_3",
            "corr_1"} <= set(rows[0])
    by = {(r["rule"], r["params"], r["depth"], r["seed"]): r for r in rows}
    assert by[("urfb", "epsilon=0.5", "2", "0")]["reached"] == "true"
    assert by[("bp", "", "3", "1")]["corr_1"] == ""             # bp has no R
    assert by[("dfa", "", "3", "1")]["angle_3"] == "0.0"        # top layer: E itself
    assert float(by[("usf", "scale=1", "3", "0")]["corr_2"]) > 0.3
    text = (tmp_path / "a" / "verdict.txt").read_text()
    assert "VERDICT" in text and "ordering" in text
    for ext in ("png", "pdf"):
        assert (tmp_path / "a" / f"rule_sweep.{ext}").stat().st_size > 1000


@pytest.mark.parametrize("args,flag", [(["--rules", "urfb"], "--rules"),
                                       (["--rules", "bp", "nope"], "--rules"),
                                       (["--rules", "bp", "kp:decay"], "--rules"),
                                       (["--depths", "1"], "--depths"),
                                       (["--threshold", "2"], "--threshold")])
def test_bad_input_is_one_line_exit_2(args: list[str], flag: str, tmp_path) -> None:
    res = _run(args + ["--out", str(tmp_path), "--quiet"])
    assert res.returncode == 2
    assert flag in res.stderr and "Traceback" not in res.stderr


def test_parse_rule() -> None:
    assert parse_rule("urfb:epsilon=0.25").epsilon == 0.25
    assert parse_rule("kp").decay == 1e-4
    assert parse_rule("usf:scale=2").param("scale") == 2.0
    with pytest.raises(ValueError):
        parse_rule("urfb:epsilon")


def test_trend_categories() -> None:
    rng = np.random.default_rng(0)
    noise = lambda: 1 + 0.01 * rng.standard_normal(10)
    grows = {k: k * noise() for k in range(2, 9)}
    flat = {k: noise() for k in range(2, 9)}
    levels = {k: min(k, 4) * noise() for k in range(2, 9)}
    shrinks = {k: noise() / k for k in range(2, 9)}
    assert trend(grows).startswith("DEGRADES WITH DEPTH")
    assert trend(levels).startswith("DEGRADES, THEN LEVELS OFF")
    assert trend(flat).startswith("DOES NOT DEGRADE: no clear trend")
    assert trend(shrinks).startswith("DOES NOT DEGRADE: gains on BP")


def test_random_start_runs_every_rule_on_full_matrices() -> None:
    cfg = SweepConfig(depths=(3,), n_in=5, hidden=5, n_out=3, seeds=2, start="random",
                      rules=("bp", "urfb", "dfa"))
    rows = run_sweep(cfg, progress=False)
    assert all(r.reached for r in rows)
    urfb = [r for r in rows if r.rule == "urfb"]
    assert all(-1 <= c <= 1 for r in urfb for c in r.corr)


def test_section5_start_runs_wm_from_random_weights() -> None:
    """wm runs on the full matrices from a random W(0) and R(0) (not from W = 0, where it would
    sit near BP's saddle) and learns."""
    cfg = SweepConfig(depths=(3,), n_in=5, hidden=5, n_out=3, seeds=2, rules=("bp", "wm"))
    assert not reduced_applies(parse_rule("wm"), cfg.start)
    rows = [r for r in run_sweep(cfg, progress=False) if r.rule == "wm"]
    assert len(rows) == 2 and all(r.reached for r in rows)
    assert rows[0].params == "decay=0.01;lr=0.1;mirror_lr=1;noise=0.1"
    assert all(-1 <= c <= 1 + 1e-12 for r in rows for c in r.corr)



@pytest.mark.parametrize("args,words", [
    (["--target-sd", "1e-200"], "--target-sd"),          # tau_k underflows
    (["--depths", "250"], "--depths: at depth 250"),
    (["--rules", "bp", "kp:decay=1e300"], "decay must be >= 0 and at most 1000"),
    (["--rules", "bp", "urfb:epsilon=0.5,epsilon=0.7"], "epsilon given twice"),
    (["--seeds", "100000000000"], "--seeds"),
    (["--n-in", "100000", "--hidden", "100000"], "GiB of memory"),
])
def test_refused_up_front_in_one_line(args: list[str], words: str, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(TINY + args + ["--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err and words in err.splitlines()[-1], err
    assert not (tmp_path / "o").exists()


def test_an_output_name_taken_by_a_folder_is_refused_before_the_work(tmp_path, capsys) -> None:
    (tmp_path / "verdict.txt").mkdir()
    with pytest.raises(SystemExit) as exc:
        main(TINY + ["--rules", "bp", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--out" in err and "verdict.txt" in err
    assert not (tmp_path / "rule_sweep.csv").exists()


def test_no_rule_reaching_the_threshold_still_writes_and_prints(tmp_path, capsys) -> None:
    """--horizon too short for any rule: the verdict is printed and written and the figure
    drawn (no log scale of nothing), exit 0."""
    assert main(TINY + ["--rules", "bp", "frfb", "--horizon", "0.01", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "inf 0/1" in out and "wrote" in out
    assert (tmp_path / "verdict.txt").exists() and (tmp_path / "rule_sweep.png").exists()


def test_long_values_are_clipped_to_one_line(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(TINY + ["--start", "x" * 5000, "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()[-1]) < 600 and "--start" in err.splitlines()[-1]


def test_solver_failure_is_one_line_with_the_program(tmp_path, capsys, monkeypatch) -> None:
    from sims import rule_sweep
    from sims.linear import SolverError

    def fail(*args, **kwargs):
        raise SolverError("RK23 failed at t = 1: non-finite state")

    monkeypatch.setattr(rule_sweep, "run_sweep", fail)
    assert main(TINY + ["--rules", "bp", "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err == ("python -m sims.rule_sweep: error: RK23 failed at t = 1: "
                                       "non-finite state\n")


def test_verdict_with_angles_that_do_not_exist_warns_nothing() -> None:
    nan = float("nan")
    rows = [Row(2, rule, "", s, 1.0 + s, 1.0, 1e-3, (nan, nan), (nan, nan))
            for rule in ("bp", "frfb") for s in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = verdict(rows)
    assert "nan nan |   -     -" in text
