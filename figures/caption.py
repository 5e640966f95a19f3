"""The sidecar text written beside every figure: the paper's caption and the scale it was made at.

Section 4's figures come from 1000-epoch runs on CIFAR's full training sets; a rebuilt figure is
usually smaller, so its sidecar ``<stem>.txt`` states epochs, training-set size and dataset copy
of every run drawn, which seeds each curve or bar averages (mean over seeds, band min-max; or
one seed, drawn as itself), plus what the figure had to leave out.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from figures.runs import Run, Seeds, scale_line
from urfb_common import atomic_write_text

#: The sentence every sidecar states about seeds.
SEEDS_RULE = ("Curves and bars: the mean over seeds, with a band (or error bar) from the minimum "
              "to the maximum over seeds, at the epochs every seed reached; points are single "
              "seeds. A group of one seed is drawn as that run alone.")


def write_sidecar(out_stem: str | Path, title: str, caption: str, runs: Iterable[Run | Seeds],
                  notes: Iterable[str] = ()) -> Path:
    """Write ``<out_stem>.txt``: title, the paper's caption, the seeds of each group drawn, the
    runs' scale and notes; return its path. ``runs`` holds runs or :class:`Seeds` groups."""
    groups = [g if isinstance(g, Seeds) else Seeds((g,)) for g in runs]
    text = [title, "", f"Paper's caption: {caption}", ""]
    if groups:
        text += [f"Seeds ({SEEDS_RULE}):"] + [f"- {g.describe()}" for g in groups] + [""]
        if all(g.n == 1 for g in groups):
            text += [("Built from one seed per curve: differences between protocols are not "
                      "measured against seed-to-seed spread."), ""]
        if len({g.first.choices() for g in groups}) > 1:
            text += ["The groups drawn differ in protocol choices:"]
            text += [f"- {g.first.describe()}: {g.first.choices()}" for g in groups] + [""]
    text += ["Scale (paper: 1000 epochs, batch 500, step 0.1, 45,000 training images):"]
    text += [scale_line(r) for g in groups for r in g.runs] or ["- (no runs)"]
    notes = list(notes)
    if notes:
        text += ["", "Notes:"] + [f"- {n}" for n in notes]
    dest = Path(f"{out_stem}.txt")
    atomic_write_text(dest, "\n".join(text) + "\n")
    return dest
