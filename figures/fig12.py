"""Figure 12 (Section 5.1): log-error and W–Rᵗ correlations of BP and the feedback systems (9).

Layout of the paper's figure: one column per run; top row log10 e(t), one curve per algorithm
(BP and each ε); the rows below the correlation of W_l and R_lᵗ for l = k, ..., 1 (top layer
first), one curve per ε. BP keeps the paper's BP colour; ε values share one sequential map.

Solver noise: with relative tolerance rtol the weights carry errors of about rtol, so e(t) is
only resolved down to about rtol²·e(0). Measured on the default sweep (rtol 1e-7 against
1e-11), the curves agree within 10 % down to 1e-14..1e-13 · e(0) for the feedback systems and
1.2e-12 · e(0) for BP; below that they wander (the ~1e-11 dips of the rebuilt Figure 12). Each
curve is therefore drawn solid down to NOISE_FACTOR·rtol²·e(0) and faint and dotted below it,
with a grey line marking that floor.
"""

from __future__ import annotations

import csv
import math
import os
import re
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from figures.style import epsilon_colors, legend, method_color, new_figure, save_figure
from sims.linear import DEFAULT_RTOL
from urfb_common import clipped

#: e(t) below NOISE_FACTOR·rtol²·e(0) is solver noise (measured, module docstring)
NOISE_FACTOR = 200.0


#: The methods of a ``curves.csv``: BP, and the feedback system (9) at one epsilon per row.
METHODS = ("bp", "feedback")
#: A correlation's bound: 1, with room for rounding (``sims.linear.pearson`` of nearly
#: collinear matrices gives 1.0000000000000002; the sweep writes it as it is).
CORR_BOUND = 1.0 + 1e-9


def _read_curves(path: str | os.PathLike[str]) -> tuple[list[str], list[dict[str, str]]]:
    """The columns and rows of a ``curves.csv``; ValueError naming the file (and the line and
    field) unless it is one as ``sims.epsilon_sweep`` writes it (:func:`_row_problem`)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = []
            for row in reader:
                rows.append((reader.line_num, row))  # the file's line, blank lines counted
            fields = list(reader.fieldnames or [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"curves: {path} is not a CSV text file ({clipped(str(exc), 80)})"
                         ) from None
    need = {"run", "method", "epsilon", "t", "error"}
    if not need <= set(fields) or not any(f.startswith("corr_") for f in fields):
        raise ValueError(f"curves: {path} lacks columns run,method,epsilon,t,error,corr_1..corr_k")
    if not rows:
        raise ValueError(f"curves: {path} has no rows")
    for line, row in rows:
        problem = _row_problem(row, len(fields))
        if problem:
            raise ValueError(f"curves: {path} line {line}: {problem}")
    return fields, [row for _, row in rows]


def _row_problem(row: dict[str | None, str | None], width: int) -> str | None:
    """What is wrong with one row of a ``curves.csv`` (None: nothing): as many fields as the
    header; an integer run; a method of :data:`METHODS`; for ``feedback`` a finite epsilon >= 0;
    a finite t; an error >= 0 and correlations in [-1, 1], each finite or empty (the sweep
    writes a non-finite value, and BP's correlations, as an empty field)."""
    if None in row or None in row.values():  # csv.DictReader's marks of a long or short row
        n = sum(v is not None for k, v in row.items() if k is not None) + len(row.get(None) or [])
        return f"has {n} fields, the header {width}"
    if not re.fullmatch(r"[0-9]+", row["run"].strip()):
        return f"run {row['run']!r:.40} is not an integer"
    if row["method"] not in METHODS:
        return f"method {row['method']!r:.40} is not one of {', '.join(METHODS)}"
    checks = [("epsilon", 0.0, math.inf, False)] if row["method"] == "feedback" else []
    checks += [("t", -math.inf, math.inf, False), ("error", 0.0, math.inf, True)]
    checks += [(k, -CORR_BOUND, CORR_BOUND, True) for k in row if str(k).startswith("corr_")]
    for key, low, high, may_be_empty in checks:
        text = str(row[key]).strip()
        if text == "" and may_be_empty:
            continue
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and low <= value <= high):
            return f"{key} {row[key]!r:.40} is not a finite number{_range(low, high)}"
    return None


def _range(low: float, high: float) -> str:
    """`` >= 0``, `` in [-1, 1]`` or nothing: the bounds of a number in a message."""
    if math.isinf(low) and math.isinf(high):
        return ""
    return f" >= {low:g}" if math.isinf(high) else f" in [{low:g}, {high:g}]"


def _num(s: str) -> float:
    return float(s) if s != "" else np.nan


def plot_figure12(curves: str | os.PathLike[str], out_stem: str | os.PathLike[str],
                  rtol: float = DEFAULT_RTOL) -> list[Path]:
    """Draw Figure 12 from a ``curves.csv`` (columns run,method,epsilon,t,error,corr_1..corr_k)
    integrated with relative tolerance ``rtol``.

    Writes ``out_stem.png`` and ``out_stem.pdf`` atomically and returns their paths.
    """
    return save_figure(draw_figure12(curves, rtol), out_stem)


def noise_floor(error0: float, rtol: float) -> float:
    """The level NOISE_FACTOR·rtol²·e(0) below which e(t) is solver noise."""
    return NOISE_FACTOR * rtol**2 * error0


def _log_error(ax: Axes, t: np.ndarray, err: np.ndarray, floor: float, color: object,
               label: str) -> None:
    """log10 e(t): solid until e first falls under ``floor``, faint and dotted from there on."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_e = np.log10(err)
    under = err < floor
    cut = int(np.argmax(under)) if under.any() else t.size
    ax.plot(t[:cut], log_e[:cut], color=color, label=label)
    if cut < t.size:
        start = max(cut - 1, 0)
        ax.plot(t[start:], log_e[start:], color=color, linestyle=":", alpha=0.35)


def draw_figure12(curves: str | os.PathLike[str], rtol: float = DEFAULT_RTOL) -> Figure:
    """The Figure 12 layout from a ``curves.csv``: (1 + k) rows x one column per run (Section 5.1)."""
    fields, rows = _read_curves(curves)
    k = sum(f.startswith("corr_") for f in fields)
    runs = sorted({int(r["run"]) for r in rows})
    eps_values = sorted({float(r["epsilon"]) for r in rows if r["method"] == "feedback"})
    colors = epsilon_colors(eps_values) if eps_values else {}

    series: dict[tuple[int, str, float], list[dict[str, str]]] = {}
    for r in rows:
        eps = float(r["epsilon"]) if r["method"] == "feedback" else np.nan
        series.setdefault((int(r["run"]), r["method"], eps), []).append(r)

    fig, axes = new_figure(1 + k, len(runs), width=3.0 * len(runs) + 0.5, row_height=1.9,
                           sharex=True)
    for col, run in enumerate(runs):
        top = axes[0, col]
        top.set_title(f"run {run}")
        floors: list[float] = []
        for (r, method, eps), pts in sorted(series.items(), key=lambda kv: (kv[0][1], kv[0][2])):
            if r != run:
                continue
            t = np.array([_num(p["t"]) for p in pts])
            err = np.array([_num(p["error"]) for p in pts])
            floor = noise_floor(float(err[0]), rtol)
            floors.append(floor)
            if method == "bp":
                _log_error(top, t, err, floor, method_color("bp"), "BP")
                continue
            name = {0.0: " (FRFB)", 1.0: " (URFB)"}.get(eps, "")
            _log_error(top, t, err, floor, colors[eps], f"ε={eps:g}{name}")
            for row, layer in enumerate(range(k, 0, -1), start=1):
                corr = np.array([_num(p[f"corr_{layer}"]) for p in pts])
                axes[row, col].plot(t, corr, color=colors[eps])
        top.axhline(np.log10(max(floors)), color="grey", linewidth=0.8, linestyle="--",
                    label=f"solver noise ({NOISE_FACTOR:g}·rtol²·e(0))")
        for row, layer in enumerate(range(k, 0, -1), start=1):
            axes[row, col].set_ylim(-0.1, 1.05)
            if col == 0:
                axes[row, col].set_ylabel(f"corr(W{layer}, R{layer}ᵗ)")
        axes[-1, col].set_xlabel("t")
    axes[0, 0].set_ylabel("log10 error")
    legend(axes[0, -1], loc="upper right", frameon=False)
    fig.tight_layout()
    return fig
