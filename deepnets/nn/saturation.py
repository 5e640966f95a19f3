"""How many of a network's units are saturated: sigma'(h) = 0 (Remark 2), so no error passes.

With sigma(h) = clip(s h, -1, 1), a unit at |s h| > 1 sends no error down and its incoming
weights get no update from this image (eq. (2): delta_l = sigma'(h_l) R_{l+1} delta_{l+1}). A
layer whose units mostly sit there learns little and passes little: :func:`saturated_fractions`
measures that share per layer on a batch of images (``python -m deepnets.evaluate --saturation``),
:func:`preactivation_sizes` how close the units are to it: the mean of |s h|, which is 1 at the
threshold.
"""

from __future__ import annotations

from collections.abc import Callable
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


#: What a layer's hook measures per unit: from the layer, its input and its output sigma(h).
UnitMeasure = Callable[[FeedbackLayer, Tensor, Tensor], Tensor]


@torch.no_grad()
def _mean_per_layer(model: nn.Module, x: Tensor, batch_size: int, dropout: bool,
                    measure: UnitMeasure) -> dict[str, float]:
    """Per feedback layer with a saturation (not the output layer), keyed by its name
    (:func:`deepnets.nn.alignment.layer_names`), the mean of ``measure`` over the images of
    ``x``, positions and channels, on the reference path (see :func:`saturated_fractions`)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    names = dict(zip(map(id, feedback_layers(model)), layer_names(model)))
    sums: dict[str, list[float]] = {}

    def add(layer: FeedbackLayer, inputs: tuple, out: Tensor) -> None:
        total = sums.setdefault(names[id(layer)], [0.0, 0])
        total[0] += float(measure(layer, inputs[0], out).double().sum())
        total[1] += out.numel()

    hooks = [m.register_forward_hook(add) for m in feedback_layers(model)
             if m.sat_scale is not None]
    try:
        with _on_reference_path(model, dropout):
            for start in range(0, len(x), batch_size):
                model(images_to_float(x[start:start + batch_size]))
    finally:
        for h in hooks:
            h.remove()
    return {name: total / n for name, (total, n) in sums.items()}


def saturated_fractions(model: nn.Module, x: Tensor, batch_size: int = 1000,
                        dropout: bool = False) -> dict[str, float]:
    """Per feedback layer with a saturation (``sat_scale`` set; not the output layer), keyed
    by its name (:func:`deepnets.nn.alignment.layer_names`), the share of its units -- over
    the images of ``x``, positions and channels -- with sigma'(h) = 0, i.e. sigma(h) = +-1
    (Remark 2). Evaluation mode (no dropout; ``dropout``: the dropout layers drop as in
    training, from torch's global generator), computed on the reference path."""
    return _mean_per_layer(model, x, batch_size, dropout, lambda _, __, out: out.abs() >= 1)


def preactivation_sizes(model: nn.Module, x: Tensor, batch_size: int = 1000,
                        dropout: bool = False) -> dict[str, float]:
    """Per feedback layer with a saturation, as :func:`saturated_fractions`, the mean of
    |s h| (h = W x + b, eq. (1); sigma(h) = clip(s h, -1, 1), Remark 2) over the images of
    ``x``, positions and channels: how far its units are from the threshold 1 at which they
    saturate. A rise with W's norm flat (``log.jsonl``'s ``norm``) comes from the layer's
    input or from W turning toward it."""
    return _mean_per_layer(model, x, batch_size, dropout, _scaled_preactivation)


def _scaled_preactivation(layer: FeedbackLayer, x: Tensor, _: Tensor) -> Tensor:
    """|s h| of the layer's units for its input ``x`` (reference path, compute dtype of x)."""
    bias = None if layer.bias is None else layer.bias.to(x.dtype)
    h = layer.equations().linear(x, layer.weight.to(x.dtype), bias)
    return (h * layer.sat_scale).abs()
