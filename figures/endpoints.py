"""The two endpoints of the verdict rule (:mod:`figures.stats`), per seed, for groups of runs.

A comparison of two groups (or of gaps between groups) is made over a *window*: the last
:data:`figures.stats.LAST_EPOCHS` epochs that every run involved reached, so both sides have
the same budget. In it, each quantity has two endpoints per seed (:class:`Ends`):

* ``chosen``: the value at the run's validation-chosen epoch (its lowest validation error up to
  the window's last epoch, the earliest of equals). For the validation error this is the **test
  error** of those weights where the run was scored on the test split (its ``test.json``,
  :mod:`deepnets.experiments.testresult`, holds the same epoch); else the validation error there,
  and ``tested`` is False; where it is the test error, ``validation`` keeps the validation
  error at the same epoch, for the tables to show beside it.
* ``last``: the mean over the window's epochs.

Ends subtract seed by seed, so gaps between protocols (FRFB − URFB) have endpoints too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from figures.runs import Seeds
from figures.stats import LAST_EPOCHS, chosen_epoch

__all__ = ["Ends", "curve_ends", "error_ends", "paired_error_ends", "scored_on_test", "window"]

Seriesd = Mapping[int, Mapping[int, float]]


@dataclass(frozen=True)
class Ends:
    """One quantity per seed at the validation-chosen epoch and as the window's mean."""

    chosen: dict[int, float]
    last: dict[int, float]
    #: Per seed, the validation-chosen epoch (of the left operand, for a difference).
    epochs: dict[int, int]
    #: ``chosen`` holds test errors (every seed scored on the test split at that epoch).
    tested: bool = False
    #: Per seed, the epoch its run was scored on the test split at (``test.json``: the
    #: validation-chosen epoch of the whole run); empty unless every run was scored.
    test_epochs: dict[int, int] = field(default_factory=dict)
    #: For a difference, per seed, the validation-chosen epoch of the right operand.
    second_epochs: dict[int, int] = field(default_factory=dict)
    #: Where ``chosen`` holds test errors: per seed, the validation error at the same epoch.
    validation: dict[int, float] = field(default_factory=dict)

    @property
    def testable(self) -> bool:
        """Every seed was scored on the test split at its validation-chosen epoch here."""
        return bool(self.epochs) and all(self.test_epochs.get(s) == e
                                         for s, e in self.epochs.items())

    def on_validation(self) -> Ends:
        """These ends with the validation errors at the chosen epochs in place of the test
        errors (itself where it holds no test errors): for a comparison with a side that was
        not scored on the test split there."""
        if not self.tested:
            return self
        return Ends(dict(self.validation), self.last, self.epochs, False, self.test_epochs,
                    self.second_epochs)

    def __sub__(self, other: Ends) -> Ends:
        """Seed by seed; test errors where both sides hold them, else validation errors on
        both sides (never one of each)."""
        if self.tested != other.tested:
            return self.on_validation() - other.on_validation()
        seeds = sorted(set(self.chosen) & set(other.chosen))
        validation = ({s: self.validation[s] - other.validation[s] for s in seeds}
                      if self.validation and other.validation else {})
        return Ends({s: self.chosen[s] - other.chosen[s] for s in seeds},
                    {s: self.last[s] - other.last[s] for s in seeds},
                    {s: self.epochs[s] for s in seeds}, self.tested and other.tested,
                    {s: self.test_epochs[s] for s in seeds if s in self.test_epochs}
                    if self.tested and other.tested else {},
                    second_epochs={s: other.epochs[s] for s in seeds if s in other.epochs},
                    validation=validation)


def window(*groups: Seeds) -> list[int]:
    """The last :data:`LAST_EPOCHS` epochs that every run of ``groups`` reached."""
    upto = min(g.common_epoch for g in groups)
    return list(range(max(1, upto - LAST_EPOCHS + 1), upto + 1))


def _chosen(g: Seeds, upto: int) -> dict[int, int]:
    return {s: chosen_epoch(v, upto) for s, v in g.series("val_error").items() if v}


def scored_on_test(g: Seeds, *, current: bool = False) -> dict[int, tuple[int, float]] | None:
    """Per seed, (validation-chosen epoch, test error) from the runs' ``test.json``; None
    unless every run of the group was scored (with ``current``: scored at the length its log
    has, not before it trained on)."""
    out = {}
    for run in g.runs:
        result = run.test_result() or {}
        best = result.get("best")
        if not best or (current and result.get("epochs_done") != run.epochs_done):
            return None
        out[run.seed] = (int(best["epoch"]), float(best["error"]))
    return out


def error_ends(g: Seeds, epochs: list[int], key: str = "val_error", *,
               test: bool = True) -> Ends:
    """``key`` (``val_error`` or ``train_error``) of ``g`` over the window ``epochs``; for
    ``val_error`` (and ``test``) the chosen endpoint is the test error where every run was
    scored at that epoch."""
    chosen = _chosen(g, epochs[-1])
    series = g.series(key)
    values = {s: series[s][e] for s, e in chosen.items()}
    last = {s: sum(series[s][e] for e in epochs) / len(epochs) for s in chosen}
    scores = (scored_on_test(g) or {}) if key == "val_error" else {}
    ends = Ends(values, last, chosen, False, {s: e for s, (e, _) in scores.items()})
    if test and ends.testable:
        return Ends({s: scores[s][1] for s in chosen}, last, chosen, True, ends.test_epochs,
                    validation=values)
    return ends


def paired_error_ends(a: Seeds, b: Seeds, epochs: list[int]) -> tuple[Ends, Ends]:
    """The validation errors of two groups over the window ``epochs``: at the chosen endpoint
    both test errors where both were scored there (:attr:`Ends.testable`), else both validation
    errors -- never one of each."""
    ea, eb = error_ends(a, epochs, test=False), error_ends(b, epochs, test=False)
    if ea.testable and eb.testable:
        return error_ends(a, epochs), error_ends(b, epochs)
    return ea, eb


def curve_ends(g: Seeds, series: Seriesd, epochs: list[int]) -> Ends:
    """A logged curve of ``g``'s runs (a layer's correlation, angle ...) over the window: at
    each run's validation-chosen epoch, and the window's mean."""
    chosen = {s: e for s, e in _chosen(g, epochs[-1]).items()
              if s in series and all(x in series[s] for x in (e, *epochs))}
    return Ends({s: float(series[s][e]) for s, e in chosen.items()},
                {s: sum(float(series[s][e]) for e in epochs) / len(epochs) for s in chosen},
                chosen)
