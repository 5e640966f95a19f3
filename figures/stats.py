"""Seeds, paired comparisons and the verdict rule of ``docs/results.md`` (standard library only).

A *series* is ``{seed: {epoch: value}}``: one logged quantity (validation error, a layer's
correlation ...) of the runs of one protocol, one run per seed. Two protocols are compared by
pairing their runs by seed and using only the epochs both runs of a pair reached:
:func:`paired` gives, per epoch, each seed's difference ``a - b``, their mean and sd and how many
seeds have each sign; :func:`final` picks the last epoch that every pair reached.

The verdict rule (stated once, in ``docs/results.md``, from :func:`rule_text`):

* a claim that ``d = a - b`` is positive (a directional claim, :func:`verdict`): **supports** when
  every seed has ``d > 0`` and ``mean(d) > K_SD * sd(d)``; **contradicts** when every seed has
  ``d < 0`` and ``-mean(d) > K_SD * sd(d)``; else **inconclusive**;
* a claim that ``a`` and ``b`` are close (:func:`close_verdict`, margin ``m``): **supports** when
  ``m - d`` and ``m + d`` both pass the directional rule (every seed has ``|d| < m`` and
  ``|mean| + K_SD * sd < m``); **contradicts** when ``d - m`` or ``-d - m`` passes it (every seed
  is beyond the margin on the same side, by more than ``K_SD`` sd); else **inconclusive**. Two
  error rates that are both within :data:`CHANCE_MARGIN` of chance in every seed are
  **uninformative** (:func:`near_chance`): two untrained networks are close, and say nothing;
* a claim with a stated size ("at least twice", "0.1 above", "15 degrees closer") is the
  directional rule on ``a - (factor * b + offset)`` (:func:`compare`'s ``factor``, ``offset``);
* a claim "in every layer" (:func:`every`): **supports** when every layer's row supports,
  **contradicts** when one contradicts, else **inconclusive**; its summary shows the layer with
  the least favourable mean difference;
* endpoints (:func:`chosen_epoch`, :func:`last_epochs`): the *robust* endpoint is the test error
  at each run's validation-chosen epoch (its lowest validation error, the earliest of equals);
  claims about a curve's shape use the mean over the last :data:`LAST_EPOCHS` epochs every pair
  reached. A row whose verdict differs between the two endpoints is **fragile**.

``sd`` is the sample standard deviation (n - 1). Fewer than :data:`MIN_SEEDS` seeds is always
inconclusive. Nothing here imports torch or numpy: the docs builder can use it anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["CHANCE_MARGIN", "CLOSE_MARGIN", "CONTRADICTS", "INCONCLUSIVE", "K_SD", "LAST_EPOCHS",
           "MIN_SEEDS", "SUPPORTS", "UNINFORMATIVE", "Comparison", "Series", "Summary",
           "chosen_epoch", "close_verdict", "compare", "difference", "every", "final",
           "last_epochs", "near_chance", "paired", "rule_text", "summarize", "verdict"]

#: seed -> epoch -> value
Series = Mapping[int, Mapping[int, float]]

SUPPORTS, CONTRADICTS, INCONCLUSIVE = "supports", "contradicts", "inconclusive"
UNINFORMATIVE = "uninformative"
#: The mean must exceed this many (sample) standard deviations of the per-seed differences.
K_SD = 2.0
#: Fewer seeds than this give no sd: the verdict is inconclusive.
MIN_SEEDS = 2
#: "Close", "comparable", "similar": within 5 points of error rate (0.05).
CLOSE_MARGIN = 0.05
#: An error rate within this of chance (1 - 1/classes) is an untrained network's.
CHANCE_MARGIN = 0.02
#: Curve-shape claims: the mean over this many last epochs.
LAST_EPOCHS = 5


@dataclass(frozen=True)
class Summary:
    """Values of one quantity, one per seed: mean, sample sd (None for one seed), min, max."""

    values: dict[int, float]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(self.values.values()) / self.n

    @property
    def sd(self) -> float | None:
        if self.n < 2:
            return None
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in self.values.values()) / (self.n - 1))

    @property
    def lo(self) -> float:
        return min(self.values.values())

    @property
    def hi(self) -> float:
        return max(self.values.values())

    def format(self, digits: int = 3, *, signed: bool = False) -> str:
        """``0.401 ± 0.004 (s0 0.401, s1 0.402, s2 0.394)``; one seed: ``0.780 (s0 only)``."""
        f = f"{{:+.{digits}f}}" if signed else f"{{:.{digits}f}}"
        each = ", ".join(f"s{s} {f.format(v)}" for s, v in sorted(self.values.items()))
        if self.sd is None:
            return f"{f.format(self.mean)} ({each} only)"
        return f"{f.format(self.mean)} ± {self.sd:.{digits}f} ({each})"


    def compact(self, digits: int = 3, *, signed: bool = False) -> str:
        """``0.401 ± 0.004 [0.401, 0.402, 0.394]`` (values in seed order; seeds named unless they
        are 0, 1, ... n-1); one seed: ``0.780 [s0 only]``."""
        f = f"{{:+.{digits}f}}" if signed else f"{{:.{digits}f}}"
        seeds = sorted(self.values)
        named = seeds != list(range(len(seeds))) or len(seeds) == 1
        each = ", ".join((f"s{s} " if named else "") + f.format(self.values[s]) for s in seeds)
        if self.sd is None:
            return f"{f.format(self.mean)} [{each} only]"
        return f"{f.format(self.mean)} ± {self.sd:.{digits}f} [{each}]"

    def brief(self, digits: int = 3) -> str:
        """``0.401 ± 0.004`` (one seed: ``0.401``): the mean and sd without the seeds'
        values, for a second number beside a :meth:`compact` one."""
        spread = "" if self.sd is None else f" ± {self.sd:.{digits}f}"
        return f"{self.mean:.{digits}f}{spread}"


def summarize(values: Mapping[int, float]) -> Summary:
    """A :class:`Summary` of ``{seed: value}`` (at least one value)."""
    if not values:
        raise ValueError("summarize: no values")
    return Summary({int(s): float(v) for s, v in values.items()})


@dataclass(frozen=True)
class Comparison:
    """Paired per-seed differences ``a - b`` at one epoch (``None``: not an epoch-wise quantity)."""

    epoch: int | None
    diffs: dict[int, float]

    @property
    def n(self) -> int:
        return len(self.diffs)

    @property
    def summary(self) -> Summary:
        return summarize(self.diffs)

    @property
    def mean(self) -> float:
        return self.summary.mean

    @property
    def sd(self) -> float | None:
        return self.summary.sd

    @property
    def n_positive(self) -> int:
        return sum(d > 0 for d in self.diffs.values())

    @property
    def n_negative(self) -> int:
        return sum(d < 0 for d in self.diffs.values())

    def sign_count(self, sign: int = 1) -> str:
        """``3/3``: in how many seeds ``a - b`` has the sign ``sign`` (+1 or -1)."""
        return f"{self.n_positive if sign > 0 else self.n_negative}/{self.n}"


def compare(a: Mapping[int, float], b: Mapping[int, float], epoch: int | None = None, *,
            factor: float = 1.0, offset: float = 0.0) -> Comparison:
    """``a - (factor * b + offset)`` for every seed in both (``{seed: value}`` each): with the
    defaults ``a - b``; a claim "a at least twice b and 0.1 above it" is two comparisons,
    ``factor=2`` and ``offset=0.1``."""
    seeds = sorted(set(a) & set(b))
    return Comparison(epoch, {s: float(a[s]) - (factor * float(b[s]) + offset) for s in seeds})


def near_chance(values: Mapping[int, float], chance: float,
                margin: float = CHANCE_MARGIN) -> bool:
    """Whether every seed's error rate is within ``margin`` of ``chance``."""
    return bool(values) and all(abs(float(v) - chance) <= margin for v in values.values())


def every(verdicts: Iterable[str]) -> str:
    """The verdict on "in every layer": supports if all do, contradicts if one does."""
    v = list(verdicts)
    if v and all(x == SUPPORTS for x in v):
        return SUPPORTS
    return CONTRADICTS if CONTRADICTS in v else INCONCLUSIVE


def chosen_epoch(val: Mapping[int, float], last: int | None = None) -> int:
    """The validation-chosen epoch of one run: the lowest validation error among the epochs up
    to ``last`` (all by default), the earliest of equals."""
    epochs = sorted(e for e in val if last is None or e <= last)
    if not epochs:
        raise ValueError("chosen_epoch: no validation error logged")
    return min(epochs, key=lambda e: (val[e], e))


def last_epochs(a: Series, b: Series, k: int = LAST_EPOCHS) -> list[int]:
    """The last ``k`` epochs (fewer if fewer exist) that every paired seed reached in both."""
    diff = {s: per for s, per in difference(a, b).items() if per}
    if not diff:
        raise ValueError("last_epochs: the two series share no seed with a common epoch")
    common = sorted(set.intersection(*(set(per) for per in diff.values())))
    if not common:
        raise ValueError("last_epochs: no epoch is reached by every pair of runs")
    return common[-k:]


def difference(a: Series, b: Series) -> dict[int, dict[int, float]]:
    """The series ``a - b``: per seed in both, per epoch both reached."""
    return {s: {e: float(a[s][e]) - float(b[s][e]) for e in sorted(set(a[s]) & set(b[s]))}
            for s in sorted(set(a) & set(b))}


def paired(a: Series, b: Series) -> list[Comparison]:
    """Per epoch that at least one pair reached, the seeds' differences ``a - b`` (only seeds in
    both series, only epochs both runs of the seed reached), in epoch order."""
    diff = difference(a, b)
    epochs = sorted({e for per in diff.values() for e in per})
    return [Comparison(e, {s: per[e] for s, per in diff.items() if e in per}) for e in epochs]


def final(a: Series, b: Series) -> Comparison:
    """The comparison at the last epoch that every paired seed reached in both series.

    :class:`ValueError` when the series share no seed, or no epoch is common to all pairs.
    """
    diff = {s: per for s, per in difference(a, b).items() if per}
    if not diff:
        raise ValueError("final: the two series share no seed with a common epoch")
    common = set.intersection(*(set(per) for per in diff.values()))
    if not common:
        raise ValueError("final: no epoch is reached by every pair of runs")
    e = max(common)
    return Comparison(e, {s: per[e] for s, per in diff.items()})


def _passes(diffs: Iterable[float]) -> bool:
    """The directional rule's "supports" for ``diffs``: all positive, mean > K_SD sd."""
    d = list(diffs)
    if len(d) < MIN_SEEDS or not all(x > 0 for x in d):
        return False
    s = summarize(dict(enumerate(d)))
    return s.mean > K_SD * (s.sd or 0.0)


def verdict(diffs: Comparison | Mapping[int, float] | Iterable[float]) -> str:
    """The directional verdict on a claim that the differences are positive."""
    d = _values(diffs)
    if _passes(d):
        return SUPPORTS
    if _passes(-x for x in d):
        return CONTRADICTS
    return INCONCLUSIVE


def close_verdict(diffs: Comparison | Mapping[int, float] | Iterable[float],
                  margin: float = CLOSE_MARGIN) -> str:
    """The verdict on a claim that the differences are within ``margin`` of 0."""
    d = _values(diffs)
    if _passes(margin - x for x in d) and _passes(margin + x for x in d):
        return SUPPORTS
    if _passes(x - margin for x in d) or _passes(-x - margin for x in d):
        return CONTRADICTS
    return INCONCLUSIVE


def _values(diffs: Comparison | Mapping[int, float] | Iterable[float]) -> list[float]:
    if isinstance(diffs, Comparison):
        return list(diffs.diffs.values())
    if isinstance(diffs, Mapping):
        return [float(v) for v in diffs.values()]
    return [float(v) for v in diffs]


def rule_text() -> str:
    """The verdict rule in words, with this module's constants (for ``docs/results.md``)."""
    k = f"{K_SD:g}"
    return (
        "For a claim that quantity *a* is above *b* (e.g. FRFB's error above URFB's), take for "
        "each seed the difference d = a − b between the two runs of that seed, at the endpoint "
        "the row names. Endpoints: for error rates the robust endpoint is the **test error at "
        "each run's validation-chosen epoch** (lowest validation error, the earliest of equals; "
        "runs not scored on the test split show the validation error there, and say so); for "
        f"the shape of a curve (correlations, angles, gaps over training) the **mean over the "
        f"last {LAST_EPOCHS} epochs** that every pair reached. Each row is also judged at the "
        "other endpoint; a row whose verdict differs between the two is marked **fragile**. Two "
        "runs are compared only at the same budget (the same epoch, or each at its own "
        "validation-chosen epoch of runs of the same length, said so). **Supports**: every seed "
        "has d > 0 and "
        f"mean(d) > {k} × sd(d). **Contradicts**: every seed has d < 0 and −mean(d) > {k} × sd(d). "
        "Otherwise **inconclusive**. For a claim that *a* and *b* are close ('comparable', "
        f"'close', 'similar'), the margin is m = {CLOSE_MARGIN:g} (5 points of error rate): "
        f"**supports** when every seed has |d| < m and |mean(d)| + {k} × sd(d) < m; "
        "**contradicts** when every seed has d beyond the margin on the same side (all d > m, or "
        f"all d < −m) and |mean(d)| − m > {k} × sd(d); otherwise **inconclusive**; when both "
        f"error rates are within {CHANCE_MARGIN:g} of chance (1 − 1/classes) in every seed, "
        "**uninformative** (two untrained networks are close and say nothing). A claim with a "
        "size (\"much stronger\") states its numbers beside it and tests d = a − (factor × b + "
        "offset). A claim about every layer supports when every layer's row does and contradicts "
        "when one does; its summary shows the layer with the least favourable mean difference. "
        f"sd is the sample standard deviation (n − 1); fewer than {MIN_SEEDS} seeds is always "
        "inconclusive."
    )
