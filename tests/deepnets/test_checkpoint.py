"""Run folders: atomic checkpoints, config/log round trips, and load_network."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from deepnets.nn.network import FeedbackNet
from deepnets.training.checkpoint import (
    load_checkpoint,
    load_network,
    load_state_checked,
    save_best,
    save_checkpoint,
)
from deepnets.training.rundir import RunError, read_config, read_log, write_config, write_log

ARCH = "conv 4 3x3; maxpool 3; full 8; output"


def test_load_network_rebuilds_the_trained_net(tmp_path: Path) -> None:
    net = FeedbackNet(
        ARCH, in_shape=(3, 8, 8), n_classes=3, method="urfb", connectivity=0.5, seed=4, frozen=[0]
    )
    with torch.no_grad():
        net.weight_layers[1].weight.mul_(3.0)  # "trained": differs from a fresh net of the same seed
    write_config(tmp_path, {"net": net.config, "epochs": 1})
    save_checkpoint(tmp_path, {"epoch": 1, "net": net.state_dict()})
    again = load_network(tmp_path)
    for (k, a), b in zip(net.state_dict().items(), again.state_dict().values()):
        assert a is None and b is None or torch.equal(a, b), k
    assert again.weight_layers[0].frozen and not again.weight_layers[1].frozen
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(net.eval()(x), again.eval()(x))


def test_checkpoint_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_checkpoint(tmp_path, {"epoch": 1, "net": {}})

    def crash(*a: object, **k: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, {"epoch": 2, "net": {}})
    assert load_checkpoint(tmp_path) == {"epoch": 1, "net": {}}  # the old checkpoint survives
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary file left


def test_config_and_log_round_trip_and_errors(tmp_path: Path) -> None:
    assert load_checkpoint(tmp_path) is None and read_log(tmp_path) == []
    with pytest.raises(RunError, match="config.json not found"):
        read_config(tmp_path)
    write_config(tmp_path, {"arch": "simpnet", "untied": [1, 2]})
    assert read_config(tmp_path) == {"arch": "simpnet", "untied": [1, 2]}
    write_config(tmp_path, {"arch": "simpnet", "untie": [1, 2], "freeze": [0]})  # schema <= 2
    assert read_config(tmp_path) == {"arch": "simpnet", "untied": [1, 2], "frozen": [0]}
    records = [{"epoch": 1, "corr": [0.5, 1.0]}, {"epoch": 2, "corr": [0.6, 1.0]}]
    write_log(tmp_path, records)
    assert read_log(tmp_path) == records
    assert (tmp_path / "log.jsonl").read_text().count("\n") == 2
    (tmp_path / "log.jsonl").write_text('{"epoch": 1}\n\n{"epoch": 2, "corr"\n')
    with pytest.raises(RunError, match="corrupt .*log.jsonl: line 3 column 20: Expecting ':'"):
        read_log(tmp_path)  # the file's line, not the parser's line 1 of that line
    (tmp_path / "log.jsonl").write_text('{"epoch": 1}\n[2]\n')
    with pytest.raises(RunError, match="line 2 is not a JSON object"):
        read_log(tmp_path)
    write_log(tmp_path, records)
    for garbage in (b"garbage", b"hello\n", b""):
        (tmp_path / "checkpoint.pt").write_bytes(garbage)
        with pytest.raises(RunError, match=r"corrupt checkpoint .*checkpoint.pt: not a "
                                           r"deepnets.train checkpoint \(\w+: .+\)$"):
            load_checkpoint(tmp_path)
    (tmp_path / "checkpoint.pt").unlink()
    with pytest.raises(RunError, match="checkpoint.pt not found: its log has 2 epochs, so the "
                                       "file was removed or stayed on the machine"):
        load_network(tmp_path)
    with pytest.raises(RunError, match="best.pt not found: its log has 2 epochs.*; nor is "
                                       "checkpoint.pt there$"):
        load_network(tmp_path, which="best")
    (tmp_path / "log.jsonl").write_text("")
    with pytest.raises(RunError, match="checkpoint.pt not found: the run has not finished an "
                                       "epoch$"):
        load_network(tmp_path)


def test_a_different_network_names_the_differing_shapes(tmp_path: Path) -> None:
    net = FeedbackNet(ARCH, in_shape=(3, 8, 8), n_classes=3, method="urfb")
    other = FeedbackNet("conv 6 3x3; maxpool 3; full 8; output", in_shape=(3, 8, 8), n_classes=3,
                        method="urfb")
    with pytest.raises(RunError) as info:
        load_state_checked(net, other.state_dict(), "where.pt")
    message = str(info.value)
    assert message.startswith("where.pt holds a different network: ") and "\n" not in message
    assert "layers.0.weight (6, 3, 3, 3) here (4, 3, 3, 3)" in message
    assert "layers.3.weight (8, 96) here (8, 64)" in message
    bp = FeedbackNet(ARCH, in_shape=(3, 8, 8), n_classes=3, method="bp")
    with pytest.raises(RunError, match="missing layers.0.feedback"):
        load_state_checked(net, bp.state_dict(), "bp.pt")
    with pytest.raises(RunError, match="unexpected layers.0.feedback"):
        load_state_checked(bp, net.state_dict(), "urfb.pt")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # untouched


@pytest.mark.parametrize("net_value", [None, 5, {"arch": 5}, {"arch": "simpnet", "bogus": 1},
                                       {"arch": "simpnet", "untied": [9]}])
def test_a_bad_net_description_is_a_run_error(tmp_path: Path, net_value: object) -> None:
    write_config(tmp_path, {"net": net_value})
    save_checkpoint(tmp_path, {"epoch": 1, "net": {}})
    with pytest.raises(RunError, match="config.json: (no 'net'|bad 'net')"):
        load_network(tmp_path)


def test_a_checkpoint_that_is_not_ours_is_refused(tmp_path: Path) -> None:
    torch.save([1, 2, 3], tmp_path / "checkpoint.pt")
    with pytest.raises(RunError, match="not a deepnets.train checkpoint"):
        load_checkpoint(tmp_path)


def _save_best_state(run_dir: Path, state: dict[str, Any]) -> None:
    save_best(run_dir, state["epoch"], 0.5, state)


@pytest.mark.parametrize("at_write", [1, 2, 3])
@pytest.mark.parametrize("save, name", [(save_checkpoint, "checkpoint.pt"),
                                        (_save_best_state, "best.pt")])
def test_an_interrupt_mid_checkpoint_write_is_an_interrupt_and_keeps_the_old_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at_write: int,
        save: Callable[[Path, dict[str, Any]], None], name: str) -> None:
    """Ctrl-C or SIGTERM (raised as KeyboardInterrupt) inside torch.save used to surface as
    torch's RuntimeError "unexpected pos", which the trainer does not catch (a traceback): in
    checkpoint.pt's writer first, then (seen on an H200) in best.pt's."""
    import contextlib

    import deepnets.training.checkpoint as checkpoint_module

    save(tmp_path, {"epoch": 1})
    old = (tmp_path / name).read_bytes()
    real = checkpoint_module.atomic_file

    @contextlib.contextmanager
    def interrupted(dest: Path):  # type: ignore[no-untyped-def]
        with real(dest) as fh:
            calls = {"n": 0}

            class Writer:
                def write(self, data: bytes) -> int:
                    calls["n"] += 1
                    if calls["n"] == at_write:
                        raise KeyboardInterrupt
                    return fh.write(data)

                def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
                    return getattr(fh, name)

            yield Writer()

    monkeypatch.setattr(checkpoint_module, "atomic_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save(tmp_path, {"epoch": 2, "w": torch.zeros(1000)})
    assert (tmp_path / name).read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
