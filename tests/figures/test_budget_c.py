"""python -m figures budget-c: the runs each set of budget C's figures draws."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from figures.__main__ import main as figures_main
from figures.budget_c import figure_sets

from .conftest import WriteRun


def _scored(write_run: WriteRun, root: Path, name: str, arch: str, protocol: str, *,
            epochs: int = 4, scored: int | None = None, **kw) -> Path:
    """A run folder with a test.json of epoch ``scored`` (default: its last); ``scored=0``:
    none."""
    folder = write_run(root, name, arch, protocol, epochs=epochs, **kw)
    at = epochs if scored is None else scored
    if at:
        (folder / "test.json").write_text(json.dumps(
            {"epochs_done": at, "last": {"epoch": at, "error": 0.5},
             "best": {"epoch": at, "error": 0.5, "val_error": 0.5}}))
    return folder


@pytest.fixture()
def tree(tmp_path: Path, write_run: WriteRun) -> Path:
    """Budget C's folders: paper/runs (the paper's order), choices/simultaneous."""
    paper, simultaneous = tmp_path / "paper" / "runs", tmp_path / "choices" / "simultaneous"
    for seed in (0, 1):
        for p in ("bp", "bp-h", "urfb", "frfb"):
            _scored(write_run, paper, f"simpnet-{p}-s{seed}", "simpnet", p, seed=seed)
            _scored(write_run, simultaneous, f"simpnet-{p}-s{seed}", "simpnet", p, seed=seed)
        for p in ("bp-h", "frfb"):
            _scored(write_run, paper, f"simpnet-{p}-untied-s{seed}", "simpnet", p,
                    untied=(0,), seed=seed)
        _scored(write_run, paper, f"simpnet-urfb-50-s{seed}", "simpnet", "urfb-50", seed=seed)
    # in the simultaneous folder but in no set: URFB 50% and an untied run
    _scored(write_run, simultaneous, "simpnet-urfb-50-s0", "simpnet", "urfb-50")
    _scored(write_run, simultaneous, "simpnet-urfb-untied-s0", "simpnet", "urfb", untied=(0,))
    # deepnet_s's tied pretraining and the run that starts from it (Section 4.1)
    _scored(write_run, paper, "deepnet_s-frfb-pre-s0", "deepnet_s", "frfb", epochs=2)
    run = _scored(write_run, paper, "deepnet_s-frfb-s0", "deepnet_s", "frfb", frozen=(0,))
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "from_run": "../deepnet_s-frfb-pre-s0"}))
    # trained on toward a later budget (its test.json is of epoch 2), or not scored: no set
    _scored(write_run, paper, "deepernet-urfb-s0", "deepernet", "urfb", scored=2)
    _scored(write_run, paper, "deepernet-frfb-s0", "deepernet", "frfb", scored=0)
    return tmp_path


def _names(runs) -> set[str]:
    return {f"{r.path.parent.name}/{r.name}" for r in runs}


def test_each_set_draws_the_runs_its_figures_compare(tree: Path) -> None:
    sets = figure_sets(tree / "paper" / "runs", tree / "choices")
    bp = {f"simultaneous/simpnet-{p}-s{s}" for p in ("bp", "bp-h") for s in (0, 1)}
    paper_rules = {f"runs/simpnet-{p}-s{s}" for p in ("urfb", "frfb", "urfb-50", "bp-h-untied",
                                                       "frfb-untied") for s in (0, 1)}
    deepnet_s = {"runs/deepnet_s-frfb-pre-s0", "runs/deepnet_s-frfb-s0"}
    assert _names(sets["mixed"]) == bp | paper_rules | deepnet_s
    assert _names(sets["paper"]) == paper_rules | deepnet_s | {
        f"runs/simpnet-{p}-s{s}" for p in ("bp", "bp-h") for s in (0, 1)}
    assert _names(sets["simultaneous"]) == bp | {f"simultaneous/simpnet-urfb-s{s}" for s in (0, 1)} | {
        f"runs/simpnet-frfb-s{s}" for s in (0, 1)} | {"runs/deepnet_s-frfb-s0"}


def _longer(write_run: WriteRun, tree: Path, frfb_seeds: tuple[int, ...]) -> None:
    """runs-200/: URFB of both seeds, FRFB of ``frfb_seeds`` at budget (the other seed still
    training); runs-200-simultaneous/: BP of both seeds, and BP-H no longer than before."""
    long, long_sim = tree / "paper" / "runs-200", tree / "paper" / "runs-200-simultaneous"
    for seed in (0, 1):
        _scored(write_run, long, f"simpnet-urfb-s{seed}", "simpnet", "urfb", epochs=8, seed=seed)
        _scored(write_run, long, f"simpnet-frfb-s{seed}", "simpnet", "frfb", epochs=8, seed=seed,
                scored=None if seed in frfb_seeds else 0)
        _scored(write_run, long_sim, f"simpnet-bp-s{seed}", "simpnet", "bp", epochs=8, seed=seed)
        _scored(write_run, long_sim, f"simpnet-bp-h-s{seed}", "simpnet", "bp-h", seed=seed)


def _folders(runs) -> set[tuple[str, str]]:
    return {(r.protocol, r.path.parent.name) for r in runs
            if not r.untied and r.arch == "simpnet" and r.protocol != "urfb-50"}


def test_a_group_comes_from_the_200_epoch_folders_once_every_seed_is_there(
        tree: Path, write_run: WriteRun) -> None:
    _longer(write_run, tree, frfb_seeds=(0,))
    sets = figure_sets(tree / "paper" / "runs", tree / "choices")
    assert _folders(sets["mixed"]) == {("urfb", "runs-200"), ("frfb", "runs"),
                                       ("bp", "runs-200-simultaneous"), ("bp-h", "simultaneous")}
    assert _folders(sets["simultaneous"]) == {("urfb", "simultaneous"), ("frfb", "runs"),
                                              ("bp", "runs-200-simultaneous"),
                                              ("bp-h", "simultaneous")}
    assert all(r.path.parent.name == "runs" for r in sets["paper"])


def test_frfb_of_the_200_epoch_folder_is_drawn_in_both_orders(tree: Path,
                                                              write_run: WriteRun) -> None:
    _longer(write_run, tree, frfb_seeds=(0, 1))
    sets = figure_sets(tree / "paper" / "runs", tree / "choices")
    for name in ("mixed", "simultaneous"):
        assert ("frfb", "runs-200") in _folders(sets[name])
        assert ("frfb", "runs") not in _folders(sets[name])


def test_the_command_links_each_set(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    into = tree / "sets"
    assert figures_main(["budget-c", "--into", str(into), "--paper", str(tree / "paper" / "runs"),
                         "--choices", str(tree / "choices")]) == 0
    assert "mixed: 16 runs from" in capsys.readouterr().out
    link = into / "mixed" / "simpnet-bp-s0"
    assert link.is_symlink() and link.resolve() == tree / "choices" / "simultaneous" / "simpnet-bp-s0"
    assert len(list((into / "simultaneous").iterdir())) == 9


@pytest.mark.parametrize("setup, message", [
    ("full", "not an empty folder"), ("file", "is a file"),
    ("no-paper", "no such folder"), ("corrupt", "not a deepnets test result"),
    ("long", "is longer than the 255 bytes a name may have"),  # was a traceback
    ("no-runs", "no set has a run"),  # was exit 0 and three empty folders
    ("inside-paper", "inside the runs folder"),  # was accepted: links among the runs it reads
    ("inside-choices", "inside the runs folder"),
])
def test_bad_input_is_one_line(tree: Path, capsys: pytest.CaptureFixture[str], setup: str,
                               message: str) -> None:
    into, paper, choices = tree / "sets", tree / "paper" / "runs", tree / "choices"
    if setup == "full":
        (into / "x").mkdir(parents=True)
    elif setup == "file":
        into.write_text("")
    elif setup == "no-paper":
        paper = tree / "nowhere"
    elif setup == "long":
        into = tree / ("x" * 300)
    elif setup == "inside-paper":
        into = paper / "sets"
    elif setup == "inside-choices":
        into = choices / "simultaneous" / "sets"
    elif setup == "no-runs":
        paper, choices = tree / "empty" / "runs", tree / "empty"
        paper.mkdir(parents=True)
    else:
        (paper / "simpnet-urfb-s0" / "test.json").write_text("[]")
    with pytest.raises(SystemExit) as exc:
        figures_main(["budget-c", "--into", str(into), "--paper", str(paper),
                      "--choices", str(choices)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2
    assert err[-1].startswith("python -m figures budget-c: error: ") and message in err[-1]
    assert setup in ("full", "file") or not os.path.exists(into)
