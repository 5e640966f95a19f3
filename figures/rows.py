"""The rows of the verdict rule's tables (:mod:`figures.stats`): one tested statement each.

A :class:`Row` holds the paired differences ``d = a - b`` of two groups of runs at one of the
rule's endpoints (:mod:`figures.endpoints`), its verdict, and the same comparison at the other
endpoint, so that a row whose verdict depends on the endpoint is marked **fragile**.
:func:`pair_row` and :func:`error_row` build rows; :func:`rows_table` draws them as markdown.
Shared by ``python -m figures.report`` (``docs/results.md``) and the paired comparisons of
:mod:`figures.paired`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from figures.endpoints import Ends, error_ends, paired_error_ends, window
from figures.runs import Seeds
from figures.stats import (
    CLOSE_MARGIN,
    UNINFORMATIVE,
    Comparison,
    close_verdict,
    compare,
    every,
    near_chance,
    summarize,
    verdict,
)

__all__ = ["HEADER", "PAPER_EPOCHS", "PAPER_IMAGES", "Row", "chance_of", "chosen_endpoint",
           "error_row", "fraction", "images", "pair_row", "rows_table", "scale", "table", "where"]

#: The paper's budget (Section 4): 1000 epochs over 45,000 training images.
PAPER_EPOCHS, PAPER_IMAGES = 1000, 45_000


def images(group: Seeds) -> int:
    """Training images of a group's runs (schema 2 ``train_size``, schema 1 ``train_subset``)."""
    cfg = group.first.config
    n = cfg.get("train_size") or cfg.get("train_subset")
    return int(n) if n else PAPER_IMAGES


def fraction(epochs: float, n_images: int) -> str:
    """Epochs x images as a share of the paper's 1000 x 45,000."""
    return f"{100 * epochs * n_images / (PAPER_EPOCHS * PAPER_IMAGES):.2g}%"


def scale(epoch: int | None, n_images: int, n_seeds: int, epoch_text: str = "") -> str:
    """``ep 50 × 45,000, 3 seeds (5%)``: the epochs (or ``epoch_text``) compared."""
    ep = epoch_text or f"ep {epoch}"
    frac = f" ({fraction(epoch, n_images)})" if epoch else ""
    return f"{ep} × {n_images:,}, {n_seeds} seed{'s' if n_seeds != 1 else ''}{frac}"


def where(budget: str, epoch: int | None, n_images: int, n_seeds: int, epoch_text: str = "") -> str:
    """``B: ep 50 × 45,000, 3 seeds (5%)``."""
    return f"{budget}: {scale(epoch, n_images, n_seeds, epoch_text)}"


@dataclass
class Row:
    """One tested statement: a, b, the paired differences d = a - b at the row's endpoint and
    the verdict, with the same comparison at the rule's other endpoint (``alt``) beside it."""

    test: str
    where: str
    a: str
    b: str
    cmp: Comparison
    kind: str  # "greater": the claim says d > 0; "close": |d| < CLOSE_MARGIN
    #: The claim's part this row decides, in a few words (empty: a supporting detail, left out
    #: of the summary table).
    short: str = ""
    digits: int = 3
    #: What d is taken at (the endpoint, with the chosen epochs), and the same at the other one.
    endpoint: str = ""
    alt: Comparison | None = None
    alt_endpoint: str = ""
    #: "close" between two error rates that are both within CHANCE_MARGIN of chance.
    at_chance: bool = False
    #: A claim about every layer: its layers' rows (``cmp`` is the least favourable one's).
    layers: tuple[Row, ...] = ()

    def _judge(self, cmp: Comparison) -> str:
        if self.kind == "close" and self.at_chance:
            return UNINFORMATIVE
        return verdict(cmp) if self.kind == "greater" else close_verdict(cmp)

    @property
    def verdict(self) -> str:
        if self.layers:
            return every(r.verdict for r in self.layers)
        return self._judge(self.cmp)

    @property
    def alt_verdict(self) -> str | None:
        """The verdict at the other endpoint (None: the row has one endpoint only)."""
        if self.layers:
            alts = [r.alt_verdict for r in self.layers]
            return None if None in alts else every(a for a in alts if a is not None)
        return None if self.alt is None else self._judge(self.alt)

    @property
    def fragile(self) -> bool:
        """The verdict differs between the rule's two endpoints."""
        return self.alt_verdict is not None and self.alt_verdict != self.verdict

    def verdict_text(self) -> str:
        v = f"**{self.verdict}**" + (" (one seed)" if self.cmp.n < 2 else "")
        if self.fragile:
            v += f", **fragile**: {self.alt_verdict} on the other endpoint ({self.alt_endpoint})"
        return v

    def cells(self) -> list[str]:
        if self.kind == "greater":
            holds = f"d > 0 in {self.cmp.sign_count()}"
        else:
            inside = sum(abs(d) < CLOSE_MARGIN for d in self.cmp.diffs.values())
            holds = f"\\|d\\| < {CLOSE_MARGIN:g} in {inside}/{self.cmp.n}"
        return [self.test, self.where, self.endpoint or "—", self.a, self.b,
                self.cmp.summary.compact(self.digits, signed=True), holds, self.verdict_text()]


HEADER = ["test", "budget", "endpoint", "a: mean ± sd [per seed]", "b: mean ± sd [per seed]",
          "d = a − b: mean ± sd [per seed]", "sign holds", "verdict"]


#: A ``|`` not yet escaped: inside a cell it would end the cell.
_BAR = re.compile(r"(?<!\\)\|")


def table(header: list[str], rows: Iterable[list[str]]) -> str:
    """A markdown table; a ``|`` in a cell (a run's or a choice's name) is escaped."""
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(_BAR.sub(r"\\|", c) for c in cells) + " |"
    return "\n".join([line(header), "|" + "---|" * len(header), *(line(r) for r in rows)])


def rows_table(rows: list[Row]) -> str:
    return table(HEADER, (r.cells() for r in rows))


def _span(epochs: list[int]) -> str:
    return f"ep {epochs[0]}–{epochs[-1]}" if len(epochs) > 1 else f"ep {epochs[0]}"


def _scoring(name: str, ends: Ends, last_epoch: int) -> str:
    """How one side stands with the test split, when the errors are compared on validation."""
    if ends.testable:
        return f"{name} scored on the test split"
    if not ends.test_epochs:
        return f"{name} not scored on the test split at these epochs"
    at = ", ".join(str(ends.test_epochs[s]) for s in sorted(ends.test_epochs))
    after = min(ends.test_epochs.values()) > last_epoch
    return (f"{name} scored on the test split at ep {at}, "
            + ("after the compared epochs" if after else "not the epochs chosen here"))


def _chosen_epochs(e: Ends) -> str:
    """Each seed's validation-chosen epoch; for a difference the pair (first term, second)."""
    if e.second_epochs:
        return ", ".join(f"({e.epochs[s]}, {e.second_epochs[s]})" for s in sorted(e.epochs))
    return ", ".join(str(e.epochs[s]) for s in sorted(e.epochs))


def chosen_endpoint(sides: Sequence[tuple[str, Ends]], last_epoch: int, curve: bool = False,
                    measure: str = "") -> str:
    """The name of the validation-chosen endpoint, each side (``(name, ends)``, listed in the
    order given) with its chosen epochs: ``test error at the validation-chosen epoch (paper ep
    50, 48; variant ep 50, 50)``; a side that is a difference lists each seed's pair (first
    term's, second term's): ``a ep (97, 82), (99, 90)``. Where errors are compared on validation although a side was
    scored on the test split (the other was not, or not at the epochs compared, which end at
    ``last_epoch``), it says so."""
    each = "; ".join(f"{name} ep {_chosen_epochs(e)}" for name, e in sides if e.epochs)
    if measure:
        what = f"{measure} at the validation-chosen epoch"
    elif curve:
        what = "validation-chosen epoch"
    elif all(e.tested for _, e in sides):
        what = "test error at the validation-chosen epoch"
    elif any(e.tested for _, e in sides):
        what = ("test error (" + ", ".join(n for n, e in sides if e.tested) + ") and validation "
                "error (" + ", ".join(n for n, e in sides if not e.tested)
                + ") at the validation-chosen epoch")
    elif not any(e.test_epochs for _, e in sides):
        what = "validation error at the validation-chosen epoch (no test split scored)"
    else:
        scoring = "; ".join(_scoring(name, e, last_epoch) for name, e in sides)
        what = f"validation error at the validation-chosen epoch ({scoring}: both on validation)"
    return f"{what} ({each})"


def pair_row(test: str, budget: str, a: Ends, b: Ends, kind: str, n_images: int,
             epochs: list[int], *, curve: bool = False, short: str = "", digits: int = 3,
             chance: float | None = None, factor: float = 1.0, offset: float = 0.0,
             names: tuple[str, str] = ("a", "b"), measure: str = "") -> Row:
    """a against b over the window ``epochs`` (the same budget for both). Error rates are
    judged at the validation-chosen epoch (test error where scored), a curve's shape
    (``curve``) on the window's mean; each row also at the other endpoint. ``factor`` and
    ``offset``: the claim is a > factor b + offset. ``chance``: the error rate of chance, for
    "close" rows (both near it: uninformative). ``names``: a's and b's in the endpoint's name;
    ``measure``: what a and b are, where not the validation (or test) error or a curve. A
    side scored on the test split against one not is compared on validation, never a test
    error against a validation error."""
    if not curve and a.tested != b.tested:
        a, b = a.on_validation(), b.on_validation()
    chosen = (a.chosen, b.chosen,
              chosen_endpoint(list(zip(names, (a, b))), epochs[-1], curve, measure))
    mean = (a.last, b.last, f"mean of {_span(epochs)}")
    (pa, pb, name), (qa, qb, other) = (mean, chosen) if curve else (chosen, mean)
    cmp = compare(pa, pb, epochs[-1], factor=factor, offset=offset)
    alt = compare(qa, qb, epochs[-1], factor=factor, offset=offset)
    near = chance is not None and near_chance(pa, chance) and near_chance(pb, chance)
    cell_a, cell_b = summarize(pa).compact(digits), summarize(pb).compact(digits)
    if not curve:
        cell_a, cell_b = _with_validation(cell_a, a, digits), _with_validation(cell_b, b, digits)
    return Row(test, where(budget, epochs[-1], n_images, cmp.n), cell_a, cell_b, cmp, kind,
               short, digits, name, alt, other.split(" (")[0], near)


def _with_validation(cell: str, ends: Ends, digits: int) -> str:
    """A side's cell of test errors with the validation errors of the same epochs beside it
    (issue 20: validation beside every test error)."""
    if not (ends.tested and ends.validation):
        return cell
    return f"{cell}; validation there {summarize(ends.validation).brief(digits)}"


def chance_of(g: Seeds) -> float:
    """The error rate of guessing: 1 - 1/classes."""
    return 1.0 - 1.0 / g.first.n_classes


def error_row(test: str, budget: str, ga: Seeds, gb: Seeds, kind: str, short: str = "",
              key: str = "val_error", digits: int = 3) -> Row:
    """Two groups' error rates (``key``) over their common window: validation errors, or test
    errors where both groups were scored at the epochs chosen (:func:`paired_error_ends`)."""
    epochs = window(ga, gb)
    ea, eb = (paired_error_ends(ga, gb, epochs) if key == "val_error"
              else (error_ends(ga, epochs, key), error_ends(gb, epochs, key)))
    return pair_row(test, budget, ea, eb, kind,
                    images(ga), epochs, short=short, digits=digits,
                    chance=chance_of(ga) if kind == "close" else None,
                    measure={"train_error": "training error"}.get(key, ""))
