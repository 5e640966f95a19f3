"""Appendix 1's output circuit: the four printed cycles, the overlap readings, the read-out, the verifier."""

from __future__ import annotations

import pytest
import torch

from sims.circuits.feedback import auto_bound, circuit_output_feedback
from sims.circuits.output import OutputCircuit, Trajectory, period, read_signal, rule6, simulate
from sims.circuits.verify import verify_output

C = OutputCircuit(S=1.0, mu=0.5, M=4.0, eps=0.25)


def _case_inputs(lo: float, hi: float, n: int = 50) -> torch.Tensor:
    return torch.linspace(lo, hi, n, dtype=torch.float64)


@pytest.mark.parametrize(("s", "lo", "hi", "delta_cycle", "t_cycle"), [
    (1.0, -4.0, 1.0, [1.0], [0.0]),              # s=1, h <= S: delta=1 -> t=0 -> delta=1
    (1.0, 1.01, 3.99, [1.25, 0.0], [1.0, 0.0]),  # s=1, h > S: 1+eps -> t=1 -> 0 -> t=0 -> 1+eps
    (-1.0, -1.0, 4.0, [-0.5], [0.0]),            # s=-1, h >= -S: -mu -> t=0 -> -mu
    (-1.0, -3.99, -1.01, [-0.75, 0.0], [-1.0, 0.0]),  # s=-1, h < -S: -mu-eps -> t=-1 -> 0 -> t=0
])
def test_four_cases_give_the_printed_cycles(s: float, lo: float, hi: float, delta_cycle: list[float],
                                            t_cycle: list[float]) -> None:
    h = _case_inputs(lo, hi)
    traj = simulate(C, h, torch.tensor(s), n_rounds=8)
    want_delta = torch.tensor([delta_cycle[k % len(delta_cycle)] for k in range(8)], dtype=torch.float64)
    want_t = torch.tensor([0.0] + [t_cycle[k % len(t_cycle)] for k in range(8)], dtype=torch.float64)
    assert torch.equal(traj.delta, want_delta.expand(len(h), 8))  # from the very first update
    assert torch.equal(traj.t, want_t.expand(len(h), 9))
    assert (period(traj) == len(delta_cycle)).all()
    assert torch.equal(read_signal(traj), rule6(h, torch.tensor(s), C.mu, C.S))


@pytest.mark.parametrize(("overlap", "at_plus_M", "at_minus_M"),
                         [("outer", 1.0, -0.5), ("inner", 0.0, 0.0), ("listed", 1.0, 0.0)])
def test_overlap_readings_of_sigma_delta(overlap: str, at_plus_M: float, at_minus_M: float) -> None:
    c = OutputCircuit(S=1.0, mu=0.5, M=4.0, eps=0.25, overlap=overlap)
    x = torch.tensor([-9.5, -9.0, -4.0, -3.99, 0.0, 3.99, 4.0, 9.0, 9.5], dtype=torch.float64)
    want = [-0.75, -0.5, at_minus_M, 0, 0, 0, at_plus_M, 1, 1.25]
    assert c.sigma_delta(x).tolist() == want
    assert c.sigma_t(torch.tensor([1.25, 1.0, 0.0, -0.5, -0.75])).tolist() == [1, 0, 0, 0, -1]


def test_period_detection_on_synthetic_cycles() -> None:
    delta = torch.tensor([[0, 5, 1, 1, 1, 1, 1.0], [9, 1, 2, 1, 2, 1, 2], [1, 1, 2, 1, 1, 2, 1],
                          [2, 1, 1, 2, 1, 1, 2]])
    traj = Trajectory(delta=delta, t=torch.zeros(4, 8))
    assert period(traj).tolist() == [1, 2, 3, 3]
    assert read_signal(traj).tolist() == [1, 0, 0, 0]


def test_invalid_parameters_name_the_argument() -> None:
    with pytest.raises(ValueError, match="overlap"):
        OutputCircuit(overlap="middle")
    with pytest.raises(ValueError, match="eps"):
        OutputCircuit(eps=0)
    with pytest.raises(ValueError, match="n_rounds"):
        simulate(C, torch.zeros(1), torch.ones(1), n_rounds=3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_feedback_equals_eq6_including_the_thresholds(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(64, 10, generator=g) * 2).to(dtype)
    logits[:8, :] = torch.tensor([1.0, -1.0, 0.0, 1.5, -1.5, 3.0, -3.0, 1.0, -1.0, 0.5], dtype=dtype)
    y = torch.randint(0, 10, (64,), generator=g)
    y[:8] = torch.arange(8)  # true class sits exactly at +1 / -1 in some rows
    mu = 1 / 9
    got = circuit_output_feedback(logits, y, mu)
    s = torch.where(torch.nn.functional.one_hot(y, 10).bool(), 1.0, -1.0)
    assert got.dtype == dtype and not got.requires_grad
    assert torch.equal(got, rule6(logits, s, mu).to(dtype))
    assert auto_bound(logits, 1.0) > logits.abs().max()


def test_feedback_refuses_a_bound_below_the_logits() -> None:
    with pytest.raises(ValueError, match="M=2"):
        circuit_output_feedback(torch.tensor([[3.0, 0.0]]), torch.tensor([0]), 0.5, M=2.0)


def test_verifier_agrees_with_eq6_and_reports_the_boundary_cases() -> None:
    grid = [(1.0, 0.5, 4.0), (2.0, 0.1, 8.0)]
    tally = verify_output(grid, overlaps=("outer", "inner"), n_random=300, seed=1)
    outer, inner = tally["outer"], tally["inner"]
    assert outer.agree["eq6"] == outer.n  # 'outer' reproduces eq. (6) everywhere, thresholds included
    printed_fails = {k[1] for k in outer.groups if "printed" in k[-1]}
    assert printed_fails == {"h=M", "h=-M"}  # ... but not the printed cycle exactly at h = +-M
    eq6_fails = {(k[0], k[1]) for k in inner.groups if "eq6" in k[-1]}
    assert eq6_fails == {(1, "h=-M"), (-1, "h=M")}
    # the appendix's summary "sign(delta_c) h_c < S" is strict: it differs from the circuit exactly at +-S
    summary_fails = {(k[0], k[1]) for k in outer.groups if "summary" in k[-1]}
    assert summary_fails == {(1, "h=1=S"), (-1, "h=-S=-1"), (1, "h=S"), (-1, "h=-S")}


@pytest.mark.parametrize(("t_upper", "t_lower", "s", "cycle"), [
    (0.5, None, 1, "delta=1 -> t=1 -> delta=0 -> t=0 -> delta=1"),  # 1 now switches t_c on
    (1.0, -1.5, -1, "delta=-mu-eps -> t=0 -> delta=-mu-eps"),      # -mu-eps no longer does
])
def test_verifier_finds_a_planted_sigma_t_fault(t_upper: float, t_lower: float | None, s: int,
                                                cycle: str) -> None:
    clean = verify_output([(1.0, 0.5, 4.0)], n_random=300, seed=2)["outer"]
    faulty = verify_output([(1.0, 0.5, 4.0)], n_random=300, seed=2, t_upper=t_upper, t_lower=t_lower)["outer"]
    assert clean.agree["eq6"] == clean.n
    assert faulty.agree["eq6"] < faulty.n
    bad = [(k, g) for k, g in faulty.groups.items() if "eq6" in k[-1]]
    assert {k[0] for k, _ in bad} == {s}
    assert {k[2] for k, _ in bad if k[1] not in ("h=M", "h=-M")} == {cycle}
    assert sum(g["count"] for _, g in bad) == faulty.n - faulty.agree["eq6"]  # every case is listed


def test_feedback_survives_non_finite_logits() -> None:
    """A diverged run must reach the trainer's own non-finite-loss check, not crash in the circuit."""
    logits = torch.tensor([[float("nan"), 0.5, float("inf")], [2.0, -0.5, -3.0]])
    got = circuit_output_feedback(logits, torch.tensor([0, 0]), 0.5)
    assert got.shape == (2, 3) and torch.equal(got[1], torch.tensor([0.0, -0.5, 0.0]))
