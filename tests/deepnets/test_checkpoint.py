"""Run folders: atomic checkpoints, config/log round trips, and load_network."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deepnets.checkpoint import (
    RunError,
    load_checkpoint,
    load_network,
    read_config,
    read_log,
    save_checkpoint,
    write_config,
    write_log,
)
from deepnets.network import FeedbackNet

ARCH = "conv 4 3x3; maxpool 3; full 8; output"


def test_load_network_rebuilds_the_trained_net(tmp_path: Path) -> None:
    net = FeedbackNet(
        ARCH, in_shape=(3, 8, 8), n_classes=3, method="urfb", connectivity=0.5, seed=4, frozen=[0]
    )
    with torch.no_grad():
        net.weight_layers[1].weight.mul_(
            3.0
        )  # "trained": differs from a fresh net of the same seed
    write_config(tmp_path, {"net": net.config, "epochs": 1})
    save_checkpoint(tmp_path, {"epoch": 1, "net": net.state_dict()})
    again = load_network(tmp_path)
    for (k, a), b in zip(net.state_dict().items(), again.state_dict().values()):
        assert a is None and b is None or torch.equal(a, b), k
    assert again.weight_layers[0].frozen and not again.weight_layers[1].frozen
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(net.eval()(x), again.eval()(x))


def test_checkpoint_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_checkpoint(tmp_path, {"epoch": 1})

    def crash(*a: object, **k: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, {"epoch": 2})
    assert load_checkpoint(tmp_path) == {"epoch": 1}  # the old checkpoint survives
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary file left


def test_config_and_log_round_trip_and_errors(tmp_path: Path) -> None:
    assert load_checkpoint(tmp_path) is None and read_log(tmp_path) == []
    with pytest.raises(RunError, match="config.json not found"):
        read_config(tmp_path)
    write_config(tmp_path, {"arch": "simpnet", "untie": [1, 2]})
    assert read_config(tmp_path) == {"arch": "simpnet", "untie": [1, 2]}
    records = [{"epoch": 1, "corr": [0.5, 1.0]}, {"epoch": 2, "corr": [0.6, 1.0]}]
    write_log(tmp_path, records)
    assert read_log(tmp_path) == records
    assert (tmp_path / "log.jsonl").read_text().count("\n") == 2
    (tmp_path / "log.jsonl").write_text('{"epoch": 1}\n{"epoch": 2, "corr"\n')
    with pytest.raises(RunError, match="corrupt .*log.jsonl"):
        read_log(tmp_path)
    write_log(tmp_path, records)
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(RunError, match="corrupt checkpoint .*checkpoint.pt"):
        load_checkpoint(tmp_path)
    (tmp_path / "checkpoint.pt").unlink()
    with pytest.raises(RunError, match="not finished an epoch"):
        load_network(tmp_path)
