"""Figure 16 (not in the paper): the gap to back-propagation against depth (claim 3).

Section 4 says URFB stays close to BP as networks get deeper while FRFB degrades. Here, for each
network in the runs, in order of the number of its weight layers that send an error down (the
layers whose probe logs a ``delta_angle``: simpnet 2, deepnet_s with its first layer frozen 6,
deepernet 9), the final validation error of URFB and of FRFB minus that of BP-H (back-propagation
with the same hinge loss), paired by seed at the last epoch both runs of a seed reached: one dot
per seed, the mean as a larger marker. The right panel shows the final errors themselves.
"""

from __future__ import annotations

from pathlib import Path

from deepnets.experiments.protocols import PROTOCOLS
from figures.caption import write_sidecar
from figures.runs import (
    MissingDataError,
    Run,
    RunSource,
    Seeds,
    pretraining_runs,
    runs_of,
    select_seeds,
)
from figures.stats import final
from figures.style import legend, method_color, new_figure, save_figure

CAPTION = ("Not in the paper. Final validation error of URFB and FRFB minus BP-H (back-propagation, "
           "hinge loss), paired by seed, against the number of layers that send an error down "
           "(Section 4, claim 3: URFB stays close to BP with depth, FRFB degrades).")
#: The protocols whose gap is drawn, and the reference they are measured against.
GAP_PROTOCOLS = ("urfb", "frfb")
REFERENCE = "bp-h"
#: Protocols drawn in the right panel (absolute final error).
ABSOLUTE = ("bp", "bp-h", "urfb", "frfb")

Setting = tuple[str, bool, tuple[int, ...]]  # arch, untied, frozen


def error_senders(run: Run) -> int:
    """How many weight layers send an error down: those whose last alignment probe logs a
    ``delta_angle``; without a probe, every updated layer above the first updated one."""
    for row in reversed(run.log):
        if row.get("alignment"):
            return sum(v.get("delta_angle") is not None for v in row["alignment"].values())
    n = len(next((r["corr"] for r in run.log if r.get("corr")), run.layer_names()))
    return max(n - 1 - len(run.frozen), 0)


def settings(runs: list[Run]) -> list[tuple[Setting, int]]:
    """Every (arch, untied, frozen) with a CIFAR-10 URFB or FRFB run that is not a pretraining
    stage, with its number of error-sending layers, ordered by that number."""
    pre = pretraining_runs(runs)
    found: dict[Setting, int] = {}
    for r in runs:
        if r.protocol in GAP_PROTOCOLS and r.n_classes == 10 and r.name not in pre:
            found.setdefault((r.arch, r.untied, r.frozen), error_senders(r))
    return sorted(found.items(), key=lambda kv: (kv[1], kv[0][0]))


def _group(runs: list[Run], setting: Setting, protocol: str) -> Seeds | None:
    arch, untied, frozen = setting
    pre = pretraining_runs(runs)
    return select_seeds([r for r in runs if r.name not in pre], arch=arch, protocol=protocol,
                        untied=untied, frozen=frozen)


def _label(setting: Setting, senders: int) -> str:
    arch, untied, frozen = setting
    extra = (" untied" if untied else "") + (f"\nfrozen {list(frozen)}" if frozen else "")
    return f"{arch}{extra}\n{senders} layers"


def _has_val(group: Seeds) -> bool:
    """Whether the group's runs log a validation error (not with ``--val-size 0``)."""
    return any(group.series("val_error").values())


def _no_val(setting: Setting, protocol: str) -> str:
    return (f"{setting[0]}{' untied' if setting[1] else ''}: {PROTOCOLS[protocol].label} has no "
            "validation error (trained with --val-size 0)")


def plot_figure16(source: RunSource, out_stem: str | Path) -> list[Path]:
    """Figure 16: URFB and FRFB minus BP-H, final validation error, against depth."""
    runs = runs_of(source)
    found = settings(runs)
    if not found:
        raise MissingDataError("no CIFAR-10 URFB or FRFB run")
    if not any(r.series("val_error")[0] for r in runs):
        raise MissingDataError("no run logs a validation error (all trained with --val-size 0)")
    fig, axes = new_figure(1, 2, width=8.0, row_height=3.2)
    gap_ax, abs_ax = axes[0]
    xs = {s: i for i, (s, _) in enumerate(found)}
    notes, drawn = [], []
    means: dict[str, list[tuple[int, float]]] = {p: [] for p in GAP_PROTOCOLS}
    for setting, senders in found:
        x = xs[setting]
        ref = _group(runs, setting, REFERENCE)
        if ref is not None:
            drawn.append(ref)
            if not _has_val(ref):
                notes.append(_no_val(setting, REFERENCE))
                ref = None
        for k, p in enumerate(GAP_PROTOCOLS):
            group = _group(runs, setting, p)
            if group is None:
                notes.append(f"{setting[0]}: no {PROTOCOLS[p].label} run")
                continue
            drawn.append(group)
            if not _has_val(group):
                notes.append(_no_val(setting, p))
                continue
            if ref is None:
                continue
            cmp = final(group.series("val_error"), ref.series("val_error"))
            dx = (k - 0.5) * 0.12
            gap_ax.plot([x + dx] * cmp.n, list(cmp.diffs.values()), ".", color=method_color(p),
                        markersize=4, alpha=0.8)
            gap_ax.plot(x + dx, cmp.mean, "o", color=method_color(p), markersize=6,
                        markeredgecolor="black", markeredgewidth=0.5)
            gap_ax.annotate(f"ep {cmp.epoch}", (x + dx, cmp.mean), xytext=(4, 0),
                            textcoords="offset points", fontsize=6, va="center")
            means[p].append((x + dx, cmp.mean))
            notes.append(f"{setting[0]}: {PROTOCOLS[p].label} - BP-H at epoch {cmp.epoch} "
                         f"(last epoch every pair reached), seeds {sorted(cmp.diffs)}: "
                         + ", ".join(f"s{s} {d:+.3f}" for s, d in sorted(cmp.diffs.items()))
                         + f"; mean {cmp.mean:+.3f}")
        if ref is None:
            gap_ax.text(x, 0.0, "no BP-H run:\nno gap", ha="center", va="bottom", fontsize=6,
                        color="gray")
            notes.append(f"{setting[0]}{' untied' if setting[1] else ''}: no BP-H run, so no gap "
                         "(its absolute errors are in the right panel)")
        for k, p in enumerate(ABSOLUTE):
            group = ref if p == REFERENCE else _group(runs, setting, p)
            if group is None:
                continue
            if p not in GAP_PROTOCOLS and p != REFERENCE:
                drawn.append(group)
            epoch = group.common_epoch
            vals = [v[epoch] for v in group.series("val_error").values() if epoch in v]
            if not vals:
                continue
            dx = (k - 1.5) * 0.1
            abs_ax.plot([x + dx] * len(vals), vals, ".", color=method_color(p), markersize=4)
            abs_ax.plot(x + dx, sum(vals) / len(vals), "o", color=method_color(p), markersize=6,
                        markeredgecolor="black", markeredgewidth=0.5)
    for p, pts in means.items():
        if pts:
            gap_ax.plot(*zip(*pts), "-", color=method_color(p), label=f"{PROTOCOLS[p].label} − BP-H")
    gap_ax.axhline(0, color="black", linewidth=0.6)
    ticks = [xs[s] for s, _ in found], [_label(s, n) for s, n in found]
    for ax in (gap_ax, abs_ax):
        ax.set_xticks(*ticks)
        ax.set_xlim(-0.5, len(found) - 0.5)
    gap_ax.set(ylabel="final val. error minus BP-H", title="gap to BP-H (dots: seeds)")
    legend(gap_ax, loc="upper left")
    handles = [abs_ax.plot([], [], "o", color=method_color(p), label=PROTOCOLS[p].label)[0]
               for p in ABSOLUTE]
    legend(abs_ax, handles=handles, loc="upper left", ncol=2)
    abs_ax.set(ylabel="final validation error", title="final errors (dots: seeds)")
    abs_ax.set_ylim(0, 1.15 * max(1e-3, abs_ax.get_ylim()[1]))
    paths = save_figure(fig, out_stem)
    paths.append(write_sidecar(out_stem, "Figure 16", CAPTION, _unique(drawn), notes))
    return paths


def _unique(groups: list[Seeds]) -> list[Seeds]:
    seen, out = set(), []
    for g in groups:
        if id(g.first) not in seen:
            seen.add(id(g.first))
            out.append(g)
    return out
