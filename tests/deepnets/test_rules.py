"""The feedback rules of deepnets.rules, each tested on its defining property, on dense, conv
and untied layers, with connectivity masks and in both update orders:
FA keeps R fixed; URFB: Delta R = eps Delta W^t; KP: W - R^t shrinks by (1 - lr lambda) per step;
sign symmetry: R's signs are W^t's after every step; DFA: a hidden layer's delta is
(B_l e) * sigma'(h). Plus parameters, the CLI, protocols, the probe and checkpoints."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from deepnets import FeedbackNet, alignment, make_loss, train_step
from deepnets.experiments.protocols import PROTOCOLS, protocol_of
from deepnets.nn.layers import FeedbackRule, LayerOptions
from deepnets.rules import METHODS, RULES
from deepnets.rules._sign import SignConcordant
from deepnets.training.config import OWN_FLAG_PARAMS, ConfigError, TrainConfig
from deepnets.training.engine import untie
from deepnets.training.runconfig import parse_run

IN, C, N = (2, 6, 6), 4, 8
ARCHS = {
    "dense": "full 12; full 7; output",
    "conv": "conv 4 3x3; maxpool 3 stride 2; full 8; output",
    "untied": "untied 3 3x3; full 6; output",
}
ORDERS = ("simultaneous", "sequential")


def _net(kind: str, method: str, connectivity: float = 0.5, **params: float) -> FeedbackNet:
    return FeedbackNet(ARCHS[kind], in_shape=IN, n_classes=C, method=method,
                       connectivity=connectivity, seed=3, **params)


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(N, *IN, generator=gen), torch.randint(0, C, (N,), generator=gen)


def _steps(net: FeedbackNet, k: int, order: str, loss: str = "hinge", lr: float = 0.1):
    """k SGD steps; yields the (W, R^t) of every layer after each step (clones)."""
    fn = make_loss(loss, C)
    for i in range(k):
        train_step(net, *_batch(i), fn, lr=lr, update_order=order)
        yield [(m.weight.detach().clone(), m.feedback_as_weight().detach().clone())
               for m in net.weight_layers]


def _both_masks(layer) -> torch.Tensor:
    m = torch.ones_like(layer.weight, dtype=torch.bool)
    if layer.mask_weight is not None:
        m &= layer.mask_weight.bool()
    if layer.mask_feedback is not None:
        m &= layer._as_weight_layout(layer.mask_feedback).bool()
    return m


@pytest.mark.parametrize("kind", ARCHS)
@pytest.mark.parametrize("order", ORDERS)
def test_fa_keeps_R_fixed(kind: str, order: str) -> None:
    net = _net(kind, "frfb")
    before = [m.feedback.clone() for m in net.weight_layers]
    w0 = [m.weight.detach().clone() for m in net.weight_layers]
    list(_steps(net, 2, order))
    assert all(torch.equal(m.feedback, r) for m, r in zip(net.weight_layers, before))
    assert not all(torch.equal(m.weight, w) for m, w in zip(net.weight_layers, w0))


@pytest.mark.parametrize("kind", ARCHS)
@pytest.mark.parametrize("order", ORDERS)
def test_urfb_increment_of_R_is_eps_times_that_of_W(kind: str, order: str) -> None:
    net = _net(kind, "urfb", epsilon=0.5)
    prev = [(m.weight.detach().clone(), m.feedback_as_weight().clone()) for m in net.weight_layers]
    for now in _steps(net, 2, order):
        for layer, (w0, r0), (w1, r1) in zip(net.weight_layers, prev, now):
            both = _both_masks(layer)
            assert torch.allclose((r1 - r0)[both], 0.5 * (w1 - w0)[both], atol=1e-7)
            assert (w1 - w0).abs().max() > 0
        prev = now


@pytest.mark.parametrize("kind", ARCHS)
@pytest.mark.parametrize("order", ORDERS)
def test_kp_difference_of_W_and_R_decays_by_one_minus_lr_lambda(kind: str, order: str) -> None:
    lr, lam = 0.1, 0.5
    net = _net(kind, "kp", decay=lam)
    prev = [m.weight.detach() - m.feedback_as_weight() for m in net.weight_layers]
    for now in _steps(net, 3, order, lr=lr):
        for layer, d0, (w, r) in zip(net.weight_layers, prev, now):
            both = _both_masks(layer)
            d1 = w - r
            assert torch.allclose(d1[both], (1 - lr * lam) * d0[both], rtol=1e-5, atol=1e-7)
        prev = [w - r for w, r in now]


def test_kp_without_decay_is_urfb_with_epsilon_one() -> None:
    kp, urfb = _net("conv", "kp", decay=0.0), _net("conv", "urfb")
    for a, b in zip(_steps(kp, 2, "simultaneous"), _steps(urfb, 2, "simultaneous")):
        assert all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b))


SIGN_RULES = tuple(name for name, rule in RULES.items() if issubclass(rule, SignConcordant))


def _sign_steps(method: str, kind: str, order: str):
    """3 steps of a sign rule; yields (layer, W, R^t, |R^t| before the step, R's live entries)
    per layer and step, having checked the signs: sign(R) = sign(W^t) on R's unmasked entries,
    0 on its masked ones."""
    net = _net(kind, method)
    mags = [m.feedback_as_weight().abs().clone() for m in net.weight_layers]
    for now in _steps(net, 3, order):
        for layer, (w, r), mag0 in zip(net.weight_layers, now, mags):
            keep = torch.ones_like(w, dtype=torch.bool)
            if layer.mask_feedback is not None:
                keep = layer._as_weight_layout(layer.mask_feedback).bool()
                assert torch.all(r[~keep] == 0)
            assert torch.equal(torch.sign(r)[keep], torch.sign(w)[keep])
            yield layer, w, r, mag0, keep & (w != 0)
        mags = [r.abs() for _, r in now]


@pytest.mark.parametrize("method", SIGN_RULES)
@pytest.mark.parametrize("kind", ARCHS)
@pytest.mark.parametrize("order", ORDERS)
def test_sign_rules_keep_the_signs_of_W_after_every_step(method: str, kind: str, order: str) -> None:
    assert len(list(_sign_steps(method, kind, order))) == 3 * 3


@pytest.mark.parametrize("kind", ARCHS)
def test_usf_magnitude_is_scale_times_the_glorot_std(kind: str) -> None:
    for layer, w, r, _, live in _sign_steps("usf", kind, "sequential"):
        std = math.sqrt(2.0) * layer.glorot_bound / math.sqrt(6.0)
        assert torch.allclose(r[live].abs(), torch.full_like(r[live], std))


@pytest.mark.parametrize("kind", ARCHS)
def test_frsf_keeps_its_magnitudes_and_brsf_redraws_them(kind: str) -> None:
    for _, _, r, mag0, live in _sign_steps("frsf", kind, "simultaneous"):
        assert torch.equal(r[live].abs(), mag0[live])
    assert any(not torch.equal(r[live].abs(), mag0[live])
               for _, _, r, mag0, live in _sign_steps("brsf", kind, "simultaneous"))


def _sigma_prime(layer, x: torch.Tensor) -> torch.Tensor:
    h = layer.linear_op(x, layer.weight.detach(), layer.bias.detach()) * layer.sat_scale
    return (h.abs() < 1).to(x.dtype) * layer.sat_scale


@pytest.mark.parametrize("kind", ARCHS)
@pytest.mark.parametrize("loss", ["hinge", "softmax"])
def test_dfa_hidden_delta_is_B_e_times_sigma_prime(kind: str, loss: str) -> None:
    net = _net(kind, "dfa", bias=True)
    inputs: dict[int, torch.Tensor] = {}
    hooks = [m.register_forward_pre_hook(lambda mod, a: inputs.__setitem__(id(mod), a[0].detach()))
             for m in net.weight_layers]
    x, y = _batch()
    fn = make_loss(loss, C)
    logits = net(x)
    for h in hooks:
        h.remove()
    out = logits.detach().requires_grad_()
    (e,) = torch.autograd.grad(fn(out, y), out)  # the output layer's error
    fn(logits, y).backward()
    *hidden, output = net.weight_layers
    for layer in hidden:
        xi = inputs[id(layer)]
        sp = _sigma_prime(layer, xi)
        b = layer.direct_matrix(e, tuple(sp.shape[1:]))
        delta = (e @ b).view_as(sp) * sp
        _, gw, gb = layer.linear_grads(xi, delta, False, True, True)
        assert torch.allclose(layer.weight.grad, gw, atol=1e-6)
        assert torch.allclose(layer.bias.grad, gb, atol=1e-6)
        assert b.shape == (C, math.prod(sp.shape[1:]))  # shaped like the layer's output
    _, gw, _ = output.linear_grads(inputs[id(output)], e, False, True, False)
    assert torch.allclose(output.weight.grad, gw, atol=1e-6)


def test_dfa_is_the_same_in_both_orders_and_B_survives_a_rebuild() -> None:
    a, b = _net("conv", "dfa"), _net("conv", "dfa")
    for sa, sb in zip(_steps(a, 2, "simultaneous"), _steps(b, 2, "sequential")):
        assert all(torch.allclose(u[0], v[0], atol=1e-6) for u, v in zip(sa, sb))
    rebuilt = FeedbackNet(**a.config)
    rebuilt.load_state_dict(a.state_dict())
    la, lr_ = a.weight_layers[0], rebuilt.weight_layers[0]
    shape, e = (4, 6, 6), torch.zeros(1, C)
    assert torch.equal(la.direct_matrix(e, shape), lr_.direct_matrix(e, shape))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("loss", ["hinge", "softmax"])
def test_every_rule_trains_and_is_probed(method: str, loss: str) -> None:
    net = FeedbackNet("conv 3 3x3; maxpool 3 stride 2; untied 3 3x3; full 6; output", in_shape=IN,
                      n_classes=C, method=method, connectivity=0.5, seed=1)
    list(_steps(net, 2, "sequential", loss=loss))
    probe = alignment(net, *_batch(9), make_loss(loss, C))
    assert list(probe) == ["conv0", "untied1", "full2", "output"]
    direct = RULES[method].error_path == "direct"
    for name, m in probe.items():
        assert m["update_angle"] is not None and 0 <= m["update_angle"] <= 180
        if direct:
            assert m["weight_angle"] is None and m["delta_angle"] is None
        else:
            assert (m["delta_angle"] is None) == (name == "conv0")
    corr = net.correlations()
    assert all(c is None for c in corr) if direct else all(-1 <= c <= 1 for c in corr)
    if method in SIGN_RULES:
        assert min(corr) > 0.3  # sign-concordant: aligned from the start (half of R masked)


def _untied_copy(method: str):
    net = FeedbackNet("conv 3 3x3; full 6; output", in_shape=IN, n_classes=C, method=method, seed=2)
    new = untie(net, [0])
    x, _ = _batch()
    assert torch.allclose(new(x), net(x), atol=1e-6)
    return net.weight_layers[0], new.weight_layers[0]


def test_untie_carries_frsf_magnitudes() -> None:
    old, fresh = _untied_copy("frsf")
    mag = old.feedback_magnitude.reshape(3, -1)
    real = fresh.mask_weight.bool()
    assert torch.equal(fresh.feedback_magnitude[real], mag.expand_as(fresh.weight)[real])


def test_untie_carries_the_dfa_seed() -> None:
    old, fresh = _untied_copy("dfa")
    assert torch.equal(fresh.direct_seed, old.direct_seed)


def test_rule_parameters_are_checked_per_rule() -> None:
    assert FeedbackRule.make("kp").params == {"decay": 1e-4}
    assert FeedbackRule.make("usf", scale=2).params == {"scale": 2.0}
    net = FeedbackNet("full 4; output", in_shape=(1, 2, 2), method="kp", decay=0.01)
    assert net.config["decay"] == 0.01 and FeedbackNet(**net.config).weight_layers[0].rule.weight_decay == 0.01
    for method, params, fragment in (
        ("frfb", {"decay": 1.0}, "method 'frfb' takes no parameter decay"),
        ("kp", {"scale": 1.0}, "takes no parameter scale (its parameters: decay)"),
        ("kp", {"decay": -1.0}, "decay must be >= 0"),
        ("usf", {"scale": 0.0}, "scale must be > 0"),
        ("nope", {}, "method must be one of"),
    ):
        with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
            FeedbackNet("full 4; output", in_shape=(1, 2, 2), method=method, **params)
    with pytest.raises(ValueError, match="symmetric_init does not apply"):
        LayerOptions(FeedbackRule.make("usf"), symmetric_init=True)


def test_cli_and_config_take_rule_params(tmp_path: Path) -> None:
    base = ["--out", str(tmp_path / "r"), "--epochs", "1", "--data-dir", "x"]
    cfg = parse_run([*base, "--method", "kp", "--rule-param", "decay=1e-3"])[0]
    assert (cfg.method, cfg.rule_params) == ("kp", {"decay": 1e-3})
    assert parse_run([*base, "--method", "usf"])[0].rule_params == {"scale": 1.0}
    assert TrainConfig.from_json_dict(cfg.to_json_dict()) == cfg
    with pytest.raises(ConfigError, match="--rule-param: method 'frfb' takes no parameter decay"):
        parse_run([*base, "--method", "frfb", "--rule-param", "decay=1"])
    with pytest.raises(ConfigError, match="--epsilon"):
        parse_run([*base, "--method", "urfb", "--rule-param", "epsilon=1"])
    with pytest.raises(SystemExit):
        parse_run([*base, "--rule-param", "decay"])


@pytest.mark.parametrize("method", METHODS)
def test_every_rule_has_its_protocol_from_the_registry(method: str) -> None:
    """Each rule's protocol of the same name carries the registry's label and colour, and a
    run of the rule with default parameters is recognised as that protocol; changed parameters
    are not."""
    rule, p = RULES[method], PROTOCOLS[method]
    assert (p.method, p.label, p.color) == (method, rule.label, rule.color)
    cfg = TrainConfig(epochs=1, data_dir="x", method=method, loss=p.loss)
    assert protocol_of(cfg.to_json_dict()) is p
    for name, spec in rule.parameters.items():
        where = {name: spec.default / 2} if name in OWN_FLAG_PARAMS else {
            "rule_params": {name: spec.default / 2}}
        changed = TrainConfig(epochs=1, data_dir="x", method=method, loss=p.loss, **where)
        assert protocol_of(changed.to_json_dict()) is not p
