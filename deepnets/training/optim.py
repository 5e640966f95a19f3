"""The training CLI's optimizers (issue 17, section 3): ``--optimizer sgd|momentum|adam``,
``--momentum``, ``--weight-decay`` and a step schedule (``--lr-steps``, ``--lr-gamma``), as
:mod:`torch.optim` objects that :func:`deepnets.training.engine.train_step` steps through
(``optimizer=``). The defaults are the paper's plain SGD (Section 4), which the trainer runs
without a torch optimizer (:func:`is_plain`), so that old runs resume exactly.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["DEFAULT_MOMENTUM", "OPTIMIZERS", "add_optimizer_flags", "build_optimizer", "is_plain"]

OPTIMIZERS = ("sgd", "momentum", "adam")
#: ``--momentum``'s default for ``--optimizer momentum`` (BioTorch's CIFAR recipes).
DEFAULT_MOMENTUM = 0.9


def is_plain(optimizer: str, weight_decay: float, lr_steps: Sequence[int]) -> bool:
    """Whether these settings are the paper's plain SGD with a fixed step (no torch optimizer)."""
    return optimizer == "sgd" and weight_decay == 0 and not lr_steps


def build_optimizer(
    net: nn.Module, optimizer: str, *, lr: float, momentum: float | None, weight_decay: float,
    lr_steps: Sequence[int], lr_gamma: float,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.MultiStepLR]:
    """The optimizer over all of ``net``'s parameters (W, b and R: a feedback layer's R is a
    parameter the rule writes a gradient for) and its schedule, stepped once per epoch: the
    learning rate is multiplied by ``lr_gamma`` after each epoch listed in ``lr_steps``."""
    params = list(net.parameters())
    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    elif optimizer in ("sgd", "momentum"):
        m = (DEFAULT_MOMENTUM if momentum is None else momentum) if optimizer == "momentum" else 0.0
        opt = torch.optim.SGD(params, lr=lr, momentum=m, weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    return opt, torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(lr_steps), gamma=lr_gamma)


def add_optimizer_flags(p: argparse.ArgumentParser | argparse._ArgumentGroup,
                        defaults: bool = False) -> None:
    """``--optimizer``, ``--momentum``, ``--weight-decay``, ``--lr-steps``, ``--lr-gamma``
    (``deepnets.train`` and ``deepnets.suite``; the values are checked by
    :class:`deepnets.training.config.TrainConfig`). ``defaults``: fill in the defaults (the
    suite); else a flag not given is left out (a resumed run keeps its config.json's)."""
    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    p.add_argument(
        "--optimizer", choices=OPTIMIZERS, default=default("sgd"),
        help="how W, b and R take the rules' directions: sgd (plain, the paper's), momentum "
        "(SGD with --momentum) or adam, as torch.optim optimizers (--update-order simultaneous "
        "only; docs/rules.md 'Rules under an optimizer') (default: sgd)",
    )
    p.add_argument(
        "--momentum", type=float, default=default(None),
        help=f"momentum of --optimizer momentum, in [0, 1) (default: {DEFAULT_MOMENTUM})",
    )
    p.add_argument(
        "--weight-decay", type=float, default=default(0.0),
        help="torch's weight decay on every parameter, W, b and R included (default: 0)",
    )
    p.add_argument(
        "--lr-steps", type=int, nargs="+", metavar="EPOCH", default=default(()),
        help="epochs after which the learning rate is multiplied by --lr-gamma, e.g. 100 150 200 "
        "(default: none, a fixed step)",
    )
    p.add_argument(
        "--lr-gamma", type=float, default=default(0.1),
        help="factor of the learning rate at each of --lr-steps (default: 0.1)",
    )
