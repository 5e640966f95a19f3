"""Figures 4-11 from synthetic run folders written here in deepnets.train's format; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepnets.minidata import tiny_cifar_folder
from figures.__main__ import main as figures_main
from figures.alignment import plot_figure10, plot_figure11
from figures.errors import plot_figure4, plot_figure5, plot_figure6, plot_figure7, plot_figure9
from figures.filters import chance_similarity, similarity
from figures.runs import PROTOCOLS, MissingDataError, find_runs, select

LAYERS = {"simpnet": ["conv 32 5x5", "full 500", "output"],
          "deepnet": [f"l{i}" for i in range(9)], "deepernet": [f"l{i}" for i in range(10)],
          "deepnet_s": ["conv 16 3x3", "conv 16 3x3", "conv 64 3x3", "conv 64 3x3", "conv 64 2x2",
                        "conv 64 2x2", "full 500", "output"]}


def write_run(root: Path, name: str, arch: str, protocol: str, *, n_classes: int = 10,
              untie: tuple[int, ...] = (), freeze: tuple[int, ...] = (), epochs: int = 4,
              logged: int | None = None) -> Path:
    """A run folder as deepnets.train writes it: config.json and one log.jsonl line per epoch."""
    method, loss, conn = PROTOCOLS[protocol]
    folder = root / name
    folder.mkdir(parents=True)
    names = LAYERS[arch]
    config = {
        "arch": arch, "method": method, "epsilon": 1.0, "loss": loss, "connectivity": conn,
        "update_order": "simultaneous", "sat_scale": 0.5, "mu": None, "lr": 0.1, "batch_size": 50,
        "seed": 0, "epochs": epochs, "train_subset": 200, "val_size": 100, "data": "imagefolder",
        "data_dir": "/data/train.zip", "dataset_label": "CIFAR-10 (JPEG re-encoding)",
        "untie": list(untie), "freeze": list(freeze), "from_run": None, "copy": None,
        "output_feedback": "closed-form", "device": "cpu", "weight_layer_names": names,
        "net": {"arch": arch, "n_classes": n_classes, "method": method, "untied": list(untie), "seed": 0},
    }
    (folder / "config.json").write_text(json.dumps(config))
    rows = []
    for e in range(1, (epochs if logged is None else logged) + 1):
        rows.append({"epoch": e, "train_loss": 1.0 / e, "train_error": 0.9 / e, "val_loss": 1.1 / e,
                     "val_error": 0.95 / e ** 0.5, "seconds": 1.0,
                     "corr": [min(1.0, 0.1 * e + 0.05 * i) for i in range(len(names))]})
    (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def assert_images(paths: list[Path], stem: Path) -> str:
    """PNG and PDF are valid files; return the sidecar's text."""
    assert Path(f"{stem}.png") in paths and Path(f"{stem}.pdf") in paths
    with Image.open(f"{stem}.png") as im:
        im.verify()
    with Image.open(f"{stem}.png") as im:
        assert im.format == "PNG" and im.size[0] > 200 and im.size[1] > 100
        assert len(set(np.asarray(im.convert("L")).ravel().tolist())) > 5  # not blank
    assert Path(f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
    return Path(f"{stem}.txt").read_text()


@pytest.fixture()
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    for p in PROTOCOLS:
        write_run(root, f"simpnet-cifar10-{p}", "simpnet", p)
        write_run(root, f"simpnet-cifar100-{p}", "simpnet", p, n_classes=100, epochs=3)
        write_run(root, f"deepernet-cifar10-{p}", "deepernet", p)
    write_run(root, "deepnet-cifar10-urfb", "deepnet", "urfb")
    for p in ("bp", "urfb", "frfb"):
        write_run(root, f"simpnet-cifar10-{p}-untied", "simpnet", p, untie=(0,))
        write_run(root, f"deepnet_s-cifar10-{p}-pre", "deepnet_s", p, epochs=2)
        write_run(root, f"deepnet_s-cifar10-{p}", "deepnet_s", p, freeze=(0,))
        write_run(root, f"deepnet_s-cifar10-{p}-untied", "deepnet_s", p, untie=(1, 2, 3, 4, 5),
                  freeze=(0,), logged=2)  # an interrupted run: drawn with what it has
    return root


def test_runs_are_recognised_by_their_config(runs: Path) -> None:
    found = find_runs(runs)
    assert len(found) == 6 * 3 + 1 + 3 * 4
    run = select(found, arch="simpnet", protocol="urfb-50", n_classes=100)
    assert run is not None and run.name == "simpnet-cifar100-urfb-50" and run.finished
    assert select(found, arch="simpnet", protocol="bp", untied=True).name == "simpnet-cifar10-bp-untied"
    part = select(found, arch="deepnet_s", protocol="urfb", untied=True, frozen=(0,))
    assert part.epochs_done == 2 and not part.finished
    assert select(found, arch="deepnet", protocol="bp") is None


@pytest.mark.parametrize("number,plot", [(4, plot_figure4), (5, plot_figure5), (6, plot_figure6),
                                         (7, plot_figure7), (9, plot_figure9), (10, plot_figure10),
                                         (11, plot_figure11)])
def test_figure_renders_with_scale_sidecar(runs: Path, tmp_path: Path, number: int, plot) -> None:
    stem = tmp_path / "out" / f"figure{number}"
    text = assert_images(plot(runs, stem), stem)
    assert text.startswith(f"Figure {number}\n")
    assert ("epochs 2/4" if number == 11 else "epochs 4/4") in text  # 11: interrupted untied runs
    assert "train 200 (subset)" in text
    assert "CIFAR-10 (JPEG re-encoding)" in text


def test_sidecars_name_the_runs_drawn(runs: Path, tmp_path: Path) -> None:
    text5 = Path(plot_figure5(runs, tmp_path / "f5")[-1]).read_text()
    assert "simpnet-cifar100-frfb-50" in text5 and "epochs 3/3" in text5
    text6 = Path(plot_figure6(runs, tmp_path / "f6")[-1]).read_text()
    assert "deepnet, CIFAR-10: no run for BP\n" in text6  # only URFB was run on deepnet
    text11 = Path(plot_figure11(runs, tmp_path / "f11")[-1]).read_text()
    assert "deepnet_s-cifar10-urfb-untied" in text11 and "epochs 2/4" in text11
    assert "-pre" not in text11


@pytest.mark.parametrize("plot", [plot_figure4, plot_figure5, plot_figure6, plot_figure7,
                                  plot_figure9, plot_figure10, plot_figure11])
def test_missing_runs_raise_a_named_reason(tmp_path: Path, plot) -> None:
    write_run(tmp_path / "runs", "other", "simpnet", "urfb-50")  # matches none of 4, 6, 7, 9, 10, 11
    if plot is plot_figure5:
        (tmp_path / "runs" / "other").rename(tmp_path / "runs" / "ignored")
        (tmp_path / "runs" / "ignored" / "log.jsonl").write_text("")  # no epoch logged yet
    with pytest.raises(MissingDataError, match="no "):
        plot(tmp_path / "runs", tmp_path / "fig")
    assert not list(tmp_path.glob("fig*"))


def test_similarity_measures_homogeneity_across_locations() -> None:
    rng = np.random.default_rng(0)
    same = np.broadcast_to(rng.normal(size=(1, 1, 4, 3, 5, 5)), (12, 12, 4, 3, 5, 5))
    assert similarity(same) == pytest.approx(1.0)
    assert similarity(same, [(2, 2), (9, 9)]) == pytest.approx(1.0)
    noise = rng.normal(size=(12, 12, 4, 3, 5, 5))
    assert abs(similarity(noise)) < 0.05 and abs(chance_similarity(noise)) < 0.1
    assert similarity(same + 0.5 * noise) > 0.6


def test_cli_on_empty_runs_lists_every_figure_missing(tmp_path: Path, capsys) -> None:
    (tmp_path / "runs").mkdir()
    assert figures_main(["all", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    for n in range(4, 13):
        assert f"figure {n}: missing -- " in out
    assert "0 built, 9 missing" in out
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_python_m_figures_runs_as_a_program(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "figures", "--runs", str(tmp_path / "none"),
                           "--out", str(tmp_path / "out")], cwd=Path(__file__).parents[2],
                          check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "0 built, 9 missing" in done.stdout


def test_cli_builds_what_has_data(runs: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert figures_main(["4", "9", "8", "--runs", str(runs), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert sorted(summary["built"]) == ["4", "9"] and list(summary["missing"]) == ["8"]
    assert "checkpoint.pt" in summary["missing"]["8"]
    assert sorted(p.name for p in out.iterdir()) == [
        "figure4.pdf", "figure4.png", "figure4.txt", "figure9.pdf", "figure9.png", "figure9.txt"]


def test_cli_rejects_an_unknown_figure(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        figures_main(["13", "--runs", str(tmp_path)])
    assert exc.value.code == 2
    assert "argument FIGURE: '13'" in capsys.readouterr().err


def test_foreign_or_broken_run_folders_are_skipped_with_a_warning(runs: Path, capsys) -> None:
    (runs / "broken").mkdir()
    (runs / "broken" / "config.json").write_text("{not json")
    (runs / "broken" / "log.jsonl").write_text("")
    (runs / "other").mkdir()
    (runs / "other" / "config.json").write_text(json.dumps({"tool": "something else"}))
    (runs / "other" / "log.jsonl").write_text('{"step": 1}\n')
    names = {r.name for r in find_runs(runs)}
    assert "broken" not in names and "other" not in names and "simpnet-cifar10-urfb" in names
    err = capsys.readouterr().err
    assert f"skipping {runs / 'broken'}: unreadable run files" in err
    assert f"skipping {runs / 'other'}: not a deepnets.train run folder" in err


def test_every_cli_flag_has_help() -> None:
    import argparse

    from figures.__main__ import build_parser

    actions = [a for a in build_parser()._actions if not isinstance(a, argparse._HelpAction)]
    assert len(actions) >= 4 and all(a.help for a in actions)


def test_cli_rejects_out_onto_a_file(tmp_path: Path, capsys) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(SystemExit) as exc:
        figures_main(["4", "--runs", str(tmp_path), "--out", str(afile / "out")])
    assert exc.value.code == 2
    assert f"argument --out {afile / 'out'}: {afile} is a file, not a folder" in capsys.readouterr().err


def test_figure8_from_a_real_untied_checkpoint(tmp_path: Path) -> None:
    from deepnets.train import main as train_main
    from figures.filters import plot_figure8

    data = tiny_cifar_folder(tmp_path / "data")
    run = tmp_path / "runs" / "simpnet-cifar10-urfb-untied"
    assert train_main(["--arch", "simpnet", "--method", "urfb", "--untie", "0", "--data", "imagefolder",
                       "--data-dir", str(data), "--val-size", "10", "--batch-size", "10", "--epochs", "1",
                       "--device", "cpu", "--out", str(run), "--quiet"]) == 0
    stem = tmp_path / "out" / "figure8"
    text = assert_images(plot_figure8(tmp_path / "runs", stem), stem)
    assert "simpnet-cifar10-urfb-untied" in text and "epochs 1/1" in text
    assert "(8, 8), (8, 24), (24, 8), (24, 24)" in text
    trained = float(text.split("Over all interior locations: trained ")[1].split(";")[0])
    at_init = float(text.split("at initialisation (seed 0) ")[1].split(";")[0])
    assert -1 <= at_init < 0.1 and -1 <= trained <= 1  # independent Glorot draws: no similarity at start


def test_cli_builds_figure12_from_a_curves_csv(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "runs" / "epsilon_sweep"
    sweep.mkdir(parents=True)
    lines = ["run,method,epsilon,t,error,corr_1,corr_2,corr_3"]
    for run in (0, 1):
        for t in range(5):
            lines.append(f"{run},bp,,{t},{np.exp(-t)},,,")
            for eps in (0.0, 1.0):
                c = 0.2 * t * (1 + eps) / 2
                lines.append(f"{run},feedback,{eps},{t},{np.exp(-(1 + eps) * t / 2)},{c},{c},{c}")
    (sweep / "curves.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    assert figures_main(["12", "--runs", str(tmp_path / "runs"), "--out", str(out)]) == 0
    assert "1 built, 0 missing" in capsys.readouterr().out
    text = assert_images([out / "figure12.png", out / "figure12.pdf"], out / "figure12")
    assert "2 runs; epsilon [0.0, 1.0]; t up to 4; 3 weight layers" in text


def test_summary_tables_state_errors_and_correlations(runs: Path) -> None:
    from figures.summary import summarize

    text = summarize(runs)
    row = next(line for line in text.splitlines() if line.startswith("| simpnet-cifar10-urfb-50 |"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[2] == "URFB 50%" and cells[5] == "4/4" and cells[7] == f"{0.9 / 4:.4f}"
    assert cells[8] == f"{0.95 / 2:.4f}" and cells[9] == f"{0.95:.4f} / {0.95 / 2 ** 0.5:.4f} / {0.95 / 2:.4f}"
    alignment = text.split("### Weight alignment")[1]
    corr = next(line for line in alignment.splitlines() if line.startswith("| simpnet-cifar10-frfb |"))
    assert "0.100, 0.150, 0.200 (ep. 1)" in corr and "0.400, 0.450, 0.500 (ep. 4)" in corr
    assert "| simpnet-cifar10-bp |" not in alignment
