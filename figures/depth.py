"""The depth figure of ``python -m sims.depth_sweep`` (Section 5's linear dynamics against depth).

Left: the time to reach the threshold of FRFB (ε = 0) and of BP, each divided by URFB's (the
largest ε) within a seed, against depth: median line and interquartile band (a ratio above 1:
slower than URFB; a run that never reached the threshold counts as +inf, off the plot). Right: one panel per ε, the final correlation of W_l and R_lᵗ against depth,
one line per layer l (median over seeds), the top layer l = k drawn black.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sims.depth_stats import Times, collect, paired_ratios, quartiles
from figures.style import epsilon_colors, method_color, new_figure, save_figure

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


def _alignment(ax: Axes, rows: list[dict[str, str]], eps: float, layers: int) -> None:
    by_depth: dict[int, list[list[float]]] = defaultdict(list)
    for r in rows:
        if r["method"] == "feedback" and float(r["epsilon"]) == eps:
            k = int(r["depth"])
            by_depth[k].append([float(r[f"corr_{l}"]) for l in range(1, k + 1)])
    ks = sorted(by_depth)
    med = {k: np.median(np.array(by_depth[k]), axis=0) for k in ks}
    colors = epsilon_colors(range(1, layers + 1))
    for l in range(1, layers + 1):
        have = [k for k in ks if k >= l]
        if have:
            ax.plot(have, [med[k][l - 1] for k in have], ".-", color=colors[float(l)],
                    label=f"l={l}")
    ax.plot(ks, [med[k][-1] for k in ks], "k--", label="l=k (top)")
    ax.set_ylim(-0.1, 1.05)
    ax.set_title(f"ε={eps:g}" + {0.0: " (FRFB)"}.get(eps, ""))
    ax.set_xlabel("depth k")


def draw_depth(csv_path: str | os.PathLike[str]) -> Figure:
    """The depth figure from a ``depth_sweep.csv`` (columns of :func:`sims.depth_sweep.rows_csv`)."""
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
    ax.legend(frameon=False)
    for col, eps in enumerate(eps_values, start=1):
        _alignment(axes[0, col], rows, eps, layers)
    axes[0, 1].set_ylabel("final corr(W_l, R_lᵗ)")
    axes[0, -1].legend(frameon=False, fontsize=6, loc="lower left")
    fig.tight_layout()
    return fig


def plot_depth(csv_path: str | os.PathLike[str], out_stem: str | os.PathLike[str]) -> list[Path]:
    """Draw the depth figure from ``csv_path``; writes ``out_stem.png``/``.pdf`` atomically."""
    return save_figure(draw_depth(csv_path), out_stem)
