"""Training with the output feedback of the simulated Appendix-1 circuit equals training with eq. (6).

The circuit reproduces eq. (6) for every logit inside its bound M (the thresholds +-1 included, see
``sims.circuits.verify``), so a run with ``output_feedback=circuit_output_feedback`` must match the
closed-form run step for step, bit for bit.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import torch

import deepnets.train as train_mod
import sims.circuits
from deepnets.nn.losses import hinge_output_feedback, make_loss
from deepnets.nn.network import FeedbackNet
from deepnets.training.checkpoint import load_checkpoint
from deepnets.training.engine import train_step
from deepnets.training.minidata import write_cifar10
from deepnets.training.rundir import read_log
from sims.circuits import circuit_output_feedback

ARCH = "conv 4 3x3; maxpool 3; full 16; output"
N_CLASSES = 5


def _run(feedback: object, x: torch.Tensor, y: torch.Tensor, n_steps: int = 12) -> tuple[list, FeedbackNet, int]:
    net = FeedbackNet(ARCH, in_shape=(3, 8, 8), n_classes=N_CLASSES, method="urfb", seed=3)
    loss_fn = make_loss("hinge", N_CLASSES, output_feedback=feedback)  # type: ignore[arg-type]
    results, switched_off = [], 0
    for step in range(n_steps):
        xb, yb = x[step % 4 * 16:(step % 4 + 1) * 16], y[step % 4 * 16:(step % 4 + 1) * 16]
        with torch.no_grad():
            switched_off += int((hinge_output_feedback(net(xb), yb, loss_fn.mu) == 0).sum())  # type: ignore[attr-defined]
        results.append(train_step(net, xb, yb, loss_fn, lr=2.0))  # large: logits pass +-1
    return results, net, switched_off


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(64, 3, 8, 8, generator=g), torch.randint(0, N_CLASSES, (64,), generator=g)


@pytest.fixture(scope="module")
def closed_run(data: tuple[torch.Tensor, torch.Tensor]) -> tuple[list, FeedbackNet, int]:
    return _run(None, *data)


def test_circuit_run_is_identical_to_closed_form_run(data: tuple[torch.Tensor, torch.Tensor],
                                                     closed_run: tuple[list, FeedbackNet, int]) -> None:
    closed, net_a, off = closed_run
    circuit, net_b, _ = _run(circuit_output_feedback, *data)
    assert off > 0  # the shutdown of (6) was exercised, not only the constant +1 / -mu
    assert closed == circuit
    for (name, a), b in zip(net_a.state_dict().items(), net_b.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_different_threshold_would_be_caught(data: tuple[torch.Tensor, torch.Tensor],
                                               closed_run: tuple[list, FeedbackNet, int]) -> None:
    """The comparison can fail: the circuit with learning threshold S = 0.5 trains differently."""
    closed, net_a, _ = closed_run
    shifted, net_b, _ = _run(functools.partial(circuit_output_feedback, S=0.5), *data)
    assert closed != shifted or any(not torch.equal(a, b) for a, b in
                                    zip(net_a.state_dict().values(), net_b.state_dict().values()))


def test_cli_output_feedback_circuit_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cifar").mkdir()
    write_cifar10(tmp_path / "cifar", n=8)
    calls = []

    def counted(*args: object, **kwargs: object) -> torch.Tensor:
        calls.append(1)
        return circuit_output_feedback(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sims.circuits, "circuit_output_feedback", counted)
    runs = {}
    for mode in ("closed-form", "circuit"):
        out = tmp_path / mode
        argv = ["--arch", "conv 4 3x3; maxpool 3; full 8; output", "--data", "cifar10", "--data-dir",
                str(tmp_path / "cifar"), "--val-size", "8", "--batch-size", "8", "--epochs", "1", "--out",
                str(out), "--quiet", "--device", "cpu", "--output-feedback", mode]
        assert train_mod.main(argv) == 0
        assert json.loads((out / "config.json").read_text())["output_feedback"] == mode
        assert bool(calls) == (mode == "circuit")  # the circuit really produced delta_L
        runs[mode] = out
    a, b = load_checkpoint(runs["closed-form"]), load_checkpoint(runs["circuit"])
    assert a is not None and b is not None
    for key in a["net"]:
        assert torch.equal(a["net"][key], b["net"][key]), key
    strip = [[{k: v for k, v in r.items() if "seconds" not in k} for r in read_log(p)] for p in runs.values()]
    assert strip[0] == strip[1]
