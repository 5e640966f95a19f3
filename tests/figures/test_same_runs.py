"""python -m figures same-runs: two sets of runs compared number for number, timings aside."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from figures.__main__ import main as figures_main
from figures.same_runs import compare_logs, main, same_runs


def _record(epoch: int, val_error: float, seconds: float) -> dict:
    return {"epoch": epoch, "train_loss": 1.0 / epoch, "val_error": val_error, "seconds": seconds,
            "train_seconds": seconds, "corr": [0.1 * epoch, None]}


def _run(folder: Path, records: list[dict]) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture
def two_sets(tmp_path: Path) -> tuple[Path, Path]:
    """``same`` differs in its timings only; ``drift`` from epoch 2 on; ``longer`` logged one
    more epoch under b; ``lone`` is under a only."""
    a, b = tmp_path / "a", tmp_path / "b"
    base = [_record(e, 0.5 - 0.01 * e, 1.0) for e in (1, 2, 3)]
    _run(a / "fp32" / "same", base)
    _run(b / "fp32" / "same", [{**r, "seconds": 9.0, "train_seconds": 8.0} for r in base])
    _run(a / "drift", base)
    _run(b / "drift", [base[0], *({**r, "val_error": r["val_error"] + 1e-9} for r in base[1:])])
    _run(a / "longer", base[:2])
    _run(b / "longer", base)
    _run(a / "lone", base)
    return a, b


def test_runs_are_paired_by_path_and_compared_without_their_timings(
    two_sets: tuple[Path, Path]
) -> None:
    matches, notes = same_runs(*two_sets)
    by_run = {m.run: m for m in matches}
    assert sorted(by_run) == ["drift", "fp32/same", "longer"]
    assert by_run["fp32/same"].same and by_run["fp32/same"].identical == 3
    drift = by_run["drift"]
    assert (drift.epochs, drift.identical, drift.first_difference, drift.fields) == (
        3, 1, 2, ("val_error",))
    longer = by_run["longer"]  # the epochs both logged
    assert longer.same and (longer.epochs, longer.lengths) == (2, (2, 3))
    assert notes == [f"lone: under {two_sets[0]} only"]


def test_an_empty_log_is_not_identical_and_linked_runs_are_found(
    two_sets: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = two_sets
    _run(b / "lone", [])  # begun, no epoch logged yet
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "fp32").symlink_to(b / "fp32", target_is_directory=True)
    (linked / "lone").symlink_to(b / "lone", target_is_directory=True)
    matches, _ = same_runs(a, linked)
    assert {m.run: m.same for m in matches} == {"fp32/same": True, "lone": False}
    (one,), _ = same_runs(a / "drift", b / "drift")  # two run folders themselves
    assert one.run == "drift against drift" and one.first_difference == 2


def test_a_nested_difference_is_named_by_its_field() -> None:
    a = [{"epoch": 1, "alignment": {"full1": {"delta_angle": 40.0}}, "seconds": 1.0}]
    b = [{"epoch": 1, "alignment": {"full1": {"delta_angle": 40.000001}}, "seconds": 1.0}]
    assert compare_logs("r", a, b).fields == ("alignment",)
    assert compare_logs("r", a, a).same


def test_a_field_one_log_lacks_is_named_not_compared() -> None:
    """A rerun by a newer trainer logs more (Figure 8's homogeneity): the rest still compares."""
    old = [{"epoch": 1, "val_error": 0.5}, {"epoch": 2, "val_error": 0.4}]
    new = [{**r, "homogeneity": {"untied0": 0.9}} for r in old]
    match = compare_logs("r", old, new)
    assert match.same and match.unshared == ("homogeneity",)
    new[1]["val_error"] = 0.41
    assert compare_logs("r", old, new).first_difference == 2


def test_the_command_writes_the_table(two_sets: tuple[Path, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "same.md"
    assert figures_main(["same-runs", *map(str, two_sets), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text == out.read_text()
    assert "2 of 3 runs identical over the epochs both logged" in text
    assert "| drift | 3, 3 | 3 | 1 | 2 | val_error | — |" in text


@pytest.mark.parametrize("which", ["missing", "no common run", "corrupt log"])
def test_bad_input_is_a_one_line_error(two_sets: tuple[Path, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture, which: str) -> None:
    a = two_sets[0]
    if which == "missing":
        argv, fragment = [str(a), str(tmp_path / "nope")], "nope"
    elif which == "no common run":
        (tmp_path / "other" / "x").mkdir(parents=True)
        _run(tmp_path / "other" / "x" / "run", [_record(1, 0.5, 1.0)])
        argv, fragment = [str(a), str(tmp_path / "other")], "no run folder is at the same path"
    else:
        (two_sets[1] / "drift" / "log.jsonl").write_text("{not json\n")
        argv, fragment = [str(a), str(two_sets[1])], "log.jsonl"
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) <= 2 and fragment in err[-1]


def test_one_folder_as_a_and_b_is_refused(two_sets: tuple[Path, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    """A and B one folder (also through a link): exit 2, not "4 of 4 runs identical"."""
    a = two_sets[0]
    (tmp_path / "link").symlink_to(a, target_is_directory=True)
    for b in (a, tmp_path / "link"):
        with pytest.raises(SystemExit) as stop:
            main([str(a), str(b)])
        assert stop.value.code == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            f"python -m figures same-runs: error: A {a} and B {b} are one folder: its runs "
            "would be called identical to themselves")


def test_an_out_inside_a_or_b_is_refused(two_sets: tuple[Path, Path],
                                         capsys: pytest.CaptureFixture) -> None:
    """--out naming a run's log.jsonl replaced the log with the table; now exit 2, log kept."""
    log = two_sets[1] / "drift" / "log.jsonl"
    before = log.read_text()
    with pytest.raises(SystemExit) as stop:
        main([str(two_sets[0]), str(two_sets[1]), "--out", str(log)])
    assert stop.value.code == 2 and log.read_text() == before
    assert "inside the runs folder" in capsys.readouterr().err


def test_a_run_linked_from_both_sides_is_not_called_identical(two_sets: tuple[Path, Path],
                                                              tmp_path: Path) -> None:
    """``x`` under A and under B is one folder (two links): noted, not compared; with no other
    pair, no table."""
    a, b = tmp_path / "la", tmp_path / "lb"
    for side in (a, b):
        side.mkdir()
        (side / "x").symlink_to(two_sets[0] / "drift", target_is_directory=True)
    (b / "y").symlink_to(two_sets[1] / "longer", target_is_directory=True)
    (a / "y").symlink_to(two_sets[0] / "longer", target_is_directory=True)
    matches, notes = same_runs(a, b)
    assert [m.run for m in matches] == ["y"] and matches[0].same
    drift = (two_sets[0] / "drift").resolve()
    assert notes == [f"x: one folder under {a} and {b} ({drift}), not compared"]
    (b / "y").unlink()
    with pytest.raises(LookupError, match="but the same folder itself"):
        same_runs(a, b)


H200 = Path(__file__).parents[2] / "results"


@pytest.mark.skipif(not (H200 / "cifar10-paper-h200-run2").is_dir(),
                    reason="needs the committed results/cifar10-paper-h200-run2 runs")
def test_the_h200_replicate_tables_are_current(tmp_path: Path, capsys: pytest.CaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """results/cifar10-paper-h200-run2/same-runs.md and replicate.md are what their commands
    (in that folder's README) write from the committed logs."""
    monkeypatch.chdir(H200.parent)
    run2 = "results/cifar10-paper-h200-run2"
    assert main(["results/cifar10-paper-h200", run2, "--out", str(tmp_path / "same.md")]) == 0
    assert (tmp_path / "same.md").read_text() == (H200.parent / run2 / "same-runs.md").read_text()
    assert figures_main(["protocol-choice", "--paper", "results/cifar10-paper-h200/fp32",
                         "--variant", f"second H200 run={run2}/fp32",
                         "--out", str(tmp_path / "replicate.md")]) == 0
    assert (tmp_path / "replicate.md").read_text() == (
        H200.parent / run2 / "replicate.md").read_text()
    capsys.readouterr()
