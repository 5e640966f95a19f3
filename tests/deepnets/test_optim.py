"""Issue 17 section 3: the rules under a torch optimizer (``train_step(..., optimizer=)``), the
CLI's ``--optimizer`` flags with an exact resume, and R as a parameter (old checkpoints load)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import deepnets.train as train_mod
from deepnets import FeedbackNet, convert, make_loss, train_step
from deepnets.nn.layers import feedback_layers
from deepnets.rules import RULES
from deepnets.training.checkpoint import load_checkpoint
from deepnets.training.config import TrainConfig

from .test_train import args, assert_same_state, kill_at_call

ARCH = "conv 3 3x3; maxpool 3 stride 2; untied 3 3x3; full 6; output"
IN, C = (2, 6, 6), 4


def _batch(i: int = 0, n: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(100 + i)
    return torch.rand(n, *IN, generator=gen), torch.randint(0, C, (n,), generator=gen)


def _net(method: str, connectivity: float = 1.0, **params: float | bool) -> FeedbackNet:
    net = FeedbackNet(ARCH, in_shape=IN, n_classes=C, method=method, connectivity=connectivity,
                      seed=3, **params)
    return net.double()


def _train(net: nn.Module, steps: int, optimizer: torch.optim.Optimizer | None = None,
           lr: float = 0.1) -> None:
    loss_fn = make_loss("hinge", C)
    torch.manual_seed(7)  # wm's mirror noise
    for i in range(steps):
        x, y = _batch(i)
        if optimizer is None:  # the order an optimizer takes (the default with one)
            train_step(net, x.double(), y, loss_fn, lr=lr, update_order="simultaneous")
        else:
            train_step(net, x.double(), y, loss_fn, optimizer=optimizer)


def _pairs(net: FeedbackNet) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(W, R^t) of each layer that keeps an R."""
    return [(layer.weight.detach().clone(), layer.feedback_as_weight().detach().clone())
            for layer in feedback_layers(net) if layer.feedback is not None]


@pytest.mark.parametrize("method", list(RULES))
def test_torch_sgd_is_the_plain_step_for_every_rule(method: str) -> None:
    """torch.optim.SGD(lr) with the rules' directions in .grad = the paper's step (masks on)."""
    plain, torched = _net(method, 0.5), _net(method, 0.5)
    _train(plain, 3)
    _train(torched, 3, torch.optim.SGD(torched.parameters(), lr=0.1))
    a, b = plain.state_dict(), torched.state_dict()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-12), key
    changed = [k for k in a if not torch.equal(a[k], _net(method, 0.5).state_dict()[k])]
    assert any(k.endswith("weight") for k in changed)


def test_urfb_invariant_under_momentum_and_broken_by_adam() -> None:
    eps = 0.5
    for make, keeps in ((lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
                         True), (lambda p: torch.optim.Adam(p, lr=0.01), False)):
        net = _net("urfb", epsilon=eps)
        start = [r - eps * w for w, r in _pairs(net)]
        _train(net, 5, make(net.parameters()))
        for (w, r), d0 in zip(_pairs(net), start):
            moved = (r - eps * w - d0).abs().max().item()
            assert (moved < 1e-12) if keeps else (moved > 1e-3), moved
        assert (_pairs(net)[0][0] - _pairs(_net("urfb"))[0][0]).abs().max() > 1e-3  # W learnt


def test_kp_is_urfb_with_torch_weight_decay_on_w_and_r() -> None:
    lam = 0.05
    for momentum in (0.0, 0.9):
        kp, urfb = _net("kp", decay=lam), _net("urfb", epsilon=1.0)
        assert all(torch.equal(a, b) for a, b in zip(kp.state_dict().values(),
                                                     urfb.state_dict().values()))
        decayed = [p for n, p in urfb.named_parameters() if not n.endswith("bias")]
        biases = [p for n, p in urfb.named_parameters() if n.endswith("bias")]
        opt = torch.optim.SGD([{"params": decayed, "weight_decay": lam}, {"params": biases}],
                              lr=0.1, momentum=momentum)
        if momentum:
            _train(kp, 4, torch.optim.SGD(kp.parameters(), lr=0.1, momentum=momentum))
        else:
            _train(kp, 4)  # kp's own plain step
        _train(urfb, 4, opt)
        for key, value in kp.state_dict().items():
            assert torch.allclose(value, urfb.state_dict()[key], atol=1e-12), key
    # and W - R^t shrinks by (1 - lr lambda) per plain step (not just equal to something)
    net = _net("kp", decay=lam)
    (w0, r0), *_ = _pairs(net)
    _train(net, 1)
    (w1, r1), *_ = _pairs(net)
    assert torch.allclose(w1 - r1, (1 - 0.1 * lam) * (w0 - r0), atol=1e-12)


@pytest.mark.parametrize("method", [m for m, r in RULES.items()
                                    if r.error_path == "R" and not r.feedback_by_gradient])
def test_rules_whose_r_does_not_learn_by_gradient(method: str) -> None:
    """Sign rules, wm and frfb: the optimizer never holds a state for R; R is what the rule
    makes of the new W (sign rules: sign(W) everywhere), after the momentum step."""
    net = _net(method, bias=True)  # with biases these 3 steps flip signs of every layer's W
    before = _pairs(net)
    opt = torch.optim.SGD(net.parameters(), lr=3.0, momentum=0.9, weight_decay=0.01)
    _train(net, 3, opt)  # steps large enough to flip signs of W
    fb = [layer.feedback for layer in feedback_layers(net)]
    assert all(p not in opt.state for p in fb) and all(layer.weight in opt.state
                                                       for layer in feedback_layers(net))
    for (w, r), (w0, r0) in zip(_pairs(net), before):
        assert not torch.equal(w, w0)
        if RULES[method].symmetric_init_applies and not RULES[method].learns_feedback:
            assert torch.equal(r, r0)  # frfb: fixed
        elif not RULES[method].symmetric_init_applies:
            assert (torch.sign(w) != torch.sign(w0)).any()
            assert torch.equal(torch.sign(r), torch.sign(w))  # sign rules: from the new W
        else:
            assert not torch.equal(r, r0)  # wm: the mirror phase moved R


class _ShiftEverything(torch.optim.Optimizer):
    """A toy optimizer that moves every entry of a parameter with a gradient, zero or not."""

    def __init__(self, params: object) -> None:
        super().__init__(params, {"lr": 0.01})

    @torch.no_grad()
    def step(self, closure: object = None) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.sub_(p.grad, alpha=group["lr"]).add_(group["lr"])


@pytest.mark.parametrize("method", ["urfb", "usf"])
def test_masks_and_frozen_layers_hold_under_any_optimizer(method: str) -> None:
    net = _net(method, connectivity=0.5)
    net.weight_layers[0].frozen = True
    frozen = {k: v.clone() for k, v in net.weight_layers[0].state_dict().items()}
    before = [layer.weight.detach().clone() for layer in feedback_layers(net)]
    _train(net, 2, _ShiftEverything(net.parameters()))
    assert all(torch.equal(v, frozen[k]) for k, v in net.weight_layers[0].state_dict().items())
    for layer, w0 in list(zip(feedback_layers(net), before))[1:]:
        assert not torch.equal(layer.weight, w0)
        assert (layer.weight[layer.mask_weight == 0] == 0).all()
        assert (layer.feedback[layer.mask_feedback == 0] == 0).all()


def test_refused_combinations_are_one_line_errors() -> None:
    net, loss_fn, (x, y) = _net("urfb"), make_loss("hinge", C), _batch()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    cases = [
        ({"optimizer": opt, "update_order": "sequential"}, "update_order='sequential'"),
        ({"optimizer": opt, "lr": 0.1}, "do not pass lr"),
        ({"optimizer": opt, "bias_lr_scale": 2.0}, "bias_lr_scale applies to plain SGD"),
        ({"optimizer": torch.optim.SGD([p for n, p in net.named_parameters()
                                        if "feedback" not in n], lr=0.1)},
         r"does not hold feedback layer 0's R \(feedback\)"),
        ({"optimizer": "adam"}, "must be a torch.optim.Optimizer"),
    ]
    state = copy.deepcopy(net.state_dict())
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message) as err:
            train_step(net, x.double(), y, loss_fn, **kwargs)
        assert "\n" not in str(err.value)
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())


def test_r_is_a_parameter_and_old_checkpoints_load(tmp_path: Path) -> None:
    """R was a buffer: the state-dict key ``feedback`` is unchanged, a saved plain tensor loads
    into the parameter, which stays a parameter autograd never differentiates."""
    net = FeedbackNet(ARCH, in_shape=IN, n_classes=C, method="urfb", seed=1)
    layer = feedback_layers(net)[0]
    assert isinstance(layer.feedback, nn.Parameter) and not layer.feedback.requires_grad
    assert any(p is layer.feedback for p in net.parameters())

    class OldLayer(nn.Module):  # how R was stored before: a buffer
        def __init__(self, r: torch.Tensor) -> None:
            super().__init__()
            self.register_buffer("feedback", r)

    old = OldLayer(torch.randn_like(layer.feedback))
    saved = net.state_dict()
    key = next(k for k in saved if k.endswith("feedback"))
    saved[key] = old.state_dict()["feedback"]  # an old checkpoint's entry: a buffer's tensor
    torch.save(saved, tmp_path / "old.pt")
    fresh = FeedbackNet(ARCH, in_shape=IN, n_classes=C, method="urfb", seed=2)
    fresh.load_state_dict(torch.load(tmp_path / "old.pt", weights_only=True))
    r = dict(fresh.named_parameters())[key]
    assert isinstance(r, nn.Parameter) and not r.requires_grad
    assert torch.equal(r, old.feedback)


def _resnet() -> nn.Module:
    class Block(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
            self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(x + self.bn2(self.conv2(out)))

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         Block(8), Block(8), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, C))


@pytest.mark.parametrize("method", ["urfb", "kp"])
def test_converted_resnet_trains_with_momentum_decay_and_a_step_schedule(method: str) -> None:
    net = convert(_resnet(), method=method, seed=1)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[10, 15], gamma=0.1)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 8, 8, generator=gen)
    y = torch.arange(16) % C
    x = x + 0.5 * y.view(-1, 1, 1, 1) / C  # a learnable synthetic task
    loss_fn = make_loss("softmax", C)
    losses = []
    for _ in range(20):
        losses.append(train_step(net, x, y, loss_fn, optimizer=opt).loss)
        schedule.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05 * 0.01)
    assert sum(losses[-3:]) / 3 < 0.7 * losses[0], losses
    bn = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(m.weight in opt.state for m in bn)  # BatchNorm's parameters stepped too


OPT_FLAGS = ["--optimizer", "momentum", "--momentum", "0.8", "--weight-decay", "1e-3",
             "--lr-steps", "2", "--lr-gamma", "0.5", "--update-order", "simultaneous"]


def test_cli_resume_with_momentum_and_schedule_is_exact(cifar: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert train_mod.main(args(cifar, whole, *OPT_FLAGS)) == 0
    config = json.loads((whole / "config.json").read_text())
    assert {k: config[k] for k in ("optimizer", "momentum", "weight_decay", "lr_steps",
                                   "lr_gamma")} == {"optimizer": "momentum", "momentum": 0.8,
                                                    "weight_decay": 1e-3, "lr_steps": [2],
                                                    "lr_gamma": 0.5}
    state = load_checkpoint(whole)
    assert state is not None and state["schedule"]["_last_lr"] == [pytest.approx(0.05)]
    assert state["optimizer"]["state"]  # momentum buffers saved
    with monkeypatch.context() as m:
        kill_at_call(m, 6)  # mid-epoch 2 (4 steps per epoch)
        assert train_mod.main(args(cifar, broken, *OPT_FLAGS)) == 130
    torch.manual_seed(12345)
    assert train_mod.main(args(cifar, broken, "--resume")) == 0
    assert_same_state(whole, broken)
    assert train_mod.main(args(cifar, broken, "--resume", *OPT_FLAGS)) == 0  # the same flags
    a, b = load_checkpoint(whole), load_checkpoint(broken)
    assert a is not None and b is not None
    for key, buf in a["optimizer"]["state"].items():
        assert torch.equal(buf["momentum_buffer"], b["optimizer"]["state"][key]["momentum_buffer"])


def test_cli_plain_defaults_and_converted_model(cifar: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "plain"
    assert train_mod.main(args(cifar, out, epochs=1)) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["optimizer"], config["momentum"], config["weight_decay"],
            config["lr_steps"]) == ("sgd", None, 0.0, [])
    state = load_checkpoint(out)
    assert state is not None and "optimizer" not in state  # plain SGD: no torch optimizer
    res = tmp_path / "resnet"  # BioTorch's recipe on the converted resnet-mini, scaled down
    assert train_mod.main(args(cifar, res, "--optimizer", "momentum", "--weight-decay", "1e-4",
                               "--lr", "0.05", "--lr-steps", "1", "--update-order",
                               "simultaneous", "--method", "kp", epochs=2,
                               arch="resnet-mini")) == 0
    state = load_checkpoint(res)
    assert state is not None and state["schedule"]["_last_lr"] == [pytest.approx(0.005)]
    assert len(state["optimizer"]["state"]) == len(state["optimizer"]["param_groups"][0]["params"])
    assert train_mod.main(args(cifar, tmp_path / "adam", "--optimizer", "adam", "--update-order",
                               "simultaneous", epochs=1)) == 0
    assert train_mod.main(args(cifar, tmp_path / "bad", "--momentum", "0.5")) == 2
    assert "--momentum 0.5: applies to --optimizer momentum only" in capsys.readouterr().err
    assert train_mod.main(args(cifar, tmp_path / "bad", "--optimizer", "adam",
                               "--update-order", "sequential")) == 2
    assert "need --update-order simultaneous" in capsys.readouterr().err


def test_suite_takes_the_optimizer_flags(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from deepnets import suite
    from deepnets.experiments import grid as suite_grid
    from deepnets.experiments import runs

    from .test_suite import settings

    spec = suite_grid.grid(4, 10, 1)[0]
    plain = runs.train_config(spec, tmp_path, settings())
    assert plain.plain_sgd and plain.update_order == TrainConfig.update_order
    cfg = runs.train_config(spec, tmp_path, settings(optimizer="momentum", weight_decay=1e-4,
                                                      lr_steps=(100, 150, 200)))
    assert (cfg.momentum, cfg.weight_decay, cfg.lr_steps, cfg.lr_gamma, cfg.update_order) == (
        0.9, 1e-4, (100, 150, 200), 0.1, "simultaneous")
    assert cfg.method == plain.method and cfg.lr == plain.lr
    assert suite.main(["10", "--dry-run", "--out", str(tmp_path), "--optimizer", "momentum",
                       "--lr-steps", "100", "150", "200"]) == 0
    assert suite.main(["10", "--dry-run", "--out", str(tmp_path), "--optimizer", "momentum",
                       "--momentum", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--momentum 2.0: must be in [0, 1)" in err, err
