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


def _saturated(_: FeedbackLayer, __: Tensor, out: Tensor) -> Tensor:
    """1 where sigma(h) = +-1, i.e. sigma'(h) = 0 (Remark 2)."""
    return out.abs() >= 1


def _scaled_preactivation(layer: FeedbackLayer, x: Tensor, _: Tensor) -> Tensor:
    """|s h| of the layer's units for its input ``x`` (reference path, compute dtype of x)."""
    bias = None if layer.bias is None else layer.bias.to(x.dtype)
    h = layer.equations().linear(x, layer.weight.to(x.dtype), bias)
    return (h * layer.sat_scale).abs()


#: The log's names of the measures (``log.jsonl``'s ``saturated`` and ``preactivation``).
MEASURES: dict[str, UnitMeasure] = {"saturated": _saturated, "preactivation": _scaled_preactivation}


@torch.no_grad()
def _means_per_layer(model: nn.Module, x: Tensor, batch_size: int, dropout: bool,
                     measures: dict[str, UnitMeasure]) -> dict[str, dict[str, float]]:
    """Per measure, per feedback layer with a saturation (not the output layer), keyed by its
    name (:func:`deepnets.nn.alignment.layer_names`), the mean of the measure over the images of
    ``x``, positions and channels, in one pass on the reference path (see
    :func:`saturated_fractions`)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    names = dict(zip(map(id, feedback_layers(model)), layer_names(model)))
    sums: dict[str, dict[str, float]] = {key: {} for key in measures}
    units: dict[str, int] = {}

    def add(layer: FeedbackLayer, inputs: tuple, out: Tensor) -> None:
        name = names[id(layer)]
        units[name] = units.get(name, 0) + out.numel()
        for key, measure in measures.items():
            total = float(measure(layer, inputs[0], out).double().sum())
            sums[key][name] = sums[key].get(name, 0.0) + total

    hooks = [m.register_forward_hook(add) for m in feedback_layers(model)
             if m.sat_scale is not None]
    try:
        with _on_reference_path(model, dropout):
            for start in range(0, len(x), batch_size):
                model(images_to_float(x[start:start + batch_size]))
    finally:
        for h in hooks:
            h.remove()
    return {key: {name: total / units[name] for name, total in per_layer.items()}
            for key, per_layer in sums.items()}


def _one_measure(model: nn.Module, x: Tensor, batch_size: int, dropout: bool,
                 name: str) -> dict[str, float]:
    """The measure :data:`MEASURES` names ``name``, per layer (see :func:`_means_per_layer`)."""
    return _means_per_layer(model, x, batch_size, dropout, {name: MEASURES[name]})[name]


def saturated_fractions(model: nn.Module, x: Tensor, batch_size: int = 1000,
                        dropout: bool = False) -> dict[str, float]:
    """Per feedback layer with a saturation (``sat_scale`` set; not the output layer), keyed
    by its name (:func:`deepnets.nn.alignment.layer_names`), the share of its units -- over
    the images of ``x``, positions and channels -- with sigma'(h) = 0, i.e. sigma(h) = +-1
    (Remark 2). Evaluation mode (no dropout; ``dropout``: the dropout layers drop as in
    training, from torch's global generator), computed on the reference path."""
    return _one_measure(model, x, batch_size, dropout, "saturated")


def preactivation_sizes(model: nn.Module, x: Tensor, batch_size: int = 1000,
                        dropout: bool = False) -> dict[str, float]:
    """Per feedback layer with a saturation, as :func:`saturated_fractions`, the mean of
    |s h| (h = W x + b, eq. (1); sigma(h) = clip(s h, -1, 1), Remark 2) over the images of
    ``x``, positions and channels: how far its units are from the threshold 1 at which they
    saturate. A rise with W's norm flat (``log.jsonl``'s ``norm``) comes from the layer's
    input or from W turning toward it."""
    return _one_measure(model, x, batch_size, dropout, "preactivation")


def saturation_record(model: nn.Module, x: Tensor) -> dict[str, dict[str, float]]:
    """:func:`saturated_fractions` and :func:`preactivation_sizes` of ``x`` in one forward pass,
    under the names of :data:`MEASURES` (the trainer's per-epoch ``log.jsonl`` fields)."""
    return _means_per_layer(model, x, 1000, False, MEASURES)
