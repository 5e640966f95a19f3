"""Statistics of the depth sweep shared by its verdict (:mod:`sims.depth`) and its figure
(:mod:`figures.depth`).

A run that does not reach the threshold by the horizon has time +inf (a lower bound), so every
ratio against it is +inf, and quantiles are taken without interpolation (numpy's
``inverted_cdf``: the median of 10 seeds is the 5th smallest), which keeps +inf meaningful.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

#: (depth, method, ε) -> {seed: time to threshold, +inf if not reached}; ε is None for BP
Times = dict[tuple[int, str, float | None], dict[int, float]]


def collect(records: Iterable[tuple[int, str, float | None, int, float]]) -> Times:
    """Times from (depth, method, ε, seed, t_threshold) records; a nan t means not reached."""
    out: Times = {}
    for depth, method, eps, seed, t in records:
        key = (depth, method, None if method == "bp" else float(eps))
        out.setdefault(key, {})[seed] = t if math.isfinite(t) else math.inf
    return out


def paired_ratios(times: Times, depth: int, num: tuple[str, float | None],
                  ref: tuple[str, float | None]) -> np.ndarray:
    """Per seed, t(num) / t(ref) at ``depth``, over the seeds whose ``ref`` run reached the
    threshold and that have a ``num`` run."""
    a = times.get((depth, *num), {})
    b = times.get((depth, *ref), {})
    return np.array([a[s] / t for s, t in sorted(b.items()) if math.isfinite(t) and s in a])


def quartiles(x: np.ndarray) -> np.ndarray:
    """(q1, median, q3) without interpolation; nan for an empty sample."""
    if x.size == 0:
        return np.full(3, np.nan)
    return np.quantile(x, [0.25, 0.5, 0.75], method="inverted_cdf")
