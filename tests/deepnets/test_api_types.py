"""Wrong types and out-of-range numbers through the Python API (issue 19, the next sweep):
each public constructor and step refuses them with a one-line ValueError before anything is
built or any weight changes. ``bool("false")`` is True and ``int(1.5)`` is 1, so a value that
is coerced instead of checked silently means something else; a huge step overflowed float32
in a torch RuntimeError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from deepnets import FeedbackNet, convert, make_loss, train_step

FLAG_BAD = ["false", 0, 1, None, 2.0]
NUMBER_BAD = [float("nan"), float("inf"), -1.0, 1e308, "0.5", None, True]
SEED_BAD = [1.5, "1", -1, 2**64, True, None]
ARGUMENTS: dict[str, list[Any]] = {
    "fast": FLAG_BAD, "symmetric_init": FLAG_BAD, "seed": SEED_BAD, "connectivity": NUMBER_BAD,
}


def _net(**kwargs: Any) -> FeedbackNet:
    return FeedbackNet("full 8; output", in_shape=(4,), n_classes=3, **kwargs)


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.Sigmoid(), nn.Linear(8, 3))


BUILDERS: dict[str, tuple[Callable[..., Any], dict[str, list[Any]]]] = {
    "FeedbackNet": (_net, {**ARGUMENTS, "sat_scale": NUMBER_BAD,
                           "untied": ["0", [0.5], [True]], "frozen": ["01", [0.5], [True]]}),
    "convert": (lambda **kw: convert(_model(), **kw), {**ARGUMENTS, "strict": FLAG_BAD}),
}
CASES = [(where, name, value) for where, (_, args) in BUILDERS.items()
         for name, values in args.items() for value in values]


@pytest.mark.parametrize(("where", "name", "value"), CASES,
                         ids=[f"{w} {n}={v!r}"[:60] for w, n, v in CASES])
def test_every_builder_refuses_every_wrong_type_and_range(where: str, name: str,
                                                          value: Any) -> None:
    build = BUILDERS[where][0]
    with pytest.raises(ValueError, match=name) as info:
        build(**{name: value})
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def test_the_builders_still_take_good_values() -> None:
    net = _net(fast=False, symmetric_init=True, seed=2**63 - 1, connectivity=0.5, sat_scale=2.0,
               frozen=[0])
    assert net.fast is False
    assert len(convert(_model(), fast=False, strict=True, seed=3, connectivity=1.0)) == 3


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(5, 4, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 0, 1])


STEP_CASES: dict[str, Callable[[FeedbackNet], dict[str, Any]]] = {
    "lr=1e308": lambda net: {"lr": 1e308},
    "lr=1e7": lambda net: {"lr": 1e7},
    "bias_lr_scale=1e308": lambda net: {"bias_lr_scale": 1e308},
    "optimizer lr nan": lambda net: {"optimizer": torch.optim.SGD(net.parameters(), lr=float("nan"))},
    "optimizer momentum inf": lambda net: {
        "optimizer": torch.optim.SGD(net.parameters(), lr=0.1, momentum=float("inf"))},
    "optimizer dampening nan": lambda net: {"optimizer": torch.optim.SGD(
        net.parameters(), lr=0.1, momentum=0.9, dampening=float("nan"))},
}


@pytest.mark.parametrize("case", STEP_CASES)
def test_train_step_refuses_steps_that_overflow_or_poison_the_weights(case: str) -> None:
    net = _net(seed=1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = _batch()
    kwargs = STEP_CASES[case](net)  # torch itself accepts these optimizers
    with pytest.raises(ValueError) as info:
        train_step(net, x, y, make_loss("hinge", 3), **kwargs)
    assert "\n" not in str(info.value)
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize("mu", [float("nan"), float("inf"), -0.5, 2.0, "0.5", True])
def test_make_loss_refuses_a_mu_outside_0_1(mu: Any) -> None:
    with pytest.raises(ValueError, match="mu must be a number in"):
        make_loss("hinge", 3, mu=mu)
