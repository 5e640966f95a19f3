"""DFA: direct feedback alignment (Nokland 2016): no chained feedback; each hidden layer receives
B_l e, e the output layer's error (the loss gradient at its output) and B_l fixed and random
(Glorot-uniform with fans (C, n_l), drawn from the layer's ``direct_seed``; connectivity masks B
too). Where B_l e enters depends on where the nonlinearity lives (the layers' wiring,
:func:`deepnets.nn.layers.link_direct_feedback`): in the paper's layers (sigma inside the layer)
B_l e is shaped like the layer's output and delta_l = (B_l e) (.) sigma'(h_l); in converted
models each layer sends B_l e, shaped like its *input*, down to the layer below. The update order
means nothing for DFA: no error travels through weights that change."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from deepnets.rules.base import Rule, Start

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["DFA"]


class DFA(Rule):
    name = "dfa"
    label = "DFA"
    color = "tab:gray"
    order = 7
    summary = "hidden delta from B_l e"
    source = "Nokland 2016"
    error_path = "direct"
    symmetric_init_applies = False

    def start(self, start: Start) -> dict[str, Tensor]:
        """The seed of B_l (a buffer, so that a checkpoint rebuilds B_l)."""
        import torch  # only when a layer is built: the registry itself loads without torch

        seed = torch.randint(0, 2**62, (1,), generator=start.generator)
        return {"direct_seed": seed.reshape(()).to(torch.int64)}

    def direct_matrix(self, seed: Tensor, n_classes: int, shape: tuple[int, ...],
                      connectivity: float, device: Any, dtype: Any, cache: dict) -> Tensor:
        """B_l of shape (C, prod(shape)): Glorot-uniform with fans (C, prod(shape)), drawn from
        ``seed`` and masked with ``connectivity``; kept in ``cache`` per shape, device and
        dtype, and redrawn when ``seed`` is written or replaced (a loaded state). A redrawn B_l
        overwrites the cached tensor in place, so that a captured CUDA graph
        (:mod:`deepnets.training.capture`) reads the new one once an eager step has redrawn it."""
        import torch

        n = math.prod(shape)
        key = (n_classes, n, str(device), dtype)
        drawn_from, version, b = cache.get(key, (None, None, None))
        if drawn_from is not seed or version != seed._version:
            gen = torch.Generator().manual_seed(int(seed))  # a host read: first step only
            bound = math.sqrt(6.0 / (n_classes + n))
            fresh = (torch.rand(n_classes, n, generator=gen) * 2 - 1) * bound
            if connectivity < 1.0:
                fresh = fresh * (torch.rand(n_classes, n, generator=gen) < connectivity)
            fresh = fresh.to(device=device, dtype=dtype)
            b = fresh if b is None else b.copy_(fresh)
            cache[key] = (seed, seed._version, b)
        return b
