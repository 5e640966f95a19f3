"""Each rule's linear right-hand side (sims.rules) against one step of the deep-net engine.

A converted linear network (nn.Linear without bias, no nonlinearity) with the same W, R and a
whitened batch (XXᵗ = I, targets TX, loss ½‖out − TX‖², the targets held by the loss since
train_step's labels must be class indices) takes one ``deepnets.train_step``;
(W_after − W)/lr and (R_after − R)/lr must equal the ODE's Ẇ and Ṙ. Only the engine's public
API is used (convert, train_step, FeedbackLayer, RULES, METHODS; torch hooks read DFA's B).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn

import deepnets
from sims.rules import (
    RULE_PARAMS,
    LinearRule,
    draw_fixed,
    feedback_mats,
    rule_field,
)

WIDTHS = (6, 5, 4, 3)
LR = 1e-3
PARAMS = {"urfb": {"epsilon": 0.4}, "kp": {"decay": 0.3}, "usf": {"scale": 1.7}}


def _layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, deepnets.FeedbackLayer)]


def _loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((out - y) ** 2).sum()


def _data(rng: np.random.Generator):
    """T (n_k × n_0), a batch x (N = n_0 rows, XXᵗ = I), dummy labels and the loss
    ½‖out − (TX)ᵗ‖² whose gradient makes the engine's step the ODE's field times lr."""
    T = rng.standard_normal((WIDTHS[-1], WIDTHS[0]))
    Q, _ = np.linalg.qr(rng.standard_normal((WIDTHS[0], WIDTHS[0])))
    target = torch.tensor(Q @ T.T)

    def loss(out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return _loss(out, target)

    return T, torch.tensor(Q), torch.zeros(WIDTHS[0], dtype=torch.long), loss


def _direct_matrices(net: nn.Module, n_out: int) -> list[np.ndarray]:
    """DFA's B_j as the ODE holds them (n_{j-1} × n_k), read from the signals the engine sends:
    each layer's input gradient is e B_j (e the output error), solved by least squares."""
    layers = _layers(net)
    grads: dict[int, torch.Tensor] = {}

    def keep(j: int):
        def pre(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            if args[0].requires_grad:
                args[0].register_hook(lambda g: grads.__setitem__(j, g.detach().clone()))
        return pre

    hooks = [layer.register_forward_pre_hook(keep(j)) for j, layer in enumerate(layers)]
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(4 * n_out, WIDTHS[0], generator=gen, dtype=torch.float64)
    x.requires_grad_(True)
    out = net(x)
    e = (out - torch.randn(out.shape, generator=gen, dtype=torch.float64)).detach()
    _loss(out, out.detach() - e).backward()        # the output error is e
    for h in hooks:
        h.remove()
    for layer in layers:
        layer.weight.grad = None
    return [np.linalg.lstsq(e.numpy(), grads[j].numpy(), rcond=None)[0].T
            for j in range(len(layers))]


def _setup(name: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    k = len(WIDTHS) - 1
    model = nn.Sequential(*[nn.Linear(WIDTHS[i], WIDTHS[i + 1], bias=False)
                            for i in range(k)]).double()
    net = deepnets.convert(model, method=name, seed=seed, **PARAMS.get(name, {}))
    rule = LinearRule.make(name, **PARAMS.get(name, {}))
    layers = _layers(net)
    Ws = [0.5 * rng.standard_normal((WIDTHS[i + 1], WIDTHS[i])) for i in range(k)]
    Rs: list[np.ndarray] = []
    fixed: list[np.ndarray] = []
    if rule.kind == "state":
        Rs = [0.5 * rng.standard_normal((WIDTHS[i], WIDTHS[i + 1])) for i in range(k)]
    elif name == "frsf":          # the engine's fixed |M|: |R| of the converted layer
        fixed = [layer.feedback.detach().abs().numpy().copy() for layer in layers]
    elif rule.kind == "sign":
        fixed = [a[0] for a in draw_fixed(rule, WIDTHS, rng, 1)]
    elif name == "dfa":
        fixed = _direct_matrices(net, WIDTHS[-1])
    back = feedback_mats(rule, [w[None] for w in Ws], [r[None] for r in Rs],
                         [f[None] for f in fixed])
    with torch.no_grad():
        for j, layer in enumerate(layers):
            layer.weight.copy_(torch.tensor(Ws[j]))
            if layer.feedback is not None:
                layer.feedback.copy_(torch.tensor(back[j][0]))
    return rule, net, layers, Ws, Rs, fixed, rng


@pytest.mark.parametrize("name", RULE_PARAMS)
def test_rhs_matches_one_engine_step(name: str) -> None:
    rule, net, layers, Ws, Rs, fixed, rng = _setup(name)
    T, x, y, loss = _data(rng)
    R_before = [None if l.feedback is None else l.feedback.detach().numpy().copy() for l in layers]
    # the ODE's right-hand side is the step of every layer from one backward pass
    deepnets.train_step(net, x, y, loss, lr=LR, update_order="simultaneous")
    dW, dR = rule_field(rule, T[None], [w[None] for w in Ws], [r[None] for r in Rs],
                        [f[None] for f in fixed])
    for j, layer in enumerate(layers):
        step = (layer.weight.detach().numpy() - Ws[j]) / LR
        np.testing.assert_allclose(step, dW[j][0], rtol=1e-7, atol=1e-9,
                                   err_msg=f"{name}: dW of layer {j + 1}")
    if rule.kind == "state":
        for j, layer in enumerate(layers):
            step = (layer.feedback.detach().numpy() - R_before[j]) / LR
            np.testing.assert_allclose(step, dR[j][0], rtol=1e-7, atol=1e-9,
                                       err_msg=f"{name}: dR of layer {j + 1}")
    elif rule.kind == "sign":                       # R is the rule's function of the new W
        for j, layer in enumerate(layers):
            R = layer.feedback.detach().numpy()
            sign = np.sign(layer.weight.detach().numpy().T)
            if name == "brsf":                      # fresh |M|: only the sign and the range
                bound = math.sqrt(6.0 / sum(R.shape))
                np.testing.assert_array_equal(np.sign(R), sign)
                assert np.all(np.abs(R) <= bound)
            else:
                np.testing.assert_allclose(R, fixed[j] * sign, rtol=1e-12)


def test_brsf_mean_field_is_half_the_bound() -> None:
    """brsf's redrawn |M| averages b/2 (b = Glorot bound): the ODE's mean field √3σ/2."""
    _, net, layers, _, _, fixed, rng = _setup("brsf")
    _, x, y, loss = _data(rng)
    ratios = []
    for _ in range(20):
        deepnets.train_step(net, x, y, loss, lr=LR)
        for layer, a in zip(layers, fixed):
            ratios.append(np.abs(layer.feedback.detach().numpy()).mean() / a.mean())
    assert abs(np.mean(ratios) - 1.0) < 0.05


def test_dfa_reads_back_a_fixed_b() -> None:
    """The B read from the engine's signals does not change when W does (else the DFA check
    above would compare with a B that only held at one state)."""
    _, net, _, _, _, fixed, rng = _setup("dfa")
    _, x, y, loss = _data(rng)
    deepnets.train_step(net, x, y, loss, lr=0.1)
    again = _direct_matrices(net, WIDTHS[-1])
    for a, b in zip(fixed[1:], again[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


#: engine rules the linear dynamics do not have yet (wm: weight mirror, being added to the
#: engine in parallel; see docs/linear.md for how it enters sims.rules)
NOT_IN_SIMS = {"wm"}


def test_rule_table_matches_the_engine() -> None:
    """Every engine rule but NOT_IN_SIMS is in sims.rules with the same parameter defaults."""
    engine = {}
    for name, r in deepnets.RULES.items():
        specs = r.parameters                                    # the rule class's ParamSpecs
        engine[name] = {p: spec.default for p, spec in specs.items()}
    missing = set(engine) - set(RULE_PARAMS)
    assert missing <= NOT_IN_SIMS, f"engine rules missing from sims.rules: {sorted(missing)}"
    assert set(RULE_PARAMS) <= set(engine)
    assert all(RULE_PARAMS[n] == engine[n] for n in RULE_PARAMS)
