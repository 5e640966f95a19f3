"""Up-front checks of a CLI's output paths, so a bad ``--out`` fails in one line before any work.

Used by ``python -m sims.epsilon_sweep``, ``python -m sims.circuits`` and ``python -m theory``
(CONTRIBUTING: a user's bad input is a one-line ``parser.error`` naming the flag, exit status 2).
Nothing is created here: the writers (:mod:`sims.fileio`) create folders when they write.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def _writable_folder_problem(folder: Path) -> str | None:
    """Why ``folder`` could not be created or written into, or None when it can."""
    here = folder
    while not here.exists():
        if here.parent == here:
            break
        here = here.parent
    if not here.is_dir():
        return f"{here} exists and is not a folder"
    if not os.access(here, os.W_OK | os.X_OK):
        return f"{here} is not writable"
    return None


def check_out_dir(parser: argparse.ArgumentParser, flag: str, folder: Path) -> None:
    """Stop with ``parser.error`` naming ``flag`` unless ``folder`` is, or can become, a writable folder."""
    problem = _writable_folder_problem(folder)
    if problem is not None:
        parser.error(f"{flag}: {problem}")


def check_out_file(parser: argparse.ArgumentParser, flag: str, path: Path) -> None:
    """Stop with ``parser.error`` naming ``flag`` unless a file can be written at ``path``."""
    if path.is_dir():
        parser.error(f"{flag}: {path} is a folder; give a file name")
    check_out_dir(parser, flag, path.parent)
