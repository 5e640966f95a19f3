"""How far a training step is from this machine's FLOP limit (issue 10), in one process.

1. The GEMM rate: a large fp32 matmul and a bf16 one, and in every round of step timings a
   2048^3 one of each (on a shared machine the rate moves with the load: a step is compared with
   the rate measured in the same minute).
2. The FLOPs of one training step of each architecture, from its layer shapes (a batch-1 pass
   records every weight layer's input and output): per weight layer 2 N MACs for h = W x, as
   many for the Hebbian product delta x^T and, above the first layer, as many for R delta.
3. The step time (interleaved rounds, after a warm-up step) of bp, frfb and urfb in fp32, and
   of urfb in bf16 (``--precision bf16``: bf16 compute, fp32 masters and updates): the default
   step, i.e. the paper's protocol (sequential order, no biases); results recorded before it
   became the default were of the simultaneous order with biases.
4. step time / FLOP-limited time (FLOPs / GEMM rate of the round), median over the rounds, per
   architecture and method, against the targets; the share of the step spent in GEMM/convolution kernels (one profiled urfb step),
   whose own time over the limit is the floor that the rest of the step adds to.
5. simpnet with its conv layer untied against tied (urfb), and both peak memories.

The header says whether the bf16 ratios mean anything here: the CPU's bf16 hardware (AMX tiles,
avx512_bf16; :func:`deepnets.nn.policy.cpu_bf16_hardware`), the bf16/fp32 GEMM-rate ratio just
measured, and what ``--precision auto`` chooses on this CPU. Without AMX a bf16 matmul runs at
about half the fp32 rate (avx512_bf16) or slower, so a bf16 step is slower than an fp32 one and
the bf16 targets (written for AMX, where bf16 ran 6x fp32) do not apply.

    python benchmarks/bench_limit.py [--archs simpnet deepernet deepnet_s] [--rounds 5]
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import statistics
import time
from collections.abc import Callable

# as ``import deepnets`` does, before torch loads OpenMP (deepnets.training.cpu)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
from proc_status import status_mib
from torch import Tensor

from deepnets import FeedbackNet, make_loss
from deepnets.nn.layers import FeedbackConv2d, FeedbackLinear, FeedbackUntied2d, feedback_layers
from deepnets.nn.policy import auto_precision, cpu_bf16_hardware
from deepnets.training.cpu import keep_freed_memory
from deepnets.training.engine import train_step
from urfb_common import OneLineParser

ARCHS = ("simpnet", "deepernet", "deepnet_s")
METHODS = ("bp", "frfb", "urfb")
#: step time / FLOP-limited time targets of issue 10 (urfb, on the default code path)
TARGETS = {("simpnet", "urfb", "fp32"): 2.0, ("deepernet", "urfb", "fp32"): 1.5,
           ("simpnet", "urfb", "bf16"): 2.0, ("deepernet", "urfb", "bf16"): 2.0,
           ("deepnet_s", "urfb", "bf16"): 2.0}
UNTIED_TARGET = 1.5
GEMM_KERNELS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm",
                "aten::mkldnn_convolution", "aten::convolution_backward")


def gemm_rate(dtype: torch.dtype, n: int = 4096, repeats: int = 3) -> float:
    """FLOP/s of an n x n x n matmul in ``dtype``, best of ``repeats``."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(dtype)
    b = torch.randn(n, n, generator=g).to(dtype)
    a @ b  # warm-up
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def step_flops(net: FeedbackNet, batch_size: int) -> float:
    """FLOPs of one training step from the weight layers' shapes (a batch-1 forward pass)."""
    macs: list[int] = []

    def record(module: torch.nn.Module, args: tuple[Tensor, ...], out: Tensor) -> None:
        x = args[0]
        if isinstance(module, FeedbackLinear):
            macs.append(module.in_features * module.out_features)
        elif isinstance(module, (FeedbackConv2d, FeedbackUntied2d)):
            # stride 1, 'same' padding: one output per input pixel (``out`` may be pooled)
            k = module.kernel_size
            macs.append(x.shape[-2] * x.shape[-1] * module.out_channels * x.shape[1] * k * k)
        else:
            raise TypeError(f"no FLOP count for {type(module).__name__}")

    layers = feedback_layers(net)
    hooks = [m.register_forward_hook(record) for m in layers]
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, *net.config["in_shape"]))
    finally:
        for h in hooks:
            h.remove()
        net.train()
    # forward + Hebbian product for every layer; R delta for all but the first (its input
    # needs no error)
    return 2.0 * batch_size * sum(m * (2 if i == 0 else 3) for i, m in enumerate(macs))


def _batch(n: int, seed: int) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8), torch.randint(
        0, 10, (n,), generator=g)


def _stepper(arch: str, method: str, precision: str, untied: bool = False
             ) -> Callable[[Tensor, Tensor], None]:
    net = FeedbackNet(arch, method=method, seed=0, untied=[0] if untied else ())
    loss_fn = make_loss("hinge", 10)
    return lambda x, y: train_step(net, x, y, loss_fn, lr=0.1, precision=precision) and None


def time_interleaved(steps: dict[str, Callable[[Tensor, Tensor], None]], x: Tensor, y: Tensor,
                     rounds: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Step times of each variant over ``rounds`` interleaved rounds (after a warm-up), and the
    GEMM rates measured in each round just before its steps (so that a ratio compares a step
    with the GEMM rate of the same minute on a shared machine)."""
    times: dict[str, list[float]] = {k: [] for k in steps}
    rates: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for r in range(rounds + 1):
        if r:
            rates["fp32"].append(gemm_rate(torch.float32, 2048, 2))
            rates["bf16"].append(gemm_rate(torch.bfloat16, 2048, 2))
        for k, step in steps.items():
            t0 = time.perf_counter()
            step(x, y)
            if r:
                times[k].append(time.perf_counter() - t0)
    return times, rates


def gemm_share(step: Callable[[Tensor, Tensor], None], x: Tensor, y: Tensor) -> float:
    """Fraction of one profiled step's operator self time spent in GEMM/convolution kernels."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step(x, y)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    gemm = sum(e.self_cpu_time_total for e in events if e.key in GEMM_KERNELS)
    return gemm / total if total else float("nan")


def _peak_memory(untied: bool, batch_size: int) -> tuple[float, float]:
    """(peak RSS MiB of a fresh process over 3 simpnet urfb steps, peak minus the RSS before)."""
    torch.manual_seed(0)
    keep_freed_memory()
    step = _stepper("simpnet", "urfb", "fp32", untied)
    x, y = _batch(batch_size, 0)
    before = status_mib("VmRSS")
    for _ in range(3):
        step(x, y)
    peak = status_mib("VmHWM")
    return peak, peak - before


def _load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load average unavailable"
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def bf16_hardware_line(rates: dict[str, float]) -> str:
    """The header line on this CPU's bf16 arithmetic: its hardware, the measured bf16/fp32 GEMM
    rate ratio (``rates``: FLOP/s per precision) and ``--precision auto``'s choice."""
    names = {True: "yes", False: "no", None: "unknown"}
    hw = cpu_bf16_hardware()
    return (f"bf16 hardware: AMX tiles {names[hw['amx_tiles']]}, avx512_bf16 "
            f"{names[hw['avx512_bf16']]}; bf16/fp32 GEMM rate {rates['bf16'] / rates['fp32']:.2f}x;"
            f" --precision auto chooses {auto_precision('cpu')} on this CPU")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=list(ARCHS), choices=ARCHS,
                        help=f"networks to time (default: {' '.join(ARCHS)})")
    parser.add_argument("--batch-size", type=int, default=500, help="paper: 500")
    parser.add_argument("--rounds", type=int, default=5, help="timed steps per variant")
    parser.add_argument("--no-bf16", action="store_true", help="skip the bf16 steps")
    parser.add_argument("--no-untied", action="store_true", help="skip the untied comparison")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--no-profile", action="store_true", help="skip the GEMM-share profile")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's, the number of cores); on a loaded "
                        "machine 1 thread avoids the waits of each parallel operator for a "
                        "descheduled thread, which inflate many-operator steps far more than "
                        "one large matmul")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.rounds < 1:
        parser.error("--batch-size and --rounds must be positive")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be positive")
        torch.set_num_threads(args.threads)
    keep_freed_memory()  # as train_step does; before the GEMM buffers are allocated
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {_load()}")
    big = {"fp32": gemm_rate(torch.float32), "bf16": gemm_rate(torch.bfloat16)}
    print(f"GEMM rate of a 4096^3 matmul at the start: fp32 {big['fp32'] / 1e9:.0f}, bf16 "
          f"{big['bf16'] / 1e9:.0f} GFLOP/s (a 2048^3 matmul is timed in every round)")
    print(bf16_hardware_line(big))
    x, y = _batch(args.batch_size, 0)
    # arch, method, precision, median step time, flops, median ratio, median rate
    rows: list[tuple[str, str, str, float, float, float, float]] = []
    shares: dict[tuple[str, str], float] = {}
    untied: tuple[float, float, float] | None = None
    for arch in args.archs:
        flops = step_flops(FeedbackNet(arch, seed=0), args.batch_size)
        steps = {(m, "fp32"): _stepper(arch, m, "fp32") for m in METHODS}
        if not args.no_bf16:
            steps[("urfb", "bf16")] = _stepper(arch, "urfb", "bf16")
        if arch == "simpnet" and not args.no_untied:
            steps[("urfb-untied", "fp32")] = _stepper(arch, "urfb", "fp32", untied=True)
        torch.manual_seed(0)
        times, rates = time_interleaved({f"{m}/{p}": s for (m, p), s in steps.items()}, x, y,
                                        args.rounds)
        for (m, p) in steps:
            ts = times[f"{m}/{p}"]
            if m == "urfb-untied":
                tied = times["urfb/fp32"]
                untied = (statistics.median(ts), statistics.median(tied),
                          statistics.median(u / t for u, t in zip(ts, tied)))
                continue
            ratio = statistics.median(t * rate / flops for t, rate in zip(ts, rates[p]))
            rows.append((arch, m, p, statistics.median(ts), flops, ratio,
                         statistics.median(rates[p])))
        if not args.no_profile:
            for prec in ("fp32", "bf16"):
                if ("urfb", prec) in steps:
                    shares[(arch, prec)] = gemm_share(steps[("urfb", prec)], x, y)
    print(f"\nbatch {args.batch_size}; medians over {args.rounds} interleaved rounds; ratio = step "
          "time x that round's GEMM rate / FLOPs\n")
    print(f"{'arch':10s} {'method':6s} {'prec':5s} {'GFLOP':>7s} {'GFLOP/s':>8s} {'limit ms':>9s} "
          f"{'step ms':>8s} {'ratio':>6s}  target")
    for arch, method, prec, t, flops, ratio, rate in rows:
        target = TARGETS.get((arch, method, prec))
        mark = "" if target is None else (f"<= {target:.1f} " + ("met" if ratio <= target
                                                                  else "NOT met"))
        print(f"{arch:10s} {method:6s} {prec:5s} {flops / 1e9:7.1f} {rate / 1e9:8.0f} "
              f"{flops / rate * 1e3:9.1f} {t * 1e3:8.1f} {ratio:6.2f}  {mark}")
    if shares:
        print("\nGEMM/convolution kernels' share of a profiled urfb step; the rest (pooling, "
              "dropout, elementwise work, copies) in units of the limit as well:")
        for (arch, prec), share in shares.items():
            ratio = next(r[5] for r in rows if r[0] == arch and r[1:3] == ("urfb", prec))
            print(f"  {arch:10s} {prec}  {share:5.1%}: those kernels alone take "
                  f"{share * ratio:.2f}x the limit, the rest {(1 - share) * ratio:.2f}x")
    if untied is not None:
        u, tied, ratio = untied
        print(f"\nsimpnet urfb, conv layer untied / tied: {u * 1e3:.1f} / {tied * 1e3:.1f} ms, "
              f"ratio {ratio:.2f} (median of the rounds' ratios; target <= {UNTIED_TARGET})")
        if not args.no_memory:
            ctx = mp.get_context("spawn")
            for flag, name in ((False, "tied"), (True, "untied")):
                with ctx.Pool(1) as pool:
                    peak, step_mem = pool.apply(_peak_memory, (flag, args.batch_size))
                print(f"  peak memory {name:7s} {peak:7.0f} MiB RSS ({step_mem:.0f} MiB above "
                      "the built net)")
    print(f"\n{_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
