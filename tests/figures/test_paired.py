"""figures.paired, figures.bf16_paired, figures.protocol_choice: two families of runs, paired by
seed, under the verdict rule, on synthetic run folders whose answer is known."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from figures.__main__ import main as figures_main
from figures.bf16_paired import bf16_comparisons, markdown, verdict_sentence
from figures.paired import RuleComparison, by_setting, compare_families
from figures.protocol_choice import LAYERS_INTRO, choice_table, worse_or_better
from figures.report import block_bf16_paired, block_protocol_choice
from figures.report import main as report_main
from figures.runs import find_runs
from figures.stats import CONTRADICTS, INCONCLUSIVE, SUPPORTS, UNINFORMATIVE

#: The ``write_run`` fixture of conftest.py.
WriteRun = Callable[..., Path]


def _patch(folder: Path, config: dict | None = None,
           val: Callable[[int, float], float] | None = None) -> None:
    """Set config.json keys; rewrite each epoch's val_error as ``val(epoch, old)``."""
    if config:
        cfg = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**cfg, **config}))
    if val is not None:
        rows = [json.loads(x) for x in (folder / "log.jsonl").read_text().splitlines()]
        for r in rows:
            r["val_error"] = val(r["epoch"], r["val_error"])
        (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture()
def bf16_runs(tmp_path: Path, write_run: WriteRun) -> Callable[..., Path]:
    """``make(rules, seeds_fp32, seeds_bf16, gap={rule: bf16 offset}, logged={precision: n})``:
    ``<rule>-<precision>-s<seed>`` run folders as results/bf16-paired/run.sh writes them."""

    def make(rules=("urfb", "frfb"), seeds_fp32=(0, 1, 2), seeds_bf16=(0, 1, 2), gap=None,
             logged=None, epochs=6, linked=False) -> Path:
        """``linked``: the fp32 runs live in another grid's folder and ``<rule>-fp32-s<seed>``
        is a relative link to each (as run.sh makes them with ``ln -sr``)."""
        root = tmp_path / "bf16"
        grid = tmp_path / "grid" / "runs"
        for rule in rules:
            for prec, seeds in (("fp32", seeds_fp32), ("bf16", seeds_bf16)):
                for s in seeds:
                    # seed-to-seed spread of 0.01, the same in both precisions
                    offset = 0.01 * s + (gap or {}).get(rule, 0.0) * (prec == "bf16")
                    name = f"{rule}-{prec}-s{s}"
                    shared = linked and prec == "fp32"
                    run = write_run(grid if shared else root,
                                    f"simpnet-cifar10-{rule}-s{s}" if shared else name,
                                    "simpnet", rule, seed=s, offset=offset, epochs=epochs,
                                    logged=(logged or {}).get(prec))
                    _patch(run, {"precision": prec})
                    if shared:
                        root.mkdir(parents=True, exist_ok=True)
                        (root / name).symlink_to(os.path.relpath(run, root))
        return root

    return make


def _by_rule(root: Path) -> dict[str, RuleComparison]:
    comparisons, _ = bf16_comparisons(find_runs(root))
    return {c.protocol: c for c in comparisons}


def test_identical_curves_are_close(bf16_runs) -> None:
    got = _by_rule(bf16_runs())
    assert set(got) == {"urfb", "frfb"}
    for c in got.values():
        assert c.close.verdict == SUPPORTS and not c.close.fragile
        assert c.close.cmp.diffs == pytest.approx({0: 0.0, 1: 0.0, 2: 0.0})
        assert c.greater.verdict == INCONCLUSIVE
        assert c.settings == {"precision": ("bf16", "fp32")}
    assert verdict_sentence(list(got.values())).startswith("bf16 is as good as fp32")


def test_a_gap_of_0_1_in_every_seed_contradicts_and_names_the_rule(bf16_runs) -> None:
    got = _by_rule(bf16_runs(gap={"frfb": 0.1}))
    assert got["urfb"].close.verdict == SUPPORTS
    frfb = got["frfb"]
    assert frfb.close.verdict == CONTRADICTS and frfb.close.alt_verdict == CONTRADICTS
    assert frfb.close.cmp.diffs == pytest.approx({0: 0.1, 1: 0.1, 2: 0.1})
    assert frfb.greater.verdict == SUPPORTS  # bf16's error above fp32's
    sentence = verdict_sentence(list(got.values()))
    assert sentence.startswith("bf16 is not shown to be as good as fp32")
    where = sentence.split("where it does not support: ")[1].split(". Incomplete")[0]
    assert where.startswith("simpnet FRFB: corr(W, Rᵗ) differs most in") and "URFB" not in where


def test_one_unpaired_seed_leaves_one_pair_inconclusive(bf16_runs) -> None:
    root = bf16_runs(rules=("urfb",), seeds_fp32=(0, 1), seeds_bf16=(0,))
    comparisons, notes = bf16_comparisons(find_runs(root))
    (c,) = comparisons
    assert c.close.cmp.n == 1 and c.close.verdict == INCONCLUSIVE  # identical, but one seed
    assert c.unpaired == ((), (1,))
    assert any("seed 1 has a fp32 run only" in n for n in notes)
    assert "URFB 1 paired seed" in verdict_sentence(comparisons)


def test_runs_at_different_epochs_are_compared_at_the_epochs_all_reached(bf16_runs) -> None:
    c = _by_rule(bf16_runs(rules=("urfb",), epochs=8, logged={"bf16": 6}))["urfb"]
    assert c.epochs == [2, 3, 4, 5, 6]
    assert c.close.cmp.epoch == 6
    # the falling validation curve's best epoch is the window's last, not fp32's epoch 8
    assert c.ends_b.epochs == {0: 6, 1: 6, 2: 6}
    assert c.close.cmp.diffs == pytest.approx({0: 0.0, 1: 0.0, 2: 0.0})
    assert "ep 6 × 200" in c.budget


def test_an_unpaired_shorter_run_does_not_cut_the_window(bf16_runs, tmp_path: Path,
                                                          write_run: WriteRun) -> None:
    """Seed 2 has an fp32 run only, of 4 epochs: the window is the paired runs' (8 epochs)."""
    root = bf16_runs(rules=("urfb",), seeds_fp32=(0, 1), seeds_bf16=(0, 1), epochs=8)
    _patch(write_run(root, "urfb-fp32-s2", "simpnet", "urfb", seed=2, epochs=8, logged=4),
           {"precision": "fp32"})
    c = _by_rule(root)["urfb"]
    assert c.unpaired == ((), (2,))
    assert c.epochs == [4, 5, 6, 7, 8] and c.close.cmp.epoch == 8
    assert c.a.seeds == c.b.seeds == [0, 1]


def test_errors_near_chance_in_every_seed_are_uninformative(bf16_runs) -> None:
    """Both families within 0.02 of chance (0.9 for 10 classes) in every seed: 'close' says
    nothing (two untrained networks are close)."""
    root = bf16_runs(rules=("urfb",))
    for prec, base in (("fp32", 0.895), ("bf16", 0.905)):
        for s in range(3):
            _patch(root / f"urfb-{prec}-s{s}", val=lambda e, v, b=base, s=s: b + 0.002 * s)
    c = _by_rule(root)["urfb"]
    assert c.close.cmp.diffs == pytest.approx({0: 0.01, 1: 0.01, 2: 0.01})
    assert c.close.verdict == UNINFORMATIVE
    # the same differences away from chance are close
    for s in range(3):
        _patch(root / f"urfb-bf16-s{s}", val=lambda e, v: v - 0.5)
        _patch(root / f"urfb-fp32-s{s}", val=lambda e, v: v - 0.5)
    assert _by_rule(root)["urfb"].close.verdict == SUPPORTS


def test_endpoints_that_disagree_are_fragile(bf16_runs) -> None:
    root = bf16_runs(rules=("urfb",))
    for s in range(3):  # bf16 0.1 worse except at the best (last) epoch
        _patch(root / f"urfb-bf16-s{s}", val=lambda e, v: v if e == 6 else v + 0.1)
    c = _by_rule(root)["urfb"]
    assert c.close.verdict == SUPPORTS  # at the validation-chosen epoch: equal
    assert c.close.alt.diffs == pytest.approx({0: 0.08, 1: 0.08, 2: 0.08})
    assert c.close.alt_verdict == CONTRADICTS and c.close.fragile


def test_test_json_makes_the_test_error_the_endpoint(bf16_runs) -> None:
    root = bf16_runs(rules=("urfb",))
    for prec, err in (("fp32", 0.40), ("bf16", 0.50)):
        for s in range(3):
            (root / f"urfb-{prec}-s{s}" / "test.json").write_text(json.dumps(
                {"best": {"epoch": 6, "error": err + 0.01 * s, "val_error": 0.0},
                 "last": {"epoch": 6, "error": err}}))
    c = _by_rule(root)["urfb"]
    assert c.close.endpoint.startswith("test error at the validation-chosen epoch")
    assert c.close.cmp.diffs == pytest.approx({0: 0.1, 1: 0.1, 2: 0.1})
    assert c.close.verdict == CONTRADICTS
    assert c.close.alt_verdict == SUPPORTS and c.close.fragile  # validation curves identical


@pytest.mark.parametrize("scored", ["fp32", "bf16"])
def test_a_test_split_scored_on_one_side_only_is_not_mixed_with_validation(
        bf16_runs, scored: str) -> None:
    root = bf16_runs(rules=("urfb",))
    for s in range(3):  # one precision scored on the test split, the other not
        (root / f"urfb-{scored}-s{s}" / "test.json").write_text(json.dumps(
            {"best": {"epoch": 6, "error": 0.2, "val_error": 0.0}, "last": {"epoch": 6, "error": 0.2}}))
    comparisons, notes = bf16_comparisons(find_runs(root))
    (c,) = comparisons
    sides = {"bf16": "bf16 not scored on the test split at these epochs",
             "fp32": "fp32 not scored on the test split at these epochs",
             scored: f"{scored} scored on the test split"}
    assert c.close.endpoint == ("validation error at the validation-chosen epoch ("
                                f"{sides['bf16']}; {sides['fp32']}: both on validation) "
                                "(bf16 ep 6, 6, 6; fp32 ep 6, 6, 6)")
    assert c.close.cmp.diffs == pytest.approx({0: 0.0, 1: 0.0, 2: 0.0})
    assert any(f"only the {scored} family was scored on the test split" in n for n in notes)


def test_fp32_runs_linked_from_another_grid_are_found_once(bf16_runs, tmp_path: Path,
                                                            capsys) -> None:
    """results/bf16-paired/<rule>-fp32-s<seed> are links into the cifar10-paper grid: read
    through them; a second link to a run and a link cycle neither repeat a run nor hang."""
    root = bf16_runs(gap={"frfb": 0.1}, linked=True)
    assert (root / "urfb-fp32-s0").is_symlink()
    names = sorted(f"{rule}-{prec}-s{s}" for rule in ("urfb", "frfb")
                   for prec in ("fp32", "bf16") for s in range(3))
    assert sorted(r.name for r in find_runs(root)) == names
    assert figures_main(["bf16-paired", "--runs", str(root), "--out",
                         str(tmp_path / "out")]) == 0
    assert "| simpnet FRFB |" in capsys.readouterr().out
    (root / "again").symlink_to(os.path.relpath(tmp_path / "grid" / "runs", root))
    (root / "urfb-bf16-s0" / "loop").symlink_to("..")
    found = find_runs(root)
    assert len(found) == 12 and len({r.path.resolve() for r in found}) == 12
    # each run under the first of its paths in sorted order: again/ sorts before frfb-fp32-s0
    assert sorted(str(r.path.relative_to(root)) for r in found if r.path.parent != root) == [
        f"again/simpnet-cifar10-{rule}-s{s}" for rule in ("frfb", "urfb") for s in range(3)]
    got = {c.protocol: c.close.verdict for c in bf16_comparisons(found)[0]}
    assert got == {"urfb": SUPPORTS, "frfb": CONTRADICTS}


def test_families_split_by_a_setting(bf16_runs) -> None:
    families = by_setting(find_runs(bf16_runs(rules=("urfb",))),
                          lambda r: r.config["precision"])
    assert {k: sorted(r.name for r in v) for k, v in families.items()} == {
        "fp32": ["urfb-fp32-s0", "urfb-fp32-s1", "urfb-fp32-s2"],
        "bf16": ["urfb-bf16-s0", "urfb-bf16-s1", "urfb-bf16-s2"]}
    (c,), notes = compare_families(families["bf16"], families["fp32"][:1])
    assert c.close.cmp.n == 1 and c.unpaired == ((1, 2), ()) and notes == []


def test_runs_of_other_descriptions_pair_among_themselves(tmp_path: Path,
                                                          write_run: WriteRun) -> None:
    """CIFAR-100 and untied runs are their own rows, never paired with CIFAR-10 tied ones."""
    for prec, offset in (("fp32", 0.0), ("bf16", 0.1)):
        for s in range(2):
            for name, kw in (("c10", {}), ("c100", {"n_classes": 100}), ("untied", {"untied": (0,)})):
                run = write_run(tmp_path / "r", f"{name}-{prec}-s{s}", "simpnet", "urfb", seed=s,
                                offset=offset * (name == "c100"), **kw)
                _patch(run, {"precision": prec})
    comparisons, notes = bf16_comparisons(find_runs(tmp_path / "r"))
    assert [(c.title, c.close.verdict) for c in comparisons] == [
        ("simpnet URFB", SUPPORTS), ("simpnet URFB (untied)", SUPPORTS),
        ("simpnet URFB (100 classes)", CONTRADICTS)]
    assert notes == []


def test_bf16_cli_writes_report_and_figure(bf16_runs, tmp_path: Path, capsys) -> None:
    root = bf16_runs(gap={"urfb": 0.1})
    out = tmp_path / "out"
    assert figures_main(["bf16-paired", "--runs", str(root), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["bf16-paired.md", "bf16-paired.pdf",
                                                     "bf16-paired.png", "bf16-paired.txt"]
    assert (out / "bf16-paired.txt").read_text().count("- urfb-bf16-s") == 3
    text = (out / "bf16-paired.md").read_text()
    assert "where it does not support: simpnet URFB" in text
    assert "| simpnet URFB |" in text and "**contradicts**" in text
    assert capsys.readouterr().out.startswith("# bf16 against fp32")


def test_bf16_cli_without_bf16_runs_is_a_one_line_error(tmp_path: Path, write_run: WriteRun,
                                                        capsys) -> None:
    write_run(tmp_path / "runs", "urfb-fp32-s0", "simpnet", "urfb")
    with pytest.raises(SystemExit) as exc:
        figures_main(["bf16-paired", "--runs", str(tmp_path / "runs"), "--out",
                      str(tmp_path / "out")])
    assert exc.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("python -m figures bf16-paired: error: --runs ")
    assert last.endswith("no bf16 run with a logged epoch (found: fp32)")
    assert not (tmp_path / "out" / "bf16-paired.md").exists()


@pytest.mark.parametrize("name", ["bf16-paired.md", "bf16-paired.png", "bf16-paired.txt"])
def test_bf16_cli_refuses_a_folder_at_an_output_file_before_writing(bf16_runs, tmp_path: Path,
                                                                    capsys, name: str) -> None:
    """A folder where one of the four files goes: exit 2 before any is written (it was exit 1
    after bf16-paired.md, or .md, .png and .pdf, were written)."""
    root, out = bf16_runs(rules=("urfb",)), tmp_path / "out"
    (out / name).mkdir(parents=True)
    with pytest.raises(SystemExit) as exc:
        figures_main(["bf16-paired", "--runs", str(root), "--out", str(out)])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"python -m figures bf16-paired: error: --out {out}: {name} there is a folder, where "
        "that file goes (move or remove it)")
    assert [p.name for p in out.iterdir()] == [name]


@pytest.fixture()
def suite_runs(tmp_path: Path, write_run: WriteRun) -> Callable[..., Path]:
    """``make(folder, offset, **config)``: simpnet URFB and FRFB x 3 seeds in the suite's
    layout, errors shifted by ``offset``, config keys set."""

    def make(folder: str, offset: float = 0.0, **config) -> Path:
        root = tmp_path / folder
        for rule in ("urfb", "frfb"):
            for s in range(3):
                run = write_run(root, f"simpnet-cifar10-{rule}-s{s}", "simpnet", rule, seed=s,
                                offset=offset + 0.01 * s)
                _patch(run, config)
        return root

    return make


def test_protocol_choice_table(suite_runs, tmp_path: Path, capsys) -> None:
    paper = suite_runs("paper", update_order="sequential", bias=False)
    sim = suite_runs("sim", 0.1, update_order="simultaneous", bias=False)
    bias = suite_runs("bias", -0.1, update_order="sequential", bias=True)
    out = tmp_path / "choice.md"
    assert figures_main(["protocol-choice", "--paper", str(paper), "--variant",
                         f"simultaneous={sim}", "--variant", f"bias={bias}", "--out",
                         str(out)]) == 0
    text = out.read_text()
    assert capsys.readouterr().out == text
    main, layers = text.split(LAYERS_INTRO)
    rows = [line.split(" | ") for line in main.splitlines()
            if line.startswith(("| simultaneous", "| bias"))]
    assert [(r[0], r[1]) for r in rows] == [("| simultaneous", "simpnet URFB"),
                                            ("| simultaneous", "simpnet FRFB"),
                                            ("| bias", "simpnet URFB"), ("| bias", "simpnet FRFB")]
    for r in rows:
        # val error 0.95/sqrt(4) + 0.01 s at the chosen (last) epoch 4; variants 0.1 off
        assert r[3] == ("validation error at the validation-chosen epoch (no test split "
                        "scored) (paper ep 4, 4, 4; variant ep 4, 4, 4)")
        assert r[4].startswith("0.485 ± 0.010 [0.475, 0.485, 0.495]")  # the paper protocol
        variant = 0.585 if r[0] == "| simultaneous" else 0.385
        assert r[5].startswith(f"{variant:.3f} ± 0.010 [{variant - 0.01:.3f}, ")
        assert r[6].startswith("+0.100" if r[0] == "| simultaneous" else "-0.100")
        assert r[7] == "**contradicts**"  # 0.1 apart in every seed
        assert r[8].startswith("**worse**" if r[0] == "| simultaneous" else "**better**")
    assert "update_order (sequential → simultaneous)" in text
    assert "bias (False → True)" in text
    # each layer's curves below, variant against paper (the fixture logs corr and angles)
    assert "| simultaneous, simpnet URFB | conv 32 5x5 | corr(W, Rᵗ) |" in layers
    # the share of saturated units of every layer but the output (the same in both families)
    saturated = [line.split(" | ") for line in layers.splitlines() if "saturated units" in line]
    assert [r[1] for r in saturated[:2]] == ["conv 32 5x5", "full 500"]
    assert all(r[6] == "+0.000 ± 0.000 [+0.000, +0.000, +0.000]" for r in saturated)


def test_protocol_choice_refuses_a_variant_without_a_name(suite_runs, capsys) -> None:
    paper = suite_runs("paper")
    with pytest.raises(SystemExit) as exc:
        figures_main(["protocol-choice", "--paper", str(paper), "--variant", str(paper)])
    assert exc.value.code == 2
    assert "is not NAME=DIR" in capsys.readouterr().err


def test_protocol_choice_refuses_the_paper_folder_as_a_variant(suite_runs, tmp_path: Path,
                                                               capsys) -> None:
    """The --paper folder given as a variant's (also through a link) was a table of runs
    against themselves, d = 0 throughout; now exit 2."""
    paper = suite_runs("paper")
    (tmp_path / "link").symlink_to(paper, target_is_directory=True)
    for folder in (paper, tmp_path / "link"):
        with pytest.raises(SystemExit) as exc:
            figures_main(["protocol-choice", "--paper", str(paper), "--variant",
                          f"bias={folder}"])
        assert exc.value.code == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            f"python -m figures protocol-choice: error: --variant bias {folder}: is the --paper "
            "folder; its runs would be compared with themselves")


def test_protocol_choice_refuses_an_out_inside_a_runs_folder(suite_runs, capsys) -> None:
    """--out naming a run's log.jsonl overwrote it with the table; now exit 2, the log kept."""
    paper = suite_runs("paper", update_order="sequential", bias=False)
    sim = suite_runs("sim", 0.1, update_order="simultaneous", bias=False)
    log = next(paper.glob("*/log.jsonl"))
    before = log.read_text()
    with pytest.raises(SystemExit) as exc:
        figures_main(["protocol-choice", "--paper", str(paper), "--variant", f"sim={sim}",
                      "--out", str(log)])
    assert exc.value.code == 2 and log.read_text() == before
    assert "inside the runs folder" in capsys.readouterr().err


def test_protocol_choice_names_with_a_bar_keep_their_row(suite_runs, tmp_path: Path,
                                                        capsys) -> None:
    """A '|' in a choice's name is escaped (it used to end the cell and shift the row); a
    missing variant folder is named without a stray space."""
    paper = suite_runs("paper", update_order="sequential", bias=False)
    sim = suite_runs("sim", 0.1, update_order="simultaneous", bias=False)
    assert figures_main(["protocol-choice", "--paper", str(paper), "--variant",
                         f"sim|lr={sim}"]) == 0
    main = capsys.readouterr().out.split(LAYERS_INTRO)[0]  # the errors' table
    rows = [line for line in main.splitlines() if line.startswith("| sim")]
    assert rows and all(r.startswith("| sim\\|lr | simpnet ") for r in rows)
    assert all(len(re.split(r"(?<!\\)\|", r)) == len(re.split(r"(?<!\\)\|", rows[0])) for r in rows)
    with pytest.raises(SystemExit):
        figures_main(["protocol-choice", "--paper", str(paper), "--variant",
                      f"bias={tmp_path / 'none'}"])
    assert capsys.readouterr().err.strip().endswith(f"--variant bias {tmp_path / 'none'}: no such folder")


def test_worse_or_better_reads_the_directional_verdict() -> None:
    assert [worse_or_better(v) for v in (SUPPORTS, CONTRADICTS, INCONCLUSIVE)] == [
        "worse", "better", "neither shown"]


class _Folders:
    """What the report's paired blocks read of a Report: its two folders."""

    def __init__(self, bf16: Path, choices: Path) -> None:
        self.bf16, self.choices = bf16, choices


def test_report_blocks_are_the_clis_text_once_runs_exist(bf16_runs, suite_runs,
                                                          tmp_path: Path) -> None:
    empty = _Folders(tmp_path / "none", tmp_path / "none")
    assert block_bf16_paired(empty).startswith("Not yet: no fp32 run")
    assert block_protocol_choice(empty).startswith("Not yet: needs the paper-protocol runs")
    root = bf16_runs(gap={"urfb": 0.1})
    suite_runs("choices/paper")
    suite_runs("choices/simultaneous", 0.1, update_order="simultaneous")
    full = _Folders(root, tmp_path / "choices")
    (tmp_path / "choices" / "bias").mkdir()  # a variant not run yet: the block does not name it
    text = block_bf16_paired(full)
    assert text.startswith("bf16 is not shown to be as good as fp32")
    assert text == markdown(*bf16_comparisons(find_runs(root)), title=False)
    table = block_protocol_choice(full)
    assert [line.split(" | ")[:2] for line in table.split(LAYERS_INTRO)[0].splitlines()
            if line.startswith("| simultaneous")] == [["| simultaneous", "simpnet URFB"],
                                                      ["| simultaneous", "simpnet FRFB"]]
    assert "bias" not in table


def test_protocol_choice_endpoint_names_a_paper_run_scored_outside_the_window(
        suite_runs, tmp_path: Path, write_run: WriteRun) -> None:
    """Paper runs of 8 epochs scored on the test split at their epoch 8, variant runs of 4 not
    scored: compared on validation over epochs 1-4, and the endpoint says why."""
    paper = tmp_path / "paper"
    for s in range(3):
        run = write_run(paper, f"simpnet-cifar10-urfb-s{s}", "simpnet", "urfb", seed=s,
                        epochs=8, offset=0.01 * s)
        (run / "test.json").write_text(json.dumps(
            {"best": {"epoch": 8, "error": 0.3, "val_error": 0.0}, "last": {"epoch": 8, "error": 0.3}}))
    sim = suite_runs("sim", 0.1, update_order="simultaneous")
    text, _ = choice_table(find_runs(paper), {"simultaneous": find_runs(sim)})
    (row,) = [line.split(" | ") for line in text.split(LAYERS_INTRO)[0].splitlines()
              if line.startswith("| simul")]
    assert row[3] == ("validation error at the validation-chosen epoch (paper scored on the "
                      "test split at ep 8, 8, 8, after the compared epochs; variant not scored "
                      "on the test split at these epochs: both on validation) (paper ep 4, 4, 4; "
                      "variant ep 4, 4, 4)")
    assert row[4].startswith("0.485 ")  # the validation error at epoch 4, not the test error


def test_protocol_choice_notes_only_the_variants_descriptions(suite_runs, tmp_path: Path,
                                                              write_run: WriteRun) -> None:
    """The paper folder is the whole grid (BP, BP-H, deepernet ...): what the variant lacks is
    not noted; what the variant has and the paper lacks is; an empty variant is one short note."""
    root = tmp_path / "choices"
    grid = suite_runs("grid")
    for p in ("bp", "bp-h"):
        for s in range(3):
            write_run(grid, f"simpnet-cifar10-{p}-s{s}", "simpnet", p, seed=s)
    root.mkdir()
    (root / "paper").symlink_to(os.path.relpath(grid, root))
    sim = suite_runs("choices/simultaneous", 0.1, update_order="simultaneous")
    write_run(sim, "deepernet-cifar10-urfb-s0", "deepernet", "urfb")
    (root / "bias").mkdir()
    text, notes = choice_table(find_runs(root / "paper"), {
        "bias": find_runs(root / "bias"), "simultaneous": find_runs(sim)})
    lone = [n for n in notes if "family only" in n]
    assert lone == ["simultaneous: deepernet URFB: runs in the simultaneous family only"]
    assert "bias: no run with a logged epoch yet" in notes
    assert not any("BP" in n for n in notes)
    block = block_protocol_choice(_Folders(tmp_path / "none", root))
    assert block.startswith(text) and "BP" not in block
    for run in list(sim.iterdir()):  # the variant folder exists, empty
        shutil.rmtree(run)
    assert block_protocol_choice(_Folders(tmp_path / "none", root)) == (
        f"Not yet: needs the paper-protocol runs in `{root / 'paper'}` and each variant's runs "
        f"in a folder beside it (`{root}/<choice>/`).")


def test_a_repeated_seed_is_named_in_the_notes(bf16_runs) -> None:
    """Two bf16 runs of one seed (a copy of seed 0 that learnt better): the comparison uses one
    and the notes say which, and which was left out."""
    root = bf16_runs()
    shutil.copytree(root / "urfb-bf16-s0", root / "zz-copy")
    _patch(root / "zz-copy", val=lambda e, v: 0.1)
    _, notes = bf16_comparisons(find_runs(root))
    repeated = [n for n in notes if "several runs of seed 0" in n]
    assert len(repeated) == 1 and repeated[0].startswith("bf16: ") and "zz-copy" in repeated[0]


def test_report_refuses_a_runs_folder_given_but_missing(tmp_path: Path, capsys) -> None:
    """--runs-bf16 / --runs-choices typed wrong are one-line errors, not a silent 'not yet'."""
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- report:rule -->\n<!-- /report:rule -->\n")
    for flag in ("--runs-bf16", "--runs-choices"):
        with pytest.raises(SystemExit) as exc:
            report_main(["--update", str(doc), flag, str(tmp_path / "no-such")])
        assert exc.value.code == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert f"{flag} {tmp_path / 'no-such'}: no such folder" in last
    assert doc.read_text() == "<!-- report:rule -->\n<!-- /report:rule -->\n"


def test_an_unrecorded_eval_precision_is_fp32_not_a_difference(bf16_runs) -> None:
    """bf16 runs that record eval_precision fp32 against fp32 runs that record none (absent
    means fp32): the runs differ in precision only."""
    root = bf16_runs(rules=("urfb",))
    for s in range(3):
        _patch(root / f"urfb-bf16-s{s}", {"eval_precision": "fp32"})
    comparisons, notes = bf16_comparisons(find_runs(root))
    assert comparisons[0].settings == {"precision": ("bf16", "fp32")}
    assert not any("also differ" in n for n in notes)


@pytest.mark.parametrize("key", ["deterministic", "cuda_graph", "device"])
def test_how_a_run_was_computed_is_not_a_difference(bf16_runs, key: str) -> None:
    """A run trained with --deterministic (or another device, another CUDA-graph mode) is the
    same run as its pair: the settings of how it ran are not compared."""
    root = bf16_runs(rules=("urfb",))
    for s in range(3):
        _patch(root / f"urfb-bf16-s{s}", {key: True if key == "deterministic" else "other"})
    comparisons, notes = bf16_comparisons(find_runs(root))
    assert comparisons[0].settings == {"precision": ("bf16", "fp32")}
    assert not any("also differ" in n for n in notes)
