"""Figures 17 and 18 (not in the paper): how far the error URFB and FRFB send is from
back-propagation, per layer, beside the W-R^t correlation (claim 6, Section 4.2).

The alignment probe (:mod:`deepnets.nn.alignment`) logs per weight layer the angle between the error
the rule sends into the layer's input and the one exact BP sends (``delta_angle``, Lillicrap et
al.'s global comparison, taken before the sigma' of the layer below; the first layer sends none;
these figures draw this one, not the probe's ``local_delta_angle``) and the angle between the rule's weight increment and BP's
(``update_angle``; 0 for the output layer, whose error comes from the loss). Top row: training
(solid) and validation (dotted) error of BP-H, URFB and FRFB against epoch. Then one row per
updated layer: the two angles against the update step of the first epoch (symmetric-log axis,
from ``alignment_steps``: updates 0, 1, 2, 5, 10, 20, 50, 100), the same against epoch (epoch 0
is the probe before the first update), and corr(W, R^t) against epoch. URFB blue, FRFB red;
``delta_angle`` solid, ``update_angle`` dashed; mean over seeds with a min-max band.
Figure 17 draws simpnet, Figure 18 deepernet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.ticker import MaxNLocator

from deepnets.experiments.protocols import PROTOCOLS
from figures.caption import write_sidecar
from figures.runs import MissingDataError, RunSource, Seeds, runs_of, select_seeds
from figures.style import SPLIT_STYLES, legend, method_color, plot_seeds, save_figure

CAPTION = ("Not in the paper. Claim 6 of Section 4: per layer, the angle between the error the rule "
           "sends down and exact back-propagation's (delta_angle, solid) and between the weight "
           "updates (update_angle, dashed), against the update step of the first epoch and against "
           "epoch, URFB (blue) and FRFB (red), beside corr(W, R^t); top: error rates of BP-H, URFB "
           "and FRFB.")
ANGLE_STYLES = {"delta_angle": "-", "update_angle": "--"}
RULES = ("urfb", "frfb")
ARCHS = {17: "simpnet", 18: "deepernet"}


def _names(group: Seeds) -> list[str]:
    """The layer names of the probe, input to output (as the log's ``alignment`` records them)."""
    for row in group.first.log:
        if row.get("alignment"):
            return list(row["alignment"])
    return []


def step_series(group: Seeds, layer: str, key: str) -> dict[int, dict[int, float]]:
    """``{seed: {step: angle}}`` from epoch 1's ``alignment_steps``."""
    out: dict[int, dict[int, float]] = {}
    for run in group.runs:
        steps = next((r.get("alignment_steps") for r in run.log if r.get("epoch") == 1), None) or []
        out[run.seed] = {int(s["step"]): float(v) for s in steps
                         if (v := ((s.get("alignment") or {}).get(layer) or {}).get(key)) is not None}
    return out


def epoch_series(group: Seeds, layer: str, key: str) -> dict[int, dict[int, float]]:
    """``{seed: {epoch: angle}}`` from each epoch's ``alignment``; epoch 0 is step 0's probe."""
    out = {}
    steps = step_series(group, layer, key)
    for run in group.runs:
        per = {0: steps[run.seed][0]} if 0 in steps.get(run.seed, {}) else {}
        for row in run.log:
            v = ((row.get("alignment") or {}).get(layer) or {}).get(key)
            if v is not None:
                per[int(row["epoch"])] = float(v)
        out[run.seed] = per
    return out


def _corr_series(group: Seeds, index: int) -> dict[int, dict[int, float]]:
    def get(row: dict[str, Any]) -> float | None:
        corr = row.get("corr") or []
        return corr[index] if index < len(corr) else None
    return group.layer_series(get)


def plot_claim6(number: int, source: RunSource, out_stem: str | Path) -> list[Path]:
    """Figure ``number`` (17: simpnet, 18: deepernet): angles and correlation per layer."""
    import matplotlib.pyplot as plt

    arch = ARCHS[number]
    runs = [r for r in runs_of(source) if any(row.get("alignment") for row in r.log)]
    groups = {p: select_seeds(runs, arch=arch, protocol=p) for p in RULES}
    groups = {p: g for p, g in groups.items() if g is not None}
    if not groups:
        raise MissingDataError(f"no CIFAR-10 {arch} URFB or FRFB run with a logged alignment probe")
    reference = select_seeds(runs_of(source), arch=arch, protocol="bp-h")
    any_group = next(iter(groups.values()))
    names = _names(any_group)
    frozen = set(any_group.first.frozen)
    layers = [(i, n) for i, n in enumerate(names) if i not in frozen]
    fig = plt.figure(figsize=(9.0, 1.9 * (len(layers) + 1)))
    grid = fig.add_gridspec(len(layers) + 1, 3, hspace=0.75, wspace=0.3)
    top = fig.add_subplot(grid[0, :])
    for p, group in [("bp-h", reference), *groups.items()]:
        if group is None:
            continue
        for split in ("train", "val"):
            plot_seeds(top, group.series(f"{split}_error"), color=method_color(p),
                       linestyle=SPLIT_STYLES[split],
                       label=f"{PROTOCOLS[p].label} {'training' if split == 'train' else 'validation'}")
    top.set(xlabel="epoch", ylabel="error rate", title=f"{arch}: error rates")
    top.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend(top, ncol=3, fontsize=6)
    hi, angle_axes = 90.0, []
    for row, (i, name) in enumerate(layers, start=1):
        by_step, by_epoch, corr = (fig.add_subplot(grid[row, c]) for c in range(3))
        angle_axes += [by_step, by_epoch]
        for p, group in groups.items():
            for key, ls in ANGLE_STYLES.items():
                label = f"{PROTOCOLS[p].label} {key}"
                s1, s2 = step_series(group, name, key), epoch_series(group, name, key)
                plot_seeds(by_step, s1, color=method_color(p), linestyle=ls, label=label, marker=".")
                plot_seeds(by_epoch, s2, color=method_color(p), linestyle=ls, label=label)
                hi = max([hi] + [v for per in (*s1.values(), *s2.values()) for v in per.values()])
            plot_seeds(corr, _corr_series(group, i), color=method_color(p),
                       label=PROTOCOLS[p].label)
        by_step.set_xscale("symlog", linthresh=1)
        by_step.set(ylabel=f"{i + 1}: {name}\nangle (deg)", xlabel="update step (epoch 1)")
        by_epoch.set(xlabel="epoch")
        by_epoch.xaxis.set_major_locator(MaxNLocator(integer=True))
        corr.set(xlabel="epoch", ylabel="corr(W, R$^t$)", ylim=(-0.1, 1.02))
        corr.xaxis.set_major_locator(MaxNLocator(integer=True))
        for ax in (by_step, by_epoch):
            ax.axhline(90, color="gray", linewidth=0.5, linestyle=":")
        if row == 1:
            by_step.set_title("angle to BP, first epoch")
            by_epoch.set_title("angle to BP, per epoch")
            corr.set_title("W-R$^t$ correlation")
            handles = [by_epoch.plot([], [], ls, color=method_color(p),
                                     label=f"{PROTOCOLS[p].label} {key}")[0]
                       for p in groups for key, ls in ANGLE_STYLES.items()]
            legend(by_epoch, handles=handles, fontsize=5, loc="lower left")
            legend(corr, fontsize=6)
    for ax in angle_axes:
        ax.set_ylim(0, hi + 5)
    paths = save_figure(fig, out_stem)
    drawn = [g for g in (reference, *groups.values()) if g is not None]
    notes = [f"no {arch} {PROTOCOLS[p].label} run with a probe" for p in RULES if p not in groups]
    notes += [f"layer {i + 1} ({n}): no delta_angle (its input is the image or a frozen layer's "
              "output, so it sends no error)" for i, n in layers
              if not any(epoch_series(g, n, "delta_angle")[s] for g in groups.values()
                         for s in g.seeds)]
    if reference is None:
        notes.append(f"no {arch} BP-H run: the top row has no BP curve")
    paths.append(write_sidecar(out_stem, f"Figure {number}", CAPTION, drawn, notes))
    return paths


def plot_figure17(source: RunSource, out_stem: str | Path) -> list[Path]:
    """Figure 17: claim 6 on simpnet."""
    return plot_claim6(17, source, out_stem)


def plot_figure18(source: RunSource, out_stem: str | Path) -> list[Path]:
    """Figure 18: claim 6 on deepernet."""
    return plot_claim6(18, source, out_stem)
