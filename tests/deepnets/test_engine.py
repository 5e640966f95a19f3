"""Training steps: urfb == bp with R(0) = W(0)^t, frfb keeps R, Delta R = eps Delta W^t, update
orders (Remark 1), masks, freezing, untie, evaluation."""

import pytest
import torch

from deepnets.nn.losses import make_loss
from deepnets.nn.network import FeedbackNet
from deepnets.training.engine import evaluate, evaluate_with_counts, freeze, train_step, untie

DT = torch.float64
SHAPE = (3, 8, 8)
ARCHS = {
    "dense": "full 12; full 9; output",
    "conv_pool_drop": "conv 4 3x3; maxpool 3; drop .5; conv 5 2x2; maxpool 2; full 10; drop .3; output",
    "untied": "untied 4 3x3; maxpool 3; conv 3 3x3; full 8; output",
    "sums": "conv 4 3x3; conv 4 3x3; sum; maxpool 2; drop .2; untied 3 3x3; untied 3 3x3; sum; output",
}


def _net(arch: str, **kw) -> FeedbackNet:
    return FeedbackNet(arch, in_shape=SHAPE, n_classes=4, **kw).to(DT)


def _batch(seed: int = 0, n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *SHAPE, generator=g, dtype=DT), torch.randint(0, 4, (n,), generator=g)


def _run(net, steps, order, loss_fn, lr=0.1):
    for step in range(steps):
        x, y = _batch(step)
        torch.manual_seed(100 + step)  # shared dropout masks
        train_step(net, x, y, loss_fn, lr=lr, update_order=order)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("order", ["simultaneous", "sequential"])
@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_urfb_symmetric_init_equals_bp(arch: str, order: str, bias: bool) -> None:
    bp = _net(ARCHS[arch], method="bp", bias=bias)
    urfb = _net(ARCHS[arch], method="urfb", symmetric_init=True, bias=bias)
    loss_fn = make_loss("hinge", 4)
    for step in range(4):
        _run(bp, 1, order, loss_fn), _run(urfb, 1, order, loss_fn)
        for lb, lu in zip(bp.weight_layers, urfb.weight_layers):
            assert torch.allclose(lb.weight, lu.weight, rtol=0, atol=1e-12), f"step {step}"
            assert torch.allclose(lu.feedback_as_weight(), lu.weight, rtol=0, atol=1e-12)
            assert (lb.bias is None) == (lu.bias is None) == (not bias)
            if bias:
                assert torch.allclose(lb.bias, lu.bias, rtol=0, atol=1e-12)
    x, _ = _batch(99)
    assert torch.allclose(bp.eval()(x), urfb.eval()(x), atol=1e-10)


def test_bp_step_is_autograd_sgd() -> None:
    """bp: one train_step = plain SGD on autograd's gradients of the same network written with
    torch.nn.functional (conv, clip(s h, -1, 1), zero-padded max pool, linear; cross-entropy)."""
    net = _net("conv 4 3x3; maxpool 3; full 10; output", method="bp", seed=2, bias=True)
    conv, full, out = net.weight_layers
    params = [t.detach().clone().requires_grad_() for layer in (conv, full, out)
              for t in (layer.weight, layer.bias)]
    x, y = _batch(4)
    w0, b0, w1, b1, w2, b2 = params
    h = (0.5 * torch.nn.functional.conv2d(x, w0, b0, padding=1)).clamp(-1, 1)
    h = torch.nn.functional.max_pool2d(torch.nn.functional.pad(h, (1, 1, 1, 1)), 3, 2)
    h = (0.5 * torch.nn.functional.linear(h.flatten(1), w1, b1)).clamp(-1, 1)
    loss = torch.nn.functional.cross_entropy(torch.nn.functional.linear(h, w2, b2), y)
    grads = torch.autograd.grad(loss, params)
    lr = 0.2
    result = train_step(net, x, y, make_loss("softmax", 4), lr=lr, update_order="simultaneous")
    assert result.loss == pytest.approx(float(loss.detach()), rel=1e-12)
    got = [t for layer in (conv, full, out) for t in (layer.weight, layer.bias)]
    for g, p, q in zip(got, params, grads):
        assert torch.allclose(g, p - lr * q, rtol=0, atol=1e-13)


def test_sequential_differs_from_simultaneous() -> None:
    loss_fn = make_loss("hinge", 4)
    nets = {o: _net(ARCHS["dense"], method="bp") for o in ("simultaneous", "sequential")}
    for order, net in nets.items():
        _run(net, 1, order, loss_fn, lr=1.0)
    a, b = (nets[o].weight_layers for o in ("simultaneous", "sequential"))
    assert torch.equal(a[-1].weight, b[-1].weight)  # the top layer sees the same delta either way
    assert not torch.allclose(a[0].weight, b[0].weight)  # lower layers see the updated R above


@pytest.mark.parametrize("order", ["simultaneous", "sequential"])
def test_matches_hand_written_urfb(order: str) -> None:
    """Two-layer urfb against eq. (1), (2) with R, (6), written out by hand (Remark 1 if sequential)."""
    net = _net("full 6; output", method="urfb", epsilon=0.5, bias=True)
    x, y = _batch(3)
    w1, b1, r1 = (
        t.detach().clone()
        for t in (
            net.weight_layers[0].weight,
            net.weight_layers[0].bias,
            net.weight_layers[0].feedback,
        )
    )
    w2, b2, r2 = (
        t.detach().clone()
        for t in (
            net.weight_layers[1].weight,
            net.weight_layers[1].bias,
            net.weight_layers[1].feedback,
        )
    )
    lr, s, eps, n, mu = 0.3, 0.5, 0.5, x.shape[0], 1 / 3
    x0 = x.reshape(n, -1)
    h1 = x0 @ w1.t() + b1
    x1 = (s * h1).clamp(-1, 1)
    h2 = x1 @ w2.t() + b2
    onehot = torch.nn.functional.one_hot(y, 4).bool()
    d2 = torch.where(onehot, (h2 <= 1).to(DT), -mu * (h2 >= -1).to(DT))  # eq. (6)
    dw2 = d2.t() @ x1 / n
    w2_new, b2_new, r2_new = w2 + lr * dw2, b2 + lr * d2.mean(0), r2 + eps * lr * dw2.t()
    r_used = r2_new if order == "sequential" else r2
    d1 = s * ((s * h1).abs() < 1) * (d2 @ r_used.t())  # eq. (2) with R
    dw1 = d1.t() @ x0 / n
    w1_new, r1_new = w1 + lr * dw1, r1 + eps * lr * dw1.t()
    train_step(net, x, y, make_loss("hinge", 4), lr=lr, update_order=order)
    l1, l2 = net.weight_layers
    for got, want in [
        (l2.weight, w2_new),
        (l2.bias, b2_new),
        (l2.feedback, r2_new),
        (l1.weight, w1_new),
        (l1.feedback, r1_new),
        (l1.bias, b1 + lr * d1.mean(0)),
    ]:
        assert torch.allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("order", ["simultaneous", "sequential"])
def test_frfb_keeps_R_and_urfb_increment_is_eps_dW(order: str) -> None:
    loss_fn = make_loss("hinge", 4)
    frfb = _net(ARCHS["sums"], method="frfb")
    r0 = [layer.feedback.clone() for layer in frfb.weight_layers]
    _run(frfb, 3, order, loss_fn)
    assert all(torch.equal(a, layer.feedback) for a, layer in zip(r0, frfb.weight_layers))
    eps = 0.3
    urfb = _net(ARCHS["sums"], method="urfb", epsilon=eps)
    for step in range(3):
        before = [
            (la.weight.detach().clone(), la.feedback_as_weight().clone())
            for la in urfb.weight_layers
        ]
        _run(urfb, 1, order, loss_fn)
        for (w0, rt0), layer in zip(before, urfb.weight_layers):
            dw = layer.weight.detach() - w0
            assert dw.abs().max() > 0
            assert torch.allclose(layer.feedback_as_weight() - rt0, eps * dw, rtol=0, atol=1e-13)


def test_epsilon_zero_is_frfb() -> None:
    loss_fn = make_loss("hinge", 4)
    a = _net(ARCHS["dense"], method="frfb")
    b = _net(ARCHS["dense"], method="urfb", epsilon=0.0)
    _run(a, 2, "simultaneous", loss_fn), _run(b, 2, "simultaneous", loss_fn)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("order", ["simultaneous", "sequential"])
def test_masks_stay_zero_and_differ(order: str) -> None:
    """connectivity 0.5: W's and R's masks are independent and fixed; unmasked R entries get
    their increment even where W is masked. (Glorot draws are never exactly 0, so the zero
    entries of a fresh layer are its masked ones.)"""
    fresh = _net(ARCHS["untied"], method="urfb", connectivity=0.5)
    net = _net(ARCHS["untied"], method="urfb", connectivity=0.5)
    _run(net, 20, order, make_loss("hinge", 4), lr=0.5)
    for layer, new in zip(fresh.weight_layers, net.weight_layers):
        mw, mr = layer.weight != 0, layer.feedback_as_weight() != 0
        assert not torch.equal(mw, mr)
        assert 0.35 < mw.float().mean() < 0.65 or layer.weight.dim() == 3  # untied: padding too
        assert torch.all(new.weight[~mw] == 0)
        assert torch.all(new.feedback_as_weight()[~mr] == 0)
        assert (new.weight[mw] != layer.weight[mw]).any()
    # unmasked R entries move even where W is masked
    layer, new = fresh.weight_layers[-1], net.weight_layers[-1]
    where = (layer.feedback_as_weight() != 0) & (layer.weight == 0)
    assert where.sum() >= 3  # a quarter of the output layer's entries in expectation
    moved = new.feedback_as_weight()[where] != layer.feedback_as_weight()[where]
    assert moved.float().mean() > 0.5


def test_freeze_keeps_layer_but_passes_feedback() -> None:
    net = _net(ARCHS["conv_pool_drop"], method="urfb")
    freeze(net, [1])
    before = [(la.weight.detach().clone(), la.feedback.clone()) for la in net.weight_layers]
    _run(net, 2, "simultaneous", make_loss("hinge", 4))
    after = [(la.weight.detach(), la.feedback) for la in net.weight_layers]
    assert torch.equal(before[1][0], after[1][0]) and torch.equal(before[1][1], after[1][1])
    assert not torch.equal(before[0][0], after[0][0])  # the layer below still learns
    assert net.config["frozen"] == [1]
    assert FeedbackNet(**net.config).weight_layers[1].frozen


def test_untie_copies_and_computes_the_same() -> None:
    net = _net(ARCHS["conv_pool_drop"], method="urfb", connectivity=0.5)
    _run(net, 2, "simultaneous", make_loss("hinge", 4))
    freeze(net, [0])
    unt = untie(net, [0, 1])
    assert unt.config["untied"] == [0, 1] and unt.weight_layers[0].frozen
    x, _ = _batch(5)
    assert torch.allclose(net.eval()(x), unt.eval()(x), atol=1e-12)
    with pytest.raises(ValueError, match="not conv"):
        untie(net, [2])


def test_state_dict_rebuilds_the_net() -> None:
    net = _net(ARCHS["sums"], method="urfb", connectivity=0.5, seed=3)
    _run(net, 1, "simultaneous", make_loss("hinge", 4))
    clone = FeedbackNet(**net.config).to(DT)
    clone.load_state_dict(net.state_dict())
    x, _ = _batch(7)
    assert torch.equal(net.eval()(x), clone.eval()(x))


def test_correlations_and_evaluate() -> None:
    loss_fn = make_loss("softmax", 4)
    assert _net(ARCHS["dense"], method="bp").correlations() == [1.0, 1.0, 1.0]
    assert all(
        c == pytest.approx(1.0) for c in _net(ARCHS["dense"], symmetric_init=True).correlations()
    )
    assert all(abs(c) < 0.3 for c in _net(ARCHS["dense"], method="frfb").correlations())
    net = _net(ARCHS["conv_pool_drop"], method="urfb")
    x, y = _batch(1, n=10)
    loss, err = evaluate(net, x, y, loss_fn, batch_size=3)
    with torch.no_grad():
        logits = net.eval()(x)
    assert loss == pytest.approx(float(loss_fn(logits, y)))
    assert err == pytest.approx(float((logits.argmax(1) != y).double().mean()))
    assert net.training is False
    x8 = (x * 255).round().to(torch.uint8)
    assert evaluate(net, x8, y, loss_fn)[0] == pytest.approx(
        evaluate(net, x8.to(DT) / 255, y, loss_fn)[0]
    )


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="update_order"):
        train_step(_net(ARCHS["dense"]), *_batch(), make_loss("hinge", 4), update_order="random")
    with pytest.raises(ValueError, match="untied"):
        _net(ARCHS["dense"], untied=[0])
    with pytest.raises(ValueError, match="out of range"):
        _net(ARCHS["dense"], frozen=[7])


def test_correlation_is_pearson_of_W_and_R_transposed() -> None:
    import numpy as np

    net = _net(ARCHS["untied"], method="frfb")
    _run(net, 2, "simultaneous", make_loss("hinge", 4), lr=1.0)
    corr = net.correlations()
    dense = net.weight_layers[-1]
    w, r = dense.weight.detach().numpy(), dense.feedback.numpy()  # R has shape (in, out)
    assert corr[-1] == pytest.approx(np.corrcoef(w.ravel(), r.T.ravel())[0, 1], rel=1e-9)
    untied = net.weight_layers[0]
    w, r = untied.weight.detach().numpy(), untied.feedback.numpy()
    real = w != 0  # connectivity 1: every real connection has a non-zero Glorot draw
    assert not real.all()  # padding positions are no connections
    assert corr[0] == pytest.approx(np.corrcoef(w[real], r[real])[0, 1], rel=1e-9)


@pytest.mark.parametrize(
    ("method", "order"),
    [
        ("bp", "simultaneous"),
        ("frfb", "simultaneous"),
        ("urfb", "simultaneous"),
        ("urfb", "sequential"),
    ],
)
def test_learns_a_separable_problem(method: str, order: str) -> None:
    g = torch.Generator().manual_seed(0)
    centres = torch.rand(4, *SHAPE, generator=g, dtype=DT)
    y = torch.randint(0, 4, (64,), generator=g)
    x = centres[y] + 0.1 * torch.randn(64, *SHAPE, generator=g, dtype=DT)
    net = _net("conv 4 3x3; maxpool 3; full 16; output", method=method)
    loss_fn = make_loss("hinge", 4)
    first = evaluate(net, x, y, loss_fn)[0]
    for _ in range(150):
        train_step(net, x, y, loss_fn, lr=0.1, update_order=order)
    loss, err = evaluate(net, x, y, loss_fn)
    assert loss < 0.5 * first and err < 0.1


@pytest.mark.parametrize("order", ["simultaneous", "sequential"])
@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_no_bias_by_default_and_the_same_w_r_as_with_biases(arch: str, order: str) -> None:
    """FeedbackNet follows eq. (1): no bias unless asked. W, R and masks are drawn the same
    with or without biases; biases start at 0, so the first step changes W and R alike, and
    the network without biases has none afterwards either."""
    plain, biased = _net(ARCHS[arch], method="urfb"), _net(ARCHS[arch], method="urfb", bias=True)
    assert plain.config["bias"] is False and biased.config["bias"] is True
    assert all(layer.bias is None for layer in plain.weight_layers)
    assert not any("bias" in key for key in plain.state_dict())
    for a, b in zip(plain.weight_layers, biased.weight_layers):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.feedback, b.feedback)
    x, _ = _batch(7)
    # a zero bias may take another kernel (addmm against mm: rounding differs by CPU)
    assert torch.allclose(plain.eval()(x), biased.eval()(x), rtol=0, atol=1e-12)
    loss_fn = make_loss("hinge", 4)
    _run(plain, 1, order, loss_fn), _run(biased, 1, order, loss_fn)
    for a, b in zip(plain.weight_layers, biased.weight_layers):
        assert a.bias is None and bool(b.bias.abs().sum() > 0)
        assert torch.allclose(a.weight, b.weight, rtol=0, atol=1e-12)
        assert torch.allclose(a.feedback, b.feedback, rtol=0, atol=1e-12)
    _run(plain, 1, order, loss_fn), _run(biased, 1, order, loss_fn)  # now the biases act
    assert any(not torch.equal(a.weight, b.weight)
               for a, b in zip(plain.weight_layers, biased.weight_layers))
    rebuilt = FeedbackNet(**plain.config).to(DT)
    rebuilt.load_state_dict(plain.state_dict())  # config.json's "net" rebuilds it
    assert torch.equal(rebuilt.eval()(x), plain.eval()(x))


def test_train_step_defaults_to_the_sequential_order() -> None:
    """Remark 1 is the default of train_step: a lower layer sees the updated R above."""
    loss_fn = make_loss("hinge", 4)
    nets = {o: _net(ARCHS["dense"], method="urfb") for o in ("default", "sequential", "simultaneous")}
    x, y = _batch(1)
    train_step(nets["default"], x, y, loss_fn, lr=1.0)
    for order in ("sequential", "simultaneous"):
        train_step(nets[order], x, y, loss_fn, lr=1.0, update_order=order)
    first = {o: n.weight_layers[0].weight for o, n in nets.items()}
    assert torch.equal(first["default"], first["sequential"])
    assert not torch.allclose(first["default"], first["simultaneous"])


def test_evaluate_with_dropout_leaves_other_modules_in_eval_mode() -> None:
    """``evaluate(..., dropout=True)``: the dropout layers drop (a different loss from the one
    without, the same again from the same seed), BatchNorm keeps its running statistics, and
    every module's mode is restored."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8),
                              torch.nn.Dropout(0.5), torch.nn.Linear(8, 3)).to(DT)
    net.train()
    stats = net[1].running_mean.clone(), net[1].running_var.clone()
    x = torch.rand(20, 6, dtype=DT)
    y = torch.randint(0, 3, (20,))
    loss_fn = make_loss("softmax", 3)
    plain = evaluate(net, x, y, loss_fn)
    torch.manual_seed(1)
    dropped = evaluate(net, x, y, loss_fn, dropout=True)
    torch.manual_seed(1)
    assert evaluate(net, x, y, loss_fn, dropout=True) == dropped
    assert dropped[0] != plain[0]
    assert torch.equal(net[1].running_mean, stats[0]) and torch.equal(net[1].running_var, stats[1])
    assert all(m.training for m in net.modules())


def test_evaluate_samples_averages_the_logits_of_several_masks_per_batch() -> None:
    """``samples=K`` with dropout: each batch's logits are the mean of K forward passes (masks
    drawn in that order from the global generator); ``evaluate_with_counts`` puts the images in
    the classes those logits choose; ``samples`` needs dropout and an integer >= 1; every
    module's mode comes back as it was, a mix of train and eval included."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Dropout(0.5),
                              torch.nn.Linear(8, 3)).to(DT)
    x = torch.rand(7, 6, dtype=DT)
    y = torch.randint(0, 3, (7,))
    loss_fn = make_loss("softmax", 3)
    torch.manual_seed(5)
    net.train()
    with torch.no_grad():
        logits = torch.cat([sum(net(x[s:s + 3]) for _ in range(4)) / 4 for s in (0, 3, 6)])
    torch.manual_seed(5)
    net[0].eval()  # a mix of modes, to be restored
    loss, err, counts = evaluate_with_counts(net, x, y, loss_fn, batch_size=3, dropout=True,
                                             samples=4)
    assert [m.training for m in net] == [False, True, True, True] and net.training
    assert loss == pytest.approx(float(loss_fn(logits, y)), rel=1e-12)
    assert err == float((logits.argmax(1) != y).double().mean())
    assert counts.tolist() == torch.bincount(logits.argmax(1), minlength=3).tolist()
    torch.manual_seed(5)
    assert evaluate(net, x, y, loss_fn, batch_size=3, dropout=True, samples=4) == (loss, err)
    net.eval()
    with torch.no_grad():
        plain = net(x)
    net.train()
    assert evaluate_with_counts(net, x, y, loss_fn)[2].tolist() == torch.bincount(
        plain.argmax(1), minlength=3).tolist()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="samples must be an integer >= 1"):
            evaluate(net, x, y, loss_fn, dropout=True, samples=bad)
    with pytest.raises(ValueError, match="pass dropout=True"):
        evaluate(net, x, y, loss_fn, samples=2)
    assert all(m.training for m in net.modules())


def test_evaluate_dropout_in_chosen_layers_only() -> None:
    """``dropout=[i, ...]``: only those dropout layers (counted in the net's order) drop; an
    index the net lacks is a one-line ValueError, its modes left as they were."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Dropout(0.5), torch.nn.Tanh(),
                              torch.nn.Linear(8, 8), torch.nn.Dropout(0.5),
                              torch.nn.Linear(8, 3)).to(DT)
    x = torch.rand(7, 6, dtype=DT)
    y = torch.randint(0, 3, (7,))
    loss_fn = make_loss("softmax", 3)
    net.eval()
    net[4].train()  # the second dropout layer only
    torch.manual_seed(2)
    with torch.no_grad():
        logits = (net(x) + net(x)) / 2
    net.eval()
    torch.manual_seed(2)
    loss, err, counts = evaluate_with_counts(net, x, y, loss_fn, dropout=[1], samples=2)
    assert loss == pytest.approx(float(loss_fn(logits, y)), rel=1e-12)
    assert err == float((logits.argmax(1) != y).double().mean())
    assert counts.tolist() == torch.bincount(logits.argmax(1), minlength=3).tolist()
    first = {}
    for layers in ([0], [1], [0, 1]):
        torch.manual_seed(2)
        first[tuple(layers)] = evaluate(net, x, y, loss_fn, dropout=layers)
    assert len(set(first.values())) == 3  # each choice of layers its own network
    torch.manual_seed(2)
    assert evaluate(net, x, y, loss_fn, dropout=True) == first[(0, 1)]
    assert evaluate(net, x, y, loss_fn, dropout=[]) == evaluate(net, x, y, loss_fn)
    for bad in ([2], [-1], ["0"], [True]):
        with pytest.raises(ValueError, match="does not exist: the net has 2 dropout layers"):
            evaluate(net, x, y, loss_fn, dropout=bad)
    with pytest.raises(ValueError, match="pass dropout=True"):
        evaluate(net, x, y, loss_fn, dropout=[], samples=2)
    assert not any(m.training for m in net.modules())
