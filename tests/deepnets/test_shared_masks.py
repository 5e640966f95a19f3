"""``shared_masks``: with connectivity < 1, R's mask is W's, against Section 4's masks drawn
separately for feedforward and feedback (the default)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from deepnets.experiments import grid as suite_grid
from deepnets.experiments import runs
from deepnets.nn.layers import LayerOptions
from deepnets.nn.losses import make_loss
from deepnets.nn.network import FeedbackNet, feedback_norms_by_weight_mask
from deepnets.suite import main as suite_main
from deepnets.train import main as train_main
from deepnets.training.config import ConfigError, TrainConfig
from deepnets.training.engine import train_step

DT = torch.float64
SHAPE = (3, 6, 6)
KINDS = {
    "dense": "full 7; full 6; output",
    "conv": "conv 3 3x3; conv 2 2x2; full 5; output",
    "untied": "untied 3 3x3; conv 2 3x3; output",
}


def _net(arch: str, shared: bool, method: str = "urfb") -> FeedbackNet:
    return FeedbackNet(arch, in_shape=SHAPE, n_classes=4, method=method, connectivity=0.5,
                       shared_masks=shared, seed=2).to(DT)


def _train(net: FeedbackNet, steps: int = 3) -> None:
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x = torch.rand(10, *SHAPE, generator=g, dtype=DT) * 2 - 1
        train_step(net, x, torch.randint(0, 4, (10,), generator=g), make_loss("hinge", 4), lr=0.2)


@pytest.mark.parametrize("kind", KINDS)
def test_r_takes_w_s_mask_and_keeps_its_drawn_values(kind: str) -> None:
    apart, shared = _net(KINDS[kind], False), _net(KINDS[kind], True)
    for a, s in zip(apart.weight_layers, shared.weight_layers, strict=True):
        torch.testing.assert_close(s.weight, a.weight, rtol=0, atol=0)  # W is drawn as before
        torch.testing.assert_close(s.mask_weight, a.mask_weight, rtol=0, atol=0)
        mw, mr_apart = a.mask_weight, a._as_weight_layout(a.mask_feedback)
        torch.testing.assert_close(s._as_weight_layout(s.mask_feedback), mw, rtol=0, atol=0)
        assert not torch.equal(mr_apart, mw)  # the default draws R's mask apart
        both = (mw * mr_apart).bool()  # entries both networks' R keep: the same values
        torch.testing.assert_close(s.feedback_as_weight()[both], a.feedback_as_weight()[both],
                                   rtol=0, atol=0)


@pytest.mark.parametrize("method", ["urfb", "frfb"])
def test_r_stays_zero_where_w_has_no_connection(method: str) -> None:
    """URFB's Hebbian increment reaches every R entry of its mask (Section 3.1); with W's mask
    none lies where W has no connection."""
    apart, shared = _net(KINDS["dense"], False, method), _net(KINDS["dense"], True, method)
    _train(apart)
    _train(shared)
    for (kept_a, lacking_a), (kept_s, lacking_s) in zip(
            feedback_norms_by_weight_mask(apart.weight_layers),
            feedback_norms_by_weight_mask(shared.weight_layers), strict=True):
        assert lacking_a > 0 and kept_a > 0
        assert lacking_s == 0 and kept_s > 0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="FeedbackNet: shared_masks must be True or False"):
        FeedbackNet("full 4; output", in_shape=SHAPE, n_classes=4, connectivity=0.5,
                    shared_masks="yes")
    with pytest.raises(ValueError, match=r"FeedbackNet: shared_masks .* needs connectivity < 1 "
                                         r"\(got 1\)"):
        FeedbackNet("full 4; output", in_shape=SHAPE, n_classes=4, shared_masks=True)
    with pytest.raises(ValueError, match="FeedbackNet: shared_masks: method 'bp' has no feedback "
                                         "matrix R"):
        FeedbackNet("full 4; output", in_shape=SHAPE, n_classes=4, method="bp",
                    connectivity=0.5, shared_masks=True)
    with pytest.raises(ValueError, match="shared_masks: symmetric_init gives R W's mask already"):
        FeedbackNet("full 4; output", in_shape=SHAPE, n_classes=4, connectivity=0.5,
                    symmetric_init=True, shared_masks=True)
    for value in ("no", 1, None):
        with pytest.raises(ValueError, match="^shared_masks must be True or False"):
            LayerOptions(connectivity=0.5, shared_masks=value)
    base = {"epochs": 1, "data_dir": "d", "shared_masks": True}
    with pytest.raises(ConfigError, match=r"^--shared-masks .* needs --connectivity < 1"):
        TrainConfig(**base)
    with pytest.raises(ConfigError, match="^--shared-masks: --arch resnet-mini is a converted"):
        TrainConfig(**base, connectivity=0.5, arch="resnet-mini")
    with pytest.raises(ConfigError, match="^--shared-masks: --method bp has no feedback matrix"):
        TrainConfig(**base, connectivity=0.5, method="bp")
    with pytest.raises(ConfigError, match="^--shared-masks: --method dfa has no feedback matrix"):
        TrainConfig(**base, connectivity=0.5, method="dfa")
    with pytest.raises(ConfigError, match="^--shared-masks: --symmetric-init gives R W's mask"):
        TrainConfig(**base, connectivity=0.5, symmetric_init=True)


def test_the_suite_passes_the_option_to_the_50_percent_runs_only(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = next(s for s in suite_grid.grid(4, 3, 1) if s.protocol == "urfb-50").with_seed(0)
    s = runs.Settings({"cifar10": Path("d")}, "imagefolder", 500, 0.1, 5000, None, "cpu", None,
                      True, shared_masks=True)
    made = runs.train_config(spec, tmp_path, s)
    assert made.shared_masks is True and made.connectivity == 0.5
    folder = tmp_path / spec.name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(made.to_json_dict()))
    assert runs.run_state(spec, tmp_path, s) == ("resume", 0)
    with pytest.raises(suite_grid.SuiteError, match="shared_masks=True \\(asked False\\) "
                       "\\(a run made with --shared-masks: pass it to continue it\\)"):
        runs.run_state(spec, tmp_path, runs.Settings(**{**vars(s), "shared_masks": False}))
    with pytest.raises(SystemExit) as exc:
        suite_main(["4", "--protocols", "urfb", "urfb-50", "--shared-masks", "--epochs", "1",
                    "--data-dir", "d", "--out", str(tmp_path / "grid"), "--dry-run"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "python -m deepnets.suite: error: argument --shared-masks: no masked R to share in urfb "
        "(select the 50% protocols: --protocols urfb-50 frfb-50)")


@pytest.mark.parametrize("source_shared", [False, True])
def test_from_copies_layers_only_between_runs_of_one_mask_setting(
        cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture, source_shared: bool) -> None:
    """``--from`` copies W, R and their masks: a run of the other setting would carry masks its
    config does not describe."""
    common = ["--arch", "conv 4 3x3; full 6; output", "--data", "cifar10", "--data-dir",
              str(cifar), "--val-size", "8", "--batch-size", "8", "--epochs", "1", "--quiet",
              "--device", "cpu", "--probe-size", "0", "--connectivity", "0.5"]
    source = tmp_path / "source"
    assert train_main([*common, "--out", str(source),
                       *(["--shared-masks"] if source_shared else [])]) == 0
    capsys.readouterr()
    other = [] if source_shared else ["--shared-masks"]
    assert train_main([*common, "--out", str(tmp_path / "copy"), "--from", str(source),
                       *other]) == 2
    err = capsys.readouterr().err
    had = "gave R W's mask" if source_shared else "drew R's mask apart"
    assert err.count("\n") == 1 and f"--from run {had}; give the same --shared-masks" in err, err
    assert not (tmp_path / "copy").exists()
