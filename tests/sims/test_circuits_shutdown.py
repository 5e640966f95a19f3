"""Appendix 1's shutdown circuit (rule (3)) and the ``python -m sims.circuits`` command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sims.circuits.__main__ import main
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


def test_cli_prints_report_writes_json_and_figures(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "figs"
    rc = main(["--S", "1", "--mu", "0.5", "--M", "4", "--K", "1", "--samples", "50", "--quiet",
               "--json", str(tmp_path / "r.json"), "--plot", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "read as 'outer'" in text and "read as 'inner'" in text and "shutdown circuit" in text
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["output_circuit"]["outer"]["agree"]["eq6"] == doc["output_circuit"]["outer"]["n"]
    assert doc["output_circuit"]["inner"]["disagreements"]
    names = sorted(p.name for p in out.iterdir())
    assert names == ["appendix1_update_cycles.pdf", "appendix1_update_cycles.png",
                     "fig13_transfer_functions.pdf", "fig13_transfer_functions.png"]


@pytest.mark.parametrize(("argv", "needle"), [(["--mu", "0"], "--mu"), (["--rounds", "3"], "--rounds"),
                                              (["--overlap", "middle"], "--overlap"), (["--eps", "x"], "--eps")])
def test_cli_bad_input_is_one_line_exit_2(argv: list[str], needle: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--quiet"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert needle in err[-1] and "Traceback" not in "\n".join(err)
