"""``python -m sims.circuits``: the report, --json, --plot, and one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sims.circuits.__main__ import main

SMALL = ["--samples", "20", "--S", "1", "--mu", "0.5", "--M", "4", "--K", "1", "--quiet"]


def test_report_json_and_plots(tmp_path: Path, capsys) -> None:
    out_json, plots = tmp_path / "r" / "report.json", tmp_path / "plots"
    assert main(SMALL + ["--overlap", "outer", "--json", str(out_json), "--plot", str(plots)]) == 0
    text = capsys.readouterr().out
    assert "signal = eq. (6) with threshold S" in text and "62/62  (0 disagree)" in text
    assert "read as 'inner'" not in text and "shutdown circuit vs rule (3)" in text
    doc = json.loads(out_json.read_text())
    out = doc["output_circuit"]["outer"]
    assert out["n"] == 62 and out["agree"]["eq6"] == 62
    # the boundary cases are reported, e.g. h_c = S where (6) gives 1 and the spec's "h_c < S" gives 0
    assert any(d["where"] == "h=1=S" and "spec" in d["fails"] for d in out["disagreements"])
    assert sorted(p.name for p in plots.iterdir()) == [
        "appendix1_update_cycles.pdf", "appendix1_update_cycles.png",
        "fig13_transfer_functions.pdf", "fig13_transfer_functions.png"]


@pytest.mark.parametrize("argv, flag", [
    (["--S", "-1"], "--S"),
    (["--mu", "0"], "--mu"),
    (["--rounds", "3"], "--rounds"),
    (["--eps", "x"], "--eps"),
    (["--M", "inf"], "--M"),
    (["--eps", "nan"], "--eps"),
    (["--sigma-t-upper", "nan"], "--sigma-t-upper"),
    (["--samples", "-5"], "--samples"),
    (["--rounds", "0"], "--rounds"),
    (["--seed", "-1"], "--seed"),
    (["--overlap", "middle"], "--overlap"),
    (["--samplez", "3"], "--samplez"),
])
def test_bad_arguments_exit_2_naming_the_flag(argv: list[str], flag: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv + ["--quiet"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert flag in err and "Traceback" not in err


def test_output_paths_are_checked_before_any_work(tmp_path: Path, capsys) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for argv, flag in ((["--plot", str(a_file)], "--plot"), (["--json", str(tmp_path)], "--json"),
                       (["--json", str(a_file / "r.json")], "--json")):
        with pytest.raises(SystemExit) as exc:
            main(SMALL + argv)
        assert exc.value.code == 2
        captured = capsys.readouterr()
        assert flag in captured.err and captured.out == ""     # failed before printing a report


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("flag, path", [("--plot", "/proc/x"), ("--json", "/proc/x/r.json")])
def test_output_that_cannot_be_created_fails_in_one_line(flag: str, path: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(SMALL + [flag, path])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""                                # before the report, i.e. the work
    assert captured.err.strip().splitlines()[-1].startswith(
        f"python -m sims.circuits: error: {flag} /proc/x: cannot write there")


@pytest.mark.parametrize("argv, start", [
    (["--samples", "1000000000000"], "--samples 1000000000000 (at --rounds 8) needs about 8.94e+05 GiB"),
    (["--samples", "10", "--rounds", "100000000000"], "--rounds 100000000000 needs about"),
])
def test_a_job_too_big_for_memory_is_refused_up_front(argv: list[str], start: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv + ["--quiet"])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    line = captured.err.strip().splitlines()[-1]
    assert captured.out == "" and line.startswith(f"python -m sims.circuits: error: {start}")
    assert "GiB available" in line


def test_json_and_plot_at_one_path_are_refused_before_any_work(tmp_path: Path, capsys) -> None:
    same = str(tmp_path / "x")
    with pytest.raises(SystemExit) as exc:
        main(SMALL + ["--samples", "0", "--json", same, "--plot", same])
    assert exc.value.code == 2
    assert "--json and --plot" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_grid_value_given_twice_counts_once(tmp_path: Path) -> None:
    docs = []
    for extra in ([], ["--S", "1", "1", "--K", "1", "1"]):
        path = tmp_path / f"{len(extra)}.json"
        assert main(SMALL + ["--overlap", "outer", "--json", str(path)] + extra) == 0
        docs.append(json.loads(path.read_text()))
    for doc in docs:
        del doc["argv"]
    assert docs[0] == docs[1]
