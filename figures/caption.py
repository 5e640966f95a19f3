"""The sidecar text written beside every figure: the paper's caption and the scale it was made at.

Section 4's figures come from 1000-epoch runs on CIFAR's full training sets; a rebuilt figure is
usually smaller, so its sidecar ``<stem>.txt`` states epochs, training-set size and dataset copy
of every run drawn, plus what the figure had to leave out.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from figures.runs import Run, scale_line
from urfb_common import atomic_write_text


def write_sidecar(out_stem: str | Path, title: str, caption: str, runs: Iterable[Run],
                  notes: Iterable[str] = ()) -> Path:
    """Write ``<out_stem>.txt``: title, the paper's caption, the runs' scale and notes; return its path."""
    runs = list(runs)
    text = [title, "", f"Paper's caption: {caption}", "",
            "Scale (paper: 1000 epochs, batch 500, step 0.1, 45,000 training images):"]
    text += [scale_line(r) for r in runs] or ["- (no runs)"]
    notes = list(notes)
    if notes:
        text += ["", "Notes:"] + [f"- {n}" for n in notes]
    dest = Path(f"{out_stem}.txt")
    atomic_write_text(dest, "\n".join(text) + "\n")
    return dest
