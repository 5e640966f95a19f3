"""sims.fileio: atomic writes leave either the old file or the new one, never a partial file."""

from pathlib import Path

import pytest

from sims.fileio import atomic_append_line, atomic_path, atomic_write_text


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


def test_append_line(tmp_path: Path) -> None:
    dest = tmp_path / "log.jsonl"
    atomic_append_line(dest, '{"a": 1}')
    atomic_append_line(dest, '{"a": 2}\n')
    assert dest.read_text().splitlines() == ['{"a": 1}', '{"a": 2}']
