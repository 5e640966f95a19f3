"""Error-rate figures of Section 4: curves (Figures 4, 7) and final-error bars (Figures 5, 6, 9).

Colour code of the paper (``figures.style``): green BP, blue URFB, red FRFB; solid training,
dotted validation error. Figure 9 colours tied (convolutional) layers blue and untied red.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.ticker import MaxNLocator

from deepnets.protocols import PROTOCOLS
from figures.caption import write_sidecar
from figures.runs import MissingDataError, Run, RunSource, runs_of, select
from figures.style import SPLIT_STYLES, method_color, new_figure, save_figure

#: The protocols drawn as curves in Figures 4 and 7 (green BP, blue URFB, red FRFB).
CURVE_PROTOCOLS = ("bp", "urfb", "frfb")
#: Figure 9's protocols (tied against untied for each): those whose grids include Figure 9.
UNTIE_PROTOCOLS = tuple(name for name, p in PROTOCOLS.items() if 9 in p.figures)
#: Figure 9's colours: "Blue - convolutional layers (tied), Red - untied".
TIE_COLORS = {False: "tab:blue", True: "tab:red"}

CAPTIONS = {
    4: "Evolution of error rates for simpnet as a function of epochs. Solid lines training error, "
       "dotted lines validation error. Green - BP, Blue - URFB, Red - FRFB",
    5: "Error rates for simple network with different update protocols and different losses. "
       "Left: CIFAR10, Right: CIFAR100. BP - back-propagation with softmax and cross entropy loss, "
       "BP-H - back propagation with hinge loss, all other protocols use the hinge loss as well. "
       "URFB - Updated random feedback and, FRFB - Fixed random feedback. 50% refers to random "
       "connectivity.",
    6: "Error rates for the deepnet -left and deepernet -right. BP - back-propagation with softmax "
       "and cross entropy loss, BP-H - back propagation with hinge loss, all other protocols use "
       "the hinge loss as well. URFB - Updated random feedback and, FRFB - Fixed random feedback. "
       "50% refers to random connectivity.",
    7: "Evolution of error rates for deepernet as a function of epochs. Solid lines training "
       "error, dotted lines validation error. Green - BP, Blue - URFB, Red - FRFB.",
    9: "Experiments with untying the convolutional layers on simpnet and deepnet_s. "
       "Blue - convolutional layers (tied), Red - untied.",
}


def _curves(number: int, arch: str, source: RunSource, out_stem: str | Path) -> list[Path]:
    """Training (solid) and validation (dotted) error against epochs, one colour per protocol."""
    runs = runs_of(source)
    chosen = {p: select(runs, arch=arch, protocol=p) for p in CURVE_PROTOCOLS}
    drawn = {p: r for p, r in chosen.items() if r is not None}
    if not drawn:
        raise MissingDataError(f"no CIFAR-10 {arch} run with protocol {'/'.join(CURVE_PROTOCOLS)}")
    fig, axes = new_figure(1, 1, width=4.5, row_height=3.0)
    ax = axes[0, 0]
    for p, run in drawn.items():
        for split in ("train", "val"):
            ep, err = run.series(f"{split}_error")
            ax.plot(ep, err, SPLIT_STYLES[split], color=method_color(p),
                    label=f"{PROTOCOLS[p].label} {'training' if split == 'train' else 'validation'}")
    labels = sorted({str(r.config.get("dataset_label") or "CIFAR-10") for r in drawn.values()})
    ax.set(xlabel="epoch", ylabel="error rate", title=f"{arch}, {' / '.join(labels)}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(ncol=2)
    notes = [f"no {arch} run for {PROTOCOLS[p].label}" for p, r in chosen.items() if r is None]
    paths = save_figure(fig, out_stem)
    paths.append(write_sidecar(out_stem, f"Figure {number}", CAPTIONS[number],
                               drawn.values(), notes))
    return paths


def plot_figure4(runs: RunSource, out_stem: str | Path) -> list[Path]:
    """Figure 4: simpnet error curves on CIFAR-10, BP / URFB / FRFB (Section 4)."""
    return _curves(4, "simpnet", runs, out_stem)


def plot_figure7(runs: RunSource, out_stem: str | Path) -> list[Path]:
    """Figure 7: deepernet error curves on CIFAR-10, BP / URFB / FRFB (Section 4)."""
    return _curves(7, "deepernet", runs, out_stem)


def _bars(ax, chosen: dict[str, Run | None], title: str) -> None:
    """Final training (hatched) and validation (filled) error of each protocol present."""
    names = [p for p, r in chosen.items() if r is not None]
    for i, p in enumerate(names):
        run = chosen[p]
        val, train = run.final("val_error"), run.final("train_error")
        ax.bar(i - 0.2, train, 0.4, color=method_color(p), alpha=0.45, hatch="//",
               label="training" if i == 0 else None)
        ax.bar(i + 0.2, val, 0.4, color=method_color(p), label="validation" if i == 0 else None)
        ax.text(i + 0.2, val, f"{val:.3f}", ha="center", va="bottom", fontsize=6)
    ax.set_xticks(range(len(names)), [PROTOCOLS[p].label for p in names], rotation=30)
    top = max(max(r.final("val_error"), r.final("train_error")) for r in chosen.values() if r)
    ax.set(ylabel="final error rate", title=title, ylim=(0, 1.3 * top))  # headroom for the legend
    ax.legend(ncol=2, loc="upper left")


def _bar_panels(number: int, panels: list[tuple[str, int, str]], source: RunSource,
                out_stem: str | Path) -> list[Path]:
    """One bar panel per (arch, n_classes, title); a panel without any run is left empty and noted."""
    runs = runs_of(source)
    chosen = [{p: select(runs, arch=a, protocol=p, n_classes=c) for p in PROTOCOLS}
              for a, c, _ in panels]
    if not any(r for ch in chosen for r in ch.values()):
        wanted = ", ".join(f"{a} ({c} classes)" for a, c, _ in panels)
        raise MissingDataError(f"no run of {wanted} with a Section 4 protocol")
    fig, axes = new_figure(1, len(panels), width=3.4 * len(panels), row_height=3.0)
    notes = []
    for ax, ch, (arch, n_classes, title) in zip(axes[0], chosen, panels):
        if any(ch.values()):
            _bars(ax, ch, title)
        else:
            ax.set_axis_off()
            ax.set_title(f"{title}: no runs")
        notes += [f"{title}: no run for {PROTOCOLS[p].label}" for p, r in ch.items() if r is None]
    paths = save_figure(fig, out_stem)
    drawn = [r for ch in chosen for r in ch.values() if r is not None]
    paths.append(write_sidecar(out_stem, f"Figure {number}", CAPTIONS[number], drawn, notes))
    return paths


def plot_figure5(runs: RunSource, out_stem: str | Path) -> list[Path]:
    """Figure 5: final error of simpnet per protocol, CIFAR-10 left, CIFAR-100 right (Section 4)."""
    return _bar_panels(5, [("simpnet", 10, "simpnet, CIFAR-10"),
                           ("simpnet", 100, "simpnet, CIFAR-100")], runs, out_stem)


def plot_figure6(runs: RunSource, out_stem: str | Path) -> list[Path]:
    """Figure 6: final error per protocol, deepnet left, deepernet right, CIFAR-10 (Section 4)."""
    return _bar_panels(6, [("deepnet", 10, "deepnet, CIFAR-10"),
                           ("deepernet", 10, "deepernet, CIFAR-10")], runs, out_stem)


#: Figure 9's two halves: architecture and the layers frozen in both of its runs (Section 4.1:
#: deepnet_s keeps its first, pretrained layer frozen and retrains the rest from scratch).
UNTIE_PANELS: tuple[tuple[str, tuple[int, ...]], ...] = (("simpnet", ()), ("deepnet_s", (0,)))


def plot_figure9(runs: RunSource, out_stem: str | Path) -> list[Path]:
    """Figure 9 (Section 4.1): final error, tied (blue) against untied (red), per protocol.

    Bars are validation error; a black tick on each bar marks its final training error.
    """
    found = runs_of(runs)
    pairs = [{p: {u: select(found, arch=a, protocol=p, untied=u, frozen=fz) for u in (False, True)}
              for p in UNTIE_PROTOCOLS} for a, fz in UNTIE_PANELS]
    drawn = [r for pan in pairs for pr in pan.values() for r in pr.values() if r is not None]
    if not any(r.untied for r in drawn):
        raise MissingDataError("no untied simpnet or deepnet_s run")
    fig, axes = new_figure(1, 2, width=6.8, row_height=3.0)
    notes = []
    for ax, pan, (arch, frozen) in zip(axes[0], pairs, UNTIE_PANELS):
        names = [p for p, pr in pan.items() if any(pr.values())]
        if not names:
            ax.set_axis_off()
            ax.set_title(f"{arch}: no runs")
            notes.append(f"{arch}: no runs")
            continue
        for i, p in enumerate(names):
            for u, dx in ((False, -0.2), (True, 0.2)):
                run = pan[p][u]
                if run is None:
                    notes.append(f"{arch}: no {'untied' if u else 'tied'} {PROTOCOLS[p].label} run")
                    continue
                ax.bar(i + dx, run.final("val_error"), 0.4, color=TIE_COLORS[u],
                       label=("untied" if u else "tied") if i == 0 else None)
                ax.plot([i + dx - 0.18, i + dx + 0.18], [run.final("train_error")] * 2, "k-",
                        label="training" if (i == 0 and not u) else None)
        ax.set_xticks(range(len(names)), [PROTOCOLS[p].label for p in names])
        frozen_txt = f", layer {list(frozen)} frozen" if frozen else ""
        ax.set(ylabel="final validation error", title=f"{arch}, CIFAR-10{frozen_txt}")
        ax.set_ylim(0, 1.3 * ax.get_ylim()[1])  # headroom for the legend
        ax.legend(ncol=3, loc="upper left")
    paths = save_figure(fig, out_stem)
    paths.append(write_sidecar(out_stem, "Figure 9", CAPTIONS[9], drawn, notes))
    return paths
