"""Bad input through the Python API (issue 19, §1): every public function on NaN / inf / empty /
mismatched input gives a one-line ValueError, and a refused training step changes nothing
(W, R, b and every other state entry bit for bit), in both update orders."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

import deepnets
from deepnets import FeedbackNet, alignment, convert, evaluate_net, make_loss, train_step
from deepnets.nn.alignment import angle_degrees

C = 10
SHAPE = (3, 4, 4)
ORDERS = ("simultaneous", "sequential")


def _net(method: str = "urfb") -> FeedbackNet:
    return FeedbackNet("conv 4 3x3; maxpool 2; full 8; output", in_shape=SHAPE, method=method,
                       seed=1, bias=True)  # biases: the overflow test sets the output's


def _converted() -> nn.Module:
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 16, C))
    return convert(plain, method="kp", decay=1e-3)


MODELS: dict[str, Callable[[], nn.Module]] = {"FeedbackNet": _net, "convert": _converted}


def _batch(n: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, *SHAPE, generator=gen), torch.randint(0, C, (n,), generator=gen)


def _state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _assert_refused(net: nn.Module, step: Callable[[], object], fragment: str) -> None:
    """``step`` raises a one-line ValueError naming ``fragment`` and leaves ``net`` unchanged."""
    before = _state(net)
    with pytest.raises(ValueError, match=fragment) as err:
        step()
    assert "\n" not in str(err.value)
    after = net.state_dict()
    for k, v in before.items():
        assert torch.equal(after[k], v), k  # NaN-free before, so equal means unchanged
    assert all(p.grad is None for p in net.parameters())


def _poisoned(kind: str) -> torch.Tensor:
    x, _ = _batch()
    x[2, 1, 0, 3] = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[kind]
    return x


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("order", ORDERS)
def test_non_finite_pixel_and_lr_are_refused_before_any_update(model: str, order: str) -> None:
    net, loss_fn = MODELS[model](), make_loss("hinge", C)
    x, y = _batch()
    for kind in ("nan", "inf", "-inf"):
        _assert_refused(net, lambda kind=kind: train_step(net, _poisoned(kind), y, loss_fn,
                                                          update_order=order), "NaN or infinite")
    for lr in (math.nan, math.inf, -math.inf, -0.1, 0.0):
        _assert_refused(net, lambda lr=lr: train_step(net, x, y, loss_fn, lr=lr, update_order=order),
                        "lr must be a finite positive number")
    for lr in ("0.1", True, None, torch.tensor(0.1)):
        _assert_refused(net, lambda lr=lr: train_step(net, x, y, loss_fn, lr=lr, update_order=order),
                        "lr must be a number")
    before = _state(net)
    train_step(net, x, y, loss_fn, update_order=order)  # and a good step still learns
    assert any(not torch.equal(v, net.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize("loss", ["hinge", "softmax"])
@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("order", ORDERS)
def test_mismatched_and_empty_batches_are_refused_before_any_update(model: str, order: str,
                                                                    loss: str) -> None:
    net, loss_fn = MODELS[model](), make_loss(loss, C)
    x, y = _batch()
    cases = [
        (x, y[:4], "x holds 6 examples but y 4 labels"),  # shorter label vector
        (x[:4], y, "x holds 4 examples but y 6 labels"),
        (x[:0], y[:0], "the batch is empty"),
        (x, y.float(), "integer class labels"),
        (x, y[:, None], "integer class labels"),
        (x[0, 0, 0], y[:4], r"batch \(N, ...\)"),
        (x.numpy(), y, "must be torch tensors"),
        (x.to(torch.int32), y, "uint8 images or floats"),
        (x, torch.full_like(y, C), f"labels must lie in 0..{C - 1}"),
        (x, torch.full_like(y, -1), f"labels must lie in 0..{C - 1}"),
    ]
    for xb, yb, fragment in cases:
        _assert_refused(net, lambda xb=xb, yb=yb: train_step(net, xb, yb, loss_fn, update_order=order),
                        fragment)


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("order", ORDERS)
def test_non_finite_loss_or_output_error_stops_the_step_before_any_update(
        model: str, order: str) -> None:
    net = MODELS[model]()
    x, y = _batch()
    losses = {
        "the loss is nan": lambda logits, labels: logits.mean() * math.nan,
        "the loss is inf": lambda logits, labels: logits.mean() + math.inf,
        # finite value 0, infinite gradient (d sqrt(u)/du at 0): a NaN/inf output error
        "output error": lambda logits, labels: (logits - logits.detach()).sqrt().sum(),
        "0-d float tensor": lambda logits, labels: (logits - 1).pow(2).sum(1),
        "0-d float tensor, the mean": lambda logits, labels: 1.5,
    }
    for fragment, loss_fn in losses.items():
        _assert_refused(net, lambda loss_fn=loss_fn: train_step(net, x, y, loss_fn, update_order=order),
                        fragment)
    with torch.no_grad():  # finite logits 3e38 and -3e38 whose cross-entropy overflows
        out = deepnets.feedback_layers(net)[-1]
        out.weight.zero_()
        out.bias[0], out.bias[1] = 3e38, -3e38
    _assert_refused(net, lambda: train_step(net, x, torch.ones_like(y), make_loss("softmax", C),
                                            update_order=order), "the loss is inf")


def test_a_non_callable_loss_or_a_model_without_parameters_is_refused() -> None:
    x, y = _batch()
    net = _net()
    _assert_refused(net, lambda: train_step(net, x, y, "hinge"), "loss_fn must be callable")
    with pytest.raises(ValueError, match="no parameters"):
        train_step(nn.Flatten(), x, y, make_loss("hinge", C))


@pytest.mark.parametrize("model", list(MODELS))
def test_evaluate_refuses_nan_empty_and_mismatched_input(model: str) -> None:
    net, loss_fn = MODELS[model](), make_loss("hinge", C)
    x, y = _batch()
    for xb, yb, fragment in [(_poisoned("nan"), y, "NaN"), (_poisoned("inf"), y, "infinite"),
                             (x[:0], y[:0], "empty"), (x, y[:5], "6 examples but y 5"),
                             (x, y + C, "labels must lie in")]:
        _assert_refused(net, lambda xb=xb, yb=yb: evaluate_net(net, xb, yb, loss_fn), fragment)
    for batch_size in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            evaluate_net(net, x, y, loss_fn, batch_size=batch_size)
    loss, error = evaluate_net(net, x, y, loss_fn, batch_size=4)
    assert math.isfinite(loss) and 0 <= error <= 1


@pytest.mark.parametrize("model", list(MODELS))
def test_alignment_refuses_nan_empty_mismatched_input_and_nan_error_signals(model: str) -> None:
    net, loss_fn = MODELS[model](), make_loss("hinge", C)
    x, y = _batch()
    for xb, yb, fragment in [(_poisoned("nan"), y, "NaN"), (x[:0], y[:0], "empty"),
                             (x, y[:3], "6 examples but y 3"), (x, y - 1 - C, "labels")]:
        _assert_refused(net, lambda xb=xb, yb=yb: alignment(net, xb, yb, loss_fn), fragment)
    nan_error = lambda logits, labels: (logits - logits.detach()).sqrt().sum()
    with pytest.raises(ValueError, match="not finite"):
        alignment(net, x, y, nan_error)  # was reported as 0 degrees (perfect alignment)
    assert all(v is None or math.isfinite(v) for m in alignment(net, x, y, loss_fn).values()
               for v in m.values())


def test_angle_of_a_non_finite_vector_is_nan_not_zero() -> None:
    a = torch.tensor([1.0, 2.0])
    for bad in (math.nan, math.inf):
        assert math.isnan(angle_degrees(a, torch.tensor([1.0, bad])))
        assert math.isnan(angle_degrees(torch.tensor([bad, 1.0]), a))
    assert angle_degrees(a, a) == pytest.approx(0.0, abs=1e-5)
    assert angle_degrees(a, torch.zeros(2)) == 90.0


@pytest.mark.parametrize("name", ["hinge", "softmax"])
def test_make_loss_refuses_logits_of_another_class_count(name: str) -> None:
    loss_fn = make_loss(name, 5)
    y = torch.randint(0, 5, (4,))
    for logits, fragment in [(torch.rand(4, 10), r"shape \(N, 5\), got \(4, 10\)"),
                             (torch.rand(4, 3), r"got \(4, 3\)"), (torch.rand(4), r"got \(4,\)"),
                             (torch.rand(4, 5, 1), r"got \(4, 5, 1\)")]:
        with pytest.raises(ValueError, match=fragment):
            loss_fn(logits, y)
    for labels in (y[:3], y.float(), y[:, None]):
        with pytest.raises(ValueError, match="4 integer labels"):
            loss_fn(torch.rand(4, 5), labels)
    assert torch.isfinite(loss_fn(torch.rand(4, 5), y))
    for n in (2.5, True, 1, "10"):
        with pytest.raises(ValueError, match="n_classes"):
            make_loss(name, n)


def test_feedbacknet_forward_checks_the_input_shape_and_propagates_nan() -> None:
    net = _net()
    for bad in (torch.rand(2, 3, 5, 5), torch.rand(2, 1, 4, 4), torch.rand(3, 4, 4),
                torch.rand(2, 48)):
        with pytest.raises(ValueError, match=r"input must have shape \(N, 3, 4, 4\)"):
            net(bad)
    assert net(torch.rand(0, *SHAPE)).shape == (0, C)  # an empty batch is a valid forward
    out = net(_poisoned("nan"))  # a forward does not read values (captured steps): NaN shows
    assert torch.isnan(out[2]).any() and torch.isfinite(out[[0, 1, 3, 4, 5]]).all()


def test_trainstepper_refuses_a_bad_lr_at_its_first_step() -> None:
    net = _net()
    x = torch.randint(0, 256, (8, *SHAPE), dtype=torch.uint8)
    y = torch.randint(0, C, (8,))
    stepper = deepnets.TrainStepper(net, make_loss("hinge", C), x, y, lr=math.nan, batch_size=4,
                                    mode="off")
    _assert_refused(net, lambda: stepper.step(torch.arange(4)), "lr must be")


def test_a_bf16_step_with_a_non_finite_output_error_changes_nothing() -> None:
    """Under bf16 compute the loss sees a float32 copy of the logits: the check is on it."""
    net = _net()
    x, y = _batch()
    nan_error = lambda logits, labels: (logits - logits.detach()).sqrt().sum()
    for order in ORDERS:
        _assert_refused(net, lambda order=order: train_step(net, x, y, nan_error, precision="bf16",
                                                            update_order=order), "output error")
