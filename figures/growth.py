"""Figure 19 (not in the paper): how simpnet's weights grow and its hidden units saturate.

Remark 2's sigma is clipped at +-1, so a unit whose |s h| passes 1 sends no error down
(sigma'(h) = 0). The paper does not say how large W and R become under each rule. Per weight
layer of tied simpnet (columns, input to output), the top row draws the Frobenius norms |W|
(solid) and |R| (dashed; none for BP) over epochs, from ``log.jsonl``'s ``norm``, the bottom row
the share of the layer's units saturated on the probe's validation images (``saturated``; the
output layer has no saturation), one colour per Section 4 protocol (mean over seeds, min-max
band). The sidecar lists the numbers at epoch 1 and at the last epoch all of a protocol's seeds
reached. Runs whose logs lack ``norm`` (trained before it was logged) are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.ticker import MaxNLocator

from deepnets.experiments.protocols import PROTOCOLS
from figures.caption import write_sidecar
from figures.runs import MissingDataError, RunSource, Seeds, runs_of, select_seeds
from figures.style import legend, method_color, new_figure, plot_seeds, save_figure

ARCH = "simpnet"
CAPTION = ("Not in the paper. Per weight layer of simpnet, |W| (solid) and |R| (dashed) over "
           "epochs, and the share of its units saturated, sigma'(h) = 0 (Remark 2), on "
           "validation images.")


def _norm(row: dict[str, Any], layer: int, which: int) -> float | None:
    """|W| (``which`` 0) or |R| (1) of weight layer ``layer`` in one log row, or None."""
    norms = row.get("norm") or []
    return norms[layer][which] if layer < len(norms) else None


def _saturated(row: dict[str, Any], name: str) -> float | None:
    return (row.get("saturated") or {}).get(name)


def _measures(i: int, layer: str) -> dict[str, Callable[[dict[str, Any]], float | None]]:
    """What Figure 19 draws of weight layer ``i`` (named ``layer``), each read from a log row."""
    return {"|W|": lambda row: _norm(row, i, 0), "|R|": lambda row: _norm(row, i, 1),
            "saturated": lambda row: _saturated(row, layer)}


def _groups(source: RunSource) -> dict[str, Seeds]:
    """Per Section 4 protocol, tied simpnet's CIFAR-10 runs whose logs hold ``norm``."""
    runs = [r for r in runs_of(source) if any(row.get("norm") for row in r.log)]
    groups = {name: select_seeds(runs, arch=ARCH, protocol=name)
              for name, p in PROTOCOLS.items() if p.figures}
    found = {name: g for name, g in groups.items() if g is not None}
    if not found:
        raise MissingDataError(f"no tied CIFAR-10 {ARCH} run whose log records the weights' "
                               "norms (log.jsonl's 'norm', logged since issue 20)")
    return found


def _layer_count(groups: dict[str, Seeds]) -> int:
    return min(len(next(row["norm"] for row in r.log if row.get("norm")))
               for g in groups.values() for r in g.runs)


def _at(series: dict[int, dict[int, float]], epoch: int) -> str:
    """``mean [per seed]`` of ``{seed: {epoch: value}}`` at ``epoch`` (3 significant digits);
    a seed that lacks the epoch is ``-`` in the list and the mean is over the others."""
    values = [per.get(epoch) for per in series.values()]
    known = [v for v in values if v is not None]
    if not known:
        return "-"
    listed = ", ".join("-" if v is None else f"{v:.3g}" for v in values)
    return f"{sum(known) / len(known):.3g} [{listed}]"


def _numbers(name: str, group: Seeds, layers: list[str]) -> list[str]:
    """The sidecar's lines for one protocol: per layer, |W|, |R| and the saturated share at
    epoch 1 and at the last epoch every seed reached."""
    last = group.common_epoch
    label = PROTOCOLS[name].label
    lines = []
    for i, layer in enumerate(layers):
        parts = []
        for title, get in _measures(i, layer).items():
            series = group.layer_series(get)
            if any(series.values()):
                parts.append(f"{title} {_at(series, 1)} at epoch 1, {_at(series, last)} at {last}")
        lines.append(f"{label}, {layer}: " + "; ".join(parts))
    return lines


def plot_figure19(runs: RunSource, out_stem: str | Path) -> list[Path]:
    """Figure 19: per simpnet weight layer, |W| and |R| (top) and the saturated share (bottom)
    against epochs, one colour per protocol."""
    groups = _groups(runs)
    n = _layer_count(groups)
    layers = next(iter(groups.values())).first.layer_names(n)
    fig, axes = new_figure(2, n, width=3.0 * n, row_height=2.6)
    for i, layer in enumerate(layers):
        top, bottom = axes[0][i], axes[1][i]
        measures = _measures(i, layer)
        for name, group in groups.items():
            color, label = method_color(name), PROTOCOLS[name].label
            plot_seeds(top, group.layer_series(measures["|W|"]), color=color, label=f"{label} |W|")
            plot_seeds(top, group.layer_series(measures["|R|"]), color=color, linestyle="--",
                       label=f"{label} |R|")
            plot_seeds(bottom, group.layer_series(measures["saturated"]), color=color, label=label)
        top.set(title=f"{ARCH} {i + 1}: {layer}", yscale="log")
        top.xaxis.set_major_locator(MaxNLocator(integer=True))
        if bottom.lines:
            bottom.set(xlabel="epoch", ylim=(-0.02, 1.02))
            bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
        else:
            bottom.set_axis_off()
            why = ("no saturation (output layer)" if i == n - 1
                   else "no saturated share logged")
            bottom.text(0.5, 0.9, why, ha="center", transform=bottom.transAxes)
    axes[0][0].set_ylabel("Frobenius norm |W|, |R|")
    axes[1][0].set_ylabel("share of units saturated")
    free = axes[1][-1]  # the output layer's empty panel holds the legend
    handles, labels = axes[0][0].get_legend_handles_labels()
    legend(free if not free.axison else axes[0][0], handles=handles, labels=labels, fontsize=7,
           loc="lower center" if not free.axison else "best")
    fig.tight_layout()
    paths = save_figure(fig, out_stem)
    notes = [line for name, g in groups.items() for line in _numbers(name, g, layers)]
    paths.append(write_sidecar(out_stem, "Figure 19", CAPTION, groups.values(), notes))
    return paths
