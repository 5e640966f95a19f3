"""The one plotting style of the toolkit: fonts, sizes and the paper's colour code.

Figures 4-11 of the paper use green for BP, blue for URFB and red for FRFB (each protocol's
colour is part of its definition in :mod:`deepnets.experiments.protocols`), solid lines for training
error and dotted lines for validation error. Figure 12 uses one colour per ε.
Every figure function in ``figures`` and ``sims`` draws through this module.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures are files, never windows
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from deepnets.experiments.protocols import PROTOCOLS
from urfb_common import atomic_path

#: Line styles: training solid, validation dotted (Figures 4 and 7).
SPLIT_STYLES: dict[str, str] = {"train": "-", "val": ":"}

RC_PARAMS: dict[str, object] = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 7,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "lines.linewidth": 1.2,
    "figure.dpi": 120,
    "savefig.dpi": 150,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
plt.rcParams.update(RC_PARAMS)  # importing the plotting layer sets the toolkit's style


def method_color(protocol: str) -> str:
    """Colour of a training protocol (``bp``, ``bp-h``, ``urfb``, ``frfb``, ``urfb-50`` ...):
    the paper's colour code (Section 4, captions of Figures 4 and 7)."""
    key = protocol.lower()
    if key not in PROTOCOLS:
        raise ValueError(f"no colour for protocol {protocol!r}; known: {sorted(PROTOCOLS)}")
    return PROTOCOLS[key].color


def epsilon_colors(epsilons: Iterable[float]) -> dict[float, tuple[float, float, float, float]]:
    """One colour per ε for Figure 12, from FRFB (ε=0) to URFB (ε=1) along a sequential map."""
    eps = sorted({float(e) for e in epsilons})
    cmap = plt.get_cmap("viridis")
    hi = max(eps) if eps and max(eps) > 0 else 1.0
    return {e: cmap(0.9 * e / hi) for e in eps}


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 6.5, row_height: float = 2.2,
               **subplot_kw: object) -> tuple[Figure, object]:
    """A figure in the toolkit's style; returns ``(fig, axes)`` like ``plt.subplots``."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, row_height * nrows),
                             squeeze=False, **subplot_kw)
    return fig, axes


def legend(ax, **kwargs: object) -> None:
    """``ax.legend(**kwargs)`` when the axes hold a labelled artist (or ``handles`` are given);
    nothing otherwise, where matplotlib would warn "No artists with labels found" and draw an
    empty box (a panel whose runs lack that quantity)."""
    if kwargs.get("handles") or ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def save_figure(fig: Figure, stem: str | os.PathLike[str],
                formats: Iterable[str] = ("png", "pdf")) -> list[Path]:
    """Write ``fig`` as ``stem.<fmt>`` for each format, atomically, then close it."""
    paths = []
    for fmt in formats:
        dest = Path(f"{stem}.{fmt}")
        with atomic_path(dest) as tmp:
            fig.savefig(tmp, format=fmt, bbox_inches="tight")
        paths.append(dest)
    plt.close(fig)
    return paths


#: Opacity of the min-max band over seeds.
BAND_ALPHA = 0.18


def band(series: dict[int, dict[int, float]]) -> tuple[list[int], list[float], list[float], list[float]]:
    """``(x, mean, min, max)`` over the seeds of ``{seed: {x: value}}``, at the x every seed
    with values has."""
    per = [v for v in series.values() if v]
    if not per:
        return [], [], [], []
    xs = sorted(set.intersection(*(set(v) for v in per)))
    vals = [[v[x] for v in per] for x in xs]
    return xs, [sum(v) / len(v) for v in vals], [min(v) for v in vals], [max(v) for v in vals]


def plot_seeds(ax, series: dict[int, dict[int, float]], *, color: object, linestyle: str = "-",
               label: str | None = None, marker: str | None = None) -> None:
    """Draw ``{seed: {x: value}}``: the mean over seeds as a line with a min-max band, at the x
    every seed has; where some seeds go further (runs stopped at different epochs), each seed's
    own values there as thin lines. One seed is drawn as its own line, without a band."""
    per = {s: v for s, v in series.items() if v}
    if not per:
        return
    common, mean, lo, hi = band(per)
    ax.plot(common, mean, linestyle, color=color, label=label, marker=marker, markersize=3)
    if len(per) > 1:
        ax.fill_between(common, lo, hi, color=color, alpha=BAND_ALPHA, linewidth=0)
    last = common[-1] if common else None
    for v in per.values():
        tail = sorted(x for x in v if last is None or x >= last)
        if len(tail) > 1:
            ax.plot(tail, [v[x] for x in tail], linestyle, color=color, linewidth=0.6, alpha=0.7)
