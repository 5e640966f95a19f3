"""Each rule's linear right-hand side (sims.rules) against one step of the deep-net engine.

A converted linear network (nn.Linear without bias, no nonlinearity) with the same W, R and a
whitened batch (XXᵗ = I, targets TX, loss ½‖out − TX‖², the targets held by the loss since
train_step's labels must be class indices) takes one ``deepnets.train_step``;
(W_after − W)/lr and (R_after − R)/lr must equal the ODE's Ẇ and Ṙ. wm's R step is random (the
mirror phase's noise): it is checked against its mean within a tolerance derived from the noise
batch's size. Only the engine's public API is used (convert, train_step, FeedbackLayer,
deepnets.rules.RULES; torch hooks read DFA's B). The rules are the ENGINE's registry, so a new
engine rule missing from sims.rules fails here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn

import deepnets
from deepnets.rules import RULES
from sims.rules import (
    POSITIVE_PARAMS,
    RULE_PARAMS,
    TRAINING_PARAMS,
    LinearRule,
    draw_fixed,
    feedback_mats,
    param_high,
    rule_field,
)

WIDTHS = (6, 5, 4, 3)
LR = 1e-3
PARAMS = {"urfb": {"epsilon": 0.4}, "kp": {"decay": 0.3}, "usf": {"scale": 1.7},
          "wm": {"mirror_lr": 2.0, "noise": 0.3, "decay": 0.05}}
#: the dynamics' parameters that are the training's (wm's rate in t is 1/lr)
TRAINING = {"wm": {"lr": LR}}
#: wm's noise batch is the training batch: this many examples make its mean tight
MIRROR_BATCH = 40_000
#: the tolerance of wm's R step, in standard deviations of its sample mean (per entry; ~60
#: entries, so a false alarm has probability ~1e-5 and the seed is fixed anyway)
MIRROR_SDS = 5.0


def _layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, deepnets.FeedbackLayer)]


def _loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((out - y) ** 2).sum()


def _data(rng: np.random.Generator, batch: int = WIDTHS[0]):
    """T (n_k × n_0), a batch x (``batch`` >= n_0 rows Q with orthonormal columns, so that
    Σ x xᵗ = QᵗQ = I), dummy labels and the loss ½‖out − QTᵗ‖² whose gradient makes the
    engine's step the ODE's field times lr."""
    T = rng.standard_normal((WIDTHS[-1], WIDTHS[0]))
    Q, _ = np.linalg.qr(rng.standard_normal((batch, WIDTHS[0])))
    target = torch.tensor(Q @ T.T)

    def loss(out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return _loss(out, target)

    return T, torch.tensor(Q), torch.zeros(batch, dtype=torch.long), loss


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
    rule = LinearRule.make(name, **PARAMS.get(name, {}), **TRAINING.get(name, {}))
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


@pytest.mark.parametrize("name", RULES)
def test_rhs_matches_one_engine_step(name: str) -> None:
    rule, net, layers, Ws, Rs, fixed, rng = _setup(name)
    T, x, y, loss = _data(rng, MIRROR_BATCH if rule.mirror else WIDTHS[0])
    R_before = [None if l.feedback is None else l.feedback.detach().numpy().copy() for l in layers]
    # the ODE's right-hand side is the step of every layer from one backward pass
    deepnets.train_step(net, x, y, loss, lr=LR, update_order="simultaneous")
    dW, dR = rule_field(rule, T[None], [w[None] for w in Ws], [r[None] for r in Rs],
                        [f[None] for f in fixed])
    for j, layer in enumerate(layers):
        step = (layer.weight.detach().numpy() - Ws[j]) / LR
        np.testing.assert_allclose(step, dW[j][0], rtol=1e-7, atol=1e-9,
                                   err_msg=f"{name}: dW of layer {j + 1}")
    if rule.mirror:
        _check_mirror_step(rule, T, layers, R_before)
    elif rule.kind == "state":
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


def _check_mirror_step(rule: LinearRule, T: np.ndarray, layers: list[nn.Module],
                       R_before: list[np.ndarray]) -> None:
    """wm: (R_after − R)/lr against the ODE's Ṙ at (W_after, R) (the mirror phase runs after
    W's step, with the new W). Entry (a, b) of R_after − E[R_after] is η Σ_c (Ĉ − σ²I)_ac W_bc
    with Ĉ the noise batch's mean of x xᵗ over N draws: its std is at most
    ησ²√(2Σ_c W_bc²/N), divided by lr here."""
    eta, sd = rule.param("mirror_lr"), rule.param("noise")
    W_after = [layer.weight.detach().numpy().copy() for layer in layers]
    _, dR = rule_field(rule, T[None], [w[None] for w in W_after], [r[None] for r in R_before],
                       [])
    for j, layer in enumerate(layers):
        step = (layer.feedback.detach().numpy() - R_before[j]) / LR
        row_norms = np.sqrt(2.0 * (W_after[j] ** 2).sum(axis=1))      # per column b of R
        std = eta * sd**2 * row_norms[None, :] / math.sqrt(MIRROR_BATCH) / LR
        excess = np.abs(step - dR[j][0]) / std
        assert excess.max() < MIRROR_SDS, (
            f"wm: dR of layer {j + 1} is {excess.max():.1f} standard deviations off its mean")


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


def test_rule_table_matches_the_engine() -> None:
    """Every engine rule is in sims.rules with the same parameters and defaults; sims adds
    only the training's parameters (TRAINING_PARAMS: wm's lr)."""
    engine = {name: {p: spec.default for p, spec in cls.parameters.items()}
              for name, cls in RULES.items()}
    assert set(RULE_PARAMS) == set(engine)
    for name, defaults in engine.items():
        mine = RULE_PARAMS[name]
        assert {p: v for p, v in mine.items() if p in defaults} == defaults, name
        assert set(mine) - set(defaults) <= set(TRAINING_PARAMS), name


def test_rule_ranges_match_the_engine() -> None:
    """Every parameter has the engine's range: > 0 or >= 0 as the engine's ParamSpec, and the
    same upper end (kp:decay=1e300 once overflowed the solver)."""
    for name, cls in RULES.items():
        for param, spec in cls.parameters.items():
            assert (param in POSITIVE_PARAMS) == spec.low_open and spec.low == 0, (name, param)
            assert param_high(name, param) == spec.high, (name, param)
    with pytest.raises(ValueError, match="decay must be >= 0 and at most 1000"):
        LinearRule.make("kp", decay=1e300)
