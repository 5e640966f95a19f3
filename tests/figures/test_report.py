"""figures.report: docs/results.md's tables are current, and their numbers are the logs' own."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from deepnets.training.rundir import RunError
from figures.report import (
    BLOCKS,
    DEFAULT_A,
    DEFAULT_B,
    DEFAULT_BF16,
    DEFAULT_CHOICES,
    DEFAULT_OLD,
    DEFAULT_PAPER,
    DEFAULT_PAPER_GPU,
    Report,
    block_budget,
    block_claim1,
    block_claim3,
    block_claim5,
    block_claim5_strong,
    block_claim6,
    block_earlier_summary,
    block_figure8,
    block_final_errors,
    block_paper_numbers,
    bp_simultaneous_rows,
    far_window,
    main,
    render,
    rows_claim1,
    rows_claim2,
    rows_claim3,
    rows_claim4,
    rows_claim6,
    simultaneous_rows,
    stale_blocks,
    summary_rows,
)
from figures.runs import find_runs, select_seeds
from figures.stats import close_verdict, verdict

REPO = Path(__file__).parents[2]
DOC = REPO / "docs" / "results.md"
needs_results = pytest.mark.skipif(not (REPO / DEFAULT_B).is_dir(),
                                   reason="needs the committed results/cifar10-jpeg-h200 runs")


@pytest.fixture(scope="module")
def report() -> Report:
    return Report(REPO / DEFAULT_A, REPO / DEFAULT_B, [REPO / p for p in DEFAULT_OLD],
                  REPO / DEFAULT_BF16, REPO / DEFAULT_CHOICES, REPO / DEFAULT_PAPER,
                  REPO / DEFAULT_PAPER_GPU)


@needs_results
def test_results_doc_tables_match_the_committed_logs(report: Report) -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in BLOCKS:
        assert f"<!-- report:{name} -->" in text and f"<!-- /report:{name} -->" in text
    assert stale_blocks(text, report) == []  # else: python -m figures.report --update docs/results.md


@needs_results
@pytest.mark.parametrize("folder", ["cifar10-paper-h200", "cifar10-paper-h200-run2"])
def test_h200_readme_tables_match_the_committed_logs(folder: str) -> None:
    """results/<folder>/README.md (each H200 run of the paper's protocol): the report with the
    H200's runs as budget C."""
    h200 = REPO / "results" / folder
    report = Report(REPO / DEFAULT_A, REPO / DEFAULT_B, [REPO / p for p in DEFAULT_OLD], h200,
                    REPO / DEFAULT_CHOICES, h200 / "fp32")
    text = (h200 / "README.md").read_text(encoding="utf-8")
    assert "<!-- report:claim2 -->" in text
    # else: python -m figures.report --runs-paper results/<folder>/fp32
    #       --runs-bf16 results/<folder> --update results/<folder>/README.md
    assert stale_blocks(text, report) == []


def _final_val(path: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (path / "log.jsonl").read_text().splitlines() if line]
    return {int(r["epoch"]): float(r["val_error"]) for r in rows}


@needs_results
def test_claim_rows_are_paired_differences_of_the_raw_logs(report: Report) -> None:
    """Error rows: d at each run's validation-chosen epoch (these runs have no test.json: the
    validation error there), and the mean of the last 5 epochs as the other endpoint. Budget B,
    as the claims stood before the paper-protocol runs (budget C)."""
    report = report.earlier()
    runs = REPO / DEFAULT_B
    urfb = {s: _final_val(runs / f"simpnet-cifar10-urfb-s{s}") for s in range(3)}
    frfb = {s: _final_val(runs / f"simpnet-cifar10-frfb-s{s}") for s in range(3)}
    row = rows_claim2(report)[0]
    assert row.cmp.epoch == 50

    def chosen(v: dict[int, float]) -> float:
        return min(v.values())

    assert row.cmp.diffs == pytest.approx({s: chosen(frfb[s]) - chosen(urfb[s]) for s in range(3)})
    assert row.verdict == verdict(row.cmp.diffs.values())
    mean5 = {s: sum(frfb[s][e] - urfb[s][e] for e in range(46, 51)) / 5 for s in range(3)}
    assert row.alt is not None and row.alt.diffs == pytest.approx(mean5)
    # deepernet FRFB in budget B stopped at 6, 6 and 7 epochs: compared over epochs 2..6
    b_frfb = [r for r in rows_claim3(report) if r.where.startswith("B:") and "FRFB's" in r.test]
    assert b_frfb and all(r.cmp.epoch == 6 for r in b_frfb)
    close = [r for r in rows_claim3(report) if r.kind == "close"]
    assert all(r.verdict == close_verdict(r.cmp.diffs.values()) for r in close)
    # claim 3's summary rows compare runs of one budget
    assert {r.where.split(":")[0] for r in rows_claim3(report) if r.short} == {"A"}


@needs_results
def test_update_rewrites_a_stale_block_and_check_sees_it(tmp_path: Path, capsys) -> None:
    doc = tmp_path / "results.md"
    text = DOC.read_text(encoding="utf-8")
    start = text.index("<!-- report:claim1 -->\n") + len("<!-- report:claim1 -->\n")
    doc.write_text(text[:start] + "| typed by hand |\n" + text[text.index("<!-- /report:claim1 -->"):])
    argv = ["--runs-a", str(REPO / DEFAULT_A), "--runs-b", str(REPO / DEFAULT_B),
            "--runs-bf16", str(REPO / DEFAULT_BF16), "--runs-choices", str(REPO / DEFAULT_CHOICES),
            # budget C's folder exists only once runs are made or committed (not on a clean clone)
            *(["--runs-paper", str(REPO / DEFAULT_PAPER)] if (REPO / DEFAULT_PAPER).is_dir() else []),
            "--runs-old", *[str(REPO / p) for p in DEFAULT_OLD]]
    assert main([*argv, "--check", str(doc)]) == 1
    assert capsys.readouterr().err.strip() == f"{doc}: block claim1 is not current"
    assert main([*argv, "--update", str(doc)]) == 0
    assert doc.read_text(encoding="utf-8") == text


def test_render_fills_marked_blocks_and_refuses_unknown_ones() -> None:
    class Stub:
        def block(self, name: str) -> str:
            return f"[{name}]"

    text = "a\n<!-- report:rule -->\nold\nlines\n<!-- /report:rule -->\nb\n<!-- report:summary -->\n<!-- /report:summary -->\n"
    assert render(text, Stub()) == ("a\n<!-- report:rule -->\n[rule]\n<!-- /report:rule -->\nb\n"
                                    "<!-- report:summary -->\n[summary]\n<!-- /report:summary -->\n")
    with pytest.raises(KeyError, match="unknown report block 'nope'"):
        render("<!-- report:nope -->\n<!-- /report:nope -->", Stub())


def test_far_window_is_the_first_unaligned_epochs(tmp_path: Path, write_run) -> None:
    # the fixture's probe: every sending layer at 90 - 10 e degrees after epoch e
    write_run(tmp_path / "runs", "u", "simpnet", "urfb", epochs=6)
    group = select_seeds(find_runs(tmp_path / "runs"), arch="simpnet", protocol="urfb")
    assert far_window(group) == {0: 3}  # 80, 70, 60 >= 60; 50 < 60


def test_report_refuses_missing_folders(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--runs-a", str(tmp_path / "none")])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"python -m figures.report: error: --runs-a {tmp_path / 'none'}: no such folder")


@pytest.mark.parametrize("flag", ["--update", "--check"])
def test_a_document_without_report_blocks_is_an_error(tmp_path: Path, capsys, flag: str) -> None:
    """Issue 19: --update of a file without blocks used to say "0 report blocks" and exit 0."""
    doc = tmp_path / "notes.md"
    doc.write_text("# notes\n\nno blocks here\n")
    with pytest.raises(SystemExit) as exc:
        main(["--runs-a", str(tmp_path), "--runs-b", str(tmp_path), flag, str(doc)])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        f"python -m figures.report: error: {flag} {doc}: holds no report block")
    assert doc.read_text() == "# notes\n\nno blocks here\n"


GOOD = "<!-- report:rule -->\nold\n<!-- /report:rule -->\n"


@pytest.mark.parametrize("flag", ["--update", "--check"])
@pytest.mark.parametrize("text, problem", [
    # --check said "error: nosuch"
    (GOOD + "<!-- report:nosuch -->\nx\n<!-- /report:nosuch -->\n",
     "unknown report block 'nosuch'; known: rule, budget,"),
    # the unclosed block was passed over: --check exit 0, --update "already current"
    (GOOD + "<!-- report:budget -->\nstale\n",
     "the block budget has no closing line <!-- /report:budget --> after its opening one"),
    (GOOD.encode() + b"\xff\xfe\n", "not UTF-8 text (invalid start byte at byte "),  # traceback
])
def test_a_document_with_a_damaged_block_is_an_error(tmp_path: Path, capsys, flag: str,
                                                     text: str | bytes, problem: str) -> None:
    doc = tmp_path / "notes.md"
    (doc.write_bytes if isinstance(text, bytes) else doc.write_text)(text)
    with pytest.raises(SystemExit) as exc:
        main(["--runs-a", str(tmp_path), "--runs-b", str(tmp_path), flag, str(doc)])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        f"python -m figures.report: error: {flag} {doc}: {problem}")
    assert (doc.read_bytes() if isinstance(text, bytes) else doc.read_text()) == text


def test_a_runs_old_folder_given_must_exist(tmp_path: Path, capsys) -> None:
    """--runs-old NONEXISTENT was left out without a word (the blocks then 'not current')."""
    with pytest.raises(SystemExit) as exc:
        main(["--runs-old", str(tmp_path / "none"), "--check", str(tmp_path / "doc.md")])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"python -m figures.report: error: --runs-old {tmp_path / 'none'}: no such folder")


def _grid(write_run, root: Path, epochs: int, runs: list[tuple[str, str]], offset: float = 0.0) -> Path:
    for arch, p in runs:
        for seed in range(3):
            write_run(root, f"{arch}-{p}-s{seed}", arch, p, seed=seed, epochs=epochs,
                      offset=offset + (0.02 * (seed + 1) if p == "frfb" else 0.0))
    return root


SIMPNET = [("simpnet", p) for p in ("bp", "bp-h", "urfb", "frfb", "urfb-50", "frfb-50")]
DEEPERNET = [("deepernet", p) for p in ("bp-h", "urfb", "frfb")]


def test_parts_with_urfb_are_judged_again_with_every_rule_in_the_simultaneous_order(
        tmp_path: Path, write_run) -> None:
    """With URFB runs in the protocol-choice folder's simultaneous order, every part of a claim
    that involves URFB gets a third row: budget C with the BP, BP-H and URFB runs of that folder
    and C's own FRFB runs ("C, simultaneous order"); FRFB runs of that folder and C's URFB runs
    of the paper's order (50% too) are not used there, and nothing changes without such URFB
    runs."""
    a = _grid(write_run, tmp_path / "a", 10, SIMPNET + DEEPERNET)
    b = _grid(write_run, tmp_path / "b", 12, SIMPNET + DEEPERNET)
    c = _grid(write_run, tmp_path / "c", 12, SIMPNET + DEEPERNET[1:])
    choices = tmp_path / "choices"
    _grid(write_run, choices / "simultaneous", 12, SIMPNET[:2] + DEEPERNET[:1], offset=-0.1)
    report = Report(a, b, (), tmp_path / "none", choices, c)
    assert report.all_simultaneous() is None and simultaneous_rows(report, "3") == []
    # URFB and FRFB in that order; its FRFB runs would be 0.3 above C's
    _grid(write_run, choices / "simultaneous", 12, [("simpnet", "urfb"), ("deepernet", "urfb")],
          offset=0.05)
    _grid(write_run, choices / "simultaneous", 12, [("simpnet", "frfb")], offset=0.3)
    report = Report(a, b, (), tmp_path / "none", choices, c)
    alt = report.all_simultaneous()
    assert alt is not None and alt.c.name == "C, simultaneous order"
    assert {(r.arch, r.protocol, r.path.parent.name) for r in alt.c.runs} == {
        ("simpnet", "bp", "simultaneous"), ("simpnet", "bp-h", "simultaneous"),
        ("deepernet", "bp-h", "simultaneous"), ("simpnet", "urfb", "simultaneous"),
        ("deepernet", "urfb", "simultaneous"), ("simpnet", "frfb", "c"),
        ("simpnet", "frfb-50", "c"), ("deepernet", "frfb", "c")}
    claim3 = {r.short: r for r in simultaneous_rows(report, "3")}
    assert claim3 and all(r.where.startswith("C, simultaneous order: ep 12")
                          for r in claim3.values())
    paper3 = {r.short: r for r in rows_claim3(report) if r.short}
    close = "deepernet: URFB close to BP-H"
    assert close in claim3 and paper3[close].where.startswith("B")  # no BP-H in C itself
    assert claim3[close].cmp.mean == pytest.approx(0.15)  # URFB +0.05, BP-H -0.1
    claim2 = {r.short: r for r in simultaneous_rows(report, "2")}
    better = {r.short: r for r in rows_claim2(report)}["URFB better than FRFB"]
    assert claim2["URFB better than FRFB"].cmp.mean == pytest.approx(better.cmp.mean - 0.05)
    assert not any("50%" in r.test for r in claim2.values())  # URFB 50% is not in that order
    assert simultaneous_rows(report, "4") == []  # no untied run in that order
    for claim in ("5", "5b", "6"):
        rows = simultaneous_rows(report, claim)
        assert rows and all("URFB" in f"{r.test} {r.short}" for r in rows), claim
    summary = summary_rows(report)
    assert ("3", f"{close}, every rule in the simultaneous order") in summary
    for block in (block_claim3, block_claim5, block_claim5_strong, block_claim6):
        assert "| C, simultaneous order: ep" in block(report), block.__name__
    assert report.earlier().all_simultaneous() is None
    # the budget and error tables list that folder's runs as a budget of their own
    for block in (block_budget, block_final_errors):
        text = block(report)
        assert "| C, simultaneous order | deepernet | URFB |" in text, block.__name__
        assert "| C, simultaneous order | simpnet | FRFB |" in text  # the folder's own FRFB
        assert "| C, simultaneous order |" not in block(report.earlier())
    # C's FRFB runs from another device (a GPU's) do not stand for the CPU's simultaneous order
    for config in c.glob("*-frfb-s*/config.json"):
        config.write_text(json.dumps({**json.loads(config.read_text()), "device": "cuda"}))
    other = Report(a, b, (), tmp_path / "none", choices, c)
    assert other.all_simultaneous() is None and simultaneous_rows(other, "3") == []
    assert "| C, simultaneous order |" not in block_budget(other)


def test_each_part_of_a_claim_is_judged_at_the_largest_budget_holding_its_runs(
        tmp_path: Path, write_run) -> None:
    """Budget C (the paper's protocol) takes a part over when it holds every group the part
    compares with more epochs (or as many); the part's rows then all come from C, and the
    earlier-budgets summary shows the part as it stood at A or B."""
    a = _grid(write_run, tmp_path / "a", 10, SIMPNET + DEEPERNET)
    b = _grid(write_run, tmp_path / "b", 12, SIMPNET + DEEPERNET)
    paper = _grid(write_run, tmp_path / "c", 12, SIMPNET[:4])  # no 50% runs, no deepernet
    report = Report(a, b, (), tmp_path / "none", tmp_path / "none", paper)
    assert {r.where.split(":")[0] for r in rows_claim1(report)} == {"C"}  # a tie: C
    claim2 = rows_claim2(report)
    assert [r.where.split(":")[0] for r in claim2] == ["C"] * 6 + ["B"]  # 50%: only in A, B
    assert {r.where.split(":")[0] for r in rows_claim3(report) if r.short} == {"B"}
    earlier = block_earlier_summary(report)
    moved = {k for k, r in summary_rows(report).items() if r.where.startswith("C:")}
    assert moved and all(f"| {claim} | {short} |" in earlier for claim, short in moved)
    assert "| B: ep 12" in earlier and "| C:" not in earlier
    assert "50% connectivity" not in earlier  # still judged at B: not an earlier row
    # without C's runs nothing has moved
    assert block_earlier_summary(Report(a, b, (), tmp_path / "none", tmp_path / "none",
                                        tmp_path / "none")).startswith("None yet")
    # more epochs but fewer seeds than B's (C's runs are committed one by one): B stays
    few = tmp_path / "c3"
    for arch, p in SIMPNET[:4]:
        write_run(few, f"{arch}-{p}-s0", arch, p, seed=0, epochs=20)
    report = Report(a, b, (), tmp_path / "none", tmp_path / "none", few)
    assert {r.where.split(":")[0] for r in rows_claim1(report)} == {"B"}
    # fewer epochs than B's: B stays
    short = _grid(write_run, tmp_path / "c2", 11, SIMPNET[:4])
    report = Report(a, b, (), tmp_path / "none", tmp_path / "none", short)
    assert {r.where.split(":")[0] for r in rows_claim1(report)} == {"B"}


def test_a_group_moves_to_the_200_epoch_folders_once_every_seed_is_there(
        tmp_path: Path, write_run) -> None:
    """Budget C reads each group from runs-200/ (its simultaneous-order BP from
    runs-200-simultaneous/) beside its runs folder only once every seed of the group has its
    longer run there: a group's rows never mix the two folders."""
    a = _grid(write_run, tmp_path / "a", 10, SIMPNET + DEEPERNET)
    b = _grid(write_run, tmp_path / "b", 12, SIMPNET + DEEPERNET)
    c = _grid(write_run, tmp_path / "c", 14, SIMPNET[:4])
    choices = tmp_path / "choices"
    _grid(write_run, choices / "simultaneous", 14, SIMPNET[:2], offset=-0.1)
    for seed in (0, 1):  # two seeds of three: C's URFB stays at 14 epochs
        write_run(tmp_path / "runs-200", f"simpnet-urfb-s{seed}", "simpnet", "urfb", seed=seed,
                  epochs=20)
    report = Report(a, b, (), tmp_path / "none", choices, c)
    urfb = report.c.need("simpnet", "urfb")
    assert {r.epochs_done for r in urfb.runs} == {14} and urfb.n == 3
    write_run(tmp_path / "runs-200", "simpnet-urfb-s2", "simpnet", "urfb", seed=2, epochs=20)
    _grid(write_run, tmp_path / "runs-200-simultaneous", 20, SIMPNET[:1], offset=-0.1)
    report = Report(a, b, (), tmp_path / "none", choices, c)
    urfb = report.c.need("simpnet", "urfb")
    assert {r.path.parent.name for r in urfb.runs} == {"runs-200"} and urfb.common_epoch == 20
    frfb = report.c.need("simpnet", "frfb")
    assert {r.path.parent.name for r in frfb.runs} == {"c"}  # FRFB has no longer run
    alt = report.bp_simultaneous()
    assert alt is not None
    assert {r.path.parent.name for r in alt.c.need("simpnet", "bp").runs} == {
        "runs-200-simultaneous"}
    assert {r.path.parent.name for r in alt.c.need("simpnet", "bp-h").runs} == {"simultaneous"}
    better = {r.short: r for r in rows_claim2(report)}["URFB better than FRFB"]
    assert better.where.startswith("C: ep 14")  # the row's common epoch: FRFB's 14
    budget = block_budget(report)
    assert "| C | simpnet | URFB | tied | simultaneous order, biases | 0, 1, 2 | 20 |" in budget
    assert "| C, simultaneous order | simpnet | BP | tied | simultaneous order, biases | " \
        "0, 1, 2 | 20 |" in budget


def test_the_gpu_runs_are_listed_but_never_judged(tmp_path: Path, write_run) -> None:
    """Budget C's protocol on a lent GPU (more epochs than any other budget) appears in the
    budget and error tables and in no claim's rows."""
    a = _grid(write_run, tmp_path / "a", 10, SIMPNET + DEEPERNET)
    b = _grid(write_run, tmp_path / "b", 12, SIMPNET + DEEPERNET)
    gpu = _grid(write_run, tmp_path / "gpu", 30, SIMPNET)
    none = tmp_path / "none"
    report = Report(a, b, (), none, none, none, gpu)
    assert {r.where.split(":")[0] for r in rows_claim1(report) + rows_claim2(report)} == {"B"}
    listed = [line for line in block_final_errors(report).splitlines()
              if line.startswith("| C on an H200 |")]
    assert len(listed) == len(SIMPNET) and all("| 30 × " in line for line in listed)
    assert "| C on an H200 | simpnet | URFB 50% |" in block_budget(report)
    assert "C on an H200" not in block_final_errors(Report(a, b, (), none, none, none))


def test_parts_against_bp_are_judged_again_with_bp_in_the_simultaneous_order(
        tmp_path: Path, write_run) -> None:
    """With BP and BP-H runs in the protocol-choice folder's simultaneous order, every part of
    claims 1, 2 and 6 that compares with BP or BP-H gets a second row: budget C with those runs
    in place of its own ("C, BP simultaneous"), in the claim's block and the summary; the other
    parts are not repeated, and nothing changes while no such run exists."""
    a = _grid(write_run, tmp_path / "a", 10, SIMPNET + DEEPERNET)
    b = _grid(write_run, tmp_path / "b", 12, SIMPNET + DEEPERNET)
    c = _grid(write_run, tmp_path / "c", 12, SIMPNET[:4] + DEEPERNET[1:])
    choices = tmp_path / "choices"
    report = Report(a, b, (), tmp_path / "none", choices, c)
    assert report.bp_simultaneous() is None and bp_simultaneous_rows(report, "1") == []
    _grid(write_run, choices / "simultaneous", 12, SIMPNET[:2] + DEEPERNET[:1], offset=-0.1)
    report = Report(a, b, (), tmp_path / "none", choices, c)
    claim1 = bp_simultaneous_rows(report, "1")
    assert len(claim1) == 3 and all(r.where.startswith("C, BP simultaneous: ep 12") for r in claim1)
    claim2 = bp_simultaneous_rows(report, "2")
    assert [r.short for r in claim2] == ["URFB worse than BP (softmax)",
                                         "URFB worse than BP-H (hinge)", "URFB close to BP"]
    against_c = {r.short: r for r in rows_claim2(report)}["URFB worse than BP (softmax)"]
    assert against_c.where.startswith("C: ep 12")  # budget C's own row stays
    assert claim2[0].cmp.mean == pytest.approx(against_c.cmp.mean + 0.1)  # the BP runs' offset
    claim3 = bp_simultaneous_rows(report, "3")
    assert len(claim3) == 4 and all("BP-H" in r.test for r in claim3)
    assert {r.where.split(":")[0] for r in rows_claim3(report) if r.short} == {"B"}  # no BP-H in C
    assert bp_simultaneous_rows(report, "5b") == []  # "exact BP" there is the probe's, in every run
    assert "| C, BP simultaneous: ep 12" in block_paper_numbers(report)
    claim6 = bp_simultaneous_rows(report, "6")
    assert claim6 and all("BP-H" in r.test for r in claim6)
    # claim 6's rows on URFB alone are judged where URFB is (C), its comparisons where BP-H is
    deeper6 = {r.short: r.where.split(":")[0] for r in rows_claim6(report)
               if r.short.startswith("deepernet")}
    assert deeper6["deepernet: URFB learns while far from aligned"] == "C"
    assert deeper6["deepernet: premise, URFB far from aligned in epoch 1"] == "C"
    assert deeper6["deepernet: validation error after epoch 1 close to BP-H's"] == "B"
    summary = summary_rows(report)
    assert ("1", "hinge and softmax comparable, BP in the simultaneous order") in summary
    assert ("2", "URFB close to BP, BP in the simultaneous order") in summary
    assert not any(short.startswith("URFB better than FRFB, BP") for _, short in summary)
    assert "| C, BP simultaneous: ep 12" in block_claim1(report)
    assert "| C, BP simultaneous: ep" in block_claim6(report)
    assert bp_simultaneous_rows(report.earlier(), "2") == []  # budgets A and B only: none
    assert "C, BP simultaneous" not in block_earlier_summary(report)
    # C's runs from another device (a GPU's) are not paired with the CPU's BP runs
    for config in c.glob("*/config.json"):
        config.write_text(json.dumps({**json.loads(config.read_text()), "device": "cuda"}))
    other = Report(a, b, (), tmp_path / "none", choices, c)
    assert other.bp_simultaneous() is None and bp_simultaneous_rows(other, "2") == []


def test_the_second_view_adds_paper_numbers_of_its_own_budget_only(tmp_path: Path,
                                                                   write_run) -> None:
    """deepernet BP in budget C (the paper's order) and none in the simultaneous order: the
    second view falls back to budget B, whose row is not added beside C's."""
    deep_bp = [("deepernet", "bp")]
    a = _grid(write_run, tmp_path / "a", 10, SIMPNET + DEEPERNET + deep_bp)
    b = _grid(write_run, tmp_path / "b", 12, SIMPNET + DEEPERNET + deep_bp)
    c = _grid(write_run, tmp_path / "c", 12, SIMPNET[:4] + deep_bp)
    choices = tmp_path / "choices"
    _grid(write_run, choices / "simultaneous", 12, SIMPNET[:2])
    report = Report(a, b, (), tmp_path / "none", choices, c)
    assert report.bp_simultaneous() is not None
    rows = [[cell.strip() for cell in ln.strip("|").split("|")]
            for ln in block_paper_numbers(report).splitlines()]
    deep_bp = [r[3].split(":")[0] for r in rows if r[0] == "BP, deepernet" and
               r[2].startswith("BP ")]
    assert deep_bp == ["C"]


def test_untied_rows_pair_tied_and_untied_runs_of_one_budget(tmp_path: Path, write_run) -> None:
    a = _grid(write_run, tmp_path / "a", 10, SIMPNET + DEEPERNET)
    b = _grid(write_run, tmp_path / "b", 12, SIMPNET + DEEPERNET)
    paper = tmp_path / "c"
    _grid(write_run, paper, 12, [("simpnet", "urfb"), ("simpnet", "frfb")])
    for p in ("urfb", "frfb"):
        for seed in range(3):
            write_run(paper, f"untied-{p}-s{seed}", "simpnet", p, untied=(0,), seed=seed,
                      epochs=11, offset=0.05 + (0.02 * (seed + 1) if p == "frfb" else 0.0))
    rows = rows_claim4(Report(a, b, (), tmp_path / "none", tmp_path / "none", paper))
    by_short = {r.short: r for r in rows}
    worse = by_short["untied simpnet URFB worse than tied"]
    assert worse.where.startswith("C: ep 11")  # tied runs cut at the untied runs' last epoch
    assert worse.cmp.diffs == pytest.approx({s: 0.05 for s in range(3)})
    assert by_short["untied simpnet: URFB better than FRFB (order kept)"].verdict == "supports"


def _untied(write_run, root: Path, epochs: int) -> None:
    for p in ("urfb", "frfb"):
        for seed in range(3):
            write_run(root, f"untied-{p}-s{seed}", "simpnet", p, untied=(0,), seed=seed,
                      epochs=epochs, offset=0.05 + (0.02 * (seed + 1) if p == "frfb" else 0.0))


def test_untied_rows_at_equal_epochs_go_to_the_later_budget(tmp_path: Path, write_run) -> None:
    """Claim 4's rows break a tie of epochs as every other part does: C before B (max() kept
    the first of equals, B)."""
    a = _grid(write_run, tmp_path / "a", 10, SIMPNET + DEEPERNET)
    b = _grid(write_run, tmp_path / "b", 12, SIMPNET + DEEPERNET)
    c = _grid(write_run, tmp_path / "c", 12, [("simpnet", "urfb"), ("simpnet", "frfb")])
    for root in (b, c):
        _untied(write_run, root, 12)
    rows = rows_claim4(Report(a, b, (), tmp_path / "none", tmp_path / "none", c))
    assert len(rows) == 3 and all(r.where.startswith("C: ep 12") for r in rows)


def _measured(folder: Path, start: str, trained: float, at_start: float, chance: float) -> None:
    """Give an untied run the homogeneity the trainer logs: ``trained`` and ``chance`` in every
    epoch, ``at_start`` before the first update; ``start`` its config's untied start."""
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "untied_init": start}))
    rows = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    for row in rows:
        row["homogeneity"] = {"conv0": {"across_locations": trained, "chance": chance}}
    rows[0]["homogeneity_start"] = {"conv0": {"across_locations": at_start, "chance": chance}}
    _write_log(folder, rows)


def _write_log(folder: Path, rows: list[dict]) -> None:
    (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_figure8_tests_the_measured_homogeneity_of_each_start(tmp_path: Path, write_run) -> None:
    """Figure 8's rows read the homogeneity each untied run's log records: a replicated start
    keeps its filters alike ('strong' above 0.5); an independent one is tested against its
    start too."""
    a = _grid(write_run, tmp_path / "a", 10, SIMPNET + DEEPERNET)
    b = _grid(write_run, tmp_path / "b", 12, SIMPNET + DEEPERNET)
    c = _grid(write_run, tmp_path / "c", 12, [("simpnet", "urfb")])
    other = tmp_path / "choices" / "untied-independent"
    for seed in range(3):
        _measured(write_run(c, f"untied-urfb-s{seed}", "simpnet", "urfb", untied=(0,), seed=seed,
                            epochs=11), "replicated", 0.99 - 0.01 * seed, 1.0, -0.01)
        _measured(write_run(other, f"untied-urfb-s{seed}", "simpnet", "urfb", untied=(0,),
                            seed=seed, epochs=11), "independent", 0.0001 * seed, 0.0001, 0.0002)
    report = Report(a, b, (), tmp_path / "none", tmp_path / "choices", c)
    text = block_figure8(report)
    rows = [ln for ln in text.splitlines() if ln.startswith("| simpnet URFB untied")]
    verdicts = [ln.rsplit("|", 2)[-2].strip() for ln in rows]
    chance = ("a channel's filters across locations, correlation above that of different "
              "channels at one location")
    assert [ln.split(" | ")[0] for ln in rows] == [
        f"| simpnet URFB untied (replicated start): {chance}",
        "| simpnet URFB untied (replicated start): that correlation above 0.5 ('strong')",
        f"| simpnet URFB untied (independent start): {chance}",
        "| simpnet URFB untied (independent start): that correlation above 0.5 ('strong')",
        "| simpnet URFB untied (independent start): that correlation above the start's"]
    assert verdicts == ["**supports**", "**supports**", "**inconclusive**", "**contradicts**",
                        "**inconclusive**"]
    assert "C: ep 11 × 200, 3 seeds" in rows[0] and "untested" not in text
    # runs whose first logs predate the homogeneity, trained again beside budget C's folder
    rerun = tmp_path / "homogeneity-rerun"
    for seed in range(2):
        _measured(write_run(rerun, f"untied-frfb-s{seed}", "simpnet", "frfb", untied=(0,),
                            seed=seed, epochs=11), "replicated", 0.2, 1.0, 0.1)
    again = block_figure8(Report(a, b, (), tmp_path / "none", tmp_path / "choices", c))
    assert ("| simpnet FRFB untied (replicated start): that correlation above 0.5 ('strong') | "
            "C, trained again (deepnets.train --same-as): ep 11 × 200, 2 seeds") in again
    shutil.rmtree(rerun)
    def strip(folder: Path, keys: tuple[str, ...]) -> None:
        rows = [json.loads(x) for x in (folder / "log.jsonl").read_text().splitlines()]
        _write_log(folder, [{k: v for k, v in r.items() if k not in keys} for r in rows])

    # a run begun before the trainer recorded the start: measured, but not against its start
    for seed in range(3):
        strip(other / f"untied-urfb-s{seed}", ("homogeneity_start",))
    no_start = block_figure8(Report(a, b, (), tmp_path / "none", tmp_path / "choices", c))
    assert "(independent start): a channel's" in no_start and "above the start's" not in no_start
    # logs without any homogeneity (runs made before the trainer recorded it) are not measured
    strip(c / "untied-urfb-s0", ("homogeneity", "homogeneity_start"))
    for seed in range(3):
        strip(other / f"untied-urfb-s{seed}", ("homogeneity",))
    fewer = block_figure8(Report(a, b, (), tmp_path / "none", tmp_path / "choices", c))
    assert "C: ep 11 × 200, 2 seeds" in fewer and "(independent start)" not in fewer
    # seeds measured at different epochs: only those of one epoch are compared
    log1 = [json.loads(x) for x in (c / "untied-urfb-s1" / "log.jsonl").read_text().splitlines()]
    _write_log(c / "untied-urfb-s1",
               [*log1[:9], *({k: v for k, v in r.items() if k != "homogeneity"} for r in log1[9:])])
    one = block_figure8(Report(a, b, (), tmp_path / "none", tmp_path / "choices", c))
    assert "C: ep 11 × 200, 1 seed " in one and "2 seeds" not in one
    log1[-1]["homogeneity"] = {"conv0": {"across_locations": "x", "chance": 0.0}}
    _write_log(c / "untied-urfb-s1", log1)
    with pytest.raises(RunError, match="not a number"):
        block_figure8(Report(a, b, (), tmp_path / "none", tmp_path / "choices", c))


def test_final_errors_list_untied_simpnet_runs(tmp_path: Path, write_run) -> None:
    """The suite's untied simpnet runs (Figure 9: untied, nothing frozen), which claim 4 now
    compares, have their final-errors rows ("untied", not "untied, layer [0] frozen")."""
    a = _grid(write_run, tmp_path / "a", 10, SIMPNET + DEEPERNET)
    b = _grid(write_run, tmp_path / "b", 12, SIMPNET + DEEPERNET)
    c = _grid(write_run, tmp_path / "c", 12, [("simpnet", "urfb"), ("simpnet", "frfb")])
    _untied(write_run, c, 11)
    lines = block_final_errors(Report(a, b, (), tmp_path / "none", tmp_path / "none",
                                      c)).splitlines()
    assert [ln.split(" | ")[:5] for ln in lines if " | untied" in ln] == [
        ["| C", "simpnet", p, "untied", "11 × 200 (0.0049%)"] for p in ("URFB", "FRFB")]


def test_the_earlier_summary_does_not_deny_parts_judged_at_c_only(tmp_path: Path,
                                                                  write_run) -> None:
    """Claim 4's untied rows can be judged at C while no other part has moved there: the block
    must not say that no part is judged at C."""
    a = _grid(write_run, tmp_path / "a", 10, SIMPNET + DEEPERNET)
    b = _grid(write_run, tmp_path / "b", 12, SIMPNET + DEEPERNET)
    c = _grid(write_run, tmp_path / "c", 5, [("simpnet", "urfb"), ("simpnet", "frfb")])
    _untied(write_run, c, 5)
    report = Report(a, b, (), tmp_path / "none", tmp_path / "none", c)
    assert any(r.where.startswith("C:") for r in summary_rows(report).values())
    assert "no part of a claim is judged at budget C" not in block_earlier_summary(report)


def test_claim5b_reports_the_local_angle_beside_the_global_one_without_judging_it(
        tmp_path: Path, write_run) -> None:
    """Issue 20: delta_angle (Lillicrap et al.'s, the verdict's) and local_delta_angle (Akrout
    et al.'s) both reported; rows of the local angle appear only where every run logs it, and
    the summary's verdict is the global angle's either way."""
    a = _grid(write_run, tmp_path / "a", 10, SIMPNET + DEEPERNET)
    b = _grid(write_run, tmp_path / "b", 12, SIMPNET + DEEPERNET)
    none = tmp_path / "none"
    report = Report(a, b, (), none, none, none)
    before = block_claim5_strong(report)
    verdicts = {k: r.verdict for k, r in summary_rows(report).items() if k[0] == "5b"}
    assert "(delta_angle," in before and "(local_delta_angle," not in before
    logs = sorted([*a.glob("*/log.jsonl"), *b.glob("*/log.jsonl")])
    for log in logs:
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        for row in rows:
            for layer in (row.get("alignment") or {}).values():
                if layer.get("delta_angle") is not None:
                    layer["local_delta_angle"] = layer["delta_angle"] - 5.0
        log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    seed2 = [p for p in logs if p.parent.name.endswith("urfb-s2")]
    kept = {p: p.read_text() for p in seed2}
    for p in seed2:  # one seed without it: no local rows, the global ones as before
        p.write_text(p.read_text().replace('"local_delta_angle"', '"other"'))
    partial = block_claim5_strong(Report(a, b, (), none, none, none))
    assert "(local_delta_angle," not in partial and partial.count("(delta_angle,") == (
        before.count("(delta_angle,"))
    for p, text in kept.items():
        p.write_text(text)
    report = Report(a, b, (), none, none, none)
    after = block_claim5_strong(report)
    rows = [line for line in after.splitlines() if line.startswith("| ")]
    local = [line for line in rows if "(local_delta_angle," in line]
    glob = [line for line in rows if "(delta_angle," in line and "least favourable" not in line]
    assert local and len(local) == len(glob)
    assert {k: r.verdict for k, r in summary_rows(report).items() if k[0] == "5b"} == verdicts


def test_a_corrupt_test_score_names_the_flag_of_its_folder(tmp_path: Path, write_run,
                                                          capsys) -> None:
    """A damaged test.json under one of the runs folders was reported by its file alone; the
    error now names the flag that points at it too."""
    a = _grid(write_run, tmp_path / "a", 10, SIMPNET)
    paper = _grid(write_run, tmp_path / "paper", 12, SIMPNET)
    damaged = paper / "simpnet-urfb-s0" / "test.json"
    damaged.write_text("[]")
    with pytest.raises(SystemExit) as exc:
        main(["--runs-a", str(a), "--runs-b", str(a), "--runs-old", "--runs-paper", str(paper),
              "--runs-bf16", str(a), "--runs-choices", str(a), "--check",
              str(REPO / "docs" / "results.md")])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"python -m figures.report: error: --runs-paper {paper}: corrupt {damaged}: not a "
        "deepnets test result")
