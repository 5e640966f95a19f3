"""The tie to training: the output feedback delta_L of eq. (6) computed by simulating Appendix 1's circuit.

``circuit_output_feedback`` has the signature ``deepnets.nn.losses.make_loss(...,
output_feedback=...)`` expects.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sims.circuits.output import DEFAULT_ROUNDS, OutputCircuit, read_signal, simulate


def auto_bound(logits: Tensor, S: float) -> float:
    """A bound M for the circuit: the smallest power of two >= 2 max(|h|, S, 1), so every finite |h| < M.

    A power of two keeps h + 2M s - 2M t exact in float64 for float32 h near the thresholds. Non-finite
    logits (a diverged run) are left out of the bound, so the caller's own check of the loss reports them.
    """
    finite = logits.detach().abs()[torch.isfinite(logits.detach())]
    top = max(float(finite.max()) if finite.numel() else 0.0, S, 1.0)
    return 2.0 ** math.ceil(math.log2(2 * top))


def circuit_output_feedback(logits: Tensor, y: Tensor, mu: float, *, S: float = 1.0,
                            M: float | None = None, eps: float = 0.1, overlap: str = "outer",
                            n_rounds: int = DEFAULT_ROUNDS) -> Tensor:
    """delta_L (N, C) read from Appendix 1's output circuit run on every output unit.

    Output unit c of example n gets h_c = logits[n, c] and s_c = +1 if y[n] == c else -1; the circuit runs
    ``n_rounds`` update cycles from t_c = 0 and the signal is read "ignoring the oscillation"
    (``sims.circuits.output.read_signal``). M defaults to ``auto_bound`` (no input sits at +-M); an explicit
    M smaller than some |h| is refused, since Appendix 1 assumes h_c in [-M, M]. Returns a tensor without
    grad, of the logits' dtype and device; with S = 1 it equals eq. (6) (checked by ``sims.circuits.verify``).
    """
    if logits.dim() != 2 or y.shape != logits.shape[:1]:
        raise ValueError(f"logits must be (N, C) and y (N,), got {tuple(logits.shape)} and {tuple(y.shape)}")
    h = logits.detach()
    if M is None:
        M = auto_bound(h, S)
    elif h.numel() and float(h.abs().nan_to_num(0.0).max()) > M:
        raise ValueError(f"M={M} is below max |logit| = {float(h.abs().max()):.4g}; Appendix 1 needs |h_c| <= M")
    circuit = OutputCircuit(S=S, mu=mu, M=M, eps=eps, overlap=overlap)
    s = -torch.ones_like(h, dtype=torch.float64)
    s.scatter_(1, y.to(h.device).long().view(-1, 1), 1.0)
    return read_signal(simulate(circuit, h, s, n_rounds=n_rounds)).to(logits.dtype)
