"""Figures 4-11 from synthetic run folders written in deepnets.train's format; reading runs."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepnets.nn.homogeneity import location_filters, similarity
from deepnets.training.minidata import tiny_cifar_folder
from deepnets.training.rundir import RunError
from figures.alignment import plot_figure10, plot_figure11
from figures.errors import plot_figure4, plot_figure5, plot_figure6, plot_figure7, plot_figure9
from figures.runs import MissingDataError, Run, choice_notes, find_runs, select, select_seeds
from figures.style import band

#: simpnet with its conv layer built untied by the architecture string itself (Section 4.1).
UNTIED_SIMPNET = "untied 32 5x5; maxpool 3; drop .8; full 500; drop .3; output"


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
    assert "train 200; val 100;" in text and "seed 0, split seed 7; precision fp32" in text
    assert "CIFAR-10 (JPEG re-encoding) (data/train.zip)" in text


def test_figure9_compares_tied_and_untied_at_one_epoch(tmp_path: Path, write_run,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A tied run trained longer than its untied pair is drawn at the untied run's last epoch,
    not at its own (the bars of a protocol are at one epoch)."""
    from figures import errors

    for seed in range(2):
        write_run(tmp_path / "runs", f"tied-s{seed}", "simpnet", "urfb", seed=seed, epochs=6)
        write_run(tmp_path / "runs", f"untied-s{seed}", "simpnet", "urfb", seed=seed, epochs=3,
                  untied=(0,), offset=0.1)
    drawn = []
    real = errors._mean_bar
    monkeypatch.setattr(errors, "_mean_bar", lambda ax, x, values, *a, **k:
                        drawn.append(dict(values)) or real(ax, x, values, *a, **k))
    text = plot_figure9(tmp_path / "runs", tmp_path / "f9")[-1].read_text()
    at_3 = 0.95 / 3 ** 0.5  # the fixture's validation error at epoch 3
    assert drawn == [dict.fromkeys((0, 1), pytest.approx(at_3)),
                     dict.fromkeys((0, 1), pytest.approx(at_3 + 0.1))]
    assert "simpnet URFB: at epoch 3" in text


def test_sidecar_reads_schema_1_configs(tmp_path: Path, write_run) -> None:
    for p in ("bp", "urfb", "frfb"):
        write_run(tmp_path / "runs", f"old-{p}", "simpnet", p, schema=1)
    text = plot_figure4(tmp_path / "runs", tmp_path / "f4")[-1].read_text()
    assert "- old-bp: simpnet, bp; epochs 4/4; train 200 (subset); val 100;" in text
    assert "seed 0; data CIFAR-10 (JPEG re-encoding) (/data/train.zip)" in text
    assert "split seed" not in text and "precision" not in text


def test_sidecar_states_a_full_training_split(tmp_path: Path, write_run) -> None:
    folder = write_run(tmp_path / "runs", "full", "simpnet", "urfb", schema=1)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "train_subset": None}))
    text = plot_figure4(tmp_path / "runs", tmp_path / "f4")[-1].read_text()
    assert "train full training split less 100 held out;" in text


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
def test_missing_runs_raise_a_named_reason(tmp_path: Path, write_run, plot) -> None:
    write_run(tmp_path / "runs", "other", "simpnet", "urfb-50")  # matches none of 4, 6, 7, 9, 10, 11
    if plot is plot_figure5:
        (tmp_path / "runs" / "other").rename(tmp_path / "runs" / "ignored")
        (tmp_path / "runs" / "ignored" / "log.jsonl").write_text("")  # no epoch logged yet
    with pytest.raises(MissingDataError, match="no "):
        plot(tmp_path / "runs", tmp_path / "fig")
    assert not list(tmp_path.glob("fig*"))


def test_untied_comes_from_the_config_never_from_a_name(tmp_path: Path, write_run) -> None:
    def run_with(arch: str, untied: list[int], net_untied: list[int]) -> Run:
        folder = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        write_run(tmp_path, folder.name, "simpnet", "urfb")
        config = json.loads((folder / "config.json").read_text())
        config.update(arch=arch, untied=untied, net={**config["net"], "untied": net_untied})
        (folder / "config.json").write_text(json.dumps(config))
        return Run.read(folder)

    assert not run_with("simpnet_untied_try", [], []).untied  # a name is not a layer
    assert run_with("simpnet", [0], []).untied
    assert run_with("simpnet", [], [0]).untied
    built = run_with(UNTIED_SIMPNET, [], [])
    assert built.untied and built.arch == "simpnet"


def test_protocol_follows_deepnets_protocols(tmp_path: Path, write_run) -> None:
    folder = write_run(tmp_path, "r", "simpnet", "urfb")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "epsilon": 0.5}))
    assert Run.read(folder).protocol is None  # URFB with epsilon 0.5 is no Section 4 protocol
    bp = Run.read(write_run(tmp_path, "b", "simpnet", "bp"))
    assert bp.protocol == "bp" and bp.config["epsilon"] is None


def test_runs_differing_only_in_seed_form_one_group(tmp_path: Path, write_run) -> None:
    root = tmp_path / "runs"
    for seed in (2, 0, 1):
        write_run(root, f"urfb-s{seed}", "simpnet", "urfb", seed=seed, offset=0.01 * seed)
    write_run(root, "bp", "simpnet", "bp")
    found = find_runs(root)
    group = select_seeds(found, arch="simpnet", protocol="urfb")
    assert group.seeds == [0, 1, 2] and [r.name for r in group.runs] == ["urfb-s0", "urfb-s1", "urfb-s2"]
    assert group.series("val_error")[2][4] == pytest.approx(0.95 / 2 + 0.02)
    assert select_seeds(found, arch="simpnet", protocol="bp").seeds == [0]
    assert select_seeds(found, arch="deepnet", protocol="bp") is None
    assert choice_notes(found) == []  # one run per seed: nothing to choose
    epochs, mean, lo, hi = band(group.series("val_error"))
    assert epochs == [1, 2, 3, 4]
    assert mean[0] == pytest.approx(0.96) and lo[0] == pytest.approx(0.95) and hi[0] == pytest.approx(0.97)


def test_layer_names_come_from_the_probe_else_the_config(tmp_path: Path, write_run) -> None:
    root = tmp_path / "runs"
    write_run(root, "probed", "simpnet", "urfb")
    write_run(root, "unprobed", "simpnet", "frfb", probe=False)
    probed, unprobed = (Run.read(root / name) for name in ("probed", "unprobed"))
    names = probed.config["weight_layer_names"]
    assert probed.layer_names() == names
    assert probed.layer_names(len(names) + 1) == [*names, f"layer {len(names)}"]
    assert probed.layer_names(1) == names[:1]
    config = json.loads((root / "probed" / "config.json").read_text())
    probed.log[0]["alignment"] = {"renamed": {}}
    assert select_seeds([probed], arch="simpnet", protocol="urfb").layer_names() == ["renamed"]
    assert select_seeds([unprobed], arch="simpnet", protocol="frfb").layer_names() == names
    del config["weight_layer_names"]
    (root / "probed" / "config.json").write_text(json.dumps(config))
    assert Run.read(root / "probed").layer_names(2) == ["layer 0", "layer 1"]


def test_repeated_seeds_and_other_data_are_named_with_the_choice(tmp_path: Path,
                                                                write_run) -> None:
    root = tmp_path / "runs"
    write_run(root, "a-s0", "simpnet", "urfb", epochs=4, logged=3)
    write_run(root, "b-s0", "simpnet", "urfb", epochs=4)
    write_run(root, "c-s1", "simpnet", "urfb", epochs=4, logged=2, seed=1)
    write_run(root, "big-s0", "simpnet", "urfb", epochs=9, train_size=900)  # other data
    found = find_runs(root)
    group = select_seeds(found, arch="simpnet", protocol="urfb")
    assert [r.name for r in group.runs] == ["b-s0", "c-s1"]  # 2 seeds beat 1, however long
    assert group.common_epoch == 2
    assert choice_notes(found) == [
        (f"simpnet URFB, 10 classes, tied: several runs of seed 0: using {root / 'b-s0'} (4 epochs) "
         f"(most logged epochs); not {root / 'a-s0'}"),
        (f"simpnet URFB, 10 classes, tied: using the 2 seed(s) on train 200, CIFAR-10 (JPEG "
         f"re-encoding), simultaneous order, biases; not the runs on train 900, CIFAR-10 (JPEG "
         f"re-encoding), simultaneous order, biases: {root / 'big-s0'}")]
    assert select(found, arch="simpnet", protocol="urfb").name == "big-s0"  # Figure 8's one run


def test_runs_of_other_protocol_choices_are_not_seeds_of_one_group(tmp_path: Path,
                                                                   write_run) -> None:
    """The paper's protocol (sequential order, no biases) and the older defaults (a config
    without these keys: simultaneous, biases) are two experiments, not three seeds of one."""
    root = tmp_path / "runs"
    write_run(root, "old-s0", "simpnet", "urfb")
    write_run(root, "old-s1", "simpnet", "urfb", seed=1)
    new = write_run(root, "paper-s2", "simpnet", "urfb", seed=2)
    config = json.loads((new / "config.json").read_text())
    config.update(update_order="sequential", bias=False, schema_version=3)
    (new / "config.json").write_text(json.dumps(config))
    found = find_runs(root)
    assert {r.name: r.choices() for r in found} == {
        "old-s0": "simultaneous order, biases", "old-s1": "simultaneous order, biases",
        "paper-s2": "sequential order, no biases"}
    group = select_seeds(found, arch="simpnet", protocol="urfb")
    assert [r.name for r in group.runs] == ["old-s0", "old-s1"]
    assert any("not the runs on train 200, CIFAR-10 (JPEG re-encoding), sequential order, no "
               "biases" in note for note in choice_notes(found))


def test_broken_run_folders_are_skipped_with_one_line_each(runs: Path, capsys) -> None:
    bad = {"truncated": ('{"method": "urfb"}', '{"epoch": 1, "train_error": 0.5}\n{"epoch": 2, "tr'),
           "corrupt": ("{not json", ""),
           "other": (json.dumps({"tool": "something else"}), '{"step": 1}\n'),
           "badvalue": (json.dumps({"method": "urfb", "loss": "hinge", "freeze": 3}),
                        '{"epoch": 1}\n'),
           "badlog": ('{"method": "urfb"}', '{"epoch": "one", "train_error": 0.5}\n')}
    for name, (config, log) in bad.items():
        (runs / name).mkdir()
        (runs / name / "config.json").write_text(config)
        (runs / name / "log.jsonl").write_text(log)
    (runs / "noconfig").mkdir()  # was left out without a word
    (runs / "noconfig" / "log.jsonl").write_text('{"epoch": 1, "train_error": 0.5}\n')
    bad["noconfig"] = ("", "")
    names = {r.name for r in find_runs(runs)}
    assert not names & set(bad) and "simpnet-cifar10-urfb" in names
    err = capsys.readouterr().err.splitlines()
    assert sorted(line.split(":")[1].strip() for line in err) == sorted(
        f"skipping {runs / name}" for name in bad)
    assert "corrupt" in next(line for line in err if "truncated" in line)
    assert "not a deepnets.train run folder" in next(line for line in err if "/other" in line)
    assert "a log.jsonl without a config.json" in next(line for line in err if "noconfig" in line)


#: A damage to one row of a real-format log (epoch 2 of 4) or to its config, and the reason
#: the run is refused.
DAMAGES = {
    "norm string": ({"norm": "big"}, "line 2 (epoch 2): norm is not a list of [|W|, |R|] pairs"),
    "norm pair short": ({"norm": [[1.0], [1.0], [1.0]]}, "norm is not a list of [|W|, |R|]"),
    "norm negative": ({"norm": [[-2.5, 1.0], [1.0, 1.0], [1.0, 1.0]]}, "non-negative numbers"),
    "norm nan": ({"norm": [[math.nan, 1.0], [1.0, 1.0], [1.0, 1.0]]}, "non-negative numbers"),
    "norm layers": ({"norm": [[1.0, 1.0], [1.0, 1.0]]}, "norm has 2 layers, the config names 3"),
    "saturated list": ({"saturated": [0.1]}, "saturated is not a mapping of layer names"),
    "saturated above 1": ({"saturated": {"conv0": 5.0}}, "numbers in [0, 1]"),
    "error infinite": ({"val_error": math.inf}, "val_error is not a finite number"),
    "error bool": ({"train_error": True}, "train_error is not a finite number"),
    "corr beyond 1": ({"corr": [0.5, 2.0, 0.1]}, "corr is not a list of correlations in [-1, 1]"),
    "epoch repeated": ({"epoch": 1},
                       "line 2: epoch 1 is not an integer after the line before's (1)"),
    "epoch zero": ({"epoch": 0}, "epoch 0 is not an integer after"),
    "seed string": ("seed", "seed 'zero' is not a non-negative integer"),
    "layer names string": ("weight_layer_names", "weight_layer_names is not a list of layer names"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_value_refuses_the_run_naming_it(tmp_path: Path, write_run, capsys,
                                                   damage: str) -> None:
    folder = write_run(tmp_path / "runs", "urfb", "simpnet", "urfb")
    change, reason = DAMAGES[damage]
    if isinstance(change, dict):
        rows = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
        rows[1].update(change)
        (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        config = json.loads((folder / "config.json").read_text())
        config[change] = {"seed": "zero", "weight_layer_names": "conv0"}[change]
        (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunError, match=re.escape(reason)):
        Run.read(folder)
    assert find_runs(tmp_path / "runs") == []
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"skipping {folder}" in err and reason in err


@pytest.mark.parametrize("untie", [["--arch", "simpnet", "--untied", "0"], ["--arch", UNTIED_SIMPNET]],
                         ids=["untied-flag", "untied-arch"])
def test_figure8_from_a_real_untied_checkpoint(tmp_path: Path, untie: list[str]) -> None:
    from deepnets.train import main as train_main
    from deepnets.training.checkpoint import load_network
    from figures.filters import plot_figure8

    data = tiny_cifar_folder(tmp_path / "data")
    run = tmp_path / "runs" / "simpnet-cifar10-urfb-untied"
    assert train_main([*untie, "--method", "urfb", "--data", "imagefolder", "--data-dir", str(data),
                       "--val-size", "10", "--batch-size", "10", "--epochs", "1", "--device", "cpu",
                       "--untied-init", "independent", "--out", str(run), "--quiet"]) == 0
    stem = tmp_path / "out" / "figure8"
    text = assert_images(plot_figure8(tmp_path / "runs", stem), stem)
    assert "simpnet-cifar10-urfb-untied" in text and "epochs 1/1" in text
    assert "(8, 8), (8, 24), (24, 8), (24, 24)" in text
    trained = float(text.split("Over all interior locations: trained ")[1].split(";")[0])
    at_init = float(text.split("at initialisation (seed 0) ")[1].split(";")[0])
    # the sidecar reports the checkpoint's own filters ...
    expected = similarity(location_filters(load_network(run).weight_layers[0]))
    assert trained == pytest.approx(expected, abs=1e-4)
    # ... and independent Glorot draws per location are unrelated at the start
    assert abs(at_init) < 0.05


def test_figure8_skips_a_damaged_checkpoint(tmp_path: Path, write_run, capsys) -> None:
    from figures.filters import plot_figure8

    folder = write_run(tmp_path / "runs", "simpnet-urfb-untied", "simpnet", "urfb", untied=(0,))
    (folder / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(MissingDataError, match="no untied simpnet run with a readable checkpoint.pt"):
        plot_figure8(tmp_path / "runs", tmp_path / "f8")
    assert f"figures: skipping {folder}: corrupt checkpoint" in capsys.readouterr().err


def test_summary_tables_state_errors_and_correlations(runs: Path) -> None:
    from figures.summary import summarize

    (runs / "simpnet-cifar10-urfb-50" / "test.json").write_text(json.dumps(
        {"best": {"epoch": 4, "val_error": 0.475, "loss": 1.0, "error": 0.4812},
         "last": {"epoch": 4, "val_error": 0.475, "loss": 1.0, "error": 0.4812}}))
    text = summarize(runs)
    row = next(line for line in text.splitlines() if line.startswith("| simpnet-cifar10-urfb-50 |"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[11] == "0.4812 (ep. 4)"  # the test error of the validation-chosen weights
    other = next(line for line in text.splitlines() if line.startswith("| simpnet-cifar10-urfb |"))
    assert other.split("|")[-2].strip() == "not scored"
    assert cells[2] == "URFB 50%" and cells[5] == "4/4" and cells[6] == "200"
    assert cells[7] == f"{0.9 / 4:.4f}" and cells[8] == f"{0.95 / 2:.4f}"
    assert cells[9] == f"{0.95:.4f} / {0.95 / 2 ** 0.5:.4f} / {0.95 / 2:.4f}"
    alignment = text.split("### Weight alignment")[1]
    corr = next(line for line in alignment.splitlines() if line.startswith("| simpnet-cifar10-frfb |"))
    assert "0.100, 0.150, 0.200 (ep. 1)" in corr and "0.400, 0.450, 0.500 (ep. 4)" in corr
    assert "| simpnet-cifar10-bp |" not in alignment


def test_a_sidecar_names_each_groups_order_when_they_differ(tmp_path: Path, write_run) -> None:
    """Budget C draws BP in the simultaneous order beside URFB in the paper's: the sidecar says
    so, group by group and run by run; a figure of one order says nothing of the kind."""
    from figures.caption import write_sidecar

    bp = Run.read(write_run(tmp_path, "bp", "simpnet", "bp"))
    urfb_dir = write_run(tmp_path, "urfb", "simpnet", "urfb")
    config = json.loads((urfb_dir / "config.json").read_text())
    (urfb_dir / "config.json").write_text(json.dumps({**config, "update_order": "sequential",
                                                      "bias": False}))
    urfb = Run.read(urfb_dir)
    text = write_sidecar(tmp_path / "mixed", "Figure 4", "caption", [bp, urfb]).read_text()
    assert ("The groups drawn differ in protocol choices:\n"
            "- simpnet BP, 10 classes, tied: simultaneous order, biases\n"
            "- simpnet URFB, 10 classes, tied: sequential order, no biases\n") in text
    assert "lr 0.1; sequential order, no biases; seed 0" in text
    same = write_sidecar(tmp_path / "same", "Figure 4", "caption", [bp]).read_text()
    assert "differ in protocol choices" not in same
