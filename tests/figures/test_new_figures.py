"""Figures drawn from several seeds (mean, min-max band) and Figures 16-19 (not in the paper)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import figures.errors
import figures.growth
from figures.angles import epoch_series, plot_figure17, plot_figure18, step_series
from figures.errors import plot_figure4, plot_figure5, plot_figure7
from figures.gap import plot_figure16, settings
from figures.growth import plot_figure19
from figures.runs import MissingDataError, find_runs, select_seeds

from .test_figures import assert_images


def _grid(root: Path, write_run, arch: str, offsets: dict[str, float], *, seeds=(0, 1, 2),
          logged: dict[tuple[str, int], int] | None = None, **kw) -> None:
    """One run per protocol and seed; val/train errors shifted by offsets[p] + 0.01 * seed."""
    for p, off in offsets.items():
        for s in seeds:
            write_run(root, f"{arch}-{p}-s{s}", arch, p, seed=s, offset=off + 0.01 * s,
                      logged=(logged or {}).get((p, s)), **kw)


def _val_error(epoch: int, offset: float) -> float:
    """The validation error conftest's log holds at ``epoch`` for a run shifted by ``offset``."""
    return 0.95 / epoch**0.5 + offset


def test_curves_and_bars_draw_the_mean_over_seeds(tmp_path: Path, write_run,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "runs"
    _grid(root, write_run, "simpnet", {"bp": 0.0, "urfb": 0.02, "frfb": 0.1},
          logged={("frfb", 2): 3})  # FRFB seed 2 stopped at epoch 3 of 4
    drawn: list = []
    save = figures.errors.save_figure
    monkeypatch.setattr(figures.errors, "save_figure",
                        lambda fig, stem: drawn.append(fig.axes[0]) or save(fig, stem))
    text4 = assert_images(plot_figure4(root, tmp_path / "f4"), tmp_path / "f4")
    # URFB's seeds are shifted by 0.02, 0.03, 0.04: the line is their mean, the band their range.
    (ax,) = drawn
    lines = {line.get_label(): line for line in ax.lines}
    urfb = lines["URFB validation"]
    assert list(urfb.get_xdata()) == [1, 2, 3, 4]
    assert list(urfb.get_ydata()) == pytest.approx([_val_error(e, 0.03) for e in (1, 2, 3, 4)])
    band = {(round(x, 9), round(y, 9)) for c in ax.collections for x, y in c.get_paths()[0].vertices}
    for e in (1, 2, 3, 4):
        assert {(e, round(_val_error(e, 0.02), 9)), (e, round(_val_error(e, 0.04), 9))} <= band
    # FRFB's mean runs to epoch 3, the last all its seeds reached; seeds 0 and 1 go on alone.
    frfb = lines["FRFB validation"]
    assert list(frfb.get_xdata()) == [1, 2, 3]
    assert list(frfb.get_ydata()) == pytest.approx([_val_error(e, 0.11) for e in (1, 2, 3)])
    tails = sorted(list(line.get_ydata()) for line in ax.lines if list(line.get_xdata()) == [3, 4]
                   and line.get_linestyle() == ":" and line.get_color() == frfb.get_color())
    assert len(tails) == 2
    for tail, d in zip(tails, (0.0, 0.01)):
        assert tail == pytest.approx([_val_error(3, 0.1 + d), _val_error(4, 0.1 + d)])
    assert "simpnet URFB, 10 classes, tied: seeds 0, 1, 2 (mean, band min-max over seeds); epochs 4" in text4
    assert "simpnet FRFB, 10 classes, tied: seeds 0, 1, 2 (mean, band min-max over seeds); epochs 3-4" in text4
    assert "Built from one seed" not in text4
    text5 = plot_figure5(root, tmp_path / "f5")[-1].read_text()
    assert "simpnet, CIFAR-10: FRFB drawn at epoch 3, the last that all its 3 seeds reached" in text5


def test_bars_of_runs_scored_on_the_test_split_show_the_test_error(
        tmp_path: Path, write_run, monkeypatch: pytest.MonkeyPatch) -> None:
    """Figure 5's filled bar of a protocol whose every run has a test.json is the test error of
    the validation-chosen epoch (labelled "test"); the others stay validation."""
    root = tmp_path / "runs"
    _grid(root, write_run, "simpnet", {"urfb": 0.02, "frfb": 0.1})
    for s in range(3):
        (root / f"simpnet-urfb-s{s}" / "test.json").write_text(json.dumps(
            {"best": {"epoch": 4, "error": 0.3 + 0.01 * s, "val_error": 0.5}, "epochs_done": 4,
             "last": {"epoch": 4, "error": 0.3 + 0.01 * s}}))
    # FRFB was scored at epoch 3 and trained on to 4: its score is not the drawn run's
    for s in range(3):
        (root / f"simpnet-frfb-s{s}" / "test.json").write_text(json.dumps(
            {"best": {"epoch": 3, "error": 0.2, "val_error": 0.5}, "epochs_done": 3,
             "last": {"epoch": 3, "error": 0.2}}))
    drawn: list = []
    save = figures.errors.save_figure
    monkeypatch.setattr(figures.errors, "save_figure",
                        lambda fig, stem: drawn.append(fig.axes[0]) or save(fig, stem))
    text = plot_figure5(root, tmp_path / "f5")[-1].read_text()
    assert ("simpnet, CIFAR-10: URFB drawn with the test error of each run's validation-chosen "
            "epoch (s0 ep 4, s1 ep 4, s2 ep 4)") in text and "FRFB drawn with the test" not in text
    ax = drawn[0]
    heights = sorted(round(b.get_height(), 6) for b in ax.patches)
    assert 0.31 in heights  # URFB: the mean test error, 0.30-0.32
    assert round(_val_error(4, 0.11), 6) in heights  # FRFB: the mean validation error
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"training", "test", "validation"}


def test_a_figure_from_one_seed_says_so(tmp_path: Path, write_run) -> None:
    root = tmp_path / "runs"
    _grid(root, write_run, "simpnet", {"bp": 0.0, "urfb": 0.02, "frfb": 0.1}, seeds=(3,))
    text = plot_figure4(root, tmp_path / "f4")[-1].read_text()
    assert "simpnet URFB, 10 classes, tied: seed 3 (one seed, drawn as itself)" in text
    assert "Built from one seed per curve" in text


def _depth_runs(root: Path, write_run) -> None:
    _grid(root, write_run, "simpnet", {"bp-h": 0.0, "urfb": 0.02, "frfb": 0.1})
    _grid(root, write_run, "deepernet", {"bp-h": 0.0, "urfb": 0.05, "frfb": 0.3},
          logged={("frfb", 1): 2})
    for p in ("urfb", "frfb"):  # Figure 11's protocol: tied pretraining, then untied retraining
        write_run(root, f"deepnet_s-{p}-pre", "deepnet_s", p, epochs=1)
        folder = write_run(root, f"deepnet_s-{p}-untied", "deepnet_s", p, untied=(1, 2, 3, 4, 5),
                           frozen=(0,))
        config = json.loads((folder / "config.json").read_text())
        config["from_run"] = f"elsewhere/deepnet_s-{p}-pre"
        (folder / "config.json").write_text(json.dumps(config))


def test_figure16_gap_to_bp_against_depth(tmp_path: Path, write_run) -> None:
    root = tmp_path / "runs"
    _depth_runs(root, write_run)
    found = settings(find_runs(root))
    # error-sending layers from the probe; the pretraining runs are no setting of their own
    assert found == [(("simpnet", False, ()), 2), (("deepnet_s", True, (0,)), 6),
                     (("deepernet", False, ()), 9)]
    stem = tmp_path / "out" / "figure16"
    text = assert_images(plot_figure16(root, stem), stem)
    # URFB - BP-H: seeds pair 0.02 + 0.01 s against 0.01 s
    assert ("simpnet: URFB - BP-H at epoch 4 (last epoch every pair reached), seeds [0, 1, 2]: "
            "s0 +0.020, s1 +0.020, s2 +0.020; mean +0.020") in text
    # FRFB's seed 1 stopped at epoch 2: the last epoch every pair reached is 2
    assert ("deepernet: FRFB - BP-H at epoch 2 (last epoch every pair reached), seeds [0, 1, 2]: "
            "s0 +0.300, s1 +0.300, s2 +0.300; mean +0.300") in text
    assert "deepnet_s untied: no BP-H run, so no gap" in text
    assert "deepnet_s-urfb-pre" not in text


def test_figure16_without_feedback_runs_is_missing(tmp_path: Path, write_run) -> None:
    write_run(tmp_path / "runs", "bp", "simpnet", "bp-h")
    with pytest.raises(MissingDataError, match="no CIFAR-10 URFB or FRFB run"):
        plot_figure16(tmp_path / "runs", tmp_path / "f16")


@pytest.mark.parametrize("number, plot, arch", [(17, plot_figure17, "simpnet"),
                                                (18, plot_figure18, "deepernet")])
def test_figures_17_18_angles_per_layer(tmp_path: Path, write_run, number, plot, arch) -> None:
    root = tmp_path / "runs"
    _grid(root, write_run, arch, {"bp-h": 0.0, "urfb": 0.02, "frfb": 0.1})
    stem = tmp_path / "out" / f"figure{number}"
    text = assert_images(plot(root, stem), stem)
    assert text.startswith(f"Figure {number}\n")
    assert f"{arch} URFB, 10 classes, tied: seeds 0, 1, 2" in text
    first = "conv 32 5x5" if arch == "simpnet" else "l0"
    assert f"layer 1 ({first}): no delta_angle" in text and "layer 2 (" not in text
    group = select_seeds(find_runs(root), arch=arch, protocol="urfb")
    name = "full 500" if arch == "simpnet" else "l5"
    steps = step_series(group, name, "delta_angle")
    assert steps[1] == pytest.approx({0: 90.0, 1: 89.9, 2: 89.8, 5: 89.5, 10: 89.0, 20: 88.0, 50: 85.0})
    # per epoch, with the probe before the first update as epoch 0
    assert epoch_series(group, name, "delta_angle")[2] == pytest.approx({0: 90.0, 1: 80.0, 2: 70.0,
                                                                         3: 60.0, 4: 50.0})
    assert step_series(group, first, "delta_angle")[0] == {}


def test_figures_17_18_need_the_probe(tmp_path: Path, write_run) -> None:
    write_run(tmp_path / "runs", "u", "simpnet", "urfb", probe=False)
    with pytest.raises(MissingDataError, match="with a logged alignment probe"):
        plot_figure17(tmp_path / "runs", tmp_path / "f17")


def test_curves_draw_bp_h_where_no_softmax_bp_was_run(tmp_path: Path, write_run) -> None:
    root = tmp_path / "runs"
    _grid(root, write_run, "deepernet", {"bp-h": 0.0, "urfb": 0.05})
    text = plot_figure7(root, tmp_path / "f7")[-1].read_text()
    assert "no deepernet BP (softmax) run: BP-H (hinge loss) is drawn as the BP curve" in text
    assert "deepernet BP-H, 10 classes, tied: seeds 0, 1, 2" in text
    assert "no deepernet run for FRFB" in text


def test_figure19_draws_norms_and_saturation_per_layer(tmp_path: Path, write_run,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "runs"
    _grid(root, write_run, "simpnet", {"bp-h": 0.0, "urfb": 0.02, "frfb": 0.1})
    drawn: list = []
    save = figures.growth.save_figure
    monkeypatch.setattr(figures.growth, "save_figure",
                        lambda fig, stem: drawn.append(fig) or save(fig, stem))
    stem = tmp_path / "out" / "figure19"
    text = assert_images(plot_figure19(root, stem), stem)
    assert text.startswith("Figure 19\n") and "simpnet URFB, 10 classes, tied: seeds 0, 1, 2" in text
    # conftest's norms: |W| = e + i + offset (URFB's seeds offset 0.02, 0.03, 0.04), |R| = 2e + i
    assert ("URFB, conv 32 5x5: |W| 1.03 [1.02, 1.03, 1.04] at epoch 1, 4.03 [4.02, 4.03, 4.04] "
            "at 4; |R| 2 [2, 2, 2] at epoch 1, 8 [8, 8, 8] at 4; saturated 0.05 [0.05, 0.05, 0.05] "
            "at epoch 1, 0.2 [0.2, 0.2, 0.2] at 4") in text
    # BP-H has no R; the output layer no saturation
    assert "BP-H, output: |W| 3.01 [3, 3.01, 3.02] at epoch 1, 6.01 [6, 6.01, 6.02] at 4\n" in text
    (fig,) = drawn
    top_left = {line.get_label(): line for line in fig.axes[0].lines}
    assert list(top_left["URFB |W|"].get_ydata()) == pytest.approx([1.03, 2.03, 3.03, 4.03])
    assert "BP-H |R|" not in top_left and list(top_left["FRFB |R|"].get_ydata()) == [2, 4, 6, 8]
    bottom_mid = {line.get_label(): line for line in fig.axes[4].lines}
    assert list(bottom_mid["FRFB"].get_ydata()) == pytest.approx([0.15, 0.2, 0.25, 0.3])
    free = fig.axes[5]  # the output layer's saturation panel: empty, holding the legend
    assert not free.axison and [t.get_text() for t in free.texts] == ["no saturation (output layer)"]
    assert [t.get_text() for t in free.get_legend().get_texts()][:2] == ["BP-H |W|", "URFB |W|"]


def test_figure19_says_which_seed_lacks_an_epoch_and_which_panel_lacks_saturation(
        tmp_path: Path, write_run) -> None:
    root = tmp_path / "runs"
    _grid(root, write_run, "simpnet", {"urfb": 0.0})
    for seed in (0, 1, 2):  # no seed logs the saturated share; seed 1 lacks epoch 1's norms
        log = root / f"simpnet-urfb-s{seed}" / "log.jsonl"
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        for row in rows:
            del row["saturated"]
        if seed == 1:
            del rows[0]["norm"]
        log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    drawn: list = []
    stem = tmp_path / "figure19"
    save = figures.growth.save_figure
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(figures.growth, "save_figure", lambda fig, st: drawn.append(fig) or save(fig, st))
        text = plot_figure19(root, stem)[-1].read_text()
    assert "URFB, conv 32 5x5: |W| 1.01 [1, -, 1.02] at epoch 1, 4.01 [4, 4.01, 4.02] at 4" in text
    (fig,) = drawn
    assert [t.get_text() for t in fig.axes[3].texts] == ["no saturated share logged"]
    assert [t.get_text() for t in fig.axes[5].texts] == ["no saturation (output layer)"]


def test_figure19_leaves_out_runs_without_norms(tmp_path: Path, write_run) -> None:
    write_run(tmp_path / "runs", "u", "simpnet", "urfb", probe=False)
    with pytest.raises(MissingDataError, match="records the weights' norms"):
        plot_figure19(tmp_path / "runs", tmp_path / "f19")
