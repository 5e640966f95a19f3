"""The alignment probe (deepnets.alignment): angles between the error a rule sends and exact BP's,
checked against hand computations; the probe reads and never writes; the trainer logs it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from deepnets.nn.alignment import KEYS, alignment
from deepnets.nn.convert import convert
from deepnets.nn.losses import make_loss
from deepnets.nn.network import FeedbackNet
from deepnets.training.config import TrainConfig
from deepnets.training.engine import train_step
from deepnets.training.rundir import read_config, read_log
from deepnets.training.trainer import run

DT = torch.float64
SHAPE = (3, 8, 8)
ARCHS = {
    "dense": "full 12; full 9; output",
    "conv_pool_drop": "conv 4 3x3; maxpool 3; drop .5; conv 5 2x2; maxpool 2; full 10; drop .3; output",
    "untied_sums": "conv 4 3x3; conv 4 3x3; sum; maxpool 2; untied 3 3x3; untied 3 3x3; sum; output",
}
EXACT = 1e-3  # degrees: "0 up to rounding"


def _batch(seed: int = 0, n: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *SHAPE, generator=g), torch.randint(0, 4, (n,), generator=g)


def _angle(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.reshape(-1).double(), b.reshape(-1).double()
    cos = float(a @ b) / (float(a.norm()) * float(b.norm()))
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


@pytest.mark.parametrize("arch", sorted(ARCHS))
@pytest.mark.parametrize("kw", [{"method": "bp"},
                                {"method": "urfb", "epsilon": 1.0, "symmetric_init": True}],
                         ids=["bp", "urfb symmetric eps 1"])
def test_exact_rules_have_zero_angles(arch: str, kw: dict) -> None:
    net = FeedbackNet(ARCHS[arch], in_shape=SHAPE, n_classes=4, **kw)
    loss_fn = make_loss("hinge", 4)
    for step in range(3):  # R stays W^t while it learns (eps = 1)
        torch.manual_seed(step)
        train_step(net, *_batch(step), loss_fn, lr=0.1)
    probe = alignment(net, *_batch(9), loss_fn)
    assert list(probe) == net.weight_layer_names
    first = probe[net.weight_layer_names[0]]
    assert first["delta_angle"] is None  # the image receives no error
    assert first["local_delta_angle"] is None  # no weight layer below
    for name, m in probe.items():
        assert set(m) == set(KEYS)
        if m["delta_angle"] is not None:
            assert m["delta_angle"] < EXACT, name
            assert m["local_delta_angle"] is not None and m["local_delta_angle"] < EXACT, name
        assert m["update_angle"] < EXACT and m["weight_angle"] < EXACT, name
        assert m["norm_ratio"] == pytest.approx(1.0, abs=1e-6), name


def test_two_layer_frfb_angles_by_hand() -> None:
    net = FeedbackNet("full 6; output", in_shape=(3, 2, 2), n_classes=4, method="frfb",
                      seed=1, bias=True).to(DT)
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(5, 3, 2, 2, generator=g, dtype=DT), torch.tensor([0, 1, 2, 3, 1])
    hidden, output = net.weight_layers
    w1, b1 = hidden.weight.detach(), hidden.bias.detach()
    w2, b2, r2 = output.weight.detach(), output.bias.detach(), output.feedback  # R: (in, out)
    # plain torch: forward, the output error delta_2 of cross-entropy, and both routes down
    x0 = x.reshape(5, -1)
    h1 = x0 @ w1.t() + b1
    x1 = (0.5 * h1).clamp(-1, 1)
    logits = (x1 @ w2.t() + b2).requires_grad_()
    (delta2,) = torch.autograd.grad(F.cross_entropy(logits, y), logits)
    sent_by_r, sent_by_wt = delta2 @ r2.t(), delta2 @ w2  # R delta vs W^t delta, per image
    sigma_prime = 0.5 * ((0.5 * h1).abs() < 1).to(DT)
    dw1_r, dw1_bp = (sigma_prime * sent_by_r).t() @ x0, (sigma_prime * sent_by_wt).t() @ x0

    probe = alignment(net, x, y, make_loss("softmax", 4))
    assert probe["output"]["delta_angle"] == pytest.approx(_angle(sent_by_r, sent_by_wt), abs=1e-9)
    assert probe["output"]["delta_angle"] > 20  # a random R: far from W^t
    assert probe["output"]["update_angle"] == pytest.approx(0.0, abs=EXACT)  # same delta_2
    assert probe["output"]["weight_angle"] == pytest.approx(_angle(w2, r2.t()), abs=1e-9)
    assert probe["output"]["norm_ratio"] == pytest.approx(float(r2.norm() / w2.norm()), rel=1e-12)
    assert probe["full0"]["delta_angle"] is None
    assert probe["full0"]["update_angle"] == pytest.approx(_angle(dw1_r, dw1_bp), abs=1e-9)
    assert probe["full0"]["update_angle"] > 1


def test_three_layer_frfb_local_and_global_angles_by_hand() -> None:
    """local_delta_angle (Akrout et al.): the delta of the layer below, after sigma', from the
    rule's own upstream delta sent through R against through W^t; delta_angle (Lillicrap et
    al.): the error sent into the input against exact BP's, computed through W^t all the way."""
    net = FeedbackNet("full 6; full 5; output", in_shape=(3, 2, 2), n_classes=4, method="frfb",
                      seed=2).to(DT)
    g = torch.Generator().manual_seed(4)
    x, y = torch.rand(7, 3, 2, 2, generator=g, dtype=DT), torch.tensor([0, 1, 2, 3, 1, 0, 2])
    (w1, w2, w3), (r2, r3) = ([m.weight.detach() for m in net.weight_layers],
                              [m.feedback for m in net.weight_layers[1:]])  # R: (in, out)
    x0 = x.reshape(7, -1)
    h1 = x0 @ w1.t()
    x1 = (0.5 * h1).clamp(-1, 1)
    h2 = x1 @ w2.t()
    x2 = (0.5 * h2).clamp(-1, 1)
    logits = (x2 @ w3.t()).requires_grad_()
    (d3,) = torch.autograd.grad(F.cross_entropy(logits, y), logits)
    sp1, sp2 = (0.5 * ((0.5 * h).abs() < 1).to(DT) for h in (h1, h2))
    d2_rule, d2_bp = sp2 * (d3 @ r3.t()), sp2 * (d3 @ w3)
    d1_rule = sp1 * (d2_rule @ r2.t())
    probe = alignment(net, x, y, make_loss("softmax", 4))
    out, mid = probe["output"], probe["full1"]
    assert out["local_delta_angle"] == pytest.approx(_angle(d2_rule, d2_bp), abs=1e-9)
    assert mid["local_delta_angle"] == pytest.approx(_angle(d1_rule, sp1 * (d2_rule @ w2)), abs=1e-9)
    assert mid["delta_angle"] == pytest.approx(_angle(d2_rule @ r2.t(), d2_bp @ w2), abs=1e-9)
    assert abs(mid["delta_angle"] - mid["local_delta_angle"]) > 1  # two different measures
    assert probe["full0"]["local_delta_angle"] is None


@pytest.mark.parametrize("training", [True, False])
def test_the_probe_changes_nothing(training: bool) -> None:
    net = FeedbackNet(ARCHS["conv_pool_drop"], in_shape=SHAPE, n_classes=4, method="urfb",
                      connectivity=0.5)
    loss_fn = make_loss("hinge", 4)
    train_step(net, *_batch(1), loss_fn)
    net.train(training)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    torch.manual_seed(42)
    rng = torch.get_rng_state()
    first = alignment(net, *_batch(2), loss_fn)
    assert torch.equal(torch.get_rng_state(), rng)
    assert state.keys() == net.state_dict().keys()
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert net.training is training
    assert all(p.grad is None for p in net.parameters())
    assert alignment(net, *_batch(2), loss_fn) == first  # the same dropout mask again
    # and the next dropout draw is the one it would have been without the probe
    torch.set_rng_state(rng)
    expected = torch.rand(3)
    torch.set_rng_state(rng)
    alignment(net, *_batch(2), loss_fn)
    assert torch.equal(torch.rand(3), expected)


def test_the_probe_leaves_a_converted_models_batchnorm_state() -> None:
    """Integer buffers too (BatchNorm's num_batches_tracked), on a model from convert()."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4),
                                torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 4))
    net = convert(model, method="urfb")
    state = {k: v.clone() for k, v in net.state_dict().items()}
    alignment(net, *_batch(2), make_loss("hinge", 4))
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_a_model_without_feedback_layers_is_refused() -> None:
    with pytest.raises(ValueError, match="no feedback layers"):
        alignment(torch.nn.Linear(3, 2), torch.rand(2, 3), torch.tensor([0, 1]),
                  make_loss("softmax", 2))


ARCH = "conv 4 3x3; maxpool 3; drop .5; full 16; output"


def _train(cifar: Path, out: Path, **kw) -> list[dict]:
    cfg = TrainConfig(**{"epochs": 2, "data_dir": str(cifar), "arch": ARCH, "val_size": 8,
                         "batch_size": 8, "device": "cpu", "probe_size": 6, **kw})
    run(cfg, out, quiet=True)
    return read_log(out)


def test_log_records_carry_the_probe(cifar: Path, tmp_path: Path) -> None:
    log = _train(cifar, tmp_path / "frfb", method="frfb")
    names = read_config(tmp_path / "frfb")["weight_layer_names"]
    for record in log:
        assert list(record["alignment"]) == names
        assert record["alignment"][names[0]]["delta_angle"] is None
        assert all(set(m) == set(KEYS) for m in record["alignment"].values())
        assert record["alignment"]["output"]["weight_angle"] > 45  # random R
    steps = log[0]["alignment_steps"]
    assert [s["step"] for s in steps] == [0, 1, 2]  # 4 updates in epoch 1: 0, 1, 2 probed
    assert all(list(s["alignment"]) == names for s in steps)
    assert "alignment_steps" not in log[1]
    # step 0 is the network before its first update
    fresh = FeedbackNet(ARCH, in_shape=(3, 32, 32), n_classes=10, method="frfb", seed=0)
    for name, layer in zip(names, fresh.weight_layers):
        before = _angle(layer.weight.detach(), layer.feedback_as_weight())
        assert steps[0]["alignment"][name]["weight_angle"] == pytest.approx(before, abs=1e-5)
        assert steps[2]["alignment"][name]["weight_angle"] != pytest.approx(before, abs=1e-5)


def test_a_bp_run_logs_zero_angles_and_probe_size_0_logs_none(cifar: Path, tmp_path: Path) -> None:
    log = _train(cifar, tmp_path / "bp", method="bp", loss="softmax")
    for record in log:
        for m in record["alignment"].values():
            assert all(m[k] is None or m[k] < EXACT for k in KEYS[:3])
            assert m["norm_ratio"] == pytest.approx(1.0)
    log = _train(cifar, tmp_path / "none", method="urfb", probe_size=0)
    assert all("alignment" not in r and "alignment_steps" not in r for r in log)
