"""figures.endpoints and figures.report's rows: the test error at the validation-chosen epoch,
the mean of the last epochs, fragile rows, uninformative "close", claims over every layer, and
the table of test errors, on small synthetic run folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from figures.endpoints import error_ends, scored_on_test, window
from figures.report import Report, block_final_errors, error_row, every_layer, value_row
from figures.rows import pair_row
from figures.runs import Seeds, find_runs, select_seeds
from figures.stats import CONTRADICTS, INCONCLUSIVE, SUPPORTS, UNINFORMATIVE


def _group(root: Path, write_run, protocol: str, vals: list[list[float]],
           tests: list[tuple[int, float]] | None = None, arch: str = "simpnet") -> Seeds:
    """One run per seed whose validation errors are ``vals[seed]`` (training error = val +
    0.01), with a test.json (best epoch, test error) per seed when ``tests`` is given."""
    for seed, v in enumerate(vals):
        folder = write_run(root, f"{arch}-{protocol}-s{seed}", arch, protocol, seed=seed,
                           epochs=len(v), probe=False)
        rows = [{"epoch": e, "train_loss": 1.0, "train_error": x + 0.01, "val_loss": 1.0,
                 "val_error": x, "seconds": 1.0, "corr": [0.5, 0.5, 0.5]}
                for e, x in enumerate(v, start=1)]
        (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        if tests is not None:
            epoch, error = tests[seed]
            best = {"epoch": epoch, "val_error": v[epoch - 1], "loss": 1.0, "error": error}
            last = {"epoch": len(v), "val_error": v[-1], "loss": 1.0, "error": error}
            (folder / "test.json").write_text(json.dumps(
                {"best": best, "last": last, "epochs_done": len(v), "images": 10}))
    group = select_seeds(find_runs(root), arch=arch, protocol=protocol)
    assert group is not None and group.n == len(vals)
    return group


def test_the_chosen_endpoint_is_the_test_error_of_the_validation_chosen_epoch(
        tmp_path: Path, write_run) -> None:
    vals = [[0.6, 0.4, 0.5, 0.4, 0.45, 0.5], [0.6, 0.5, 0.3, 0.35, 0.4, 0.42]]
    g = _group(tmp_path, write_run, "urfb", vals, tests=[(2, 0.41), (3, 0.33)])
    assert scored_on_test(g) == {0: (2, 0.41), 1: (3, 0.33)}
    epochs = window(g)
    assert epochs == [2, 3, 4, 5, 6]
    ends = error_ends(g, epochs)
    assert ends.tested and ends.epochs == {0: 2, 1: 3}  # seed 0: epochs 2 and 4 tie, the earliest
    assert ends.chosen == {0: 0.41, 1: 0.33}
    assert ends.last == pytest.approx({0: (0.4 + 0.5 + 0.4 + 0.45 + 0.5) / 5,
                                       1: (0.5 + 0.3 + 0.35 + 0.4 + 0.42) / 5})
    # a window cut before the end: the test result is of another epoch, validation is shown
    cut = error_ends(g, [1, 2])
    assert not cut.tested and cut.chosen == {0: 0.4, 1: 0.5} and cut.epochs == {0: 2, 1: 2}
    assert error_ends(g, epochs, "train_error").chosen == pytest.approx({0: 0.41, 1: 0.31})


def test_a_row_of_test_errors_shows_the_validation_errors_of_those_epochs_beside_them(
        tmp_path: Path, write_run) -> None:
    """Issue 20: validation beside every test error; a row compared on validation (one side
    not scored) shows no second number, nor does a gap's difference of tested sides lose it."""
    a = _group(tmp_path / "a", write_run, "frfb", [[0.6, 0.4, 0.5], [0.6, 0.5, 0.3]],
               tests=[(2, 0.41), (3, 0.33)])
    b = _group(tmp_path / "b", write_run, "urfb", [[0.5, 0.2, 0.4], [0.3, 0.5, 0.5]],
               tests=[(2, 0.25), (1, 0.35)])
    row = error_row("FRFB above URFB", "X", a, b, "greater")
    assert row.a == "0.370 ± 0.057 [0.410, 0.330]; validation there 0.350 ± 0.071"
    assert row.b == "0.300 ± 0.071 [0.250, 0.350]; validation there 0.250 ± 0.071"
    gap = error_ends(a, window(a, b)) - error_ends(b, window(a, b))
    assert gap.validation == pytest.approx({0: 0.2, 1: 0.0})
    untested = _group(tmp_path / "c", write_run, "bp-h", [[0.5, 0.2, 0.4], [0.3, 0.5, 0.5]])
    assert "validation there" not in error_row("x", "X", a, untested, "greater").a
    # a tested side less an untested one: validation less validation, never test less validation
    mixed = error_ends(a, window(a)) - error_ends(untested, window(a))
    assert not mixed.tested and mixed.chosen == pytest.approx({0: 0.4 - 0.2, 1: 0.3 - 0.3})
    # a row of a tested gap against an untested side: both on validation, and said so
    tested_gap = error_ends(a, window(a, b)) - error_ends(b, window(a, b))
    assert tested_gap.tested and tested_gap.test_epochs == {0: 2, 1: 3}
    row = pair_row("gap", "X", tested_gap, error_ends(untested, window(a)), "greater", 10,
                   window(a))
    assert row.cmp.diffs == pytest.approx({0: 0.2 - 0.2, 1: 0.0 - 0.3})
    assert row.endpoint.startswith("validation error at the validation-chosen epoch (a scored on "
                                   "the test split; b not scored on the test split at these")


def test_runs_of_different_lengths_are_compared_over_the_epochs_both_reached(
        tmp_path: Path, write_run) -> None:
    """No comparison across budgets: a 6-epoch run's choice is made among epochs 1..4 when the
    other side reached only 4, and its test result (of epoch 6) is not used."""
    long = _group(tmp_path / "a", write_run, "frfb", [[0.9, 0.8, 0.7, 0.6, 0.5, 0.1]] * 2,
                  tests=[(6, 0.1), (6, 0.1)])
    short = _group(tmp_path / "b", write_run, "urfb", [[0.9, 0.7, 0.6, 0.5]] * 2,
                   tests=[(4, 0.5), (4, 0.5)])
    row = error_row("FRFB above URFB", "X", long, short, "greater")
    assert row.cmp.epoch == 4 and row.cmp.diffs == pytest.approx({0: 0.1, 1: 0.1})
    assert row.endpoint.startswith(
        "validation error at the validation-chosen epoch (a scored on the test split at ep 6, 6, "
        "after the compared epochs; b scored on the test split: both on validation)")
    assert "a ep 4, 4; b ep 4, 4" in row.endpoint and "ep 4 ×" in row.where


def test_a_gap_row_names_both_terms_chosen_epochs(tmp_path: Path, write_run) -> None:
    """A side that is a difference (FRFB - URFB) lists each seed's pair of validation-chosen
    epochs, first term's then second's."""
    frfb = _group(tmp_path / "f", write_run, "frfb", [[0.9, 0.7, 0.8], [0.9, 0.8, 0.7]],
                  tests=[(2, 0.7), (3, 0.7)])
    urfb = _group(tmp_path / "u", write_run, "urfb", [[0.5, 0.6, 0.6], [0.6, 0.4, 0.5]],
                  tests=[(1, 0.5), (2, 0.4)])
    epochs = window(frfb, urfb)
    gap = error_ends(frfb, epochs) - error_ends(urfb, epochs)
    assert gap.epochs == {0: 2, 1: 3} and gap.second_epochs == {0: 1, 1: 2}
    assert gap.chosen == pytest.approx({0: 0.2, 1: 0.3})
    row = pair_row("gap", "X", gap, gap, "greater", 10, epochs)
    assert "(a ep (2, 1), (3, 2); b ep (2, 1), (3, 2))" in row.endpoint


def test_a_row_whose_verdict_changes_between_the_endpoints_is_fragile(
        tmp_path: Path, write_run) -> None:
    # at each run's chosen epoch a is well above b; over the last 5 epochs below it
    a = _group(tmp_path / "a", write_run, "frfb",
               [[0.5, 0.40, 0.5, 0.5, 0.5, 0.5], [0.5, 0.41, 0.5, 0.5, 0.5, 0.5],
                [0.5, 0.42, 0.5, 0.5, 0.5, 0.5]], tests=[(2, 0.50), (2, 0.51), (2, 0.52)])
    b = _group(tmp_path / "b", write_run, "urfb",
               [[0.5, 0.50, 0.3, 0.6, 0.6, 0.6], [0.5, 0.50, 0.6, 0.3, 0.6, 0.6],
                [0.5, 0.50, 0.6, 0.6, 0.6, 0.3]], tests=[(3, 0.40), (4, 0.40), (6, 0.40)])
    row = error_row("FRFB's error above URFB's", "X", a, b, "greater", short="s")
    assert row.endpoint.startswith("test error at the validation-chosen epoch")
    assert row.cmp.diffs == pytest.approx({0: 0.10, 1: 0.11, 2: 0.12})
    assert row.verdict == SUPPORTS and row.alt_verdict == CONTRADICTS and row.fragile
    text = row.cells()[-1]
    assert text.startswith("**supports**") and "**fragile**: contradicts" in text
    assert "mean of ep 2–6" in text
    steady = error_row("FRFB's error above URFB's", "X", a, a, "greater")
    assert not steady.fragile and "fragile" not in steady.cells()[-1]


def test_close_near_chance_is_uninformative(tmp_path: Path, write_run) -> None:
    a = _group(tmp_path / "a", write_run, "urfb", [[0.899, 0.90], [0.91, 0.905], [0.9, 0.895]])
    b = _group(tmp_path / "b", write_run, "bp-h", [[0.9, 0.892], [0.9, 0.9], [0.9, 0.893]])
    assert error_row("close", "X", a, b, "close").verdict == UNINFORMATIVE
    assert error_row("above", "X", a, b, "greater").verdict != UNINFORMATIVE  # close rows only
    learnt = _group(tmp_path / "c", write_run, "frfb", [[0.9, 0.60], [0.9, 0.61], [0.9, 0.62]])
    assert error_row("close", "X", learnt, b, "close").verdict == CONTRADICTS
    one = value_row("ep 1", "X", {0: 0.899, 1: 0.9}, {0: 0.892, 1: 0.9}, "close", chance=0.9)
    assert one.verdict == UNINFORMATIVE


def test_a_claim_over_every_layer_shows_its_least_favourable_layer() -> None:
    """Not the layer with the smallest mean/sd: the one with the smallest mean difference."""
    tight = value_row("conv4", "X", {0: 28.0, 1: 29.0, 2: 28.5}, {0: 0.0, 1: 0.0, 2: 0.0},
                      "greater")
    wide = value_row("output", "X", {0: 5.0, 1: 15.0, 2: 11.0}, {0: 0.0, 1: 0.0, 2: 0.0},
                     "greater")
    assert tight.cmp.mean / tight.cmp.sd > wide.cmp.mean / wide.cmp.sd  # the old choice: conv4
    row = every_layer([tight, wide], "angle", "every layer")
    assert row.cmp is wide.cmp and "output" in row.test and row.verdict == SUPPORTS
    bad = value_row("full", "X", {0: -1.0, 1: -2.0, 2: -1.5}, {0: 0.0, 1: 0.0, 2: 0.0}, "greater")
    assert every_layer([tight, wide, bad], "angle", "s").verdict == CONTRADICTS
    mixed = value_row("mixed", "X", {0: -1.0, 1: 2.0, 2: 40.0}, {0: 0.0, 1: 0.0, 2: 0.0},
                      "greater")
    row = every_layer([tight, mixed], "angle", "s")
    assert row.verdict == INCONCLUSIVE and row.cmp is mixed.cmp  # mean 13.7 < 28.5


def test_the_table_of_final_errors_shows_test_at_the_chosen_epoch_and_the_budget(
        tmp_path: Path, write_run) -> None:
    vals = [[0.6, 0.4, 0.5, 0.45, 0.5, 0.48], [0.6, 0.5, 0.3, 0.35, 0.4, 0.42]]
    _group(tmp_path / "a", write_run, "urfb", vals, tests=[(2, 0.41), (3, 0.33)])
    _group(tmp_path / "b", write_run, "urfb", vals)  # not scored on the test split
    none = tmp_path / "none"  # no bf16, protocol-choice or budget C runs: only A and B
    text = block_final_errors(Report(tmp_path / "a", tmp_path / "b", (), none, none, none))
    header, _, row_a, row_b = text.splitlines()
    assert "test error at the validation-chosen epoch" in header
    assert "validation-chosen epoch [per seed]" in header and "share of the paper's" in header
    cells = [c.strip() for c in row_a.strip("|").split("|")]
    assert cells[:4] == ["A", "simpnet", "URFB", "tied"]
    assert cells[4] == "6 × 200 (0.0027%)"  # epochs × training images: the budget
    assert cells[5] == "0.370 ± 0.057 [0.410, 0.330]" and cells[6] == "2, 3"
    assert cells[7] == "0.350 ± 0.071 [0.400, 0.300]"  # validation error there
    assert [c.strip() for c in row_b.strip("|").split("|")][5] == "not scored"
