"""Weight alignment (Section 4.2): the W-R correlation of each layer against epochs.

Figure 10: simpnet's three weight layers; Figure 11: deepnet_s's seven updated layers (its first
layer is frozen, Section 4.1). URFB left, FRFB right. ``corr`` in ``log.jsonl`` holds, per weight
layer input->output, the Pearson correlation of the entries of W_l and R_l^t. Each layer's
line is the mean over seeds with a min-max band.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib import colormaps
from matplotlib.ticker import MaxNLocator

from deepnets.experiments.protocols import PROTOCOLS
from figures.caption import write_sidecar
from figures.runs import MissingDataError, RunSource, Seeds, runs_of, select_seeds
from figures.style import legend, new_figure, plot_seeds, save_figure

CAPTIONS = {
    10: "Correlation between W_l and R_l for the three layers in simpnet. Left: URFB, Right: FRFB",
    11: "Correlation between W_l and R_l for the seven updated layers in deepnet_s. "
        "Left: URFB, Right: FRFB",
}


def _draw(ax, group: Seeds, title: str) -> None:
    """One line per updated (not frozen) weight layer, coloured from input (dark) to output
    (light): the mean over seeds with a min-max band."""
    run = group.first
    n = min(len(next(r for r in g.log if r.get("corr"))["corr"]) for g in group.runs)
    layers = [i for i in range(n) if i not in run.frozen]
    names = run.layer_names(n)
    cmap = colormaps["plasma"]
    low = 0.0
    for k, i in enumerate(layers):
        series = group.layer_series(lambda row, i=i: (row.get("corr") or [None] * n)[i])
        plot_seeds(ax, series, color=cmap(0.85 * k / max(len(layers) - 1, 1)),
                   label=f"{i + 1}: {names[i]}")
        low = min(low, *(v for per in series.values() for v in per.values()))
    ax.set(xlabel="epoch", ylabel="corr(W, R$^t$)", title=title, ylim=(min(-0.05, low - 0.05), 1.02))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend(ax, fontsize=6)


def _alignment(number: int, arch: str, candidates: list[dict], source: RunSource,
               out_stem: str | Path) -> list[Path]:
    """URFB left, FRFB right; for each method the first matching group of ``candidates`` is drawn."""
    runs = [r for r in runs_of(source) if any(row.get("corr") for row in r.log)]
    chosen: dict[str, Seeds] = {}
    protocols = [name for name, p in PROTOCOLS.items() if number in p.figures]  # URFB, FRFB
    for method in protocols:
        for cand in candidates:
            group = select_seeds(runs, arch=arch, protocol=method, **cand)
            if group is not None:
                chosen[method] = group
                break
    if not chosen:
        raise MissingDataError(f"no CIFAR-10 {arch} URFB or FRFB run with logged correlations")
    fig, axes = new_figure(1, 2, width=7.0, row_height=3.0)
    notes = []
    for ax, method in zip(axes[0], protocols):
        group = chosen.get(method)
        label = PROTOCOLS[method].label
        if group is None:
            ax.set_axis_off()
            ax.set_title(f"{label}: no run")
            notes.append(f"no {arch} {label} run")
            continue
        kind = "untied" if group.first.untied else "tied"
        seeds = "one seed" if group.n == 1 else f"{group.n} seeds"
        _draw(ax, group, f"{arch} {label} ({kind}; {seeds})")
    paths = save_figure(fig, out_stem)
    paths.append(write_sidecar(out_stem, f"Figure {number}", CAPTIONS[number], chosen.values(),
                               notes))
    return paths


def plot_figure10(runs: RunSource, out_stem: str | Path) -> list[Path]:
    """Figure 10 (Section 4.2): W-R correlation of simpnet's three layers, URFB left, FRFB right."""
    return _alignment(10, "simpnet", [{}], runs, out_stem)


def plot_figure11(runs: RunSource, out_stem: str | Path) -> list[Path]:
    """Figure 11 (Section 4.2): deepnet_s's seven updated layers, URFB left, FRFB right.

    Drawn from the untied retraining with the first layer frozen (Section 4.1's protocol); where
    that run is absent, from the tied retraining, then from a plain tied deepnet_s run.
    """
    cands = [{"untied": True, "frozen": (0,)}, {"frozen": (0,)}, {}]
    return _alignment(11, "deepnet_s", cands, runs, out_stem)
