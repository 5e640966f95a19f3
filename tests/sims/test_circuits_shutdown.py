"""Appendix 1's shutdown circuit (rule (3)); the command line is in test_circuits_cli.py."""

from __future__ import annotations

import pytest
import torch

from sims.circuits.shutdown import rule3, saturation, simulate_shutdown
from sims.circuits.verify import verify_shutdown


@pytest.mark.parametrize("K", [0.5, 1.0, 3.0])
def test_shutdown_zeroes_exactly_the_saturated_units(K: float) -> None:
    g = torch.Generator().manual_seed(0)
    h = torch.cat([torch.rand(4000, generator=g) * 6 - 3, torch.tensor([-1.0, 1.0, -0.999, 0.999])])
    delta = (torch.rand(len(h), generator=g) * 2 - 1) * K * 0.999  # |delta| < K, as Appendix 1 assumes
    x = saturation(h)
    trace = simulate_shutdown(delta, x, K)
    saturated = x.abs() == 1
    assert torch.equal(trace.u, (x >= 1).to(delta.dtype)) and torch.equal(trace.v, -(x <= -1).to(delta.dtype))
    assert torch.equal(trace.delta_tilde == 0, saturated | (delta == 0))
    assert torch.equal(trace.delta_tilde[~saturated], delta[~saturated])  # passed on unchanged
    assert torch.equal(trace.delta_tilde, rule3(delta, h))


def test_verifier_reports_the_edge_delta_equal_K_and_h_at_one() -> None:
    tally = verify_shutdown([1.0, 2.0], n_random=200, seed=0)
    assert tally.agree["rule3"] < tally.n
    rule3_fails = {(k[0], k[1], k[2]) for k in tally.groups if "rule3" in k[-1]}
    # delta = K exactly in a saturated unit: the gated input is exactly -K, which sigma passes on.
    assert rule3_fails == {(w, "delta=K", "-K") for w in ("h=1", "h=-1", "1<h<inf", "-inf<h<-1")}
    # At |h| = 1 exactly, rule (3) shuts off while Remark 2's sigma'(h) = 1 for |h| <= 1 keeps delta.
    remark_only = {k[0] for k in tally.groups if k[-1] == ("remark2",)}
    assert remark_only == {"h=1", "h=-1"}
