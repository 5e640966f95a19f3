"""The depth figure of ``python -m sims.depth_sweep`` (Section 5's linear dynamics against depth).

Left: the time to reach the threshold of FRFB (ε = 0) and of BP, each divided by URFB's (the
largest ε) within a seed, against depth: median line and interquartile band (a ratio above 1:
slower than URFB; a run that never reached the threshold counts as +inf, off the plot). Right: one heat map per ε of the final correlation of W_l and R_lᵗ (median over seeds),
depth k against layer l.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from figures.style import legend, method_color, new_figure, save_figure
from sims.depth_stats import Times, collect, paired_ratios, quartiles

NEED = {"depth", "method", "epsilon", "seed", "t_threshold", "reached"}


def _read(path: str | os.PathLike[str]) -> tuple[list[dict[str, str]], int]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        fields = list(reader.fieldnames or [])
    if not NEED <= set(fields) or not any(f.startswith("corr_") for f in fields):
        raise ValueError(f"depth: {path} lacks columns {','.join(sorted(NEED))},corr_1..corr_K")
    if not rows:
        raise ValueError(f"depth: {path} has no rows")
    return rows, sum(f.startswith("corr_") for f in fields)


def _times(rows: list[dict[str, str]]) -> Times:
    return collect((int(r["depth"]), r["method"], float(r["epsilon"] or "nan"), int(r["seed"]),
                    float(r["t_threshold"] or "nan")) for r in rows)


def _band(ax: Axes, times: Times, num: tuple[str, float | None], ref: tuple[str, float],
          color: str, label: str) -> None:
    """Median line and interquartile band of the per-seed ratios t(num)/t(ref) against depth."""
    ks = sorted({k for k, _, _ in times})
    q = np.array([quartiles(paired_ratios(times, k, num, ref)) for k in ks])
    ax.fill_between(ks, q[:, 0], q[:, 2], color=color, alpha=0.25, linewidth=0)
    ax.plot(ks, q[:, 1], "o-", color=color, label=label)


def alignment_grid(rows: list[dict[str, str]], eps: float, layers: int) -> tuple[list[int],
                                                                               np.ndarray]:
    """Depths and a (depths × layers) grid of the median final corr(W_l, R_lᵗ) over seeds at
    ``eps``; nan where layer l does not exist (l > k)."""
    by_depth: dict[int, list[list[float]]] = defaultdict(list)
    for r in rows:
        if r["method"] == "feedback" and float(r["epsilon"]) == eps:
            k = int(r["depth"])
            by_depth[k].append([float(r[f"corr_{l}"] or "nan") for l in range(1, k + 1)])
    ks = sorted(by_depth)
    grid = np.full((len(ks), layers), np.nan)
    for i, k in enumerate(ks):
        grid[i, :k] = np.nanmedian(np.array(by_depth[k]), axis=0)
    return ks, grid


def _alignment(ax: Axes, rows: list[dict[str, str]], eps: float, layers: int) -> AxesImage:
    """Heat map of :func:`alignment_grid`: depth k (rows) against layer l (columns)."""
    ks, grid = alignment_grid(rows, eps, layers)
    image = ax.imshow(grid, vmin=0.0, vmax=1.0, cmap="viridis", origin="lower", aspect="auto",
                      extent=(0.5, layers + 0.5, -0.5, len(ks) - 0.5))
    for i in range(len(ks)):
        for l in range(layers):
            if np.isfinite(grid[i, l]):
                ax.text(l + 1, i, f"{grid[i, l]:.2f}", ha="center", va="center", fontsize=5,
                        color="white" if grid[i, l] < 0.6 else "black")
    ax.set_yticks(range(len(ks)), [str(k) for k in ks])
    ax.set_xticks(range(1, layers + 1))
    ax.set_title(f"corr(W_l, R_lᵗ), ε={eps:g}" + {0.0: " (FRFB)"}.get(eps, ""))
    ax.set_xlabel("layer l")
    return image


def draw_depth(csv_path: str | os.PathLike[str]) -> Figure:
    """The depth figure from a ``depth_sweep.csv`` (columns of :func:`sims.depth.rows_csv`)."""
    rows, layers = _read(csv_path)
    eps_values = sorted({float(r["epsilon"]) for r in rows if r["method"] == "feedback"})
    eps_ref = max(eps_values)
    fig, axes = new_figure(1, 1 + len(eps_values), width=3.2 * (1 + len(eps_values)),
                           row_height=3.0)
    ax, times, ref = axes[0, 0], _times(rows), ("feedback", eps_ref)
    _band(ax, times, ("feedback", 0.0), ref, method_color("frfb"), f"FRFB / URFB (ε={eps_ref:g})")
    if any(r["method"] == "bp" for r in rows):
        _band(ax, times, ("bp", None), ref, method_color("bp"), "BP / URFB")
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_yscale("log")
    ax.set_xlabel("depth k")
    ax.set_ylabel("time-to-threshold ratio")
    legend(ax, frameon=False)
    for col, eps in enumerate(eps_values, start=1):
        image = _alignment(axes[0, col], rows, eps, layers)
    axes[0, 1].set_ylabel("depth k")
    fig.tight_layout()
    fig.colorbar(image, ax=list(axes[0, 1:]), fraction=0.02, pad=0.01,
                 label="final corr (median over seeds)")
    return fig


def plot_depth(csv_path: str | os.PathLike[str], out_stem: str | os.PathLike[str]) -> list[Path]:
    """Draw the depth figure from ``csv_path``; writes ``out_stem.png``/``.pdf`` atomically."""
    return save_figure(draw_depth(csv_path), out_stem)
