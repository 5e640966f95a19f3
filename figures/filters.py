"""Figure 8 (Section 4.1): a trained untied layer's filters at four locations of the 32x32 grid.

An untied (locally connected) layer has its own filter at every output location, each updated
separately by delta_{l,i} x_{l-1,i+k}. The paper observes that after training the filters of one
output channel stay similar across locations. Beside the picture the sidecar gives that as a
number (:mod:`deepnets.nn.homogeneity`): the mean Pearson correlation between the same
channel's filters at different locations, next to the same number at initialisation and
between different channels (the chance level).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from deepnets.nn.homogeneity import chance_similarity, location_filters, similarity
from deepnets.training.rundir import CHECKPOINT, RunError
from figures.caption import write_sidecar
from figures.runs import MissingDataError, Run, RunSource, runs_of, select
from figures.style import new_figure, save_figure

CAPTION = "Corresponding filters extracted from the sparse connectivity matrix at 4 different " \
          "locations on the 32x32 grid."
#: Preference order of the run drawn: URFB as in the paper's text, then the other protocols.
PREFERRED = ("urfb", "frfb", "bp", "bp-h", "urfb-50", "frfb-50")
N_CHANNELS = 4


def four_locations(h: int, w: int) -> list[tuple[int, int]]:
    """Four well-separated grid points, at the quarter positions: (8, 8), (8, 24), ... on 32x32."""
    return [(h // 4, w // 4), (h // 4, 3 * w // 4), (3 * h // 4, w // 4), (3 * h // 4, 3 * w // 4)]


def first_untied(net: torch.nn.Module) -> int:
    """Index in ``net.weight_layers`` of its first untied layer, however made."""
    from deepnets.nn.layers import FeedbackUntied2d

    found = [i for i, layer in enumerate(net.weight_layers) if isinstance(layer, FeedbackUntied2d)]
    if not found:
        raise MissingDataError("the network has no untied layer")
    return found[0]


def homogeneity(net: torch.nn.Module) -> dict[str, float | int]:
    """Figure 8's numbers for the first untied layer of a trained network: the mean correlation
    of a channel's filters across interior locations (``trained``), the same for the network's
    start, rebuilt from its config and seed (``start``), and between different channels at one
    location (``chance``)."""
    from deepnets.nn.network import FeedbackNet

    index = first_untied(net)
    filters = location_filters(net.weight_layers[index])
    start = location_filters(FeedbackNet(**net.config).weight_layers[index])
    return {"layer": index, "trained": similarity(filters), "start": similarity(start),
            "chance": chance_similarity(filters)}


def _untied_network(runs: list[Run]) -> tuple[Run, torch.nn.Module]:
    """The first untied simpnet run (in :data:`PREFERRED` order) whose checkpoint loads, and its
    network; a damaged checkpoint is skipped with a one-line warning."""
    from deepnets.training.checkpoint import load_network

    for p in PREFERRED:
        run = select(runs, arch="simpnet", protocol=p, untied=True)
        if run is None or not (run.path / CHECKPOINT).is_file():
            continue
        try:
            return run, load_network(run.path)
        except RunError as exc:
            print(f"figures: skipping {run.path}: {exc}", file=sys.stderr)
    raise MissingDataError(f"no untied simpnet run with a readable {CHECKPOINT}")


def _image(f: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """A filter ``[in, k, k]`` as an image: RGB for 3 input channels, else their mean, scaled to [0, 1]."""
    img = np.transpose(f, (1, 2, 0)) if f.shape[0] == 3 else f.mean(axis=0)
    return np.clip((img - lo) / max(hi - lo, 1e-12), 0, 1)


def plot_figure8(runs: RunSource, out_stem: str | Path) -> list[Path]:
    """Figure 8: the first channels' filters of simpnet's untied layer at four grid locations."""
    run, net = _untied_network(runs_of(runs))
    numbers = homogeneity(net)
    index = int(numbers["layer"])
    filters = location_filters(net.weight_layers[index])
    h, w = filters.shape[:2]
    locs = four_locations(h, w)
    shown = similarity(filters, locs)
    trained, chance, at_init = numbers["trained"], numbers["chance"], numbers["start"]
    n_ch = min(N_CHANNELS, filters.shape[2])
    fig, axes = new_figure(n_ch, len(locs), width=1.2 * len(locs) + 0.6, row_height=1.25)
    for o in range(n_ch):
        row = np.stack([filters[r, c, o] for r, c in locs])
        for j, (r, c) in enumerate(locs):
            ax = axes[o, j]
            ax.imshow(_image(row[j], row.min(), row.max()), interpolation="nearest",
                      cmap=None if row.shape[1] == 3 else "gray")
            ax.set_xticks([])
            ax.set_yticks([])
            if o == 0:
                ax.set_title(f"({r}, {c})", fontsize=7)
            if j == 0:
                ax.set_ylabel(f"filter {o}", fontsize=7)
    fig.suptitle(f"{run.name}: layer {index} untied; similarity across locations "
                 f"{trained:.2f} (init {at_init:.2f}, chance {chance:.2f})", fontsize=7)
    paths = save_figure(fig, out_stem)
    notes = [
        (f"Similarity = mean Pearson correlation between one channel's filters at different "
         f"locations, averaged over the {filters.shape[2]} channels."),
        (f"Over all interior locations: trained {trained:.4f}; at initialisation (seed "
         f"{net.config.get('seed')}) {at_init:.4f}; between different channels at one location "
         f"(chance) {chance:.4f}."),
        f"Over the four locations shown {locs}: {shown:.4f}.",
        ("Rows: the layer's first channels; each row is scaled to its own range, so the four "
         "locations of one channel share one colour scale."),
    ]
    paths.append(write_sidecar(out_stem, "Figure 8", CAPTION, [run], notes))
    return paths
