"""Verifier for Appendix 1's circuits: do they compute eq. (6) and rule (3)?

Output circuit: for each (S, mu, M) of a grid, each reading of sigma_delta's overlap and both values of
s_c, inputs h_c drawn uniformly in [-M, M] plus every threshold (-M, -S, -1, 1, S, M, and their float
neighbours inside [-M, M]) are simulated; each trajectory is compared with
  * the cycle Appendix 1 prints for its case (fixed point at 1 or -mu; 2-cycle 1+eps <-> 0 or -mu-eps <-> 0),
  * eq. (6) with threshold S (``rule6``), for the signal read "ignoring the oscillation",
  * Appendix 1's own statements of the target, read literally: its specification paragraph
    (``appendix_spec``: h_c < S, and h_c > -1) and its summary (``appendix_summary``: s_c h_c < S).
Shutdown circuit: for each K, feedback delta in [-K, K] and input h in [-3, 3] (plus +-1, +-K and
neighbours) are compared with delta sigma'(h) of Remark 2 and with rule (3).
Every disagreeing case is kept, with symbolic values ("1+eps", "-mu") so cases group across the grid.
Inputs and grid values are float32 numbers, so the circuits' sums are exact in float64 and any
disagreement is the circuit's, not rounding's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from sims.circuits.output import (
    DEFAULT_ROUNDS,
    OutputCircuit,
    appendix_spec,
    appendix_summary,
    period,
    read_signal,
    rule6,
    simulate,
)
from sims.circuits.shutdown import remark2_derivative, rule3, saturation, simulate_shutdown


@dataclass
class Tally:
    """Agreement counts of one comparison, and its disagreeing cases grouped by what happened."""

    n: int = 0
    agree: dict[str, int] = field(default_factory=dict)
    groups: dict[tuple, dict] = field(default_factory=dict)

    def add_group(self, key: tuple, grid_point: tuple, h: float) -> None:
        """Record one disagreeing case under ``key``."""
        g = self.groups.setdefault(key, {"count": 0, "grid": [], "examples": []})
        g["count"] += 1
        if grid_point not in g["grid"]:
            g["grid"].append(grid_point)
        if len(g["examples"]) < 3 and h not in g["examples"]:
            g["examples"].append(h)


def _symbol(value: float, names: dict[str, float]) -> str:
    for name, ref in names.items():
        if value == ref:
            return name
    return f"{value:.6g}"


def _where(h: float, points: dict[str, float]) -> str:
    """Name the threshold h sits on, or the open interval between the nearest thresholds."""
    ordered = sorted(points.items(), key=lambda kv: kv[1])
    for name, value in ordered:
        if h == value:
            return f"h={name}"
    below = [n for n, v in ordered if v < h]
    above = [n for n, v in ordered if v > h]
    lo = below[-1] if below else "-inf"
    hi = above[0] if above else "inf"
    return f"{lo}<h<{hi}"


def _thresholds(S: float, M: float) -> dict[str, float]:
    names: dict[float, list[str]] = {}
    for name, value in (("-M", -M), ("-S", -S), ("-1", -1.0), ("1", 1.0), ("S", S), ("M", M)):
        names.setdefault(value, []).append(name)
    return {"=".join(n): v for v, n in names.items()}


def _f32(values: Iterable[float] | np.ndarray) -> np.ndarray:
    """Round to float32 numbers (held in float64): the circuits' sums of them are then exact."""
    return np.asarray(values, dtype=np.float32).astype(np.float64)


def _neighbours(points: Iterable[float]) -> list[float]:
    """Each point and its two float32 neighbours."""
    out = []
    for p in np.asarray(list(points), dtype=np.float32):
        out += [p, np.nextafter(p, np.float32(-np.inf)), np.nextafter(p, np.float32(np.inf))]
    return [float(v) for v in out]


#: The most fixed inputs added to the random ones at one grid point: the shutdown circuit's grid
#: of special values (delta: 4 points and their float32 neighbours; h: 9 values).
SPECIAL_INPUTS = 12 * 9


def peak_bytes(n_random: int, n_rounds: int) -> int:
    """Estimated peak memory (bytes) of the verifier for ``n_random`` random inputs per grid point
    and ``n_rounds`` update cycles. The inputs of one grid point are simulated together, for both
    values of s_c, as float64 trajectories plus their stacked copies and comparisons: about
    ``80 * n_rounds + 320`` bytes per input (measured: 900 at 8 rounds, 2,900 at 32)."""
    return (n_random + SPECIAL_INPUTS) * (80 * n_rounds + 320)


def output_inputs(S: float, M: float, n_random: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform h in [-M, M] plus every threshold inside it and its two float32 neighbours."""
    special = [v for v in [0.0, *_neighbours((-M, -S, -1.0, 1.0, S, M))] if -M <= v <= M]
    return np.concatenate([_f32(rng.uniform(-M, M, n_random)), np.unique(special)])


def _cycle_text(delta: np.ndarray, t: np.ndarray, p: int, names: dict[str, float]) -> str:
    n = delta.shape[-1]
    parts = []
    for j in range(n - p, n):
        parts += [f"delta={_symbol(delta[j], names)}", f"t={t[j + 1]:g}"]
    parts.append(f"delta={_symbol(delta[n - p], names)}")
    return " -> ".join(parts)


def printed_cycle(h: np.ndarray, s: np.ndarray, c: OutputCircuit) -> tuple[np.ndarray, ...]:
    """Appendix 1's case analysis: (period, min, max) of delta_c's cycle for inputs h, supervision s."""
    case_b, case_d = (s > 0) & (h > c.S), (s < 0) & (h < -c.S)
    per = np.where(case_b | case_d, 2, 1)
    lo = np.select([s > 0, case_d], [np.where(case_b, 0.0, 1.0), -c.mu - c.eps], -c.mu)
    hi = np.select([case_b, s > 0, case_d], [1 + c.eps, 1.0, 0.0], -c.mu)
    return per, lo, hi


def verify_output(grid: Iterable[tuple[float, float, float]], *, eps: float = 0.1,
                  overlaps: Sequence[str] = ("outer",), n_random: int = 2000, seed: int = 0,
                  t_upper: float = 1.0, t_lower: float | None = None,
                  n_rounds: int = DEFAULT_ROUNDS, progress: bool = False) -> dict[str, Tally]:
    """Run the output-circuit comparisons over the (S, mu, M) grid; one ``Tally`` per overlap reading.

    ``t_upper``/``t_lower`` override sigma_t's thresholds (printed: 1 and -mu) to plant a fault.
    """
    rng = np.random.default_rng(seed)
    tallies = {o: Tally(agree={"eq6": 0, "printed": 0, "spec": 0, "summary": 0}) for o in overlaps}
    for S, mu, M in tqdm(list(grid), desc="output circuit", disable=not progress):
        S, M = float(_f32(S)), float(_f32(M))
        h1 = output_inputs(S, M, n_random, rng)  # the same inputs for every reading of the overlap
        for overlap in overlaps:
            c = OutputCircuit(S=S, mu=mu, M=M, eps=eps, overlap=overlap, t_upper=t_upper, t_lower=t_lower)
            _compare_output(c, h1, n_rounds, tallies[overlap])
    return tallies


def _compare_output(c: OutputCircuit, h1: np.ndarray, n_rounds: int, tally: Tally) -> None:
    """Simulate inputs ``h1`` with s_c = +1 and -1 and add the comparisons to ``tally``."""
    S, mu, M, eps = c.S, c.mu, c.M, c.eps
    names = {"1+eps": 1 + eps, "1": 1.0, "0": 0.0, "-mu": -mu, "-mu-eps": -mu - eps}
    h = torch.from_numpy(np.concatenate([h1, h1]))
    s = torch.cat([torch.ones(len(h1)), -torch.ones(len(h1))]).double()
    traj = simulate(c, h, s, n_rounds=n_rounds)
    per, sig = period(traj).numpy(), read_signal(traj).numpy()
    eq6, spec = rule6(h, s, mu, S).numpy(), appendix_spec(h, s, mu, S).numpy()
    summary = appendix_summary(h, s, mu, S).numpy()
    delta, tt, h, s = traj.delta.numpy(), traj.t.numpy(), h.numpy(), s.numpy()
    cyc = np.stack([delta[:, -1], np.where(per >= 2, delta[:, -2], delta[:, -1]),
                    np.where(per >= 3, delta[:, -3], delta[:, -1])])
    p_per, p_lo, p_hi = printed_cycle(h, s, c)
    ok = {"printed": (per == p_per) & (cyc.min(0) == p_lo) & (cyc.max(0) == p_hi),
          "eq6": sig == eq6, "spec": sig == spec, "summary": sig == summary}
    tally.n += len(h)
    for k, v in ok.items():
        tally.agree[k] += int(v.sum())
    for i in np.flatnonzero(~np.logical_and.reduce(list(ok.values()))):
        key = (int(s[i]), _where(h[i], _thresholds(S, M)), _cycle_text(delta[i], tt[i], int(per[i]), names),
               _symbol(sig[i], names), _symbol(eq6[i], names), _symbol(spec[i], names),
               _symbol(summary[i], names),
               f"period {p_per[i]}, {_symbol(p_lo[i], names)}..{_symbol(p_hi[i], names)}",
               tuple(k for k, v in ok.items() if not v[i]))
        tally.add_group(key, (S, mu, M), float(h[i]))


def shutdown_inputs(K: float, n_random: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random (delta, h) in [-K, K] x [-3, 3] plus the grid of special values (delta: +-K, 0; h: +-1)."""
    sd = [v for v in _neighbours((-K, 0.0, K, K / 2)) if -K <= v <= K]
    sh = [*_neighbours((-1.0, 1.0)), 0.0, 2.0, -2.0]
    dd, hh = np.meshgrid(sd, sh)
    delta = np.concatenate([_f32(rng.uniform(-K, K, n_random)), dd.ravel()])
    h = np.concatenate([_f32(rng.uniform(-3, 3, n_random)), hh.ravel()])
    return delta, h


def verify_shutdown(Ks: Iterable[float], *, n_random: int = 2000, seed: int = 0,
                    progress: bool = False) -> Tally:
    """Compare delta~ of the shutdown circuit with delta sigma'(h) (Remark 2) and rule (3)."""
    rng = np.random.default_rng(seed)
    tally = Tally(agree={"remark2": 0, "rule3": 0, "zero_iff_saturated": 0})
    for K in tqdm(list(Ks), desc="shutdown circuit", disable=not progress):
        K = float(_f32(K))
        d_np, h_np = shutdown_inputs(K, n_random, rng)
        delta, h = torch.from_numpy(d_np), torch.from_numpy(h_np)
        out = simulate_shutdown(delta, saturation(h), K).delta_tilde.numpy()
        ref2, ref3 = (delta * remark2_derivative(h)).numpy(), rule3(delta, h).numpy()
        saturated = (saturation(h).abs() == 1).numpy()
        ok = {"remark2": out == ref2, "rule3": out == ref3,
              "zero_iff_saturated": (out == 0) == (saturated | (d_np == 0))}
        tally.n += len(d_np)
        for k, v in ok.items():
            tally.agree[k] += int(v.sum())
        for i in np.flatnonzero(~(ok["remark2"] & ok["rule3"] & ok["zero_iff_saturated"])):
            names = {"0": 0.0, "delta": d_np[i], "-K": -K, "K": K}
            key = (_where(h_np[i], {"-1": -1.0, "1": 1.0}),
                   _where(d_np[i], {"-K": -K, "0": 0.0, "K": K}).replace("h", "delta"),
                   _symbol(out[i], names), _symbol(ref2[i], names), _symbol(ref3[i], names),
                   tuple(k for k, v in ok.items() if not v[i]))
            tally.add_group(key, (K,), float(h_np[i]))
    return tally
