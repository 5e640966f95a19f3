"""Statistics of the depth sweeps shared by their verdicts (:mod:`sims.depth`,
:mod:`sims.rule_sweep`) and figures (:mod:`figures.depth`).

A run that does not reach the threshold by the horizon has time +inf (a lower bound), so every
ratio against it is +inf, and quantiles are taken without interpolation (numpy's
``inverted_cdf``: the median of 10 seeds is the 5th smallest), which keeps +inf meaningful.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from scipy.stats import spearmanr

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


#: log τ_k's range: τ_k and HORIZON · τ_k stay positive floats (also for a horizon of 1e10)
LOG_TAU_MIN, LOG_TAU_MAX = -600.0, 600.0
#: Most seeds per depth of a sweep: the verdict's Spearman test is decided with tens, and 1e11
#: seeds sat at 0% for hours.
SEEDS_MAX = 10_000


def quartiles(x: np.ndarray) -> np.ndarray:
    """(q1, median, q3) without interpolation; nan for an empty sample."""
    if x.size == 0:
        return np.full(3, np.nan)
    return np.quantile(x, [0.25, 0.5, 0.75], method="inverted_cdf")


def time_unit(T: np.ndarray, k: int) -> float:
    """τ_k = 1/(k s_1^{2−2/k}) with s_1 the median top singular value of the targets T. Raises
    ValueError naming ``depths`` where τ_k is no positive float: a product of k small (large)
    factors underflows (overflows), e.g. depth 400 at sd 0.2 and widths 2."""
    with np.errstate(all="ignore"):
        s1 = float(np.median(np.linalg.norm(T, ord=2, axis=(-2, -1))))
    log_tau = (-math.log(k) - (2.0 - 2.0 / k) * math.log(s1) if math.isfinite(s1) and s1 > 0
               else math.nan)
    if not LOG_TAU_MIN < log_tau < LOG_TAU_MAX:
        raise ValueError(f"depths: at depth {k} the targets' top singular value is s_1 = {s1:.3g}, "
                         "so the time unit tau_k = 1/(k s_1^(2-2/k)) is no float; give smaller "
                         "depths or another --target-sd")
    return math.exp(log_tau)


def spearman_depth(fr: dict[int, np.ndarray]) -> tuple[float, float, int]:
    """Spearman ρ (and p, n) of depth against the per-seed ratios pooled over ``fr``."""
    depth = np.concatenate([np.full(x.size, k) for k, x in fr.items()])
    ratio = np.concatenate(list(fr.values()))
    if np.unique(depth).size < 2 or ratio.size < 3:
        return math.nan, math.nan, int(ratio.size)
    rho, p = spearmanr(depth, ratio)
    return float(rho), float(p), int(ratio.size)
