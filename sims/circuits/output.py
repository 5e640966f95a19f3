"""Appendix 1, "Computing the output error signal": the circuit s_c -> delta_c <-> t_c of Figure 14.

The output unit delta_c receives H_c = h_c + 2M s_c - 2M t_c and fires delta_c = sigma_delta(H_c);
the control unit fires t_c = sigma_t(delta_c); t_c starts at 0 and the two units update in turn,
delta first (the cycles printed in Appendix 1 read delta_c -> t_c -> delta_c -> ...).

Choices where Appendix 1 is ambiguous (each one explicit, and checked by ``sims.circuits.verify``):

* **Overlap of sigma_delta at x = +-M.** The printed intervals [M, 2M+S] and [-M, M] share x = M, and
  [-M, M] and [-2M-S, -M] share x = -M. ``overlap`` picks the value there:
  ``"outer"`` (default) gives the non-zero value at both (sigma_delta(M) = 1, sigma_delta(-M) = -mu), the
  reading the paper's own case analysis uses ("M <= H_c <= 2M+S, so delta_c = 1");
  ``"inner"`` gives 0 at both; ``"listed"`` takes the first case in the printed order (1 at M, 0 at -M).
  No single reading makes every case of the text come out as printed when h_c = +-M.
* **Thresholds.** sigma_t has thresholds 1 and -mu exactly as printed (``t_upper``, ``t_lower``; they act
  on delta_c's values 1, 1+eps, -mu, -mu-eps, not on h_c). The reference is eq. (6) with its 1 replaced by
  the learning threshold S on both sides (``rule6``), non-strict as in (6). The appendix states the target
  two more ways, compared too: its specification paragraph ("h_c < S", "h_c > -1": ``appendix_spec``) and
  its summary ("sign(delta_c) h_c < S", strict: ``appendix_summary``).
* **Typos read as intended.** The input of t_c is "o_c" = delta_c; the cycle's "v_c = 0" is delta_c = 0;
  "sign(o)c)" is sign(delta_c); Figure 13's "sigma_v" is sigma_delta.
* **"Ignoring the oscillation"** (``read_signal``): the signal is delta_c's value when delta_c settles to a
  fixed point, and 0 when it keeps oscillating (the paper: it "periodically visits the state delta_c = 0
  and no update of synapses connecting to delta_c occurs").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

#: Readings of sigma_delta's overlapping intervals at x = +-M (see the module docstring).
OVERLAPS: tuple[str, ...] = ("outer", "inner", "listed")
#: t_c takes 3 values, so from round 2 on the state is on its cycle (length <= 3); ``period`` then needs
#: 5 rounds of the cycle: at least 7 rounds in all.
MIN_ROUNDS = 7
DEFAULT_ROUNDS = 8


@dataclass(frozen=True)
class OutputCircuit:
    """Parameters of Appendix 1's output circuit.

    S: learning threshold (eq. (6) has S = 1); mu: weight of the wrong classes, eq. (4)-(6) (the paper
    assumes mu <= 1); M: bound on |h_c|; eps: the small constant of sigma_delta; overlap: value of
    sigma_delta at x = +-M; t_upper, t_lower: sigma_t's thresholds (printed: 1 and -mu; ``None`` = -mu).
    """

    S: float = 1.0
    mu: float = 1.0 / 9.0
    M: float = 4.0
    eps: float = 0.1
    overlap: str = "outer"
    t_upper: float = 1.0
    t_lower: float | None = None

    def __post_init__(self) -> None:
        for name in ("S", "mu", "M", "eps"):
            value = getattr(self, name)
            if not 0 < value < math.inf:
                raise ValueError(f"{name} must be finite and > 0, got {value!r}")
        if self.overlap not in OVERLAPS:
            raise ValueError(f"overlap must be one of {OVERLAPS}, got {self.overlap!r}")

    @property
    def lower_threshold(self) -> float:
        """sigma_t's lower threshold (printed: -mu)."""
        return -self.mu if self.t_lower is None else self.t_lower

    def sigma_delta(self, x: Tensor) -> Tensor:
        """Transfer function of delta_c (Figure 13, left), with the chosen reading at x = +-M."""
        M, hi = self.M, 2 * self.M + self.S
        one = x >= M if self.overlap in ("outer", "listed") else x > M
        minus = x <= -M if self.overlap == "outer" else x < -M
        # level 0..4 = the five printed cases from the bottom: -mu-eps, -mu, 0, 1, 1+eps
        level = (x >= -hi).long() + (~minus).long() + one.long() + (x > hi).long()
        values = [-self.mu - self.eps, -self.mu, 0.0, 1.0, 1 + self.eps]
        return torch.tensor(values, dtype=x.dtype, device=x.device)[level]

    def sigma_t(self, x: Tensor) -> Tensor:
        """Transfer function of t_c (Figure 13, right): 1 above t_upper, -1 below t_lower, else 0."""
        level = (x >= self.lower_threshold).long() + (x > self.t_upper).long()
        return torch.tensor([-1.0, 0.0, 1.0], dtype=x.dtype, device=x.device)[level]


@dataclass(frozen=True)
class Trajectory:
    """delta[..., k] is delta_c after its k-th update, from t[..., k]; t[..., 0] = t0 (the paper: 0)."""

    delta: Tensor
    t: Tensor


def simulate(circuit: OutputCircuit, h: Tensor, s: Tensor, *, n_rounds: int = DEFAULT_ROUNDS,
             t0: float = 0.0) -> Trajectory:
    """Run the update cycle delta_c = sigma_delta(h_c + 2M s_c - 2M t_c), t_c = sigma_t(delta_c).

    h (input h_c) and s (supervisory signal, +-1) broadcast against each other. The input is computed as
    h + 2M (s - t) in float64: one rounding, and none at all when h, M are float32 numbers (the sum of two
    float32 numbers of magnitude above 2^-24 M is exact in float64), so the thresholds are met exactly.
    """
    if n_rounds < MIN_ROUNDS:
        raise ValueError(f"n_rounds must be >= {MIN_ROUNDS} to expose the cycle, got {n_rounds}")
    h, s = torch.broadcast_tensors(h.to(torch.float64), s.to(device=h.device, dtype=torch.float64))
    t = torch.full_like(h, float(t0))
    deltas, ts = [], [t]
    for _ in range(n_rounds):
        delta = circuit.sigma_delta(h + 2 * circuit.M * (s - t))
        t = circuit.sigma_t(delta)
        deltas.append(delta)
        ts.append(t)
    return Trajectory(delta=torch.stack(deltas, dim=-1), t=torch.stack(ts, dim=-1))


def period(traj: Trajectory) -> Tensor:
    """Period (1, 2 or 3) of delta_c on its attractor, from the last rounds of the trajectory."""
    d = traj.delta[..., -5:]
    lag1 = (d[..., 1:] == d[..., :-1]).all(dim=-1)
    lag2 = (d[..., 2:] == d[..., :-2]).all(dim=-1)
    out = torch.full(d.shape[:-1], 3, dtype=torch.int64, device=d.device)
    out = torch.where(lag2, torch.full_like(out, 2), out)
    return torch.where(lag1, torch.ones_like(out), out)


def read_signal(traj: Trajectory) -> Tensor:
    """The signal "ignoring the oscillation": delta_c at a fixed point, 0 when delta_c keeps oscillating."""
    d = traj.delta
    return torch.where(period(traj) == 1, d[..., -1], torch.zeros_like(d[..., -1]))


def rule6(h: Tensor, s: Tensor, mu: float, S: float = 1.0) -> Tensor:
    """Eq. (6) with the threshold 1 replaced by S: 1 if s = 1 and h <= S, -mu if s = -1 and h >= -S, else 0."""
    h, s = torch.broadcast_tensors(h.to(torch.float64), s.to(device=h.device, dtype=torch.float64))
    zero = torch.zeros_like(h)
    out = torch.where((s > 0) & (h <= S), torch.ones_like(h), zero)
    return torch.where((s < 0) & (h >= -S), torch.full_like(h, -mu), out)


def appendix_spec(h: Tensor, s: Tensor, mu: float, S: float = 1.0) -> Tensor:
    """Appendix 1's specification paragraph, literally: 1 if class c and h < S, -mu if not and h > -1, else 0."""
    h, s = torch.broadcast_tensors(h.to(torch.float64), s.to(device=h.device, dtype=torch.float64))
    zero = torch.zeros_like(h)
    out = torch.where((s > 0) & (h < S), torch.ones_like(h), zero)
    return torch.where((s < 0) & (h > -1), torch.full_like(h, -mu), out)


def appendix_summary(h: Tensor, s: Tensor, mu: float, S: float = 1.0) -> Tensor:
    """Appendix 1's closing summary, literally: delta_c = 1 or -mu if sign(delta_c) h_c < S, else 0
    (sign(delta_c) = s_c on the fixed points, so the condition is s_c h_c < S)."""
    h, s = torch.broadcast_tensors(h.to(torch.float64), s.to(device=h.device, dtype=torch.float64))
    value = torch.where(s > 0, torch.ones_like(h), torch.full_like(h, -mu))
    return torch.where(s * h < S, value, torch.zeros_like(h))
