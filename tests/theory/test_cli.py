"""``python -m theory`` command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from theory.__main__ import main


def test_json_output(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert main(["--only", "eq11", "dF3/deps", "--out", str(out), "--quiet"]) == 0
    rows = json.loads(out.read_text())
    assert [r["id"] for r in rows] == ["eq11", "dF3/deps"]
    assert {"id", "status", "printed", "derived", "correction"} <= set(rows[0])
    assert rows[1]["status"] == "erratum"
    assert "dF3/deps" in capsys.readouterr().out


@pytest.mark.parametrize("fmt, marker", [("markdown", "| `eq13.H` |"), ("latex", "longtable")])
def test_other_formats(tmp_path, fmt, marker):
    out = tmp_path / "t.out"
    assert main(["--only", "eq13.H", "--format", fmt, "--out", str(out), "--quiet"]) == 0
    assert marker in out.read_text()


@pytest.mark.parametrize("argv, word", [
    (["--only", "nope"], "--only"),
    (["--seed", "-1"], "--seed"),
    (["--out", "table.xyz"], "--out"),
    (["--numeric", "--format", "latex"], "latex"),
    (["--numeric", "--n-outside", "1"], "--n-outside"),
    (["--format", "xml"], "--format"),
    (["--numerc"], "--numerc"),
    (["--out", "."], "--out"),
    (["--format", "json", "--out", "."], "--out"),
])
def test_bad_arguments_exit_2(argv, word, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert word in err and "Traceback" not in err


def test_numeric_json(tmp_path, capsys):
    out = tmp_path / "n.json"
    assert main(["--numeric", "--n-outside", "4", "--quiet", "--out", str(out)]) == 0
    findings = json.loads(out.read_text())
    assert len(findings) == 6 and all(f["n_sets"] > 0 for f in findings)
    inside_t1 = findings[0]
    assert not {"lambda_1", "e^2", "rate S"} & set(inside_t1["violations"])
    assert "Theorem 2 (k=3), inside its assumptions" in capsys.readouterr().out


def test_out_under_a_file_fails_before_any_check(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    for argv in (["--out", str(f / "t.json")], ["--numeric", "--out", str(f / "n.json")]):
        with pytest.raises(SystemExit) as exc:
            main(argv + ["--quiet"])
        assert exc.value.code == 2
        captured = capsys.readouterr()
        assert "--out" in captured.err and "not a folder" in captured.err and captured.out == ""


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("argv", [[], ["--numeric"]])
def test_out_that_cannot_be_created_fails_in_one_line_before_any_check(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv + ["--out", "/proc/x/t.txt", "--quiet"])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""                                # no table: nothing was computed
    assert captured.err.strip().splitlines()[-1].startswith(
        "python -m theory: error: --out /proc/x: cannot write there")


@pytest.mark.parametrize("argv, line", [
    (["--only", ""], "--only: an id is empty; give check ids from the table, e.g. eq11"),
    (["--out", "{tmp}/t.md", "--format", "latex"],
     ("--format latex contradicts --out {tmp}/t.md, whose suffix means markdown; give --format "
      "markdown or another suffix")),
    (["--out", "{tmp}"], "--out {tmp}: is a folder; give a file name"),
])
def test_misleading_or_silent_cases_are_one_clear_line(tmp_path, capsys, argv, line):
    """An empty --only id named nothing, LaTeX went silently into a .md file, a folder at --out
    was said to lack a suffix."""
    with pytest.raises(SystemExit) as exc:
        main([a.format(tmp=tmp_path) for a in argv] + ["--quiet"])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines()[-1] == f"python -m theory: error: {line}".format(
        tmp=tmp_path)
    assert captured.out == "" and list(tmp_path.iterdir()) == []


def test_numeric_honours_format_on_stdout(capsys):
    assert main(["--numeric", "--n-outside", "2", "--quiet", "--format", "json"]) == 0
    findings = json.loads(capsys.readouterr().out)
    assert len(findings) == 6 and all("violations" in f for f in findings)
