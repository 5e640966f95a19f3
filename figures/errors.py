"""Error-rate figures of Section 4: curves (Figures 4, 7) and final-error bars (Figures 5, 6, 9).

Colour code of the paper (``figures.style``): green BP, blue URFB, red FRFB; solid training,
dotted validation error. Figure 9 colours tied (convolutional) layers blue and untied red.
Each protocol is drawn from all its seeds: curves are the mean with a min-max band, bars the
mean at the last epoch every seed reached with a min-max error bar and one dot per seed.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.ticker import MaxNLocator

from deepnets.experiments.protocols import PROTOCOLS
from figures.caption import write_sidecar
from figures.endpoints import scored_on_test
from figures.runs import MissingDataError, RunSource, Seeds, runs_of, select_seeds
from figures.style import SPLIT_STYLES, legend, method_color, new_figure, plot_seeds, save_figure

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
    """Training (solid) and validation (dotted) error against epochs, one colour per protocol:
    the mean over seeds with a min-max band."""
    runs = runs_of(source)
    chosen = {p: select_seeds(runs, arch=arch, protocol=p) for p in CURVE_PROTOCOLS}
    stand_in = []
    if chosen["bp"] is None and (hinge := select_seeds(runs, arch=arch, protocol="bp-h")):
        chosen = {"bp-h" if p == "bp" else p: g for p, g in chosen.items()} | {"bp-h": hinge}
        stand_in = [f"no {arch} BP (softmax) run: BP-H (hinge loss) is drawn as the BP curve"]
    drawn = {p: g for p, g in chosen.items() if g is not None}
    if not drawn:
        raise MissingDataError(f"no CIFAR-10 {arch} run with protocol {'/'.join(CURVE_PROTOCOLS)}")
    fig, axes = new_figure(1, 1, width=4.5, row_height=3.0)
    ax = axes[0, 0]
    for p, group in drawn.items():
        for split in ("train", "val"):
            plot_seeds(ax, group.series(f"{split}_error"), color=method_color(p),
                       linestyle=SPLIT_STYLES[split],
                       label=f"{PROTOCOLS[p].label} {'training' if split == 'train' else 'validation'}")
    labels = sorted({str(g.first.config.get("dataset_label") or "CIFAR-10") for g in drawn.values()})
    ax.set(xlabel="epoch", ylabel="error rate", title=f"{arch}, {' / '.join(labels)}{_seed_tag(drawn.values())}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend(ax, ncol=2)
    notes = stand_in + [f"no {arch} run for {PROTOCOLS[p].label}" for p, g in chosen.items()
                        if g is None]
    paths = save_figure(fig, out_stem)
    paths.append(write_sidecar(out_stem, f"Figure {number}", CAPTIONS[number],
                               drawn.values(), notes))
    return paths


def _seed_tag(groups) -> str:
    """`` (3 seeds)``, `` (1-3 seeds)`` or `` (one seed)`` for a title."""
    ns = sorted({g.n for g in groups})
    if ns == [1]:
        return " (one seed)"
    return f" ({ns[0]} seeds)" if len(ns) == 1 else f" ({ns[0]}-{ns[-1]} seeds)"


def plot_figure4(runs: RunSource, out_stem: str | Path) -> list[Path]:
    """Figure 4: simpnet error curves on CIFAR-10, BP / URFB / FRFB (Section 4)."""
    return _curves(4, "simpnet", runs, out_stem)


def plot_figure7(runs: RunSource, out_stem: str | Path) -> list[Path]:
    """Figure 7: deepernet error curves on CIFAR-10, BP / URFB / FRFB (Section 4)."""
    return _curves(7, "deepernet", runs, out_stem)


def final_values(group: Seeds, key: str, epoch: int | None = None) -> tuple[int, dict[int, float]]:
    """``(epoch, {seed: value})`` of ``key`` at ``epoch`` (default: the last epoch every seed of
    the group reached)."""
    epoch = group.common_epoch if epoch is None else epoch
    series = group.series(key)
    return epoch, {s: v[epoch] for s, v in series.items() if epoch in v}


def _mean_bar(ax, x: float, values: dict[int, float], width: float, **bar_kw: object) -> float | None:
    """A bar at the mean of ``values``, a min-max error bar and one dot per seed; returns the
    mean (None, and nothing drawn, without values: runs trained with ``--val-size 0`` log no
    validation error)."""
    v = list(values.values())
    if not v:
        return None
    mean = sum(v) / len(v)
    ax.bar(x, mean, width, **bar_kw)
    if len(v) > 1:
        ax.errorbar(x, mean, yerr=[[mean - min(v)], [max(v) - mean]], color="black", capsize=2,
                    linewidth=0.8)
        ax.plot([x] * len(v), v, "k.", markersize=2.5)
    return mean


def _no_validation(title: str, label: str) -> str:
    return f"{title}: {label} has no validation error (trained with --val-size 0)"


def _bars(ax, chosen: dict[str, Seeds | None], title: str) -> list[str]:
    """Final training (hatched) and validation (filled) error of each protocol present: mean over
    seeds at their last common epoch, min-max bar, a dot per seed. Where every run of a protocol
    was scored on the test split (``test.json``) at the length it has now, its filled bar is the
    test error of each run's validation-chosen epoch instead, as the paper reports test errors.
    Returns notes (epochs used, test errors drawn, protocols without a validation error)."""
    names = [p for p, g in chosen.items() if g is not None]
    notes, top, labelled = [], 0.0, set()
    for i, p in enumerate(names):
        group = chosen[p]
        epoch, val = final_values(group, "val_error")
        _, train = final_values(group, "train_error")
        scores = scored_on_test(group, current=True)
        solid = "validation"
        if scores:
            solid, val = "test", {s: error for s, (_, error) in scores.items()}
            notes.append(f"{title}: {PROTOCOLS[p].label} drawn with the test error of each run's "
                         "validation-chosen epoch (" + ", ".join(
                             f"s{s} ep {e}" for s, (e, _) in sorted(scores.items())) + ")")
        for split, dx, values, style in (("training", -0.2, train, {"alpha": 0.45, "hatch": "//"}),
                                         (solid, 0.2, val, {})):
            mean = _mean_bar(ax, i + dx, values, 0.4, color=method_color(p), **style,
                             label=None if split in labelled or not values else split)
            if mean is not None:
                labelled.add(split)
        if val:
            mean = sum(val.values()) / len(val)
            ax.text(i + 0.2, max(val.values()) + 0.01, f"{mean:.3f}", ha="center", va="bottom",
                    fontsize=6)
        else:
            notes.append(_no_validation(title, PROTOCOLS[p].label))
        top = max(top, *val.values(), *train.values())
        if epoch != max(r.epochs_done for r in group.runs):
            notes.append(f"{title}: {PROTOCOLS[p].label} drawn at epoch {epoch}, the last that all "
                         f"its {group.n} seeds reached")
    ax.set_xticks(range(len(names)), [PROTOCOLS[p].label for p in names], rotation=30)
    ax.set(ylabel="final error rate", title=f"{title}{_seed_tag(g for g in chosen.values() if g)}",
           ylim=(0, 1.3 * top))  # headroom for the legend
    legend(ax, ncol=2, loc="upper left")
    return notes


def _bar_panels(number: int, panels: list[tuple[str, int, str]], source: RunSource,
                out_stem: str | Path) -> list[Path]:
    """One bar panel per (arch, n_classes, title); a panel without any run is left empty and noted."""
    runs = runs_of(source)
    names = [p for p, proto in PROTOCOLS.items() if number in proto.figures]  # the paper's grid
    chosen = [{p: select_seeds(runs, arch=a, protocol=p, n_classes=c) for p in names}
              for a, c, _ in panels]
    if not any(g for ch in chosen for g in ch.values()):
        wanted = ", ".join(f"{a} ({c} classes)" for a, c, _ in panels)
        raise MissingDataError(f"no run of {wanted} with a Section 4 protocol")
    fig, axes = new_figure(1, len(panels), width=3.4 * len(panels), row_height=3.0)
    notes = []
    for ax, ch, (arch, n_classes, title) in zip(axes[0], chosen, panels):
        if any(ch.values()):
            notes += _bars(ax, ch, title)
        else:
            ax.set_axis_off()
            ax.set_title(f"{title}: no runs")
        notes += [f"{title}: no run for {PROTOCOLS[p].label}" for p, g in ch.items() if g is None]
    paths = save_figure(fig, out_stem)
    drawn = [g for ch in chosen for g in ch.values() if g is not None]
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
    """Figure 9 (Section 4.1): error, tied (blue) against untied (red), per protocol.

    Bars are the mean validation error over seeds (min-max error bar, a dot per seed); a black
    tick on each bar marks the mean training error. A protocol's tied and untied bars are at
    one epoch, the last every seed of both reached (a tied run trained longer is not compared
    at its later epochs); the sidecar names it.
    """
    found = runs_of(runs)
    pairs = [{p: {u: select_seeds(found, arch=a, protocol=p, untied=u, frozen=fz)
                  for u in (False, True)}
              for p in UNTIE_PROTOCOLS} for a, fz in UNTIE_PANELS]
    drawn = [g for pan in pairs for pr in pan.values() for g in pr.values() if g is not None]
    if not any(g.first.untied for g in drawn):
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
            at = min(g.common_epoch for g in pan[p].values() if g is not None)
            notes.append(f"{arch} {PROTOCOLS[p].label}: at epoch {at}")
            for u, dx in ((False, -0.2), (True, 0.2)):
                group = pan[p][u]
                if group is None:
                    notes.append(f"{arch}: no {'untied' if u else 'tied'} {PROTOCOLS[p].label} run")
                    continue
                _, val = final_values(group, "val_error", at)
                _, train = final_values(group, "train_error", at)
                if not val:
                    notes.append(_no_validation(arch, f"{'untied' if u else 'tied'} "
                                                      f"{PROTOCOLS[p].label}"))
                _mean_bar(ax, i + dx, val, 0.4, color=TIE_COLORS[u],
                          label=("untied" if u else "tied") if i == 0 else None)
                t = sum(train.values()) / len(train)
                ax.plot([i + dx - 0.18, i + dx + 0.18], [t] * 2, "k-",
                        label="training" if (i == 0 and not u) else None)
        ax.set_xticks(range(len(names)), [PROTOCOLS[p].label for p in names])
        frozen_txt = f", layer {list(frozen)} frozen" if frozen else ""
        shown = [g for pr in pan.values() for g in pr.values() if g]
        ax.set(ylabel="validation error",
               title=f"{arch}, CIFAR-10{frozen_txt}{_seed_tag(shown)}")
        ax.set_ylim(0, 1.3 * ax.get_ylim()[1])  # headroom for the legend
        legend(ax, ncol=3, loc="upper left")
    paths = save_figure(fig, out_stem)
    paths.append(write_sidecar(out_stem, "Figure 9", CAPTIONS[9], drawn, notes))
    return paths
