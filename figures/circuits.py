"""Figures of Appendix 1 (drawn by ``python -m sims.circuits --plot``): Figure 13 (the transfer
functions sigma_delta, sigma_t) and the update cycles."""

from __future__ import annotations

from pathlib import Path

import torch

from figures.style import legend, new_figure, save_figure
from sims.circuits.output import OutputCircuit, simulate

#: The four cases of Appendix 1's text: (label, s_c, h_c as a multiple of S).
FOUR_CASES: tuple[tuple[str, float, float], ...] = (
    ("s=+1, h<=S: fixed at 1", 1.0, 0.5),
    ("s=+1, h>S: 1+eps <-> 0", 1.0, 1.5),
    ("s=-1, h>=-S: fixed at -mu", -1.0, -0.5),
    ("s=-1, h<-S: -mu-eps <-> 0", -1.0, -1.5),
)


def _pieces(ax, pieces: list[tuple[float, float, float, bool, bool]], color: str) -> None:
    """Draw constant pieces (lo, hi, value, lo_closed, hi_closed); filled dots are closed ends."""
    for lo, hi, value, lo_closed, hi_closed in pieces:
        ax.plot([lo, hi], [value, value], color=color)
        for x, closed in ((lo, lo_closed), (hi, hi_closed)):
            if abs(x) != float("inf"):
                ax.plot([x], [value], "o", ms=4, color=color, mfc=color if closed else "white")


def figure13(circuit: OutputCircuit, out_dir: Path) -> list[Path]:
    """Figure 13 as printed: both closed intervals meet at x = +-M (the overlap ``circuit.overlap`` resolves)."""
    c, M, S = circuit, circuit.M, circuit.S
    hi, far = 2 * M + S, 3 * M + S
    fig, axes = new_figure(1, 2, row_height=2.6)
    ax = axes[0][0]
    _pieces(ax, [(-far, -hi, -c.mu - c.eps, False, False), (-hi, -M, -c.mu, True, True),
                 (-M, M, 0.0, True, True), (M, hi, 1.0, True, True), (hi, far, 1 + c.eps, False, False)],
            "tab:blue")
    for x in (-M, M):
        ax.annotate("overlap", (x, 0), xytext=(x, 0.45 if x < 0 else -0.45), ha="center",
                    fontsize=7, arrowprops={"arrowstyle": "-", "lw": 0.6})
    ax.set_xticks([-hi, -M, M, hi], ["-2M-S", "-M", "M", "2M+S"])
    ax.set_yticks([-c.mu - c.eps, -c.mu, 0, 1, 1 + c.eps], ["-mu-eps", "-mu", "0", "1", "1+eps"])
    ax.set_title(f"sigma_delta (M={M:g}, S={S:g}, mu={c.mu:g}, eps={c.eps:g})")
    ax.set_xlabel("H_c")
    ax = axes[0][1]
    lo, up, span = c.lower_threshold, c.t_upper, 2.0
    _pieces(ax, [(-span, lo, -1.0, False, False), (lo, up, 0.0, True, True), (up, span, 1.0, False, False)],
            "tab:orange")
    ax.set_xticks([lo, up], [f"-mu={lo:g}", f"{up:g}"])
    ax.set_yticks([-1, 0, 1])
    ax.set_title("sigma_t")
    ax.set_xlabel("delta_c")
    return save_figure(fig, out_dir / "fig13_transfer_functions")


def cycles_figure(circuit: OutputCircuit, out_dir: Path, n_rounds: int = 8) -> list[Path]:
    """delta_c and t_c over the update order delta -> t -> delta ... for the four cases of the text."""
    fig, axes = new_figure(2, 2, row_height=2.6)
    for ax, (label, s, h) in zip(axes.ravel(), FOUR_CASES):
        traj = simulate(circuit, torch.tensor([h * circuit.S]), torch.tensor([s]), n_rounds=n_rounds)
        d, t = traj.delta[0].tolist(), traj.t[0].tolist()
        ax.plot([2 * k for k in range(n_rounds)], d, "o-", color="tab:blue", label="delta_c")
        ax.plot([2 * k + 1 for k in range(n_rounds)], t[1:], "s--", color="tab:orange", label="t_c")
        ax.plot([0], t[:1], "s", color="tab:orange", mfc="white")
        ax.set_title(f"{label} (h={h * circuit.S:g})")
        ax.set_ylim(-1.35, 1.35)
        ax.set_xticks(range(0, 2 * n_rounds, 2))
    fig.supxlabel("update (even: delta_c, odd: t_c; open square: t_c = 0 at the start)", fontsize=9)
    legend(axes[0][0], loc="lower right")
    fig.tight_layout()
    return save_figure(fig, out_dir / "appendix1_update_cycles")
