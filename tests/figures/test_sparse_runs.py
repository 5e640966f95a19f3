"""Every figure from runs that lack something (issue 19): runs trained with ``--val-size 0`` (no
validation error), grids without a BP-H reference, layers without a logged correlation. Each
figure is drawn or reported missing with a reason, never a traceback, and matplotlib warns of
nothing (this folder's conftest turns its warnings into errors)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from deepnets.experiments.protocols import PROTOCOLS
from figures.__main__ import main
from figures.runs import committed_runs, find_runs

PAPER_PROTOCOLS = [name for name, p in PROTOCOLS.items() if p.figures]


def _drop(folder: Path, *keys: str) -> None:
    """Set ``keys`` of every log record of a run to null, as a run that never logged them."""
    rows = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    for row in rows:
        row.update(dict.fromkeys(keys))
    (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _grid(root: Path, write_run, protocols: list[str]) -> None:
    for p in protocols:
        write_run(root, f"simpnet-cifar10-{p}", "simpnet", p)
        write_run(root, f"deepernet-cifar10-{p}", "deepernet", p)
        write_run(root, f"simpnet-cifar10-{p}-untied", "simpnet", p, untied=(0,))


@pytest.mark.parametrize("case", ["val-size 0", "no BP-H", "no correlations"])
def test_every_figure_from_sparse_runs_draws_without_warnings(
        tmp_path: Path, write_run, case: str, capsys) -> None:
    root = tmp_path / "runs"
    _grid(root, write_run, [p for p in PAPER_PROTOCOLS if not (case == "no BP-H" and p == "bp-h")])
    for folder in root.iterdir():
        if case == "val-size 0":
            _drop(folder, "val_error", "val_loss")
        if case == "no correlations":
            _drop(folder, "corr")
    code = main(["all", "--runs", str(root), "--out", str(tmp_path / "out"), "--json"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert code == 0 and {"4", "5", "7", "9"} <= set(summary["built"]), summary
    if case == "val-size 0":
        assert "no validation error" in (tmp_path / "out" / "figure5.txt").read_text()
        assert "validation error" in summary["missing"]["16"]
    if case == "no BP-H":
        assert "16" in summary["built"]


def test_the_report_reads_committed_runs_only(tmp_path: Path, write_run, capsys,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A run still training in the working tree (its folder not committed) is left out of the
    report's runs; one reached through a committed symlink counts once committed; outside a git
    checkout every run counts."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # no checkout above this test
    repo = tmp_path / "repo"
    grid = repo / "results" / "grid"
    write_run(grid, "simpnet-cifar10-urfb-s0", "simpnet", "urfb")
    write_run(grid, "simpnet-cifar10-frfb-s0", "simpnet", "frfb")
    (repo / "results" / "paired").mkdir()
    (repo / "results" / "paired" / "urfb-fp32-s0").symlink_to("../grid/simpnet-cifar10-urfb-s0")
    assert len(committed_runs(grid)) == 2  # no git checkout yet: every run
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "results/grid/simpnet-cifar10-urfb-s0", "results/paired"],
                   check=True)
    subprocess.run([*git, "commit", "-qm", "one run"], check=True)
    assert [r.protocol for r in committed_runs(grid)] == ["urfb"]
    assert [r.protocol for r in committed_runs(repo / "results" / "paired")] == ["urfb"]
    assert len(find_runs(grid)) == 2  # the figures still draw whatever is there
    # trained on after its commit (and scored): the report keeps the committed epochs, also
    # through the symlink; staged files count as committed
    log = grid / "simpnet-cifar10-urfb-s0" / "log.jsonl"
    committed = log.read_text()
    lines = committed.splitlines(keepends=True)
    log.write_text(committed + lines[-1].replace('"epoch": 4', '"epoch": 5'))
    (log.parent / "test.json").write_text("{}")
    for folder in (grid, repo / "results" / "paired"):
        (run,) = committed_runs(folder)
        assert run.name == ("simpnet-cifar10-urfb-s0" if folder == grid else "urfb-fp32-s0")
        assert run.epochs_done == 4 and run.test_result() is None  # the untracked one unread
        assert run.path == folder / run.name  # its own path, not the copy's: notes name it
    assert find_runs(grid)[1].epochs_done == 5
    subprocess.run([*git, "add", str(log)], check=True)
    assert committed_runs(grid)[0].epochs_done == 5
    # a run whose log git tracks but not its config cannot be read as committed: skipped, said
    other = grid / "simpnet-cifar10-frfb-s0"
    subprocess.run([*git, "add", str(other / "log.jsonl")], check=True)
    (other / "log.jsonl").write_text((other / "log.jsonl").read_text()
                                     + lines[-1].replace('"epoch": 4', '"epoch": 5'))
    assert [r.protocol for r in committed_runs(grid)] == ["urfb"]
    assert f"figures: skipping {other} as committed" in capsys.readouterr().err
