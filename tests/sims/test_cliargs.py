"""sims.cliargs: output paths are checked up front, with one-line errors naming the flag."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from sims.cliargs import check_out_dir, check_out_file


def _error(call, tmp_path: Path, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        call(argparse.ArgumentParser(prog="prog"))
    assert exc.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_good_paths_pass_and_nothing_is_created(tmp_path: Path) -> None:
    p = argparse.ArgumentParser()
    check_out_dir(p, "--out", tmp_path / "new" / "deeper")
    check_out_file(p, "--out", tmp_path / "new" / "t.json")
    check_out_dir(p, "--out", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_bad_paths_name_the_flag(tmp_path: Path, capsys) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    assert "--out: " in _error(lambda p: check_out_dir(p, "--out", f), tmp_path, capsys)
    err = _error(lambda p: check_out_dir(p, "--out", f / "sub" / "dir"), tmp_path, capsys)
    assert err.endswith(f"--out: {f} exists and is not a folder")
    err = _error(lambda p: check_out_file(p, "--json", tmp_path), tmp_path, capsys)
    assert "--json" in err and "is a folder" in err
    err = _error(lambda p: check_out_file(p, "--json", f / "x.json"), tmp_path, capsys)
    assert "--json" in err and "not a folder" in err
