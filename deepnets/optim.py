"""The training CLI's optimizers (issue 17, section 3): ``--optimizer sgd|momentum|adam``,
``--momentum``, ``--weight-decay`` and a step schedule (``--lr-steps``, ``--lr-gamma``), as
:mod:`torch.optim` objects that :func:`deepnets.engine.train_step` steps through
(``optimizer=``). The defaults are the paper's plain SGD (Section 4), which the trainer runs
without a torch optimizer (:func:`is_plain`), so that old runs resume exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["DEFAULT_MOMENTUM", "OPTIMIZERS", "build_optimizer", "is_plain"]

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
