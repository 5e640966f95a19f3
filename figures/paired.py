"""Two families of runs that differ in one setting, compared rule by rule and seed by seed.

A *family* is the runs of one setting: fp32 or bf16 (issue 18's paired check), the paper's
protocol or a variant of it (issue 20's protocol choices: the simultaneous update order, biases).
For each rule (Section 4 protocol) of each architecture present in both families, the runs are
paired by seed (same initial weights, data split and order) and compared under the verdict rule of
``docs/results.md`` (:mod:`figures.stats`) with its endpoints (:mod:`figures.endpoints`):

* only the epochs every paired run reached are used (the budget of the comparison): the window
  is the last :data:`figures.stats.LAST_EPOCHS` of them;
* the error endpoint is the test error at each run's validation-chosen epoch where every run was
  scored on the test split (``test.json``), else the validation error there; the other endpoint
  is the mean validation error over the window; a row whose verdict differs between the two is
  **fragile**; where only one family was scored on the test split, both are compared on
  validation (a note says so);
* "close" is the rule's close test (margin :data:`figures.stats.CLOSE_MARGIN`), "better or
  worse" its directional test on d = a - b;
* per weight layer, corr(W, Rᵗ) and the probe's angles (``delta_angle``, ``local_delta_angle``)
  over the window, by the directional test (a curve's endpoint: the window's mean).

Seeds with a run in one family only are left out of the pairs and named.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from deepnets import PROTOCOLS
from figures.angles import epoch_series
from figures.endpoints import Ends, curve_ends, paired_error_ends, window
from figures.rows import Row, chance_of, images, pair_row, scale, table
from figures.runs import Run, Seeds, select_seeds
from figures.stats import CLOSE_MARGIN, summarize

__all__ = ["ANGLE_KEYS", "IGNORED_SETTINGS", "LayerRow", "RuleComparison", "by_setting",
           "close_table", "compare_families", "corr_series", "layers_table",
           "mean_endpoint", "saturated_series", "setting_differences", "unpaired_note"]

#: The probe's angles compared per layer: Lillicrap et al.'s global comparison and Akrout et
#: al.'s local one (issue 20, part 3).
ANGLE_KEYS = ("delta_angle", "local_delta_angle")
#: ``config.json`` keys that say how or where a run was made, not what it learnt: they may differ
#: between paired runs (``net`` repeats the network's own keys).
IGNORED_SETTINGS = frozenset({"epochs", "device", "cuda_graph", "deterministic", "data_dir",
                              "data_dir_from_run", "net", "from_run", "copy"})


def by_setting(runs: Iterable[Run], setting: Callable[[Run], str]) -> dict[str, list[Run]]:
    """The runs split into families by ``setting(run)`` (e.g. the run's precision)."""
    out: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        out[setting(run)].append(run)
    return dict(out)


#: What a ``config.json`` key that a run does not record means (``deepnets.training.config``:
#: a run written before ``eval_precision``, or an fp32 one, evaluated in fp32; one without
#: ``sigma_prime_down`` sent the error down with sigma', eq. (2); one without ``shared_masks``
#: drew R's mask apart from W's).
ABSENT_MEANS = {"eval_precision": "fp32", "precision": "fp32", "sigma_prime_down": True,
                "shared_masks": False}


def setting_differences(a: Seeds, b: Seeds) -> dict[str, tuple[object, object]]:
    """``{key: (a's value, b's value)}`` for the ``config.json`` keys (less
    :data:`IGNORED_SETTINGS`) whose values differ between the two families' runs of a seed."""
    out: dict[str, tuple[object, object]] = {}
    runs_b = {r.seed: r for r in b.runs}
    for ra in a.runs:
        rb = runs_b.get(ra.seed)
        if rb is None:
            continue
        for key in sorted((set(ra.config) | set(rb.config)) - IGNORED_SETTINGS - {"seed"}):
            va, vb = (ABSENT_MEANS.get(key) if v is None else v
                      for v in (ra.config.get(key), rb.config.get(key)))
            if va != vb:
                out.setdefault(key, (va, vb))
    return out


def saturated_series(g: Seeds, name: str) -> dict[int, dict[int, float]]:
    """``{seed: {epoch: share of layer name's units at sigma'(h) = 0}}`` (the log's
    ``saturated``, Remark 2; absent in runs logged before it was)."""
    return g.layer_series(lambda row: (row.get("saturated") or {}).get(name))


def corr_series(g: Seeds, index: int) -> dict[int, dict[int, float]]:
    """``{seed: {epoch: corr(W, Rᵗ)}}`` of weight layer ``index``."""
    return g.layer_series(lambda row: row["corr"][index]
                          if len(row.get("corr") or []) > index else None)


@dataclass(frozen=True)
class LayerRow:
    """One layer's curve (``corr`` or an angle) compared over the window: ``row`` is the
    directional test of d = a - b on the window's mean (the validation-chosen epoch beside it)."""

    layer: str
    quantity: str
    row: Row


@dataclass(frozen=True)
class RuleComparison:
    """One rule of one architecture in both families, paired by seed (``a`` and ``b`` hold the
    paired runs only)."""

    arch: str
    protocol: str
    #: ``simpnet URFB`` (and classes, untied, frozen where they apply).
    title: str
    a: Seeds
    b: Seeds
    #: Seeds with a run in one family only: ``(a's, b's)``.
    unpaired: tuple[tuple[int, ...], tuple[int, ...]]
    #: The window: the last epochs every paired run reached.
    epochs: list[int]
    ends_a: Ends
    ends_b: Ends
    #: The close test of the errors (margin CLOSE_MARGIN) at the error endpoint, the window's
    #: mean as ``alt``.
    close: Row
    #: The directional test of d = a - b (a's error above b's), same endpoints.
    greater: Row
    layers: tuple[LayerRow, ...]
    settings: dict[str, tuple[object, object]]

    @property
    def label(self) -> str:
        return PROTOCOLS[self.protocol].label

    @property
    def budget(self) -> str:
        """``ep 50 × 45,000, 3 seeds (5%)``: the epochs compared."""
        return scale(self.epochs[-1], images(self.a), self.a.n)

    def endpoint_lines(self, a_name: str, b_name: str) -> list[list[str]]:
        """Two table lines (the error endpoint, the window's mean): endpoint, a, b, d = a - b
        [per seed], how many seeds have |d| < m, the close verdict."""
        lines = []
        for cmp, name, cell_a, cell_b, verdict_text in (
                (self.close.cmp, self.close.endpoint, self.close.a, self.close.b,
                 self.close.verdict_text()),
                (self.close.alt, mean_endpoint(self.epochs), summarize(self.ends_a.last).compact(),
                 summarize(self.ends_b.last).compact(), self._alt_text())):
            inside = sum(abs(d) < CLOSE_MARGIN for d in cmp.diffs.values())
            lines.append([self.title, self.budget, name, cell_a, cell_b,
                          cmp.summary.compact(signed=True),
                          f"\\|d\\| < {CLOSE_MARGIN:g} in {inside}/{cmp.n}", verdict_text])
        return lines

    def _alt_text(self) -> str:
        alt = self.close.alt_verdict
        text = f"**{alt}**" + (" (one seed)" if self.close.alt.n < 2 else "")
        return text + (", **fragile**" if self.close.fragile else "")


def mean_endpoint(epochs: list[int]) -> str:
    """The name of the other error endpoint: the mean validation error over the window."""
    if len(epochs) == 1:
        return f"validation error at ep {epochs[0]}"
    return f"mean validation error of ep {epochs[0]}–{epochs[-1]}"


def _paired(g: Seeds, seeds: set[int]) -> Seeds:
    return Seeds(tuple(r for r in g.runs if r.seed in seeds))


def _layer_rows(ga: Seeds, gb: Seeds, epochs: list[int], budget: str) -> list[LayerRow]:
    out = []
    names = ga.layer_names()
    n = images(ga)
    for i, name in enumerate(names):
        curves: list[tuple[str, dict, dict, int]] = [
            ("corr(W, Rᵗ)", corr_series(ga, i), corr_series(gb, i), 3)]
        curves += [(key, epoch_series(ga, name, key), epoch_series(gb, name, key), 1)
                   for key in ANGLE_KEYS]
        curves.append(("saturated units", saturated_series(ga, name), saturated_series(gb, name), 3))
        for quantity, sa, sb, digits in curves:
            ea, eb = curve_ends(ga, sa, epochs), curve_ends(gb, sb, epochs)
            if not ea.last or not eb.last:
                continue  # not logged for this layer (no error sent into the image, old runs)
            row = pair_row(f"{name} {quantity}", budget, ea, eb, "greater", n, epochs,
                           curve=True, digits=digits)
            out.append(LayerRow(name, quantity, row))
    return out


RunKey = tuple[str, str, int, bool, tuple[int, ...]]


def title(key: RunKey) -> str:
    """``simpnet URFB`` (with ``100 classes``, ``untied``, ``frozen [0]`` where they apply)."""
    arch, protocol, n_classes, untied, frozen = key
    extra = ([f"{n_classes} classes"] if n_classes != 10 else []) + (["untied"] if untied else [])
    extra += [f"frozen {list(frozen)}"] if frozen else []
    return f"{arch} {PROTOCOLS[protocol].label}" + (f" ({', '.join(extra)})" if extra else "")


def _groups(runs: Sequence[Run]) -> dict[RunKey, Seeds]:
    """Per description (:attr:`Run.key`: architecture, rule, classes, untied, frozen), its runs
    one per seed (:func:`figures.runs.select_seeds`)."""
    keys = sorted({r.key for r in runs if r.protocol is not None},
                  key=lambda k: (k[0], list(PROTOCOLS).index(k[1]), *k[2:]))
    out = {}
    for key in keys:
        arch, protocol, n_classes, untied, frozen = key
        g = select_seeds(runs, arch=arch, protocol=protocol, n_classes=n_classes,
                         untied=untied, frozen=frozen)
        if g is not None:
            out[key] = g
    return out


def compare_families(a: Sequence[Run], b: Sequence[Run], budget: str = "",
                     names: tuple[str, str] = ("first", "second"), *,
                     note_lone_b: bool = True) -> tuple[list[RuleComparison], list[str]]:
    """Per description (architecture, rule, classes, untied, frozen) in both families, the
    paired comparison of ``a`` against ``b`` (d = a - b), and notes on what could not be paired.
    ``budget`` names the comparison's runs in its rows (e.g. ``bf16 check``), ``names`` the two
    families in the notes and endpoints. A description with runs in ``a`` only is noted; one in
    ``b`` only where ``note_lone_b`` (not where ``b`` is a whole grid that ``a`` samples)."""
    ga_all, gb_all = _groups(a), _groups(b)
    comparisons, notes = [], []
    lone = [(k, names[0]) for k in ga_all if k not in gb_all]
    lone += [(k, names[1]) for k in gb_all if k not in ga_all] if note_lone_b else []
    for key, side in lone:
        notes.append(f"{title(key)}: runs in the {side} family only")
    for key in [k for k in ga_all if k in gb_all]:
        ga, gb = ga_all[key], gb_all[key]
        common = set(ga.seeds) & set(gb.seeds)
        only = (tuple(s for s in ga.seeds if s not in common),
                tuple(s for s in gb.seeds if s not in common))
        if not common:
            notes.append(f"{title(key)}: no seed in both families")
            continue
        ga, gb = _paired(ga, common), _paired(gb, common)
        epochs = window(ga, gb)
        ea, eb = paired_error_ends(ga, gb, epochs)
        if ea.testable != eb.testable:
            notes.append(f"{title(key)}: only the {names[0] if ea.testable else names[1]} "
                         "family was scored on the test split at the epochs compared; both "
                         "compared on validation")
        n, chance = images(ga), chance_of(ga)
        name = budget or "paired"
        close = pair_row(f"{title(key)}: errors close", name, ea, eb,
                         "close", n, epochs, chance=chance, names=names)
        greater = pair_row(f"{title(key)}: a's error above b's", name,
                           ea, eb, "greater", n, epochs, names=names)
        comparisons.append(RuleComparison(
            key[0], key[1], title(key), ga, gb, only, epochs, ea, eb, close, greater,
            tuple(_layer_rows(ga, gb, epochs, name)), setting_differences(ga, gb)))
    return comparisons, notes


def unpaired_note(c: RuleComparison, a_name: str, b_name: str) -> str | None:
    """``URFB: seed 2 has a fp32 run only`` (None when every seed is paired)."""
    parts = [f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} "
             f"{'have' if len(seeds) > 1 else 'has'} a {name} run only"
             for seeds, name in zip(c.unpaired, (a_name, b_name)) if seeds]
    return f"{c.title}: " + "; ".join(parts) + " (left out of the pairs)" if parts else None


def layers_table(comparisons: Sequence[tuple[str, RuleComparison]], a_name: str,
                 b_name: str) -> str:
    """Each layer's curves of each comparison (``(name shown, comparison)``): the window's
    means of a and b and the directional test of d = a - b."""
    rows = [[shown, x.layer, x.quantity, x.row.endpoint, x.row.a, x.row.b,
             x.row.cmp.summary.compact(x.row.digits, signed=True), x.row.verdict_text()]
            for shown, c in comparisons for x in c.layers]
    return table(["rule", "layer", "curve", "endpoint", f"{a_name}: mean ± sd [per seed]",
                  f"{b_name}: mean ± sd [per seed]", f"d = {a_name} − {b_name}",
                  f"directional test of d > 0 ({a_name} higher)"], rows)


def close_table(comparisons: Sequence[RuleComparison], a_name: str, b_name: str) -> str:
    """Per rule, the close test of the two families' errors at both endpoints."""
    header = ["rule", "epochs compared", "endpoint", f"{a_name}: mean ± sd [per seed]",
              f"{b_name}: mean ± sd [per seed]", f"d = {a_name} − {b_name}: mean ± sd [per seed]",
              "inside the margin", f"verdict on '{a_name} close to {b_name}'"]
    return table(header, (line for c in comparisons for line in c.endpoint_lines(a_name, b_name)))
