"""Figure 8's measure (deepnets.nn.homogeneity) and the trainer's per-epoch record of it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepnets.nn.homogeneity import (
    chance_similarity,
    location_filters,
    similarity,
    untied_homogeneity,
)
from deepnets.training.minidata import tiny_cifar_folder


def test_similarity_measures_homogeneity_across_locations() -> None:
    rng = np.random.default_rng(0)
    same = np.broadcast_to(rng.normal(size=(1, 1, 4, 3, 5, 5)), (12, 12, 4, 3, 5, 5))
    assert similarity(same) == pytest.approx(1.0)
    assert similarity(same, [(2, 2), (9, 9)]) == pytest.approx(1.0)
    noise = rng.normal(size=(12, 12, 4, 3, 5, 5))
    assert abs(similarity(noise)) < 0.05 and abs(chance_similarity(noise)) < 0.1
    assert similarity(same + 0.5 * noise) > 0.6


def _train(data: Path, out: Path, *extra: str) -> list[dict]:
    from deepnets.train import main as train_main

    assert train_main(["--arch", "simpnet", "--method", "urfb", "--data", "imagefolder",
                       "--data-dir", str(data), "--val-size", "10", "--batch-size", "10",
                       "--epochs", "2", "--device", "cpu", "--out", str(out), "--quiet",
                       *extra]) == 0
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_the_log_records_each_untied_layers_homogeneity(tmp_path: Path) -> None:
    """Every epoch's record holds the untied layer's homogeneity after that epoch, epoch 1's
    also the start's: a replicated start is 1 there and stays near it; an independent start
    is near 0; a tied network records none."""
    from deepnets.training.checkpoint import load_network

    data = tiny_cifar_folder(tmp_path / "data")
    log = _train(data, tmp_path / "replicated", "--untied", "0")
    assert [list(r["homogeneity"]) for r in log] == [["untied0"], ["untied0"]]
    assert "homogeneity_start" in log[0] and "homogeneity_start" not in log[1]
    assert log[0]["homogeneity_start"]["untied0"]["across_locations"] == pytest.approx(1.0)
    trained = log[-1]["homogeneity"]["untied0"]
    assert 0.9 < trained["across_locations"] < 1.0 and abs(trained["chance"]) < 0.2
    net = load_network(tmp_path / "replicated")  # the last epoch's weights, measured again
    assert untied_homogeneity(net)["untied0"] == pytest.approx(trained)
    assert trained["across_locations"] == pytest.approx(
        similarity(location_filters(net.weight_layers[0])))

    log = _train(data, tmp_path / "independent", "--untied", "0", "--untied-init", "independent")
    assert abs(log[0]["homogeneity_start"]["untied0"]["across_locations"]) < 0.05

    log = _train(data, tmp_path / "tied")
    assert not any(k.startswith("homogeneity") for r in log for k in r)


def test_a_resumed_run_keeps_the_start_in_epoch_1_only(tmp_path: Path) -> None:
    """Stopped after epoch 1 and resumed: epoch 2's record has the homogeneity after it, not a
    second start; the log is the uninterrupted run's."""
    data = tiny_cifar_folder(tmp_path / "data")
    whole = _train(data, tmp_path / "whole", "--untied", "0")
    from deepnets.train import main as train_main

    first = _train(data, tmp_path / "parts", "--untied", "0", "--epochs", "1")
    assert len(first) == 1 and "homogeneity_start" in first[0]
    assert train_main(["--resume", "--out", str(tmp_path / "parts"), "--epochs", "2",
                       "--quiet"]) == 0
    parts = [json.loads(x) for x in (tmp_path / "parts" / "log.jsonl").read_text().splitlines()]
    assert "homogeneity_start" not in parts[1]
    for key in ("homogeneity", "homogeneity_start"):
        assert [r.get(key) for r in parts] == [r.get(key) for r in whole]


def test_a_layer_without_pairs_is_left_out() -> None:
    """An untied layer whose grid has one interior location (or one channel) has no pair to
    correlate: no NaN in the log, the layer is left out."""
    from deepnets.nn.network import FeedbackNet

    tiny = FeedbackNet("untied 4 5x5; output", in_shape=(3, 5, 5), n_classes=3)
    assert untied_homogeneity(tiny) == {}
    one_channel = FeedbackNet("untied 1 3x3; output", in_shape=(3, 8, 8), n_classes=3)
    assert untied_homogeneity(one_channel) == {}
    two = FeedbackNet("untied 2 3x3; output", in_shape=(3, 8, 8), n_classes=3)
    assert list(untied_homogeneity(two)) == ["untied0"]
