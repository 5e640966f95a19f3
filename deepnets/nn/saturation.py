"""How many of a network's units are saturated: sigma'(h) = 0 (Remark 2), so no error passes.

With sigma(h) = clip(s h, -1, 1), a unit at |s h| > 1 sends no error down and its incoming
weights get no update from this image (eq. (2): delta_l = sigma'(h_l) R_{l+1} delta_{l+1}). A
layer whose units mostly sit there learns little and passes little: :func:`saturated_fractions`
measures that share per layer on a batch of images (``python -m deepnets.evaluate --saturation``).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import Tensor, nn

from deepnets.nn.alignment import layer_names
from deepnets.nn.layers import FeedbackLayer, feedback_layers, set_fast
from urfb_common import images_to_float


@contextmanager
def _on_reference_path(model: nn.Module, dropout: bool = False):
    """The model in eval mode (but its dropout layers with ``dropout``) on the reference path
    (each layer's sigma(h) before any pool), put back as it was afterwards."""
    layers = [m for m in model.modules() if hasattr(m, "fast")]
    was = [(m, m.fast) for m in layers]
    was_training = model.training
    model.eval()
    if dropout:
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.train()
    set_fast(model, False)
    if hasattr(model, "fast"):
        model.fast = False
    try:
        yield
    finally:
        for m, fast in was:
            m.fast = fast
        model.train(was_training)


@torch.no_grad()
def saturated_fractions(model: nn.Module, x: Tensor, batch_size: int = 1000,
                        dropout: bool = False) -> dict[str, float]:
    """Per feedback layer with a saturation (``sat_scale`` set; not the output layer), keyed
    by its name (:func:`deepnets.nn.alignment.layer_names`), the share of its units -- over
    the images of ``x``, positions and channels -- with sigma'(h) = 0, i.e. sigma(h) = +-1
    (Remark 2). Evaluation mode (no dropout; ``dropout``: the dropout layers drop as in
    training, from torch's global generator), computed on the reference path."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    names = dict(zip(map(id, feedback_layers(model)), layer_names(model)))
    counts: dict[str, list[int]] = {}

    def count(layer: FeedbackLayer, _: tuple, out: Tensor) -> None:
        hit = counts.setdefault(names[id(layer)], [0, 0])
        hit[0] += int((out.abs() >= 1).sum())
        hit[1] += out.numel()

    hooks = [m.register_forward_hook(count) for m in feedback_layers(model)
             if m.sat_scale is not None]
    try:
        with _on_reference_path(model, dropout):
            for start in range(0, len(x), batch_size):
                model(images_to_float(x[start:start + batch_size]))
    finally:
        for h in hooks:
            h.remove()
    return {name: hit / total for name, (hit, total) in counts.items()}
