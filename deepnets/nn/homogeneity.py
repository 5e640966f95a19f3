"""How alike an untied layer's filters are across locations (Section 4.1, Figure 8).

An untied (locally connected) layer has its own filter at every output location, each updated
separately by delta_{l,i} x_{l-1,i+k}. The paper observes that after training "the final
connectivity matrix retains a strong spatial homogeneity": the filters of one output channel
stay similar across locations. :func:`untied_homogeneity` gives that as a number per untied
layer: the mean Pearson correlation between the same channel's filters at different locations
(interior locations only, where no tap falls on the zero padding), next to the same number
between different channels at one location (the chance level). The trainer records it after
every epoch (``homogeneity`` in ``log.jsonl``, and ``homogeneity_start`` before the first
update), so Figure 8's numbers need no checkpoint.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from deepnets.nn.alignment import layer_names
from deepnets.nn.layers import FeedbackUntied2d, feedback_layers

__all__ = ["chance_similarity", "interior", "location_filters", "mean_pairwise_corr",
           "similarity", "untied_homogeneity", "untied_layers"]


def location_filters(layer: FeedbackUntied2d) -> np.ndarray:
    """Filters of an untied layer as ``[H, W, out, in, k, k]`` (its weight is ``[H*W, out, in*k*k]``)."""
    c, h, w = layer.in_shape
    k = layer.kernel_size
    weight = layer.weight.detach().float().cpu().numpy()
    return weight.reshape(h, w, layer.out_channels, c, k, k)


def interior(h: int, w: int, k: int) -> tuple[slice, slice]:
    """Rows and columns whose k x k window lies inside the grid ('same' padding of (k-1)/2)."""
    p = (k - 1) // 2
    return slice(p, h - (k - 1 - p)), slice(p, w - (k - 1 - p))


def mean_pairwise_corr(f: np.ndarray) -> float:
    """Mean Pearson correlation over all pairs of rows of ``f`` (``[n, d]``, n >= 2)."""
    z = f - f.mean(axis=1, keepdims=True)
    z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    n = z.shape[0]
    s = z.sum(axis=0)
    return float((s @ s - n) / (n * (n - 1)))


def _interior_flat(filters: np.ndarray) -> np.ndarray:
    """The interior locations' filters as ``[locations, out, in*k*k]``."""
    h, w, out = filters.shape[:3]
    rows, cols = interior(h, w, filters.shape[-1])
    return filters[rows, cols].reshape(-1, out, int(np.prod(filters.shape[3:])))


def similarity(filters: np.ndarray, locations: list[tuple[int, int]] | None = None) -> float:
    """Mean correlation of each channel's filters across locations, averaged over channels.

    ``filters``: ``[H, W, out, ...]``; ``locations`` (default: every interior location).
    """
    out = filters.shape[2]
    if locations is None:
        flat = _interior_flat(filters)
    else:
        flat = np.stack([filters[r, c] for r, c in locations]).reshape(len(locations), out, -1)
    return float(np.mean([mean_pairwise_corr(flat[:, o]) for o in range(out)]))


def chance_similarity(filters: np.ndarray) -> float:
    """Mean correlation between the filters of different channels at the same interior location."""
    return float(np.mean([mean_pairwise_corr(loc) for loc in _interior_flat(filters)]))


def untied_layers(model: nn.Module) -> list[tuple[str, FeedbackUntied2d]]:
    """The untied layers of ``model`` with their log names (:func:`layer_names`), input first."""
    return [(name, layer) for name, layer in zip(layer_names(model), feedback_layers(model))
            if isinstance(layer, FeedbackUntied2d)]


def untied_homogeneity(model: nn.Module) -> dict[str, dict[str, float]]:
    """Per untied layer, keyed by its log name: ``across_locations``, the mean correlation of a
    channel's filters across the interior locations (averaged over channels), and ``chance``,
    the mean correlation between different channels' filters at one location. A layer with
    fewer than 2 interior locations or 2 channels has no such pairs and is left out; empty for
    a model without untied layers."""
    out = {}
    for name, layer in untied_layers(model):
        filters = location_filters(layer)
        if _interior_flat(filters).shape[0] < 2 or filters.shape[2] < 2:
            continue
        out[name] = {"across_locations": similarity(filters), "chance": chance_similarity(filters)}
    return out
