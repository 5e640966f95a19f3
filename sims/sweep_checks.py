"""The depth sweeps' checks before any solving (``sims.depth_sweep``, ``sims.rule_sweep``): a
job that cannot fit in memory, a depth whose targets have no time unit, a folder where an output
file goes -- each one line and exit 2, not a traceback after minutes of work."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from sims.depth_stats import time_unit
from sims.initial import random_target
from sims.linear import WEIGHT_COPIES, memory_problem, weights_bytes
from urfb_common import require_writable


class DepthSweep(Protocol):
    """What the checks read of a depth sweep's config."""

    depths: tuple[int, ...]
    n_in: int
    hidden: int
    seeds: int
    seed: int
    target_sd: float

    def widths(self, k: int) -> tuple[int, ...]: ...


def check_or_exit(parser: argparse.ArgumentParser, cfg: DepthSweep,
                  target_widths: Callable[[int], tuple[int, ...]], out: Path,
                  outputs: Sequence[str]) -> None:
    """``parser.error`` unless every seed's W(0) and R(0) of the deepest depth fit in memory
    (they are drawn at once), every depth has a time unit tau_k (:func:`time_unit`; the targets
    T alone are drawn, with the generators the sweep draws them from first) and no output file's
    path under ``out`` is a folder."""
    deepest = max(cfg.depths)
    problem = memory_problem(weights_bytes(cfg.widths(deepest), WEIGHT_COPIES * cfg.seeds))
    if problem:
        parser.error(f"--seeds {cfg.seeds} at --n-in {cfg.n_in}, --hidden {cfg.hidden} and "
                     f"depth {deepest}: {problem}")
    for k in cfg.depths:
        targets = [random_target(target_widths(k), np.random.default_rng([cfg.seed, k, s]),
                                 cfg.target_sd) for s in range(cfg.seeds)]
        try:
            time_unit(np.stack(targets), k)
        except ValueError as exc:
            parser.error(f"--{exc}")
    for name in outputs:
        require_writable(parser, "--out", out / name, file=True)
