"""The figure of ``python -m sims.rule_sweep``: every engine rule in Section 5's linear dynamics.

Left: time for e(t) to reach the threshold, in units τ_k, against depth, one line per rule
(median over seeds) with its interquartile band; a run that never reached it counts as +inf
(off the plot). Right: the mean over hidden layers of the angle between each layer's error and
BP's at that time (median over seeds).
"""

from __future__ import annotations

import csv
import math
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from figures.style import method_color, new_figure, save_figure
from sims.depth_stats import quartiles

NEED = {"depth", "rule", "params", "seed", "t_threshold", "tau", "angle_1"}
#: line styles of a rule's parameter variants, in the order they appear
STYLES = ("-", "--", ":", "-.")


def _read(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        fields = set(reader.fieldnames or [])
    if not NEED <= fields:
        raise ValueError(f"rule_sweep: {path} lacks columns {','.join(sorted(NEED - fields))}")
    if not rows:
        raise ValueError(f"rule_sweep: {path} has no rows")
    return rows


def _label(r: dict[str, str]) -> str:
    return r["rule"] + (f"({r['params']})" if r["params"] else "")


def draw_rule_sweep(csv_path: str | os.PathLike[str]) -> Figure:
    """The figure from a ``rule_sweep.csv`` (columns of :func:`sims.rule_sweep.rows_csv`)."""
    rows = _read(csv_path)
    times: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    angles: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        k, lab = int(r["depth"]), _label(r)
        t = float(r["t_threshold"] or "nan")
        times[lab][k].append(t / float(r["tau"]) if math.isfinite(t) else math.inf)
        hidden = [float(r[f"angle_{l}"] or "nan") for l in range(1, k)]
        angles[lab][k].append(float(np.nanmean(hidden)) if hidden else math.nan)
    fig, axes = new_figure(1, 2, width=10.0, row_height=4.0)
    variant: dict[str, int] = defaultdict(int)
    for lab, by_depth in times.items():
        name = lab.split("(")[0]
        style = STYLES[variant[name] % len(STYLES)]
        variant[name] += 1
        ks = sorted(by_depth)
        q = np.array([quartiles(np.array(by_depth[k])) for k in ks])
        color = method_color(name)
        axes[0, 0].fill_between(ks, q[:, 0], q[:, 2], color=color, alpha=0.12, linewidth=0)
        axes[0, 0].plot(ks, q[:, 1], style, marker="o", markersize=3, color=color, label=lab)
        med = [np.nanmedian(angles[lab][k]) if np.isfinite(angles[lab][k]).any() else np.nan
               for k in ks]
        axes[0, 1].plot(ks, med, style, marker="o", markersize=3, color=color, label=lab)
    _time_scale(axes[0, 0])
    axes[0, 0].set_xlabel("depth k")
    axes[0, 0].set_ylabel("time to threshold / τ_k")
    axes[0, 1].set_xlabel("depth k")
    axes[0, 1].set_ylabel("angle to BP's error, mean over hidden layers (°)")
    axes[0, 1].set_ylim(0, 95)
    axes[0, 1].legend(frameon=False, fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def _time_scale(ax: Axes) -> None:
    """A log scale for the times when some were reached; none reached: a linear axis that says
    so (a log scale of no positive value cannot be drawn)."""
    if any(y > 0 and math.isfinite(y) for line in ax.get_lines() for y in line.get_ydata()):
        ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "no rule reached the threshold", transform=ax.transAxes,
                ha="center", va="center")


def plot_rule_sweep(csv_path: str | os.PathLike[str],
                    out_stem: str | os.PathLike[str]) -> list[Path]:
    """Draw the figure from ``csv_path``; writes ``out_stem.png``/``.pdf`` atomically."""
    return save_figure(draw_rule_sweep(csv_path), out_stem)
