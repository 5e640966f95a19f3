"""``python -m figures.report --update docs/results.md``: the tables of ``docs/results.md``.

Every number in the results document comes from here, read from the committed run logs (runs
still training in the working tree are left out: :func:`figures.runs.committed_runs`): the
blocks between ``<!-- report:NAME -->`` and ``<!-- /report:NAME -->`` in the document are
rewritten by ``--update FILE``; ``--check FILE`` exits 1 when one is stale; without either, all
blocks are printed. Each claim of Section 4 is tested as a paired comparison over seeds
(:mod:`figures.stats`) under the verdict rule stated once at the top of the document.

Inputs (defaults: the H200 evidence runs of ``results/cifar10-jpeg-h200``, issue 20's CPU runs and
the older CPU runs): ``--runs-a`` budget A (simpnet 15 epochs, deepernet 10, deepnet_s Figure 11
protocol), ``--runs-b`` budget B (simpnet 50 epochs, deepernet 25), both in the simultaneous order
with biases; ``--runs-paper`` budget C, the paper's protocol (sequential order, no biases) toward
convergence (``results/cifar10-paper/run.sh``; a group of its runs that every seed has trained
further in ``runs-200/`` beside it, or in ``runs-200-simultaneous/`` for BP in the simultaneous
order, is read from there: :func:`longer_groups`); ``--runs-old`` the single-seed 10-epoch /
20,000-image runs; ``--runs-bf16`` the speed issue's bf16 against fp32 runs
(:mod:`figures.bf16_paired`), ``--runs-choices`` issue 20's protocol-choice runs (a ``paper``
folder and one folder per variant, :mod:`figures.protocol_choice`): their blocks say "not yet"
until those folders hold runs.

Each part of a claim is judged at the **largest budget reached** (:meth:`Report.largest`): of the
budgets A, B and C that hold every group of runs the part compares, the one whose groups have the
most seeds, then share the most epochs (C on a tie), so that every row of a part compares runs of
one budget. The summary shows those rows; the ``earlier-summary`` block the same parts at the
largest of budgets A and B, where C has taken their place. The parts of claims 1, 2, 3 and 6
that compare with BP or BP-H are judged a second time against BP in the simultaneous order, the
order the paper's BP was most likely run in (budget "C, BP simultaneous":
:meth:`Report.bp_simultaneous`), once those runs are committed; and the parts that involve
URFB a third time with URFB in that order too (budget "C, simultaneous order":
:meth:`Report.all_simultaneous`), where its runs are committed.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from deepnets.experiments.protocols import PROTOCOLS
from figures.bf16_paired import bf16_comparisons, markdown
from figures.budget_c import (
    BP_ORDER_FOLDER,
    BP_REFERENCES,
    DEFAULT_CHOICES,
    DEFAULT_PAPER,
    LONG_FOLDER,
    LONG_SIMULTANEOUS_FOLDER,
    ORDER_FREE_METHOD,
    longer_groups,
)
from figures.endpoints import Ends, curve_ends, error_ends, window
from figures.protocol_choice import choice_table
from figures.rows import (
    PAPER_EPOCHS,
    PAPER_IMAGES,
    Row,
    chance_of,
    error_row,
    fraction,
    images,
    pair_row,
    rows_table,
    table,
    where,
)
from figures.runs import (
    MissingDataError,
    Run,
    Seeds,
    committed_runs,
    pretraining_runs,
    select_seeds,
)
from figures.stats import (
    LAST_EPOCHS,
    Comparison,
    compare,
    difference,
    final,
    near_chance,
    paired,
    rule_text,
    summarize,
)
from urfb_common import OneLineParser, atomic_write_text, command_line, path_arg, require_existing

H200 = Path("results/cifar10-jpeg-h200")
DEFAULT_A = H200 / "budget-a" / "runs"
DEFAULT_B = H200 / "budget-b" / "runs"
#: Budget C's protocol on a lent GPU (benchmarks/gpu_check.sh): listed beside the CPU's runs in the
#: budget and error tables, never judged (validation only, and a budget of its own). The second
#: H200 run (131 epochs) is the larger budget; the first (results/cifar10-paper-h200, 115) its replicate.
DEFAULT_PAPER_GPU = Path("results/cifar10-paper-h200-run2/fp32")
DEFAULT_OLD = (Path("results/simpnet-cifar10-jpeg/runs"), Path("results/deepernet-cifar10-jpeg/runs"))
#: The speed issue's paired check (results/bf16-paired/run.sh writes its runs there).
DEFAULT_BF16 = Path("results/bf16-paired")
#: The folder of the paper-protocol runs inside the protocol-choice folder.
PAPER_FOLDER = "paper"
#: Budget C with its BP and BP-H runs replaced by those of :data:`BP_ORDER_FOLDER`.
BP_SIMULTANEOUS = "C, BP simultaneous"
#: Budget C with every rule in the simultaneous order: the runs of :data:`BP_ORDER_FOLDER` (BP,
#: BP-H, URFB) and budget C's FRFB runs, the same in both orders (R fixed: the order moves no
#: weight that carries the error down; the protocol-choice table shows d = 0 on simpnet).
ALL_SIMULTANEOUS = "C, simultaneous order"
#: Untied simpnet runs whose untied layer started with every location drawn apart, inside the
#: protocol-choice folder (Figure 8's other start; budget C's untied runs start replicated).
UNTIED_START_FOLDER = "untied-independent"
#: Beside budget C's runs folder: untied runs trained again with ``deepnets.train --same-as`` to
#: record Figure 8's homogeneity, which their first runs predate (results/cifar10-paper/run.sh).
HOMOGENEITY_RERUN_FOLDER = "homogeneity-rerun"
#: Figure 8's "strong spatial homogeneity": the mean correlation of a channel's filters across
#: locations (:mod:`deepnets.nn.homogeneity`) is above this.
STRONG_HOMOGENEITY = 0.5
#: Claim 6's "far from aligned": the mean delta_angle over the layers that send an error is at
#: least this many degrees (cos <= 0.5).
FAR_DEGREES = 60.0
#: Claim 2's "mainly converges faster": the URFB-FRFB gap at this epoch against the final one.
EARLY_EPOCH = 10

Seriesd = dict[int, dict[int, float]]
#: A group of runs a claim compares: (network, protocol), all seeds, tied layers.
Need = tuple[str, str]


# ----------------------------------------------------------------------------- budgets


@dataclass
class Budget:
    """One folder of runs, with the name the document gives it."""

    name: str
    runs: list[Run]

    def group(self, arch: str, protocol: str, *, untied: bool = False,
              frozen: tuple[int, ...] = ()) -> Seeds | None:
        pre = pretraining_runs(self.runs)
        return select_seeds([r for r in self.runs if r.name not in pre], arch=arch,
                            protocol=protocol, untied=untied, frozen=frozen)

    def need(self, arch: str, protocol: str, **kw) -> Seeds:
        g = self.group(arch, protocol, **kw)
        if g is None:
            raise LookupError(f"budget {self.name}: no {arch} {protocol} runs")
        return g


# ----------------------------------------------------------------------------- rows


def at(series: Seriesd, epoch: int) -> dict[int, float]:
    return {s: v[epoch] for s, v in series.items() if epoch in v}


def value_row(test: str, where_text: str, a: dict[int, float], b: dict[int, float], kind: str,
              digits: int = 3, short: str = "", chance: float | None = None) -> Row:
    """Two sets of single numbers per seed (one endpoint only)."""
    cmp = compare(a, b)
    near = chance is not None and near_chance(a, chance) and near_chance(b, chance)
    return Row(test, where_text, summarize(a).compact(digits), summarize(b).compact(digits), cmp,
               kind, short, digits, at_chance=near)


def every_layer(rows: list[Row], test: str, short: str) -> Row:
    """The claim "in every layer": its verdict is :func:`figures.stats.every` of the layers';
    it shows the layer with the least favourable mean difference."""
    worst = min(rows, key=lambda r: r.cmp.mean)
    return Row(f"{test}: least favourable layer, {worst.test}", worst.where, worst.a, worst.b,
               worst.cmp, worst.kind, short, worst.digits, worst.endpoint, worst.alt,
               worst.alt_endpoint, layers=tuple(rows))


def val(g: Seeds) -> Seriesd:
    return g.series("val_error")


def train(g: Seeds) -> Seriesd:
    return g.series("train_error")


def label(p: str) -> str:
    return PROTOCOLS[p].label


# ----------------------------------------------------------------------------- blocks


def block_rule(_: Report) -> str:
    return (rule_text() + " The differences are always taken between runs of the same seed "
            "(same initial weights' seed, same data split), over the epochs every run of the "
            "row reached; a verdict holds only for the budget it states.")


def block_budget(rep: Report) -> str:
    rows = []
    for b in [*rep.view, *rep.simultaneous_listed(), *rep.gpu, *rep.old]:
        kinds = sorted({(r.arch, r.protocol, r.untied, r.frozen, rep.is_pre(b, r)) for r in b.runs
                        if r.protocol is not None}, key=lambda k: (k[0], k[4], k[2], list(PROTOCOLS).index(k[1])))
        for arch, p, untied, frozen, pre in kinds:
            g = select_seeds([x for x in b.runs if rep.is_pre(b, x) == pre], arch=arch,
                             protocol=p, untied=untied, frozen=frozen)
            eps = sorted({x.epochs_done for x in g.runs})
            n = images(g)
            setting = ("untied" if untied else "tied") + (f", layer {list(frozen)} frozen" if frozen else "")
            if pre:
                setting += ", pretraining stage"
            span = str(eps[0]) if len(eps) == 1 else f"{eps[0]}–{eps[-1]}"
            shares = dict.fromkeys(fraction(e, n) for e in (eps[0], eps[-1]))  # 115, 116: "12%"
            frac = "–".join(shares)
            rows.append([b.name, arch, label(p), setting, g.first.choices(),
                         ", ".join(map(str, g.seeds)), span, f"{n:,}", frac])
    return table(["budget", "network", "protocol", "setting", "update order, biases", "seeds",
                  "epochs reached", "training images", "share of the paper's 1000 × 45,000"],
                 rows)


def _per_seed(values: dict[int, int]) -> str:
    return ", ".join(str(values[s]) for s in sorted(values))


def block_final_errors(rep: Report) -> str:
    """Per group: its budget, the test error at each run's validation-chosen epoch (where the
    runs were scored on the test split), that epoch and the validation error there, beside the
    mean of the last epochs."""
    rows = []
    for b in [*rep.view, *rep.simultaneous_listed(), *rep.gpu]:
        for arch in ("simpnet", "deepernet", "deepnet", "deepnet_s"):
            for untied, frozen in ((False, ()), (True, ()), (False, (0,)), (True, (0,))):
                for p in PROTOCOLS:
                    g = b.group(arch, p, untied=untied, frozen=frozen)
                    if g is None:
                        continue
                    epochs = window(g)
                    ends = error_ends(g, epochs)
                    val_there = {s: val(g)[s][e] for s, e in ends.epochs.items()}
                    train_ends = error_ends(g, epochs, "train_error")
                    setting = (("untied" if untied else "tied")
                               + (f", layer {list(frozen)} frozen" if frozen else ""))
                    n = images(g)
                    rows.append([b.name, arch, label(p), setting,
                                 f"{epochs[-1]} × {n:,} ({fraction(epochs[-1], n)})",
                                 summarize(ends.chosen).compact() if ends.tested else "not scored",
                                 _per_seed(ends.epochs), summarize(val_there).compact(),
                                 summarize(ends.last).compact(),
                                 summarize(train_ends.last).compact()])
    return table(["budget", "network", "protocol", "setting",
                  "epochs × images (share of the paper's)",
                  "test error at the validation-chosen epoch", "validation-chosen epoch [per seed]",
                  "validation error there", f"validation error, mean of the last {LAST_EPOCHS} epochs",
                  "training error, mean of the last epochs (running mean, dropout on)"], rows)


SIMPNET_BP: tuple[Need, ...] = (("simpnet", "bp"), ("simpnet", "bp-h"))
#: Claim 2's main part, and its 50% connectivity part.
SIMPNET_MAIN: tuple[Need, ...] = (*SIMPNET_BP, ("simpnet", "urfb"), ("simpnet", "frfb"))
SIMPNET_HALF: tuple[Need, ...] = tuple(("simpnet", p) for p in ("urfb", "frfb", "urfb-50", "frfb-50"))
#: Claim 3: deepernet's groups and simpnet's, compared at one budget.
DEPTH: tuple[Need, ...] = tuple((a, p) for a in ("deepernet", "simpnet") for p in ("bp-h", "urfb", "frfb"))


def rows_claim1(rep: Report) -> list[Row]:
    B = rep.largest(*SIMPNET_BP)
    bp, bph = B.need("simpnet", "bp"), B.need("simpnet", "bp-h")
    return [
        error_row("BP-H's error above BP's (hinge slightly worse)", B.name, bph, bp, "greater",
                  "hinge (BP-H) worse than softmax (BP)"),
        error_row("BP-H's and BP's errors comparable", B.name, bph, bp, "close",
                  "hinge and softmax comparable"),
        error_row("BP-H's training error above BP's", B.name, bph, bp, "greater",
                  key="train_error"),
    ]


def block_claim1(rep: Report) -> str:
    return ("simpnet, a = BP-H (hinge), b = BP (softmax):\n\n"
            + rows_table(rows_claim1(rep) + order_rows(rep, "1")))


def _reach(series: dict[int, float], level: float) -> int | None:
    return next((e for e in sorted(series) if series[e] <= level), None)


def _groups(budget: Budget, needs: Iterable[Need]) -> dict[str, Seeds]:
    """The groups of one network's ``needs`` in ``budget``, by protocol."""
    return {p: budget.need(arch, p) for arch, p in needs}


def rows_claim2(rep: Report) -> list[Row]:
    B = rep.largest(*SIMPNET_MAIN)
    g = _groups(B, SIMPNET_MAIN)
    n = images(g["urfb"])
    epochs = window(g["frfb"], g["urfb"])
    gap = error_ends(g["frfb"], epochs, test=False) - error_ends(g["urfb"], epochs, test=False)
    early_gap = difference(val(g["frfb"]), val(g["urfb"]))
    early = {s: v[EARLY_EPOCH] for s, v in early_gap.items() if EARLY_EPOCH in v}
    late = pair_row(f"'mainly converges faster': the FRFB − URFB validation gap shrinks from "
                    f"epoch {EARLY_EPOCH} to the end", B.name, Ends(early, early, {}),
                    gap, "greater", n, epochs, curve=True,
                    short="the URFB-FRFB gap shrinks with training ('mainly converges faster')")
    return [
        error_row("FRFB's error above URFB's", B.name, g["frfb"], g["urfb"], "greater",
                  "URFB better than FRFB"),
        error_row("FRFB close to URFB (Section 4: 'for CIFAR10 the difference ... is small')",
                  B.name, g["frfb"], g["urfb"], "close",
                  "URFB-FRFB difference small (text beside Figure 5)"),
        late,
        error_row("URFB's error above BP's ('never as well as BP')", B.name, g["urfb"], g["bp"],
                  "greater", "URFB worse than BP (softmax)"),
        error_row("URFB's error above BP-H's", B.name, g["urfb"], g["bp-h"], "greater",
                  "URFB worse than BP-H (hinge)"),
        error_row("URFB close to BP", B.name, g["urfb"], g["bp"], "close", "URFB close to BP"),
        row_half(rep),
    ]


def row_half(rep: Report) -> Row:
    """Claim 2's 50% connectivity part, at the largest budget holding its four groups."""
    H = rep.largest(*SIMPNET_HALF)
    g = _groups(H, SIMPNET_HALF)
    both = window(*g.values())
    ends = {p: error_ends(x, both) for p, x in g.items()}
    return pair_row("50% connectivity widens the gap: (FRFB 50% − URFB 50%) above (FRFB − URFB)",
                    H.name, ends["frfb-50"] - ends["urfb-50"], ends["frfb"] - ends["urfb"],
                    "greater", images(g["urfb"]), both,
                    short="50% connectivity widens the URFB-FRFB gap")


def block_claim2(rep: Report) -> str:
    g = _groups(rep.largest(*SIMPNET_MAIN), SIMPNET_MAIN)
    gap_end = final(val(g["frfb"]), val(g["urfb"]))
    speed = []
    for s in sorted(gap_end.diffs):
        level = val(g["frfb"])[s][gap_end.epoch]
        e = _reach(val(g["urfb"])[s], level)
        speed.append(f"s{s}: FRFB's epoch-{gap_end.epoch} validation error {level:.3f} is "
                     f"reached by URFB at epoch {e}")
    return ("simpnet; in the two gap rows a and b are FRFB − URFB errors (validation errors at "
            "two epochs in the first, the errors the endpoint names in the 50% row):\n\n"
            + rows_table(rows_claim2(rep) + order_rows(rep, "2")) + "\n\nSpeed: "
            + "; ".join(speed) + ".")


def rows_claim3(rep: Report) -> list[Row]:
    """The claim's rows compare runs of one budget, the largest holding deepernet's and simpnet's
    BP-H, URFB and FRFB runs: deepernet against itself, and deepernet's gaps against simpnet's
    over the epochs both reached. Below them, deepernet's pairs at the other budgets (details,
    each within its own budget)."""
    D = rep.largest(*DEPTH)
    deep_g = {p: D.need("deepernet", p) for p in ("bp-h", "urfb", "frfb")}
    shallow_g = {p: D.need("simpnet", p) for p in ("bp-h", "urfb", "frfb")}
    n = images(deep_g["urfb"])
    epochs = window(*deep_g.values(), *shallow_g.values())
    deep = {p: error_ends(x, epochs) for p, x in deep_g.items()}
    shallow = {p: error_ends(x, epochs) for p, x in shallow_g.items()}
    rows = [
        error_row("URFB close to BP-H", D.name, deep_g["urfb"], deep_g["bp-h"], "close",
                  "deepernet: URFB close to BP-H"),
        error_row("FRFB's error above BP-H's", D.name, deep_g["frfb"], deep_g["bp-h"], "greater",
                  "deepernet: FRFB worse than BP-H"),
        pair_row("FRFB degrades with depth: (FRFB − BP-H) on deepernet above (FRFB − BP-H) on "
                 "simpnet, same epochs", D.name, deep["frfb"] - deep["bp-h"],
                 shallow["frfb"] - shallow["bp-h"], "greater", n, epochs,
                 short="FRFB's gap to BP-H grows from simpnet to deepernet"),
        pair_row("URFB's gap to BP-H larger on deepernet than on simpnet, same epochs", D.name,
                 deep["urfb"] - deep["bp-h"], shallow["urfb"] - shallow["bp-h"], "greater", n,
                 epochs),
        error_row("FRFB's error above URFB's", D.name, deep_g["frfb"], deep_g["urfb"], "greater"),
    ]
    for other in rep.view:
        if other is D:
            continue
        for a, b, test, kind in (("urfb", "bp-h", "URFB close to BP-H", "close"),
                                 ("frfb", "bp-h", "FRFB's error above BP-H's", "greater"),
                                 ("frfb", "urfb", "FRFB's error above URFB's", "greater")):
            ga, gb = other.group("deepernet", a), other.group("deepernet", b)
            if ga is not None and gb is not None:
                rows.append(error_row(test, other.name, ga, gb, kind))
    return rows


def block_claim3(rep: Report) -> str:
    D = rep.largest(*DEPTH).name
    return ("deepernet (8 conv layers, 4 residual sums, full 500; 9 layers send an error down); "
            f"the first rows compare runs of budget {D} (in the depth rows a and b are gaps to "
            "BP-H, simpnet's cut at the same epoch), the rows below them deepernet's runs of "
            "another budget:\n\n" + rows_table(rows_claim3(rep) + order_rows(rep, "3")))


#: Figure 6's back-propagation errors, as the paper's text gives them.
PAPER_BP = {"deepnet": "≈ 0.50", "deepernet": "≈ 0.42"}


def _error_text(g: Seeds) -> str:
    """The group's error at its validation-chosen epochs: test error where every run was
    scored, else validation error, said so."""
    ends = error_ends(g, window(g))
    what = "test" if ends.tested else "validation"
    beside = f"; validation there {summarize(ends.validation).brief()}" if ends.tested else ""
    return (f"{summarize(ends.chosen).compact()} ({what} error at the validation-chosen epoch, "
            f"ep {_per_seed(ends.epochs)}{beside})")


def block_paper_numbers(rep: Report) -> str:
    rows = []
    views = [v for v in (rep, rep.bp_simultaneous()) if v is not None]
    for arch, paper in PAPER_BP.items():
        found = False
        for p in ("bp", "bp-h"):
            for view in views:
                try:
                    budget = view.largest((arch, p))
                except LookupError:
                    continue
                if view is not rep and budget.name != BP_SIMULTANEOUS:
                    continue  # the second view adds its own budget's row only
                g = budget.need(arch, p)
                rows.append([f"BP, {arch}", f"{paper} (Figure 6, BP softmax or hinge)",
                             f"{label(p)} {_error_text(g)}",
                             where(budget.name, g.common_epoch, images(g), g.n)])
                found = True
        if not found:
            rows.append([f"BP, {arch}", f"{paper} (Figure 6, BP softmax or hinge)", "not run", "—"])
    for old in rep.old:
        bp = old.group("deepernet", "bp")
        if bp is not None:
            eo = bp.common_epoch
            rows.append(["BP, deepernet (older run)", "≈ 0.42",
                         f"BP softmax {summarize(at(val(bp), eo)).compact()}",
                         where(old.name, eo, images(bp), bp.n)])
    return table(["quantity", f"paper ({PAPER_EPOCHS} epochs × {PAPER_IMAGES:,}; Figure 6)",
                  "ours", "our budget"], rows)


def _largest_with(rep: Report, make: Callable[[Budget], Row | None]) -> Row | None:
    """``make``'s row at the largest budget where it can be made (the most seeds, then the most
    epochs compared; on a tie the later budget, as :meth:`Report.largest`)."""
    made = [(r.cmp.n, r.cmp.epoch or 0, order, r) for order, r in enumerate(make(b) for b in rep.view)
            if r is not None]
    return max(made, key=lambda m: m[:3], default=(0, 0, 0, None))[3]


def rows_claim4(rep: Report) -> list[Row]:
    """Untied against tied simpnet (Figure 9: the same protocol, the same budget and epochs), the
    order of URFB and FRFB among untied layers, and deepnet_s's untied URFB against FRFB; each at
    the largest budget holding its runs."""
    def worse(p: str) -> Callable[[Budget], Row | None]:
        def make(b: Budget) -> Row | None:
            tied, untied = b.group("simpnet", p), b.group("simpnet", p, untied=True)
            if tied is None or untied is None:
                return None
            return error_row(f"simpnet {label(p)}: untied's error above tied's", b.name, untied,
                             tied, "greater", f"untied simpnet {label(p)} worse than tied")
        return make

    def order(arch: str, frozen: tuple[int, ...], test: str, short: str) -> Callable[[Budget], Row | None]:
        def make(b: Budget) -> Row | None:
            u, f = (b.group(arch, p, untied=True, frozen=frozen) for p in ("urfb", "frfb"))
            return None if u is None or f is None else error_row(test, b.name, f, u, "greater", short)
        return make

    makers = [worse("bp-h"), worse("urfb"), worse("frfb"),
              order("simpnet", (), "simpnet untied: FRFB's error above URFB's",
                    "untied simpnet: URFB better than FRFB (order kept)"),
              order("deepnet_s", (0,), "deepnet_s untied (first layer frozen after the tied "
                    "epochs): FRFB's error above URFB's",
                    "untied deepnet_s: URFB better than FRFB (order kept)")]
    return [r for r in (_largest_with(rep, m) for m in makers) if r is not None]


def block_claim4(rep: Report) -> str:
    rows = rows_claim4(rep)
    text = rows_table(rows) if rows else "No untied run in the new data."
    if not any(b.group("simpnet", p, untied=True) for b in rep.view for p in ("urfb", "frfb")):
        text += ("\n\nNo untied simpnet run in budgets " + ", ".join(b.name for b in rep.view)
                 + ": tied against untied is not compared on the new data.")
    return text


def block_claim4_old(rep: Report) -> str:
    rows = []
    for old in rep.old:
        for p in ("bp", "urfb", "frfb"):
            t, u = old.group("simpnet", p), old.group("simpnet", p, untied=True)
            if t is None or u is None:
                continue
            e = min(t.common_epoch, u.common_epoch)
            rows.append(value_row(f"simpnet {label(p)}: untied validation error above tied",
                                  where(old.name, e, images(u), u.n), at(val(u), e), at(val(t), e),
                                  "greater"))
        for a, b in (("frfb", "urfb"), ("urfb", "bp")):
            ua, ub = old.group("simpnet", a, untied=True), old.group("simpnet", b, untied=True)
            if ua is None or ub is None:
                continue
            rows.append(error_row(f"simpnet untied: {label(a)}'s error above {label(b)}'s",
                                  old.name, ua, ub, "greater"))
    return rows_table(rows) if rows else "No older untied run."


def senders(g: Seeds) -> list[str]:
    """The layers that send an error down (their probe logs a delta_angle)."""
    row = next((r for r in reversed(g.first.log) if r.get("alignment")), None)
    return [k for k, v in (row or {}).get("alignment", {}).items() if v.get("delta_angle") is not None]


def corr_series(g: Seeds, i: int) -> Seriesd:
    return g.layer_series(lambda row: row["corr"][i] if len(row.get("corr") or []) > i else None)


def angle_series(g: Seeds, layer: str, key: str = "delta_angle") -> Seriesd:
    return g.layer_series(lambda row: ((row.get("alignment") or {}).get(layer) or {}).get(key))


def rows_claim5(rep: Report) -> list[Row]:
    rows: list[Row] = []
    for arch in ("simpnet", "deepernet"):
        budget = rep.largest((arch, "urfb"))
        g = budget.need(arch, "urfb")
        names, n = g.layer_names(), images(g)
        send = set(senders(g))
        epochs = window(g)
        rises = []
        for i, name in enumerate(names):
            c = corr_series(g, i)
            first = {s: v[min(v)] for s, v in c.items()}
            tag = "" if name in send else " (R unused: sends no error)"
            rises.append(pair_row(f"{arch} layer {i + 1} {name}{tag}: URFB corr rises, the end "
                                  "above epoch 1", budget.name, curve_ends(g, c, epochs),
                                  Ends(first, first, {}), "greater", n, epochs, curve=True))
        rows += rises
        peak = {s: max(v for i in range(len(names)) for v in corr_series(g, i)[s].values())
                for s in g.seeds}
        rows.append(value_row(f"{arch}: never the same, 1 above the largest corr of any layer at "
                              "any epoch", where(budget.name, g.common_epoch, n, g.n),
                              {s: 1.0 for s in g.seeds}, peak, "greater",
                              short=f"{arch}: URFB's W and Rᵗ never the same (corr < 1)"))
        rows.append(every_layer(rises, f"{arch}: URFB corr rises in every layer",
                                f"{arch}: URFB's corr(W, Rᵗ) rises in every layer"))
    return rows


def block_claim5(rep: Report) -> str:
    rows = [r for r in rows_claim5(rep) + simultaneous_rows(rep, "5") if not r.layers]
    return ("a, b: corr(W, Rᵗ) of URFB's runs (the paper's Figures 10-11 measure):\n\n"
            + rows_table(rows))


#: Claim 5's "much stronger", stated: URFB's corr(W, Rᵗ) at least this many times FRFB's ...
MUCH_STRONGER_FACTOR = 2.0
#: ... and at least this much above it, in every layer ...
MUCH_STRONGER_ABOVE = 0.1
#: ... and the error URFB sends down at least this many degrees closer to exact BP's than
#: FRFB's (``delta_angle``, Lillicrap et al.'s global comparison), in every sending layer.
MUCH_CLOSER_DEGREES = 15.0


def much_stronger_text() -> str:
    """Claim 5b's numbers, stated beside the claim."""
    return (f"'Much stronger' is tested as: in every layer URFB's corr(W, Rᵗ) is at least "
            f"{MUCH_STRONGER_FACTOR:g} × FRFB's and at least {MUCH_STRONGER_ABOVE:g} above it, and "
            f"in every layer that sends an error down, the angle between that error and exact "
            f"BP's (delta_angle, Lillicrap et al.'s global comparison) is at least "
            f"{MUCH_CLOSER_DEGREES:g}° smaller for URFB than for FRFB; each as the verdict rule's "
            "directional test of d = a − (factor × b + offset) on the mean of the last epochs. "
            "The same angle test with local_delta_angle (Akrout et al.'s local comparison: the "
            "error of the layer below, after σ′, from the rule's own error above sent through R "
            "against through Wᵗ) is shown in its own rows where the runs log it; it is reported "
            "beside the claim, not part of its verdict.")


def _strong(rep: Report) -> tuple[dict[str, tuple[list[Row], list[Row], list[Row]]], list[str]]:
    """Per network, (the correlation rows, the angle rows, the local angle rows) of claim 5b,
    and notes. The local angle rows (``local_delta_angle``) are reported, not judged with the
    claim; a layer some run does not log it for has none."""
    out: dict[str, tuple[list[Row], list[Row], list[Row]]] = {}
    notes = []
    for arch in ("simpnet", "deepernet"):
        budget = rep.largest((arch, "urfb"), (arch, "frfb"))
        u, f = budget.need(arch, "urfb"), budget.need(arch, "frfb")
        names, n = u.layer_names(), images(u)
        epochs = window(u, f)
        corr_rows: list[Row] = []
        angle_rows: list[Row] = []
        local_rows: list[Row] = []
        for i, name in enumerate(names):
            cu, cf = corr_series(u, i), corr_series(f, i)
            eu, ef = curve_ends(u, cu, epochs), curve_ends(f, cf, epochs)
            corr_rows.append(pair_row(
                f"{arch} layer {i + 1} {name}: corr(W, Rᵗ), URFB at least "
                f"{MUCH_STRONGER_FACTOR:g} × FRFB's (d = a − {MUCH_STRONGER_FACTOR:g} b)",
                budget.name, eu, ef, "greater", n, epochs, curve=True,
                factor=MUCH_STRONGER_FACTOR))
            corr_rows.append(pair_row(
                f"{arch} layer {i + 1} {name}: corr(W, Rᵗ), URFB at least "
                f"{MUCH_STRONGER_ABOVE:g} above FRFB (d = a − b − {MUCH_STRONGER_ABOVE:g})",
                budget.name, eu, ef, "greater", n, epochs, curve=True,
                offset=MUCH_STRONGER_ABOVE))
            flip = _from_epoch(paired(cu, cf))
            if flip is not None and flip > 1:
                notes.append(f"{arch} {name}: URFB's correlation is above FRFB's in every seed "
                             f"from epoch {flip} on (below or mixed before)")
        for name in senders(u):
            for key, rows in (("delta_angle", angle_rows), ("local_delta_angle", local_rows)):
                au, af = angle_series(u, name, key), angle_series(f, name, key)
                logged = all(au.get(s) for s in u.seeds) and all(af.get(s) for s in f.seeds)
                if key == "local_delta_angle" and not logged:
                    continue
                rows.append(pair_row(
                    f"{arch} {name}: angle of the error sent down to exact BP's ({key}, "
                    f"degrees), FRFB's at least {MUCH_CLOSER_DEGREES:g}° above URFB's "
                    f"(d = a − b − {MUCH_CLOSER_DEGREES:g})", budget.name,
                    curve_ends(f, af, epochs), curve_ends(u, au, epochs), "greater", n, epochs,
                    curve=True, digits=1, offset=MUCH_CLOSER_DEGREES))
        out[arch] = (corr_rows, angle_rows, local_rows)
    return out, notes


def rows_claim5_strong(rep: Report) -> list[Row]:
    rows, _ = _strong(rep)
    out = []
    for arch, (corr_rows, angle_rows, _) in rows.items():
        out.append(every_layer(corr_rows, f"{arch}: corr(W, Rᵗ)",
                               f"{arch}: URFB's corr(W, Rᵗ) ≥ {MUCH_STRONGER_FACTOR:g} × FRFB's "
                               f"and ≥ {MUCH_STRONGER_ABOVE:g} above it in every layer ('much "
                               "stronger')"))
        out.append(every_layer(angle_rows, f"{arch}: delta_angle",
                               f"{arch}: URFB's error sent down ≥ {MUCH_CLOSER_DEGREES:g}° closer "
                               "to BP's than FRFB's in every sending layer ('much stronger')"))
    return out


def block_claim5_strong(rep: Report) -> str:
    rows, notes = _strong(rep)
    text = much_stronger_text() + "\n\n" + rows_table(
        [r for groups in rows.values() for r in (*groups[0], *groups[1], *groups[2])]
        + simultaneous_rows(rep, "5b"))
    if notes:
        text += "\n\n" + "\n".join(f"- {x}." for x in notes)
    return text


def _from_epoch(comparisons: list[Comparison]) -> int | None:
    """The first epoch from which every later comparison has all seeds positive."""
    start = None
    for c in comparisons:
        if c.n_positive == c.n and c.n > 0:
            start = c.epoch if start is None else start
        else:
            start = None
    return start


def _mean_angle(g: Seeds, row: dict) -> float | None:
    al = row.get("alignment") or {}
    vals = [al[k]["delta_angle"] for k in senders(g) if (al.get(k) or {}).get("delta_angle") is not None]
    return sum(vals) / len(vals) if vals else None


def far_window(g: Seeds) -> dict[int, int]:
    """Per seed, the last epoch E such that at every epoch 1..E the mean delta_angle over the
    error-sending layers is at least :data:`FAR_DEGREES`."""
    out = {}
    for run in g.runs:
        e_far = 0
        for row in sorted(run.log, key=lambda r: r["epoch"]):
            m = _mean_angle(g, row)
            if m is None or m < FAR_DEGREES:
                break
            e_far = int(row["epoch"])
        out[run.seed] = e_far
    return out


def _claim6(rep: Report) -> tuple[list[Row], list[str]]:
    """Claim 6's rows: URFB's own (far from aligned in epoch 1, learning while so) at the
    largest budget holding URFB, and its comparisons with BP-H at the largest holding both."""
    rows: list[Row] = []
    notes = []
    for arch in ("simpnet", "deepernet"):
        B = rep.largest((arch, "urfb"), (arch, "bp-h"))
        u, ref = B.need(arch, "urfb"), B.need(arch, "bp-h")
        alone = rep.largest((arch, "urfb"))
        own = alone.need(arch, "urfb")
        rows += _claim6_urfb_rows(arch, alone.name, own, notes)
        n = images(u)
        for key, name in (("val_error", "validation"), ("train_error", "training")):
            a, b = u.series(key), ref.series(key)
            rows.append(value_row(f"{arch}: {name} error after epoch 1, URFB close to BP-H",
                                  where(B.name, 1, n, u.n), at(a, 1), at(b, 1), "close",
                                  short=f"{arch}: {name} error after epoch 1 close to BP-H's",
                                  chance=chance_of(u)))
        window = far_window(u)
        if alone is not B:
            notes.append(f"{arch}, budget {B.name} (beside BP-H): epochs 1..E with URFB's mean "
                         f"delta_angle ≥ {FAR_DEGREES:g}°: E = "
                         + ", ".join(f"{window[s]} (s{s})" for s in sorted(window)))
        for key, name in (("val_error", "validation"), ("train_error", "training")):
            a, b = u.series(key), ref.series(key)
            ok = [s for s in window if window[s] > 1 and window[s] in a[s] and s in b
                  and window[s] in b[s]]
            if not ok:
                notes.append(f"{arch}: no epoch after the first with URFB far from aligned")
                continue
            drop_u = {s: a[s][1] - a[s][window[s]] for s in ok}
            drop_b = {s: b[s][1] - b[s][window[s]] for s in ok}
            span = f"ep 1→E ({', '.join(str(window[s]) for s in ok)})"
            rows.append(value_row(f"{arch}: drop in {name} error over epochs 1..E while URFB is "
                                  f"far from aligned, URFB close to BP-H",
                                  where(B.name, None, n, len(ok), span), drop_u, drop_b,
                                  "close", short=f"{arch}: {name} error falls at a rate similar "
                                  "to BP-H's while unaligned"))
    return rows, notes


def _claim6_urfb_rows(arch: str, budget: str, u: Seeds, notes: list[str]) -> list[Row]:
    """Claim 6's rows on URFB alone: far from aligned after its first updates (the premise),
    and its validation error falling over the epochs it stays so; ``notes`` gets the window."""
    rows: list[Row] = []
    n = images(u)
    last_step = {}
    for run in u.runs:
        steps = run.log[0].get("alignment_steps") or []
        if steps:
            m = _mean_angle(u, steps[-1])
            if m is not None:
                last_step[run.seed] = (int(steps[-1]["step"]), m)
    if last_step:
        step = min(v[0] for v in last_step.values())
        rows.append(value_row(f"{arch} premise: URFB far from aligned in epoch 1: mean "
                              f"delta_angle of the error-sending layers after {step} updates "
                              f"above {FAR_DEGREES:g}°",
                              where(budget, None, n, u.n, f"step {step}"),
                              {s: v[1] for s, v in last_step.items()},
                              {s: FAR_DEGREES for s in last_step}, "greater", 1,
                              short=f"{arch}: premise, URFB far from aligned in epoch 1"))
    send = senders(u)
    idx = [i for i, name in enumerate(u.layer_names()) if name in send]
    corr1 = {s: max(abs(corr_series(u, i)[s].get(1, 0.0)) for i in idx) for s in u.seeds}
    notes.append(f"{arch}: URFB's largest |corr(W, Rᵗ)| over the error-sending layers after "
                 f"epoch 1: {summarize(corr1).compact()}")
    window = far_window(u)
    notes.append(f"{arch}: epochs 1..E with URFB's mean delta_angle ≥ {FAR_DEGREES:g}°: E = "
                 + ", ".join(f"{window[s]} (s{s})" for s in sorted(window)))
    a = u.series("val_error")
    ok = [s for s in window if window[s] > 1 and window[s] in a[s]]
    if ok:
        span = f"ep 1→E ({', '.join(str(window[s]) for s in ok)})"
        rows.append(value_row(f"{arch}: URFB's validation error falls over epochs 1..E "
                              "while it is far from aligned (drop above 0)",
                              where(budget, None, n, len(ok), span),
                              {s: a[s][1] - a[s][window[s]] for s in ok},
                              {s: 0.0 for s in ok}, "greater",
                              short=f"{arch}: URFB learns while far from aligned"))
    return rows


def rows_claim6(rep: Report) -> list[Row]:
    return _claim6(rep)[0]


def block_claim6(rep: Report) -> str:
    rows, notes = _claim6(rep)
    return (rows_table(rows + order_rows(rep, "6")) + "\n\n"
            + "\n".join(f"- {x}." for x in notes))


#: The claims' rows, for the summary table (claim 5's "much stronger" sentence is 5b).
CLAIM_ROWS: dict[str, Callable[[Report], list[Row]]] = {
    "1": rows_claim1, "2": rows_claim2, "3": rows_claim3, "4": rows_claim4, "5": rows_claim5,
    "5b": rows_claim5_strong, "6": rows_claim6,
}


def summary_rows(rep: Report) -> dict[tuple[str, str], Row]:
    """The rows that decide a claim's parts, by (claim, part); after each claim, its parts that
    compare with BP or BP-H judged again against BP in the simultaneous order
    (:func:`bp_simultaneous_rows`)."""
    rows = {}
    for claim, make in CLAIM_ROWS.items():
        rows |= {(claim, r.short): r for r in make(rep) if r.short}
        rows |= {(claim, f"{r.short}, BP in the simultaneous order"): r
                 for r in bp_simultaneous_rows(rep, claim) if r.short}
        rows |= {(claim, f"{r.short}, every rule in the simultaneous order"): r
                 for r in simultaneous_rows(rep, claim) if r.short}
    return rows


#: The claims whose parts compare a rule with BP or BP-H (5b's "exact BP" is the alignment
#: probe's reference, computed in every run: not a BP run).
BP_CLAIMS = ("1", "2", "3", "6")


def bp_simultaneous_rows(rep: Report, claim: str) -> list[Row]:
    """The rows of ``claim`` that compare with BP or BP-H, made again at budget C with its BP and
    BP-H runs in the simultaneous order (:meth:`Report.bp_simultaneous`; their budget column says
    :data:`BP_SIMULTANEOUS`); none while no such run is committed."""
    alt = rep.bp_simultaneous()
    if alt is None or claim not in BP_CLAIMS:
        return []
    return [r for r in CLAIM_ROWS[claim](alt)
            if _budget_of(r) == BP_SIMULTANEOUS and "BP" in f"{r.test} {r.short}"]


def simultaneous_rows(rep: Report, claim: str) -> list[Row]:
    """The rows of ``claim`` that involve URFB, made again at budget C with every rule in the
    simultaneous order (:meth:`Report.all_simultaneous`; their budget column says
    :data:`ALL_SIMULTANEOUS`); none while no URFB run in that order is committed."""
    alt = rep.all_simultaneous()
    if alt is None:
        return []
    return [r for r in CLAIM_ROWS[claim](alt)
            if _budget_of(r) == ALL_SIMULTANEOUS and "URFB" in f"{r.test} {r.short}"]


def order_rows(rep: Report, claim: str) -> list[Row]:
    """:func:`bp_simultaneous_rows` and :func:`simultaneous_rows` of ``claim``."""
    return bp_simultaneous_rows(rep, claim) + simultaneous_rows(rep, claim)


def summary_table(rows: dict[tuple[str, str], Row]) -> str:
    lines = []
    for (claim, short), r in rows.items():
        shown = r.test.split("least favourable layer, ")[-1] if r.layers else ""
        d = r.cmp.summary.compact(r.digits, signed=True)
        lines.append([claim, short, r.verdict_text(), f"{d} ({shown})" if shown else d,
                      r.endpoint or "—", r.where])
    return table(["claim", "part tested", "verdict",
                  "d = a − b (see the claim's table; over layers: the least favourable layer)",
                  "endpoint", "budget"], lines)


def block_summary(rep: Report) -> str:
    return summary_table(summary_rows(rep))


def _budget_of(row: Row) -> str:
    return row.where.split(":", 1)[0]


def block_earlier_summary(rep: Report) -> str:
    """The parts now judged at budget C, as they stood at the largest of budgets A and B."""
    now = summary_rows(rep)
    before = summary_rows(rep.earlier())
    moved = {k: r for k, r in before.items() if k in now and _budget_of(now[k]) != _budget_of(r)}
    if moved:
        return summary_table(moved)
    if any(_budget_of(r) in (rep.c.name, BP_SIMULTANEOUS) for r in now.values()):
        return (f"None yet: the parts judged at budget {rep.c.name} (the paper's protocol) so far "
                "had no earlier verdict; the other rows of the summary above are the earlier "
                "budgets' own.")
    return (f"None yet: no part of a claim is judged at budget {rep.c.name} (the paper's "
            "protocol) so far; the summary above is the earlier budgets' own.")


def homogeneity_rows(budget: str, runs: list[Run]) -> list[Row]:
    """Figure 8's tests on the untied simpnet runs of ``runs`` whose logs record their
    homogeneity (:meth:`figures.runs.Run.homogeneity`, after the last epoch): a
    channel's filters more alike across locations than different channels at one location, and
    "strong" (above :data:`STRONG_HOMOGENEITY`); for an independent start, more alike than at
    the start (the homogeneity comes from the data)."""
    rows = []
    for p in ("urfb", "frfb", "bp-h", "bp"):
        g = select_seeds(runs, arch="simpnet", protocol=p, untied=True)
        measured = {} if g is None else {r.seed: h for r in g.runs if (h := r.homogeneity())}
        if g is None or not measured:
            continue
        # the seeds measured at one epoch: the one most of them share, then the latest
        counts = Counter(int(h["epoch"]) for h in measured.values())
        epoch = max(counts, key=lambda e: (counts[e], e))
        found = {s: h for s, h in measured.items() if int(h["epoch"]) == epoch}
        place = where(budget, epoch, images(g), len(found))
        start = found[min(found)]["untied_init"]  # a group's runs share their config
        name = f"simpnet {label(p)} untied ({start} start)"
        trained = {s: float(h["trained"]) for s, h in found.items()}
        above_chance = (f"{name}: a channel's filters across locations, correlation above "
                        "that of different channels at one location")
        tests = [(above_chance, {s: float(h["chance"]) for s, h in found.items()}),
                 (f"{name}: that correlation above {STRONG_HOMOGENEITY:g} ('strong')",
                  dict.fromkeys(found, STRONG_HOMOGENEITY))]
        at_start = {s: float(h["start"]) for s, h in found.items() if h["start"] is not None}
        if start == "independent" and at_start:
            tests.append((f"{name}: that correlation above the start's", at_start))
        for test, b in tests:
            row = value_row(test, place, trained, b, "greater", digits=4)
            row.endpoint = "last epoch"
            rows.append(row)
    return rows


def block_figure8(rep: Report) -> str:
    untied = [r for b in rep.view for r in b.runs if r.untied and r.arch == "simpnet"]
    rows = [*homogeneity_rows(rep.c.name, rep.c.runs),
            *homogeneity_rows(f"{rep.c.name}, trained again (deepnets.train --same-as)",
                              rep.homogeneity_rerun),
            *homogeneity_rows(f"{rep.c.name}, independent untied start", rep.untied_independent)]
    lines = [rows_table(rows)] if rows else []
    if rows:
        lines.append("Each run is measured after its last epoch (the trainer records it in "
                     "`log.jsonl` every epoch): the mean correlation of a channel's 5×5×3 "
                     "filters across the interior locations of the untied layer, our measure of "
                     "the paper's homogeneity. A replicated start has correlation 1 by "
                     "construction, so its rows test how much of it training keeps; an "
                     "independent start has none, so its rows test whether training makes it. "
                     f"'Strong' is our number: above {STRONG_HOMOGENEITY:g}.")
    if not untied:
        lines.append("No untied simpnet run in budgets " + ", ".join(b.name for b in rep.view)
                     + ": Figure 8's spatial homogeneity is **untested** on the new data.")
    elif not rows:
        lines.append("The untied simpnet runs' logs do not record their homogeneity (runs made "
                     "before the trainer did): Figure 8's spatial homogeneity is **untested** on "
                     "the new data.")
    for old in rep.old:
        side = old.path.parent / "figures" / "figure8.txt"
        if side.is_file():
            found = [ln.removeprefix("- ") for ln in side.read_text(encoding="utf-8").splitlines()
                     if "Over all interior locations" in ln]
            lines += [f"Older run (`{_shown(side)}`, one seed, 10 epochs × 20,000): {x}"
                      for x in found]
    return "\n\n".join(lines)


#: The checkout this module belongs to: paths inside it are shown relative to it.
ROOT = Path(__file__).resolve().parents[1]


def _shown(path: Path) -> Path:
    try:
        return path.resolve().relative_to(ROOT)
    except ValueError:
        return path


def block_bf16_paired(rep: Report) -> str:
    """The bf16 check (:mod:`figures.bf16_paired`) from the runs of ``--runs-bf16``."""
    try:
        return markdown(*bf16_comparisons(committed_runs(rep.bf16)), title=False)
    except MissingDataError as exc:
        return (f"Not yet: {exc} under `{_shown(rep.bf16)}` (`nice sh "
                "results/bf16-paired/run.sh` makes them).")


def block_protocol_choice(rep: Report) -> str:
    """Each protocol choice against the paper's protocol (:mod:`figures.protocol_choice`)."""
    paper = rep.choices / PAPER_FOLDER
    folders = ([d for d in sorted(rep.choices.iterdir()) if d.is_dir() and d.name != PAPER_FOLDER]
               if rep.choices.is_dir() else [])
    # a variant with no committed run is left out: its folder may hold runs still training, or
    # be absent (a clean clone), and the block must read the same in both
    variants = {d.name: runs for d in folders if (runs := committed_runs(d))}
    paper_runs = committed_runs(paper)
    if not paper_runs or not variants:
        return (f"Not yet: needs the paper-protocol runs in `{_shown(paper)}` and each "
                f"variant's runs in a folder beside it (`{_shown(rep.choices)}/<choice>/`).")
    try:
        text, notes = choice_table(paper_runs, variants)
    except MissingDataError as exc:
        return f"Not yet: {exc}."
    return text + ("\n\n" + "\n".join(f"- {n}." for n in notes) if notes else "")


BLOCKS: dict[str, Callable[[Report], str]] = {
    "rule": block_rule, "budget": block_budget, "final-errors": block_final_errors,
    "claim1": block_claim1, "claim2": block_claim2, "claim3": block_claim3,
    "paper-numbers": block_paper_numbers, "claim4": block_claim4, "claim4-old": block_claim4_old,
    "claim5": block_claim5, "claim5-strong": block_claim5_strong, "claim6": block_claim6,
    "figure8": block_figure8, "summary": block_summary, "earlier-summary": block_earlier_summary,
    "bf16-paired": block_bf16_paired,
    "protocol-choice": block_protocol_choice,
}


@dataclass
class OldBudget(Budget):
    path: Path = Path(".")


class Report:
    """The runs of budgets A, B and C (C may be empty), the older runs and budget C's protocol
    on a GPU (listed, not judged), and the blocks drawn from them."""

    def __init__(self, runs_a: Path, runs_b: Path, runs_old: Iterable[Path] = (),
                 bf16: Path = DEFAULT_BF16, choices: Path = DEFAULT_CHOICES,
                 paper: Path = DEFAULT_PAPER, paper_gpu: Path | None = None) -> None:
        self.bf16, self.choices = Path(bf16), Path(choices)
        self.a = Budget("A", committed_runs(runs_a))
        self.b = Budget("B", committed_runs(runs_b))
        self.c = Budget("C", longer_groups(committed_runs(paper),
                                           committed_runs(Path(paper).parent / LONG_FOLDER)))
        #: The runs in the simultaneous order (:meth:`bp_simultaneous`,
        #: :meth:`all_simultaneous`), read once.
        self.simultaneous = longer_groups(
            committed_runs(self.choices / BP_ORDER_FOLDER),
            committed_runs(Path(paper).parent / LONG_SIMULTANEOUS_FOLDER))
        self.bp_references = [r for r in self.simultaneous if r.protocol in BP_REFERENCES]
        #: Figure 8's untied runs of the independent start, read once.
        self.untied_independent = committed_runs(self.choices / UNTIED_START_FOLDER)
        #: Figure 8's untied runs of budget C trained again to record their homogeneity.
        self.homogeneity_rerun = committed_runs(Path(paper).parent / HOMOGENEITY_RERUN_FOLDER)
        self.old = [OldBudget("old", committed_runs(p), path=Path(p)) for p in runs_old]
        self.old = [o for o in self.old if o.runs]
        #: Budget C's protocol on a lent GPU (None: none): in the budget and error tables only.
        self.gpu = [] if paper_gpu is None else [
            g for g in [Budget("C on an H200", committed_runs(paper_gpu))] if g.runs]
        for b in (self.a, self.b):
            if not b.runs:
                raise LookupError(f"budget {b.name}: no runs")
        #: The budgets a claim may be judged at, in the order a tie is broken (the last wins).
        self.view = [self.a, self.b, self.c]

    def bp_simultaneous(self) -> Report | None:
        """This report with budget C's BP and BP-H runs replaced by the committed ones of
        ``choices/simultaneous`` (:data:`BP_SIMULTANEOUS`); None while there are none, when
        budget C is not in view (:meth:`earlier`), or when C's other runs were trained on another
        kind of device than those (a pair of runs compares two rules on one kind of device)."""
        if self.c not in self.view:
            return None
        refs = self.bp_references
        others = [r for r in self.c.runs if r.protocol not in BP_REFERENCES]
        if not refs or not self._one_device(others + refs):
            return None
        alt = copy.copy(self)
        alt.c = Budget(BP_SIMULTANEOUS, others + refs)
        alt.view = [self.a, self.b, alt.c]
        return alt

    def all_simultaneous(self) -> Report | None:
        """This report with budget C in the simultaneous order throughout
        (:data:`ALL_SIMULTANEOUS`): the BP, BP-H and URFB runs of ``choices/simultaneous`` and
        budget C's FRFB runs; C's other runs (URFB, URFB 50%, untied URFB in the paper's order)
        are left out. None while that folder holds no URFB run, when budget C is not in view, or
        when C's FRFB runs were trained on another device than those runs (an FRFB run stands
        for both orders on the machine that trained it, not beside another machine's runs)."""
        if self.c not in self.view:
            return None
        moving = [r for r in self.simultaneous
                  if r.protocol is not None and PROTOCOLS[r.protocol].method != ORDER_FREE_METHOD]
        if not any(PROTOCOLS[r.protocol].method == "urfb" for r in moving):
            return None
        order_free = [r for r in self.c.runs if r.protocol is not None
                      and PROTOCOLS[r.protocol].method == ORDER_FREE_METHOD]
        if not self._one_device(order_free + moving):
            return None
        alt = copy.copy(self)
        alt.c = Budget(ALL_SIMULTANEOUS, order_free + moving)
        alt.view = [self.a, self.b, alt.c]
        return alt

    def simultaneous_listed(self) -> list[Budget]:
        """The runs of ``choices/simultaneous`` as a budget of their own
        (:data:`ALL_SIMULTANEOUS`), for the budget and error tables; none when budget C is not
        in view or was trained on another device."""
        if self.c not in self.view or not self.simultaneous:
            return []
        if not self._one_device(self.c.runs + self.simultaneous):
            return []
        return [Budget(ALL_SIMULTANEOUS, self.simultaneous)]

    @staticmethod
    def _one_device(runs: list[Run]) -> bool:
        return len({r.config.get("device") for r in runs}) <= 1

    def earlier(self) -> Report:
        """The same report without budget C: the claims as they stood at budgets A and B."""
        before = copy.copy(self)
        before.view = [self.a, self.b]
        return before

    def largest(self, *needs: Need) -> Budget:
        """Of the budgets in view holding every group of ``needs`` (tied runs, all seeds), the
        one whose groups have the most seeds, then share the most epochs (a budget whose runs
        are committed one by one does not take a part over with fewer seeds); on a tie the
        later one (C before B before A)."""
        best: tuple[int, int, int, Budget] | None = None
        for order, budget in enumerate(self.view):
            found = [budget.group(arch, p) for arch, p in needs]
            groups = [g for g in found if g is not None]
            if len(groups) < len(found):
                continue
            key = (min(g.n for g in groups), min(g.common_epoch for g in groups), order, budget)
            if best is None or key[:3] > best[:3]:
                best = key
        if best is None:
            names = ", ".join(f"{arch} {p}" for arch, p in needs)
            raise LookupError(f"no budget ({', '.join(b.name for b in self.view)}) holds runs "
                              f"of {names}")
        return best[3]

    @staticmethod
    def is_pre(budget: Budget, run: Run) -> bool:
        return run.name in pretraining_runs(budget.runs)

    def block(self, name: str) -> str:
        return BLOCKS[name](self).strip()

    def all(self) -> str:
        return "\n\n".join(f"## {name}\n\n{self.block(name)}" for name in BLOCKS)


MARK = re.compile(r"(<!-- report:(?P<name>[\w-]+) -->\n)(?P<body>(?:.*?\n)?)(<!-- /report:(?P=name) -->)",
                  re.DOTALL)


#: The line that opens a report block (:data:`MARK` matches it with its closing line).
OPENING = re.compile(r"<!-- report:(?P<name>[\w-]+) -->")


def blocks_problem(text: str) -> str | None:
    """What keeps ``text``'s report blocks from being checked or rewritten (None: nothing): a
    block of an unknown name, or one opened without its closing line (it would be passed over,
    and ``--check`` pass without it)."""
    opened = [m.group("name") for m in OPENING.finditer(text)]
    closed = Counter(m.group("name") for m in MARK.finditer(text))
    unknown = sorted(set(opened) - set(BLOCKS))
    if unknown:
        return f"unknown report block {unknown[0]!r}; known: {', '.join(BLOCKS)}"
    for name, count in Counter(opened).items():
        if closed[name] < count:
            return (f"the block {name} has no closing line <!-- /report:{name} --> after its "
                    "opening one")
    return None


def render(text: str, report: Report) -> str:
    """``text`` with every report block replaced by its current content."""
    def sub(m: re.Match) -> str:
        name = m.group("name")
        if name not in BLOCKS:
            raise KeyError(f"unknown report block {name!r}; known: {sorted(BLOCKS)}")
        return m.group(1) + report.block(name) + "\n" + m.group(4)
    return MARK.sub(sub, text)


def stale_blocks(text: str, report: Report) -> list[str]:
    """Names of the blocks in ``text`` whose content is not what the runs give now."""
    return [m.group("name") for m in MARK.finditer(text)
            if m.group("body").strip() != report.block(m.group("name"))]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m figures.report",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--runs-a", type=path_arg, default=DEFAULT_A, help=f"budget A (default {DEFAULT_A})")
    parser.add_argument("--runs-b", type=path_arg, default=DEFAULT_B, help=f"budget B (default {DEFAULT_B})")
    parser.add_argument("--runs-paper", type=path_arg, default=None,
                        help=f"budget C, the paper's protocol toward convergence (default "
                             f"{DEFAULT_PAPER}; absent or without committed runs: claims stay at A, B)")
    parser.add_argument("--runs-paper-gpu", type=path_arg, default=None,
                        help=f"budget C's protocol on a lent GPU, listed in the budget and error "
                             f"tables and never judged (default {DEFAULT_PAPER_GPU}; absent: not listed)")
    parser.add_argument("--runs-old", type=path_arg, nargs="*", default=None,
                        help="older single-seed runs (default: " + ", ".join(map(str, DEFAULT_OLD)) + ")")
    parser.add_argument("--runs-bf16", type=path_arg, default=None,
                        help=f"the bf16 against fp32 runs (default {DEFAULT_BF16}; absent: 'not yet')")
    parser.add_argument("--runs-choices", type=path_arg, default=None,
                        help=f"the protocol-choice runs: {PAPER_FOLDER}/ and one folder per variant "
                             f"(default {DEFAULT_CHOICES}; absent: 'not yet')")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--update", type=path_arg, metavar="FILE", help="rewrite the report blocks of FILE")
    group.add_argument("--check", type=path_arg, metavar="FILE",
                       help="exit 1 when a report block of FILE is not current")
    return parser


def _naming_flag(message: str, folders: list[tuple[str, Path]]) -> str:
    """``message`` led by the flag and folder of the runs it is about (a damaged file names
    its path, which lies below one of ``folders``: ``[(flag, folder)]``), as it is when none
    does."""
    for flag, folder in folders:
        if f"{folder}{os.sep}" in message:
            return f"{flag} {folder}: {message}"
    return message


@command_line("python -m figures.report")
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for flag, path in (("--runs-a", args.runs_a), ("--runs-b", args.runs_b),
                       ("--runs-bf16", args.runs_bf16), ("--runs-choices", args.runs_choices),
                       ("--runs-paper", args.runs_paper), ("--runs-paper-gpu", args.runs_paper_gpu)):
        if path is not None:  # the last four, left out, are 'not yet' (or not listed) until their runs exist
            require_existing(parser, flag, path)
    for path in args.runs_old or ():  # given: each must exist (a default one may be absent)
        require_existing(parser, "--runs-old", path)
    old = list(DEFAULT_OLD) if args.runs_old is None else args.runs_old
    doc = args.update or args.check
    text = ""
    if doc is not None:
        flag = "--update" if args.update else "--check"
        require_existing(parser, flag, doc, file=True)
        try:
            text = doc.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            parser.error(f"{flag} {doc}: not UTF-8 text ({exc.reason} at byte {exc.start})")
        if not MARK.search(text):  # nothing to update or check is not a success
            parser.error(f"{flag} {doc}: holds no report block (<!-- report:NAME --> ... "
                         f"<!-- /report:NAME -->; names: {', '.join(BLOCKS)})")
        problem = blocks_problem(text)
        if problem:
            parser.error(f"{flag} {doc}: {problem}")
    folders = [("--runs-a", args.runs_a), ("--runs-b", args.runs_b),
               *(("--runs-old", p) for p in old),
               ("--runs-bf16", args.runs_bf16 or DEFAULT_BF16),
               ("--runs-choices", args.runs_choices or DEFAULT_CHOICES),
               ("--runs-paper", args.runs_paper or DEFAULT_PAPER),
               ("--runs-paper-gpu", args.runs_paper_gpu or DEFAULT_PAPER_GPU)]
    try:
        report = Report(args.runs_a, args.runs_b, [p for p in old if p.is_dir()],
                        args.runs_bf16 or DEFAULT_BF16, args.runs_choices or DEFAULT_CHOICES,
                        args.runs_paper or DEFAULT_PAPER,
                        args.runs_paper_gpu or DEFAULT_PAPER_GPU)
        if doc is None:
            print(report.all())
            return 0
        if args.check:
            stale = stale_blocks(text, report)
            for name in stale:
                print(f"{doc}: block {name} is not current", file=sys.stderr)
            return 1 if stale else 0
        new = render(text, report)
    except (LookupError, ValueError) as exc:
        parser.error(_naming_flag(str(exc).strip("'\""), folders))
    if new != text:
        atomic_write_text(doc, new)
    print(f"{doc}: {len(MARK.findall(new))} report blocks, "
          f"{'rewritten' if new != text else 'already current'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
