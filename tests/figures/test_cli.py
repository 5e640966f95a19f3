"""``python -m figures``: what it builds, its defaults, its exit status and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from figures.__main__ import build_parser, main

REPO = Path(__file__).parents[2]


def last_error(capsys) -> str:
    """The last line on stderr, checked to be argparse's one-line error."""
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    line = captured.err.strip().splitlines()[-1]
    assert line.startswith("python -m figures: error: ")
    return line.removeprefix("python -m figures: error: ")


def test_builds_what_has_data(runs: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["4", "9", "8", "--runs", str(runs), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert sorted(summary["built"]) == ["4", "9"] and list(summary["missing"]) == ["8"]
    assert "checkpoint.pt" in summary["missing"]["8"]
    assert sorted(p.name for p in out.iterdir()) == [
        "figure4.pdf", "figure4.png", "figure4.txt", "figure9.pdf", "figure9.png", "figure9.txt"]


def test_nothing_built_exits_1_listing_every_figure_missing(tmp_path: Path, capsys) -> None:
    (tmp_path / "runs").mkdir()
    argv = ["all", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out"),
            "--curves-csv", str(tmp_path / "empty.csv")]
    (tmp_path / "empty.csv").write_text("")
    assert main(argv) == 1
    captured = capsys.readouterr()
    for n in [*range(4, 13), 16, 17, 18, 19]:
        assert f"figure {n}: missing -- " in captured.out
    assert "0 built, 13 missing" in captured.out
    assert "figure 16: missing -- no CIFAR-10 URFB or FRFB run (runs: python -m deepnets.suite 4 7)" in captured.out
    assert captured.err.strip().endswith("error: none of figures [4, 5, 6, 7, 8, 9, 10, 11, 12, 16, "
                                         "17, 18, 19] could be built (see above)")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("argv, message", [
    (["--runs", "NONEXISTENT"], "--runs NONEXISTENT: no such folder"),
    (["12", "--curves-csv", "MISSING.csv"], "--curves-csv MISSING.csv: no such file"),
    (["13"], "argument FIGURE: '13' is not 'all' or one of [4, 5, 6, 7, 8, 9, 10, 11, 12, 16, 17, 18, 19]"),
    (["4", "x"], "argument FIGURE: 'x' is not 'all'"),
])
def test_bad_arguments_exit_2_in_one_line(tmp_path: Path, monkeypatch, capsys, argv: list[str],
                                          message: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert last_error(capsys).startswith(message)
    assert not (tmp_path / "out").exists()


def test_a_folder_at_a_figures_file_is_refused_before_any_figure_is_drawn(runs: Path,
                                                                         tmp_path: Path,
                                                                         capsys) -> None:
    """``--out`` holding a folder figure9.txt: exit 2 before figure 4 or 9 is drawn (it was exit
    1 after figure4.* and figure9.png, .pdf were written)."""
    out = tmp_path / "out"
    (out / "figure9.txt").mkdir(parents=True)
    with pytest.raises(SystemExit) as exc:
        main(["4", "9", "--runs", str(runs), "--out", str(out)])
    assert exc.value.code == 2
    assert last_error(capsys) == (f"--out {out}: figure9.txt there is a folder, where that file "
                                  "goes (move or remove it)")
    assert [p.name for p in out.iterdir()] == ["figure9.txt"]


def test_a_folder_given_as_curves_csv_is_called_a_folder(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["12", "--curves-csv", str(tmp_path), "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    assert last_error(capsys) == f"--curves-csv {tmp_path}: is a folder; give a file in it"


def test_out_onto_a_file_is_refused(tmp_path: Path, capsys) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(SystemExit) as exc:
        main(["4", "--runs", str(tmp_path), "--out", str(afile / "out")])
    assert exc.value.code == 2
    assert last_error(capsys) == f"--out {afile / 'out'}: {afile} exists and is not a folder"


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux's /proc")
def test_out_that_cannot_be_created_fails_before_reading_runs(runs: Path, capsys) -> None:
    (runs / "broken").mkdir()
    (runs / "broken" / "config.json").write_text("{not json")  # reading runs would warn
    with pytest.raises(SystemExit) as exc:
        main(["4", "--runs", str(runs), "--out", "/proc/x"])
    assert exc.value.code == 2
    assert last_error(capsys).startswith("--out /proc/x: cannot write there")


def test_a_broken_run_is_skipped_with_one_warning(runs: Path, tmp_path: Path, monkeypatch,
                                                  capsys) -> None:
    monkeypatch.chdir(tmp_path)  # no out/epsilon_sweep/curves.csv here
    broken = runs / "simpnet-cifar10-urfb-copy"
    broken.mkdir()
    (broken / "config.json").write_text((runs / "simpnet-cifar10-urfb" / "config.json").read_text())
    (broken / "log.jsonl").write_text('{"epoch": 1, "train_error": 0.9}\n{"epoch": 2, "train_e')
    assert main(["all", "--runs", str(runs), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "simpnet-cifar10-urfb-copy" in line]
    assert len(warnings) == 1 and warnings[0].startswith(f"figures: skipping {broken}: corrupt ")
    assert "11 built, 2 missing" in captured.out  # 8: no checkpoint, 12: no curves.csv


def test_the_choice_among_several_runs_is_noted(runs: Path, tmp_path: Path, write_run,
                                                 capsys) -> None:
    write_run(runs, "simpnet-cifar10-urfb-short", "simpnet", "urfb", epochs=4, logged=1)
    assert main(["4", "--runs", str(runs), "--out", str(tmp_path / "out")]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "note:" in line]
    assert notes == [(f"figures: note: simpnet URFB, 10 classes, tied: several runs of seed 0: "
                      f"using {runs / 'simpnet-cifar10-urfb'} (4 epochs) (most logged epochs); "
                      f"not {runs / 'simpnet-cifar10-urfb-short'}")]


def test_figure12_from_a_curves_csv(tmp_path: Path, curves_csv, capsys) -> None:
    csv = curves_csv(tmp_path / "sweep" / "curves.csv")
    out = tmp_path / "out"
    assert main(["12", "--curves-csv", str(csv), "--out", str(out)]) == 0
    assert "1 built, 0 missing" in capsys.readouterr().out
    text = (out / "figure12.txt").read_text()
    assert "2 runs; epsilon [0.0, 1.0]; t up to 4; 3 weight layers" in text
    assert (out / "figure12.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("damage, reason", [
    (lambda t: t.replace("0,feedback,1.0,4,", "0,feedback,1.0"),
     "line 16: has 6 fields, the header 8"),
    (lambda t: t.replace("\n1,", "\nx,", 1), "line 17: run 'x' is not an integer"),
    (lambda t: t.replace("feedback", "other", 1),
     "line 3: method 'other' is not one of bp, feedback"),
    (lambda t: t.replace("feedback,1.0", "feedback,abc", 1),
     "line 4: epsilon 'abc' is not a finite number >= 0"),
    (lambda t: t.replace("0,bp,,1,", "0,bp,,zz,", 1), "line 5: t 'zz' is not a finite number"),
    (lambda t: t.replace(",0.2,0.2,0.2", ",inf,0.2,0.2", 1),
     "line 7: corr_1 'inf' is not a finite number in [-1, 1]"),
    (lambda t: t.replace("0,bp,,0,1.0", "0,bp,,0,-1", 1),
     "line 2: error '-1' is not a finite number >= 0"),
    (lambda t: t + "1,bp,,9," + "1" * 200_000 + ",,,\n",
     "is not a CSV text file (field larger than"),
    (lambda t: t.replace("\n", "\n\n", 1).replace("feedback", "other", 1),
     "line 4: method 'other' is not one of bp, feedback"),  # the file's line, blank one counted
    (lambda t: t.replace("\n1,", "\n\u00b2,", 1), "line 17: run '\u00b2' is not an integer"),
])
def test_a_damaged_curves_csv_is_named_where_it_is_damaged(tmp_path: Path, curves_csv, capsys,
                                                           damage, reason: str) -> None:
    """A short row, a value that is not a number or out of range, an unknown method: Figure 12
    is missing with the file, line and field named (a short row or an unknown method was a
    traceback; a correlation outside [-1, 1] was drawn; the rest named no file)."""
    csv = curves_csv(tmp_path / "curves.csv")
    csv.write_text(damage(csv.read_text()))
    assert main(["12", "--curves-csv", str(csv), "--out", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert f"figure 12: missing -- curves: {csv} {reason}" in captured.out
    assert "Traceback" not in captured.err and not (tmp_path / "out" / "figure12.png").exists()


def test_a_correlation_rounded_just_past_one_is_drawn(tmp_path: Path, curves_csv) -> None:
    """sims.linear.pearson of nearly collinear matrices writes 1.0000000000000002."""
    csv = curves_csv(tmp_path / "curves.csv")
    csv.write_text(csv.read_text().replace(",0.2,0.2,0.2", ",1.0000000000000002,0.2,0.2", 1))
    assert main(["12", "--curves-csv", str(csv), "--out", str(tmp_path / "out")]) == 0


def test_a_curves_csv_that_is_not_text_is_named(tmp_path: Path, capsys) -> None:
    csv = tmp_path / "curves.csv"
    csv.write_bytes(b"\xff\xfe\x00run,method")
    assert main(["12", "--curves-csv", str(csv), "--out", str(tmp_path / "out")]) == 1
    assert f"figure 12: missing -- curves: {csv} is not a CSV text file ('utf-8' codec" in (
        capsys.readouterr().out)


@pytest.mark.parametrize("score, reason", [
    ({"best": {"epoch": 4, "error": "oops"}}, "best.error 'oops' is not a number in [0, 1]"),
    ({"best": {"epoch": 4, "error": float("nan")}}, "best.error nan is not a number in [0, 1]"),
    ({"best": {"epoch": 4, "error": 1.5}}, "best.error 1.5 is not a number in [0, 1]"),
    ({"best": {"error": 0.3}}, "best.epoch None is not an integer >= 1"),
    ({"best": [4, 0.3]}, "best is not an object"),
    ({"epochs_done": "4"}, "epochs_done '4' is not an integer >= 0"),
    ({"last": {"epoch": 0, "error": 0.3}}, "last.epoch 0 is not an integer >= 1"),
])
def test_a_run_with_a_damaged_test_json_is_skipped_and_named(tmp_path: Path, write_run, capsys,
                                                              score: dict, reason: str) -> None:
    """A test.json whose score is not a number in [0, 1] (a string, NaN), or that lacks the
    epoch: the run is skipped with one line naming the file and field, the others drawn (a
    string was a traceback from Figure 5; NaN was drawn as a test error without a word)."""
    runs = tmp_path / "runs"
    for seed in (0, 1):
        write_run(runs, f"simpnet-urfb-s{seed}", "simpnet", "urfb", seed=seed)
    good = {"epochs_done": 4, "best": {"epoch": 4, "error": 0.3},
            "last": {"epoch": 4, "error": 0.3}}
    test_json = runs / "simpnet-urfb-s1" / "test.json"
    test_json.write_text(json.dumps({**good, **score}))
    assert main(["5", "--runs", str(runs), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert captured.err == (f"figures: skipping {test_json.parent}: corrupt {test_json}: "
                            f"{reason}\n")
    assert "seed 0 (one seed" in (tmp_path / "out" / "figure5.txt").read_text()


def test_quick_start_sweep_and_figures_find_each_other(tmp_path: Path, monkeypatch, runs: Path,
                                                       capsys) -> None:
    """`make sweep` then `python -m figures all --runs runs/`: Figure 12 is built, into out/figures."""
    from sims.epsilon_sweep import main as sweep_main

    monkeypatch.chdir(tmp_path)  # the fixture's runs are in tmp_path/runs, the default --runs
    assert sweep_main(["--widths", "6", "5", "5", "3", "--runs", "1", "--points", "11",
                       "--quiet"]) == 0
    capsys.readouterr()
    assert main(["all", "--runs", "runs"]) == 0
    out = capsys.readouterr().out
    assert "figure 12: out/figures/figure12.png" in out and "figure 12: missing" not in out
    assert (tmp_path / "out" / "figures" / "figure4.png").is_file()
    assert main([]) == 0 and "12 built, 1 missing (runs: runs, out: out/figures)" in (
        capsys.readouterr().out)


def test_without_a_runs_folder_figure12_alone_is_built(tmp_path: Path, monkeypatch, curves_csv,
                                                       capsys) -> None:
    monkeypatch.chdir(tmp_path)
    curves_csv(tmp_path / "out" / "epsilon_sweep" / "curves.csv")
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "figure 4: missing -- no runs folder runs (runs: python -m deepnets.suite 4)" in out
    assert "1 built, 12 missing" in out


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs the git checkout")
def test_default_output_is_git_ignored() -> None:
    out = REPO / "out" / "figures" / "figure4.png"
    done = subprocess.run(["git", "check-ignore", "-q", str(out)], cwd=REPO, check=False)
    assert done.returncode == 0


def test_help_states_the_defaults() -> None:
    text = " ".join(build_parser().format_help().split())
    assert "(default runs/; a folder given here must exist)" in text
    assert "(default out/figures/)" in text
    assert ("(default: one inside --runs, else out/epsilon_sweep/curves.csv, where `make sweep` "
            "writes it;") in text


def test_figures_imports_no_command_line_module() -> None:
    """figures reads runs and protocols through library modules, never through a CLI's module."""
    clis = sorted(
        ".".join(p.relative_to(REPO).with_suffix("").parts)
        for package in ("deepnets", "sims", "theory", "figures") for p in (REPO / package).rglob("*.py")
        if 'if __name__ == "__main__"' in p.read_text(encoding="utf-8"))
    code = ("import sys, figures.__main__, figures.summary; "
            f"print([m for m in {clis!r} if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.strip() == "['figures.__main__', 'figures.summary']"


def test_python_m_figures_runs_as_a_program(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "figures", "--runs", str(tmp_path / "none"),
                           "--out", str(tmp_path / "out")], cwd=REPO, check=False,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines()[-1] == (f"python -m figures: error: --runs {tmp_path / 'none'}: "
                                            "no such folder")


def test_summary_refuses_a_runs_folder_that_does_not_exist(tmp_path: Path, capsys) -> None:
    from figures.summary import main as summary_main

    with pytest.raises(SystemExit) as exc:
        summary_main(["--runs", str(tmp_path / "none")])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"python -m figures.summary: error: --runs {tmp_path / 'none'}: no such folder")


def test_summary_skips_a_run_with_a_damaged_test_json(tmp_path: Path, write_run,
                                                      capsys) -> None:
    """figures.summary was a traceback on a test.json whose score is a string."""
    from figures.summary import main as summary_main

    runs = tmp_path / "runs"
    for seed in (0, 1):
        write_run(runs, f"simpnet-urfb-s{seed}", "simpnet", "urfb", seed=seed)
    bad = runs / "simpnet-urfb-s1" / "test.json"
    bad.write_text(json.dumps({"epochs_done": 4, "best": {"epoch": 4, "error": "x"},
                               "last": {"epoch": 4, "error": 0.3}}))
    assert summary_main(["--runs", str(runs)]) == 0
    captured = capsys.readouterr()
    assert f"figures: skipping {bad.parent}" in captured.err
    assert "simpnet-urfb-s0" in captured.out and "simpnet-urfb-s1 " not in captured.out


def test_figure12_finds_a_sweeps_curves_csv_inside_runs(runs: Path, tmp_path: Path, curves_csv,
                                                        capsys) -> None:
    """Issue 19: ``figures all --runs DIR`` with the sweep's output folder inside DIR."""
    curves_csv(runs / "sweep" / "curves.csv")
    assert main(["12", "--runs", str(runs), "--out", str(tmp_path / "out")]) == 0
    assert "figure 12: missing" not in capsys.readouterr().out
    assert str(runs / "sweep" / "curves.csv") in (tmp_path / "out" / "figure12.txt").read_text()
