"""figures.stats: seed summaries, paired comparisons and the verdict rule of docs/results.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from figures.stats import (
    CLOSE_MARGIN,
    CONTRADICTS,
    INCONCLUSIVE,
    SUPPORTS,
    close_verdict,
    compare,
    difference,
    final,
    paired,
    rule_text,
    summarize,
    verdict,
)

REPO = Path(__file__).parents[2]


def test_summary_mean_sample_sd_and_each_seed() -> None:
    s = summarize({2: 0.3, 0: 0.1, 1: 0.2})
    assert s.mean == pytest.approx(0.2) and s.sd == pytest.approx(0.1) and (s.lo, s.hi) == (0.1, 0.3)
    assert s.compact() == "0.200 ± 0.100 [0.100, 0.200, 0.300]"  # seed order
    assert s.format() == "0.200 ± 0.100 (s0 0.100, s1 0.200, s2 0.300)"
    assert summarize({3: 0.5, 5: 0.7}).compact(2) == "0.60 ± 0.14 [s3 0.50, s5 0.70]"
    one = summarize({0: 0.78})
    assert one.sd is None and one.compact() == "0.780 [s0 0.780 only]"
    with pytest.raises(ValueError):
        summarize({})


def test_paired_uses_seeds_in_both_and_epochs_both_reached() -> None:
    a = {0: {1: 0.9, 2: 0.8, 3: 0.7}, 1: {1: 0.8, 2: 0.6}, 2: {1: 0.5}}
    b = {0: {1: 0.8, 2: 0.7, 3: 0.5, 4: 0.4}, 1: {1: 0.9, 2: 0.5, 3: 0.1}, 7: {1: 0.0}}
    comps = paired(a, b)
    assert [c.epoch for c in comps] == [1, 2, 3]
    assert comps[0].diffs == pytest.approx({0: 0.1, 1: -0.1})  # seed 2 and 7 are unpaired
    assert comps[2].diffs == pytest.approx({0: 0.2})  # seed 1's a stopped at epoch 2
    assert (comps[1].n_positive, comps[1].n_negative, comps[1].sign_count(1)) == (2, 0, "2/2")
    last = final(a, b)
    assert last.epoch == 2 and last.diffs == pytest.approx({0: 0.1, 1: 0.1})
    diff = difference(a, b)
    assert sorted(diff) == [0, 1] and diff[0] == pytest.approx({1: 0.1, 2: 0.1, 3: 0.2})
    assert diff[1] == pytest.approx({1: -0.1, 2: 0.1})
    with pytest.raises(ValueError, match="share no seed"):
        final({0: {1: 1.0}}, {1: {1: 1.0}})
    with pytest.raises(ValueError, match="no epoch"):
        final({0: {1: 1.0}, 1: {2: 1.0}}, {0: {1: 1.0}, 1: {2: 1.0}})


@pytest.mark.parametrize("diffs, expected", [
    ([0.10, 0.12, 0.11], SUPPORTS),          # all positive, mean 0.11 >> 2 sd
    ([-0.10, -0.12, -0.11], CONTRADICTS),
    ([0.01, 0.20, 0.01], INCONCLUSIVE),      # all positive but mean 0.073 < 2 sd 0.22
    ([0.10, 0.12, -0.01], INCONCLUSIVE),     # one seed disagrees
    ([0.05], INCONCLUSIVE),                  # one seed: no sd
    ([0.0, 0.1, 0.1], INCONCLUSIVE),         # a zero difference is no agreement in sign
    ([0.02, 0.02, 0.02], SUPPORTS),          # sd 0
])
def test_directional_verdict(diffs: list[float], expected: str) -> None:
    assert verdict(diffs) == expected
    assert verdict(dict(enumerate(diffs))) == expected
    mirrored = {SUPPORTS: CONTRADICTS, CONTRADICTS: SUPPORTS}.get(expected, expected)
    assert verdict([-d for d in diffs]) == mirrored


def test_directional_verdict_needs_the_mean_beyond_twice_the_sd() -> None:
    assert verdict([0.05, 0.20, 0.35]) == INCONCLUSIVE  # mean 0.2 < 2 sd = 0.3
    assert verdict([0.12, 0.20, 0.28]) == SUPPORTS  # mean 0.2 > 2 sd = 0.16
    assert verdict([0.09, 0.20, 0.31]) == INCONCLUSIVE  # mean 0.2 < 2 sd = 0.22



@pytest.mark.parametrize("diffs, expected", [
    ([0.01, -0.01, 0.0], SUPPORTS),
    ([0.04, 0.045, 0.049], INCONCLUSIVE),    # inside the margin but too near its edge
    ([0.02, 0.023, 0.021], SUPPORTS),
    ([0.20, 0.21, 0.19], CONTRADICTS),       # far beyond the margin, one side
    ([-0.20, -0.21, -0.19], CONTRADICTS),
    ([0.20, -0.21, 0.19], INCONCLUSIVE),     # beyond the margin, but on both sides
    ([0.06, 0.07, 0.051], INCONCLUSIVE),     # beyond, but not by 2 sd
    ([0.01], INCONCLUSIVE),
])
def test_close_verdict(diffs: list[float], expected: str) -> None:
    assert close_verdict(diffs) == expected


def test_close_verdict_margin_is_a_parameter_defaulting_to_close_margin() -> None:
    assert close_verdict([0.1, 0.1, 0.1], margin=0.2) == SUPPORTS
    assert close_verdict([0.1, 0.1, 0.1], margin=0.05) == CONTRADICTS
    inside, outside = [0.9 * CLOSE_MARGIN] * 3, [1.1 * CLOSE_MARGIN] * 3
    assert (close_verdict(inside), close_verdict(outside)) == (SUPPORTS, CONTRADICTS)


def test_compare_pairs_values_by_seed() -> None:
    c = compare({0: 0.5, 1: 0.6, 3: 0.1}, {0: 0.4, 1: 0.4, 2: 0.0})
    assert c.epoch is None and c.diffs == pytest.approx({0: 0.1, 1: 0.2})
    assert verdict(c) == SUPPORTS  # mean 0.15 > 2 sd = 0.141
    assert c.mean == pytest.approx(0.15) and c.sd == pytest.approx(0.0707, abs=1e-4)


def test_rule_text_states_the_rule_the_verdicts_apply() -> None:
    """The numbers the words give (k in "mean(d) > k × sd(d)", the margin m and its "points of
    error rate", the fewest seeds) are the ones verdict and close_verdict decide with."""
    text = rule_text()
    k = float(re.search(r"mean\(d\) > ([\d.]+) × sd\(d\)", text).group(1))
    m, points = re.search(r"m = ([\d.]+) \((\d+) points of error rate\)", text).groups()
    m, fewest = float(m), int(re.search(r"fewer than (\d+) seeds", text).group(1))
    assert float(points) == pytest.approx(100 * m)
    # mean(d) = 1 and sd(d) = x: supported exactly when 1 > k x
    assert verdict([1 - 0.9 / k, 1, 1 + 0.9 / k]) == SUPPORTS
    assert verdict([1 - 1.1 / k, 1, 1 + 1.1 / k]) == INCONCLUSIVE
    assert verdict([1.0] * (fewest - 1)) == INCONCLUSIVE
    assert verdict([1.0] * fewest) == SUPPORTS
    assert close_verdict([0.9 * m] * 3) == SUPPORTS and close_verdict([1.1 * m] * 3) == CONTRADICTS


def test_stats_imports_neither_torch_nor_numpy() -> None:
    code = "import sys, figures.stats; print('torch' in sys.modules, 'numpy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.split() == ["False", "False"]
