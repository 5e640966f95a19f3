"""urfb_common: atomic writes (old file or new, never partial), output-path checks, umask,
FIGURE arguments, input-path checks."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from urfb_common import (
    OutputPathError,
    atomic_append_line,
    atomic_path,
    atomic_write_text,
    check_out_dir,
    check_out_file,
    command_line,
    figure_numbers,
    path_arg,
    remove_stale_temps,
    require_existing,
    require_writable,
)


def test_atomic_write_replaces_content(tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "a.txt"
    atomic_write_text(dest, "one")
    atomic_write_text(dest, "two")
    assert dest.read_text() == "two"
    assert [p.name for p in dest.parent.iterdir()] == ["a.txt"]


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path: Path) -> None:
    dest = tmp_path / "a.txt"
    dest.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer died")
    assert dest.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_a_folder_at_the_file_s_path_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "figure.png").mkdir()
    with pytest.raises(OutputPathError, match="figure.png is a folder: the file cannot be"):
        atomic_write_text(tmp_path / "figure.png", "x")
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]  # no temporary left

    @command_line("prog")
    def main() -> int:
        atomic_write_text(tmp_path / "figure.png", "x")
        return 0

    assert main() == 1
    assert capsys.readouterr().err == (f"prog: error: {tmp_path / 'figure.png'} is a folder: the "
                                       "file cannot be written there\n")


def test_append_line(tmp_path: Path) -> None:
    dest = tmp_path / "log.jsonl"
    atomic_append_line(dest, '{"a": 1}')
    atomic_append_line(dest, '{"a": 2}\n')
    assert dest.read_text().splitlines() == ['{"a": 1}', '{"a": 2}']


def test_new_files_respect_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_stale_temporaries_are_removed(tmp_path: Path) -> None:
    (tmp_path / "checkpoint.pt").write_text("good")
    (tmp_path / ".checkpoint.pt.abc123.tmp.pt").write_text("half")  # left by a kill -9
    removed = remove_stale_temps(tmp_path)
    assert [p.name for p in removed] == [".checkpoint.pt.abc123.tmp.pt"]
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_good_paths_pass_and_nothing_is_created(tmp_path: Path) -> None:
    check_out_dir(tmp_path / "new" / "deeper")
    check_out_file(tmp_path / "new" / "t.json")
    check_out_dir(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_bad_paths_name_the_flag(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputPathError, match=f"--out {f / 'sub'}: {f} exists and is not a folder"):
        check_out_dir(f / "sub")
    with pytest.raises(OutputPathError, match="--json .*is a folder"):
        check_out_file(tmp_path, "--json")
    with pytest.raises(OutputPathError, match="--json .*not a folder"):
        check_out_file(f / "x.json", "--json")


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux's /proc")
def test_unwritable_place_is_found_even_for_root() -> None:
    with pytest.raises(OutputPathError, match="--plot /proc/x: cannot write there"):
        check_out_dir("/proc/x", "--plot")


def test_require_writable_is_a_parser_error(tmp_path: Path, capsys) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(SystemExit) as exc:
        require_writable(argparse.ArgumentParser(prog="prog"), "--out", f / "d")
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("prog: error: --out ")


@pytest.mark.parametrize("items, numbers", [([], [4, 5, 12]), (["all"], [4, 5, 12]),
                                            (["12", "4", "4"], [4, 12])])
def test_figure_numbers(items: list[str], numbers: list[int]) -> None:
    assert figure_numbers(items, (12, 5, 4)) == numbers


@pytest.mark.parametrize("items, bad", [(["13"], "'13'"), (["4", "x"], "'x'"), (["-4"], "'-4'")])
def test_figure_numbers_name_the_bad_item(items: list[str], bad: str) -> None:
    with pytest.raises(ValueError) as exc:
        figure_numbers(items, (4, 5, 12))
    assert str(exc.value) == f"argument FIGURE: {bad} is not 'all' or one of [4, 5, 12]"


def test_all_with_numbers_says_what_all_means() -> None:
    with pytest.raises(ValueError) as exc:
        figure_numbers(["all", "4"], (4, 5, 12))
    assert str(exc.value) == ("argument FIGURE: 'all' already means every figure [4, 5, 12]; give "
                              "'all' alone or figure numbers")


def test_require_existing_names_flag_and_kind(tmp_path: Path, capsys) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    parser = argparse.ArgumentParser(prog="prog")
    require_existing(parser, "--runs", tmp_path)
    require_existing(parser, "--csv", f, file=True)
    for path, file, why in ((tmp_path / "no", False, "no such folder"), (tmp_path / "no", True, "no such file"),
                            (f, False, "is a file, not a folder"),
                            (tmp_path, True, "is a folder; give a file in it")):
        with pytest.raises(SystemExit) as exc:
            require_existing(parser, "--x", path, file=file)
        assert exc.value.code == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == f"prog: error: --x {path}: {why}"



def test_a_tilde_user_that_does_not_exist_is_refused(tmp_path: Path, monkeypatch, capsys) -> None:
    """``os.path.expanduser`` leaves ``~nosuchuser`` as it is: a literal folder was made."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert path_arg("~/x") == tmp_path / "home" / "x"
    parser = argparse.ArgumentParser(prog="prog")
    parser.add_argument("--out", type=path_arg)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--out=~nosuchuser-urfb/x"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "prog: error: argument --out: no user 'nosuchuser-urfb' to expand ~nosuchuser-urfb (for a "
        "file or folder named so, write ./~nosuchuser-urfb)")
    assert list(tmp_path.iterdir()) == []


def test_a_closed_stdout_ends_a_cli_quietly(tmp_path: Path) -> None:
    """``python -m theory | head`` ended in a BrokenPipeError traceback."""
    script = tmp_path / "cli.py"
    script.write_text(
        "import sys\nfrom urfb_common import command_line\n\n"
        "@command_line('prog')\ndef main() -> int:\n"
        "    for i in range(100_000):\n        print('line', i)\n    return 0\n\n"
        "sys.exit(main())\n")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(root)})
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()  # the reader takes a line and goes, as head does
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 1
    assert err == b""


def test_ctrl_c_is_one_line_and_exit_130(tmp_path: Path, capsys) -> None:
    """Ctrl-C during ``python -m sims.epsilon_sweep`` printed a 31-line traceback."""

    @command_line("prog")
    def main() -> int:
        raise KeyboardInterrupt

    assert main() == 130
    assert capsys.readouterr().err == "prog: interrupted; nothing more was written\n"
