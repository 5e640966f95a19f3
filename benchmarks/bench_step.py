"""Time one simpnet training step (batch 500, CPU): urfb and frfb against the same network in
plain torch autograd with standard nn layers (target <= 1.10x), and untied against tied simpnet
(target <= 4x) with the peak memory of both. "The same network": the feedback networks have
biases as nn.Conv2d / nn.Linear do, and take the simultaneous order (all updates from one
backward pass, as torch's SGD), not the defaults (the paper's sequential order, no biases).  Variants are timed interleaved in one run; the
median over rounds is reported.

    python benchmarks/bench_step.py [--rounds 10] [--batch-size 500]
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import time
from collections.abc import Callable

import torch
from proc_status import status_mib
from torch import Tensor, nn

from deepnets import FeedbackNet, make_loss, train_step
from deepnets.nn.layers import ZeroPadMaxPool2d
from deepnets.nn.losses import hinge_loss_value
from urfb_common import OneLineParser

SAT = 0.5


class _Saturate(nn.Module):
    def forward(self, h: Tensor) -> Tensor:
        return torch.clamp(SAT * h, -1.0, 1.0)


def plain_simpnet(n_classes: int = 10) -> nn.Sequential:
    """simpnet with standard torch layers (autograd backward = BP)."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 5, padding=2),
        _Saturate(),
        ZeroPadMaxPool2d(3, 2),
        nn.Dropout(0.8),
        nn.Flatten(),
        nn.Linear(32 * 16 * 16, 500),
        _Saturate(),
        nn.Dropout(0.3),
        nn.Linear(500, n_classes),
    )


def _plain_step(
    net: nn.Module, opt: torch.optim.Optimizer, mu: float
) -> Callable[[Tensor, Tensor], None]:
    def step(x: Tensor, y: Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        hinge_loss_value(net(x), y, mu).mean().backward()
        opt.step()

    return step


def _feedback_step(net: FeedbackNet) -> Callable[[Tensor, Tensor], None]:
    loss_fn = make_loss("hinge", 10)
    return lambda x, y: train_step(net, x, y, loss_fn, lr=0.1, update_order="simultaneous")


def _make(variant: str, seed: int) -> Callable[[Tensor, Tensor], None]:
    if variant == "plain":
        net = plain_simpnet()
        return _plain_step(net, torch.optim.SGD(net.parameters(), lr=0.1), 1 / 9)
    method, _, untied = variant.partition("-")
    return _feedback_step(
        FeedbackNet("simpnet", method=method, untied=[0] if untied else (), seed=seed, bias=True)
    )


def _batch(n: int, seed: int) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


def _peak_memory(variant: str, batch_size: int, seed: int) -> tuple[float, float]:
    """(peak RSS MiB of a fresh process over 3 steps, peak minus RSS before the first step)."""
    torch.manual_seed(seed)
    step = _make(variant, seed)
    x, y = _batch(batch_size, seed)
    before = status_mib("VmRSS")
    for _ in range(3):
        step(x, y)
    peak = status_mib("VmHWM")  # unlike ru_maxrss, not inherited from the parent across exec
    return peak, peak - before


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--batch-size", type=int, default=500, help="examples per step (paper: 500)"
    )
    parser.add_argument("--rounds", type=int, default=10, help="timed steps per variant")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights, data and dropout")
    parser.add_argument(
        "--no-memory", action="store_true", help="skip the peak-memory subprocesses"
    )
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.rounds < 1:
        parser.error("--batch-size and --rounds must be positive")
    torch.manual_seed(args.seed)
    variants = ["plain", "bp", "frfb", "urfb", "urfb-untied"]
    steps = {v: _make(v, args.seed) for v in variants}
    x, y = _batch(args.batch_size, args.seed)
    times: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(args.rounds + 1):
        for v in variants:
            t0 = time.perf_counter()
            steps[v](x, y)
            if r:  # round 0 warms up
                times[v].append(time.perf_counter() - t0)
    med = {v: statistics.median(ts) for v, ts in times.items()}
    print(
        f"simpnet step, batch {args.batch_size}, CPU, {torch.get_num_threads()} threads, "
        f"median of {args.rounds} interleaved rounds"
    )
    for v in variants:
        print(f"  {v:12s} {med[v] * 1e3:8.1f} ms   (min {min(times[v]) * 1e3:.1f})")
    for v in ("bp", "frfb", "urfb"):
        print(f"  {v} / plain autograd     = {med[v] / med['plain']:.3f}  (target <= 1.10)")
    print(f"  untied / tied (urfb)    = {med['urfb-untied'] / med['urfb']:.3f}  (target <= 4)")
    if not args.no_memory:
        ctx = mp.get_context("spawn")
        for v in ("urfb", "urfb-untied"):
            with ctx.Pool(1) as pool:
                peak, step_mem = pool.apply(_peak_memory, (v, args.batch_size, args.seed))
            print(
                f"  peak memory {v:12s} {peak:8.0f} MiB RSS ({step_mem:.0f} MiB above the built net)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
