"""The GPU check (run by ``benchmarks/gpu_check.sh`` on a lent GPU; every output under ``--out``).

(a) CUDA and CPU agree: a few SGD steps of every method on dense, conv (with sum and maxpool)
    and untied layers, in float64, from the same start: the largest difference of any weight.
(b) Step times on the GPU (fp32, no TF32) for simpnet, deepernet and deepnet_s, bp/frfb/urfb,
    batch 500, and the projected time of the paper's full grids (1000 epochs) from them.
(c) In the time left, the evidence grids (3 seeds, the paper's 45,000/5,000 split, batch 500,
    step 0.1): simpnet x the six protocols, deepernet x {bp-h, urfb, frfb}, deepnet_s's
    Figure 11 protocol (one seed), each through ``python -m deepnets.suite`` with a deadline;
    then, in whatever time is left, the simpnet grid is extended towards 40 epochs, seed by
    seed. The runs' ``config.json`` and ``log.jsonl`` are packed into ``runs.tar.gz``
    (checkpoints are too large to come back from a lent machine).

``--smoke`` shrinks everything (tiny data, one epoch, CPU allowed) to test the script itself.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import torch

from deepnets.engine import train_step
from deepnets.losses import make_loss
from deepnets.network import FeedbackNet

AGREEMENT_ARCHS = {
    "dense": "full 12; full 10; output",
    "conv+sum+pool": "conv 4 3x3; conv 4 3x3; sum; maxpool 3; full 10; output",
    "untied": "untied 3 3x3; maxpool 2; output",
}
TIMING_ARCHS = ("simpnet", "deepernet", "deepnet_s")
METHODS = ("bp", "frfb", "urfb")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def agreement(device: str, steps: int = 3) -> list[dict[str, Any]]:
    """(a): max |CPU - CUDA| over every weight after ``steps`` SGD steps, float64."""
    rows = []
    loss_fn = make_loss("hinge", 10)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 8, 8, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 10, (16,), generator=gen)
    for kind, arch in AGREEMENT_ARCHS.items():
        for method in METHODS:
            for conn in (1.0, 0.5):
                nets = {d: FeedbackNet(arch, in_shape=(3, 8, 8), method=method, connectivity=conn,
                                       seed=1).double().to(d) for d in ("cpu", device)}
                for d, net in nets.items():
                    for _ in range(steps):
                        train_step(net, x.to(d), y.to(d), loss_fn, lr=0.1)
                cpu, dev = nets["cpu"].state_dict(), nets[device].state_dict()
                diff = max(float((cpu[k] - dev[k].cpu()).abs().max()) for k in cpu)
                rows.append({"layers": kind, "method": method, "connectivity": conn,
                             "steps": steps, "max_abs_diff": diff})
    return rows


def step_times(device: str, batch: int, rounds: int) -> list[dict[str, Any]]:
    """(b): median seconds per SGD step (fp32, no TF32) on random inputs."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    rows = []
    loss_fn = make_loss("hinge", 10)
    x = torch.rand(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    for arch in TIMING_ARCHS:
        for method in METHODS:
            net = FeedbackNet(arch, method=method).to(device)
            times = []
            for i in range(rounds + 3):
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                train_step(net, x, y, loss_fn, lr=0.01)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                if i >= 3:
                    times.append(time.perf_counter() - t0)
            times.sort()
            rows.append({"arch": arch, "method": method, "batch": batch,
                         "step_s": times[len(times) // 2]})
            log(f"  {arch} {method}: {rows[-1]['step_s'] * 1e3:.2f} ms/step")
    return rows


def projections(times: list[dict[str, Any]], n_train: int = 45000, epochs: int = 1000) -> dict:
    """Hours of the paper's full grids (1000 epochs, 45,000 images) at the measured step times;
    validation and probe add about a tenth (not counted)."""
    per_epoch = {(r["arch"], r["method"]): r["step_s"] * -(-n_train // r["batch"]) for r in times}
    simpnet = sum(per_epoch[("simpnet", m)] for m in ("bp", "bp", "urfb", "frfb", "urfb", "frfb")
                  if ("simpnet", m) in per_epoch)
    deeper = sum(per_epoch[("deepernet", m)] for m in ("bp", "bp", "urfb", "frfb", "urfb", "frfb")
                 if ("deepernet", m) in per_epoch)
    return {
        "epoch_seconds": {f"{a} {m}": s for (a, m), s in per_epoch.items()},
        "simpnet_figure4_grid_hours_1000_epochs": simpnet * epochs / 3600,
        "deepernet_figure7_grid_hours_1000_epochs": deeper * epochs / 3600,
    }


def grid(args: argparse.Namespace, figures: list[str], extra: list[str], deadline: float) -> dict:
    """Run one suite grid in a subprocess, killed at ``deadline`` (finished epochs are kept).
    What is logged names the output folder ``$OUT`` and the interpreter ``python``, not the
    lent machine's paths."""
    cmd = [sys.executable, "-m", "deepnets.suite", *figures, "--data", "imagefolder",
           "--data-dir", args.data, "--dataset-label", "CIFAR-10 (JPEG re-encoding)",
           "--out", str(args.runs), "--estimate-steps", "0", "--quiet", *extra]

    def shown(text: str) -> str:
        return text.replace(sys.executable, "python").replace(str(args.out), "$OUT")

    command = shown(" ".join(cmd))
    left = deadline - time.monotonic()
    if left < 20:
        return {"command": command, "status": "skipped: no time left"}
    log(f"grid: {command} (at most {left:.0f} s)")
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, timeout=left, capture_output=True)
        status, output = f"exit {proc.returncode}", proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        status, output = "stopped at the deadline", (exc.stdout or b"") + (exc.stderr or b"")
    with open(args.out / "suite.log", "a", encoding="utf-8") as sink:
        sink.write(f"$ {command}\n{shown(output.decode(errors='replace'))}")
    log(f"  {status} after {time.monotonic() - t0:.0f} s")
    return {"command": command, "status": status, "seconds": time.monotonic() - t0}


def pack_runs(runs: Path, dest: Path) -> list[str]:
    """config.json and log.jsonl of every run folder (no checkpoints) into ``dest``."""
    names = []
    with tarfile.open(dest, "w:gz") as tar:
        for cfg in sorted(runs.rglob("config.json")):
            for f in (cfg, cfg.parent / "log.jsonl"):
                if f.is_file():
                    tar.add(f, arcname=str(f.relative_to(runs.parent)))
            names.append(cfg.parent.name)
    return names


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="folder for every output")
    p.add_argument("--data", required=True, help="the CIFAR-10 JPEG train.zip")
    p.add_argument("--budget-s", type=float, default=450, help="wall-clock budget of the script")
    p.add_argument("--smoke", action="store_true", help="tiny scale, to test the script itself")
    args = p.parse_args()
    start = time.monotonic()
    deadline = start + args.budget_s
    args.out.mkdir(parents=True, exist_ok=True)
    args.runs = args.out / "gpu-runs"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not args.smoke:
        log("no CUDA device: nothing to check")
        return 2
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else platform.processor(),
        "torch": torch.__version__, "python": platform.python_version(),
    }
    log(f"device {report['device']}, torch {report['torch']}")
    report["agreement"] = agreement(device)
    worst = max(r["max_abs_diff"] for r in report["agreement"])
    log(f"(a) CPU vs {device}, float64, 3 steps: largest weight difference {worst:.3g}")
    report["step_times"] = step_times(device, 16 if args.smoke else 500, 2 if args.smoke else 10)
    report["projections"] = projections(report["step_times"])
    report["captured_step"] = "not implemented: the step runs eagerly (no CUDA graph capture)"
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    scale = (["--epochs", "1", "--train-size", "30", "--val-size", "10", "--batch-size", "10",
              "--probe-size", "8"] if args.smoke else [])
    seeds = ["--seeds", "0", "1", "2"]
    report["grids"] = [
        grid(args, ["4"], ["--archs", "simpnet", *seeds, *(scale or ["--epochs", "15"])],
             deadline),
        grid(args, ["7"], ["--protocols", "bp-h", "urfb", "frfb", *seeds,
                           *(scale or ["--epochs", "10"])], deadline),
        grid(args, ["11"], [*(scale or ["--epochs", "10", "--pretrain-epochs", "1"])], deadline),
        # Whatever time is left extends the simpnet grid, seed by seed (the suite resumes runs).
        grid(args, ["4"], ["--archs", "simpnet", *seeds, *(scale or ["--epochs", "40"])],
             deadline),
    ]
    report["runs"] = pack_runs(args.runs, args.out / "runs.tar.gz")
    report["seconds"] = time.monotonic() - start
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    log(f"done in {report['seconds']:.0f} s; {len(report['runs'])} run folders packed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
