"""The GPU check (run by ``benchmarks/gpu_check.sh`` on a lent GPU; every output under ``--out``).

(a) CUDA and CPU agree: a few SGD steps of every method on dense, conv (with sum and maxpool)
    and untied layers, in float64, from the same start: the largest difference of any weight.
(b) Step times on the GPU (fp32, no TF32) for simpnet, deepernet and deepnet_s, bp/frfb/urfb,
    batch 500, eager and replayed from a CUDA graph
    (:class:`deepnets.training.capture.TrainStepper`, the trainer's own step); then packed
    (:mod:`deepnets.experiments.pack`, ``suite --pack N``): N runs of simpnet and of deepernet (the
    three methods in turn, seeds 0..N-1), one step of each per round, each on its own stream with
    its own captured graph and random streams, timed per round, so per run-step; the projected
    time of the paper's full grids (1000 epochs); and the rest of an epoch, each part alone
    (validation, probe, saturation, correlations, the writes of best.pt, checkpoint.pt and the
    log, after 100 epochs' records).
(c) The bf16 paired check on the GPU (issue 18: bf16 is used on a GPU only where it learns as
    fp32 does): simpnet URFB and FRFB x seeds 0, 1, 2 in bf16, 100 epochs, packed 6 at once
    into ``--runs``/bf16 (at most a third of the time left), whose fp32 pairs are the same runs
    of the grid below; ``python -m figures bf16-paired --runs <the unpacked runs.tar.gz>``
    judges them at the epochs both reached.
(d) In the time left, the paper's Figure 4 grid (simpnet x Section 4's six protocols x seeds
    0, 1, 2; 1000 epochs, the paper's 45,000/5,000 split, batch 500, step 0.1) packed 18 at once
    on the one GPU (``python -m deepnets.suite 4 ... --pack 18``), stopped at the deadline. Every
    run logs each epoch as it ends; every 30 s (and at the end) the runs' ``config.json`` and
    ``log.jsonl`` are packed again into ``runs.tar.gz`` and the summary rewritten, so a script
    stopped from outside still leaves every epoch finished up to then. The run folders
    themselves (``--runs``, outside ``--out``) keep the checkpoints: they cannot come back from a
    lent machine (18 simpnet checkpoints are far over its 8 files of 16 MiB). On a GPU machine
    of one's own the same command resumes the runs.
(e) With ``--test`` (the JPEG copy's test.zip), in the last :data:`TEST_RESERVE_S` seconds: every
    run folder under ``--runs`` (the grid's and the bf16 runs) is scored on the test split with
    its validation-chosen and its last weights, at whatever epoch the deadline left it
    (:func:`deepnets.experiments.scoring.score_test_split`, as ``deepnets.suite
    --evaluate-test`` scores a finished run), into its ``test.json``, which ``runs.tar.gz``
    carries back; a run already scored at its epochs is kept. The test split is never read
    before the runs stop: nothing is chosen on it.

The test suite's CUDA tests (a recorded CUDA graph replayed against the eager step,
``tests/deepnets/test_capture.py``) are run by ``gpu_check.sh`` before this script.

``--smoke`` shrinks everything (tiny data, one epoch, CPU allowed) to test the script itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from deepnets.experiments.pack import RandomStreams
from deepnets.experiments.scoring import score_test_split, split_reader
from deepnets.experiments.testresult import TEST, read_test_to_rescore, write_test
from deepnets.nn.alignment import alignment, summary
from deepnets.nn.losses import make_loss
from deepnets.nn.network import FeedbackNet
from deepnets.nn.saturation import saturated_fractions
from deepnets.training.capture import WARMUP_STEPS, TrainStepper
from deepnets.training.checkpoint import save_best, save_checkpoint
from deepnets.training.engine import evaluate, train_step
from deepnets.training.runconfig import positive_number
from deepnets.training.rundir import CONFIG, read_log, write_log
from urfb_common import (
    OneLineParser,
    OutputPathError,
    atomic_path,
    atomic_write_text,
    check_out_dir,
    path_arg,
)

AGREEMENT_ARCHS = {
    "dense": "full 12; full 10; output",
    "conv+sum+pool": "conv 4 3x3; conv 4 3x3; sum; maxpool 3; full 10; output",
    "untied": "untied 3 3x3; maxpool 2; output",
}
TIMING_ARCHS = ("simpnet", "deepernet", "deepnet_s")
#: Runs per pack timed in (b); the smoke scale times 2.
PACKS = {"simpnet": (3, 6, 18), "deepernet": (3, 9)}
#: Seconds between two refreshes of runs.tar.gz and the summary while the grid of (c) runs.
REFRESH_S = 30.0
#: Seconds kept back from the grid for (e), scoring every run on the test split (the 10,000
#: JPEGs are read once, about 2 s on this project's CPU; then two evaluations of each run).
TEST_RESERVE_S = 60.0
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


def _median_seconds(part: Callable[[], object], device: str | torch.device, repeats: int,
                    warmup: int = 1) -> float:
    """Median wall seconds of ``part()`` over ``repeats`` calls after ``warmup`` untimed ones
    (the device synchronised around each timed call)."""
    cuda = torch.device(device).type == "cuda"
    for _ in range(warmup):
        part()
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        part()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def _time_steps(stepper: TrainStepper, batch: int, rounds: int) -> float:
    """Median seconds per step over ``rounds`` steps, after the warm-up (and the capture)."""
    idx = torch.arange(batch, device=stepper.x.device)
    return _median_seconds(lambda: stepper.step(idx), stepper.x.device, rounds,
                           warmup=WARMUP_STEPS + 2)


def _timing_batch(device: str, batch: int) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """What (b)'s timings step on (fp32, TF32 off): the hinge loss and one batch of random
    uint8 images and labels held on ``device``."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (batch, 3, 32, 32), generator=gen, dtype=torch.uint8).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)
    return make_loss("hinge", 10), x, y


def step_times(device: str, batch: int, rounds: int) -> list[dict[str, Any]]:
    """(b): median seconds per SGD step (fp32, no TF32) on random images held on the device,
    eager and replayed from a CUDA graph."""
    rows = []
    loss_fn, x, y = _timing_batch(device, batch)
    for arch in TIMING_ARCHS:
        for method in METHODS:
            row: dict[str, Any] = {"arch": arch, "method": method, "batch": batch}
            for mode, key in (("off", "step_s"), ("on", "step_s_captured")):
                net = FeedbackNet(arch, method=method).to(device)
                try:
                    stepper = TrainStepper(net, loss_fn, x, y, lr=0.01, batch_size=batch,
                                           mode=mode)
                    row[key] = _time_steps(stepper, batch, rounds)
                except Exception as exc:  # noqa: BLE001 (a failed capture or replay is a finding)
                    row[f"{mode}_error"] = f"{type(exc).__name__}: {exc}"
            if "step_s_captured" in row and "step_s" in row:
                row["captured_speedup"] = row["step_s"] / row["step_s_captured"]
            rows.append(row)
            eager = (f"eager {row['step_s'] * 1e3:.2f} ms/step" if "step_s" in row
                     else f"eager failed: {row.get('off_error')}")
            captured = (f"captured {row['step_s_captured'] * 1e3:.2f} ms" if "step_s_captured"
                        in row else f"not captured: {row.get('on_error')}")
            log(f"  {arch} {method}: {eager}, {captured}")
    return rows


def _epoch_end_parts(net: FeedbackNet, folder: str, x: torch.Tensor, y: torch.Tensor,
                     n_probe: int, n_records: int) -> dict[str, Callable[[], object]]:
    """What :func:`deepnets.training.trainer._epoch` does after a run's steps, part by part; the
    log and the checkpoint hold ``n_records`` epochs' records (each as the trainer's, its probe
    and saturation included), since both are rewritten whole every epoch."""
    loss_fn = make_loss("hinge", 10)
    probe_x, probe_y = x[:n_probe], y[:n_probe]
    record = {"epoch": 1, "train_loss": 1.0, "train_error": 0.5, "val_loss": 1.0,
              "val_error": 0.5, "seconds": 1.0, "train_seconds": 1.0, "probe_seconds": 0.1,
              "cpu_seconds": 1.0, "corr": [None if c is None else float(c)
                                           for c in net.correlations()],
              "alignment": summary(alignment(net, probe_x, probe_y, loss_fn)),
              "saturated": saturated_fractions(net, probe_x)}
    records = [{**record, "epoch": e} for e in range(1, n_records + 1)]
    return {
        "validation": lambda: evaluate(net, x, y, loss_fn),
        "probe": lambda: summary(alignment(net, probe_x, probe_y, loss_fn)),
        "saturation": lambda: saturated_fractions(net, probe_x),
        "correlations": net.correlations,
        "save_best": lambda: save_best(folder, 1, 0.5, net.state_dict()),
        "save_checkpoint": lambda: save_checkpoint(
            folder, {"epoch": n_records, "net": net.state_dict(), "records": records}),
        "write_log": lambda: write_log(folder, records),
    }


def epoch_end_costs(device: str, n_val: int, n_probe: int, n_records: int, repeats: int
                    ) -> list[dict[str, Any]]:
    """(b), the rest of an epoch: median seconds of what a run does after its steps, each part
    timed alone on ``device`` (:func:`_epoch_end_parts`): validation on ``n_val`` random images,
    the alignment probe and the saturation on ``n_probe`` of them, the correlations of W and R,
    the atomic writes of ``best.pt`` and ``checkpoint.pt`` and the rewrite of ``log.jsonl``
    (after ``n_records`` epochs). On an H200 (2026-12-04) a packed grid logged 4.4 run-epochs a
    second where its steps alone allowed 10.8: these parts are the candidates for the
    difference."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n_val, 3, 32, 32), generator=gen, dtype=torch.uint8).to(device)
    y = torch.randint(0, 10, (n_val,), generator=gen).to(device)
    rows = []
    for arch in ("simpnet", "deepernet"):
        net = FeedbackNet(arch, method="urfb").to(device)
        row: dict[str, Any] = {"arch": arch, "n_val": n_val, "n_probe": n_probe,
                               "n_records": n_records}
        with tempfile.TemporaryDirectory() as folder:
            for name, part in _epoch_end_parts(net, folder, x, y, n_probe, n_records).items():
                row[f"{name}_s"] = _median_seconds(part, device, repeats)
            row["checkpoint_bytes"] = (Path(folder) / "checkpoint.pt").stat().st_size
        rows.append(row)
        log(f"  {arch} epoch end: " + ", ".join(f"{k[:-2]} {v * 1e3:.1f} ms" for k, v in row.items()
                                                if k.endswith("_s"))
            + f"; checkpoint {row['checkpoint_bytes'] / 2**20:.1f} MiB")
    return rows


def _time_rounds(steppers: list[TrainStepper], batch: int, rounds: int) -> float:
    """Median seconds of a round (one step of each run, as :mod:`deepnets.experiments.pack` does:
    the run's random streams installed, its work on its own CUDA stream), after the warm-up and
    captures."""
    device = steppers[0].x.device
    cuda = device.type == "cuda"
    idx = torch.arange(batch, device=device)
    streams = [RandomStreams(str(device)) for _ in steppers]
    lanes = [torch.cuda.Stream(device) if cuda else None for _ in steppers]

    def one_round() -> None:
        for stepper, rng, lane in zip(steppers, streams, lanes):
            with rng.installed(), (torch.cuda.stream(lane) if lane is not None
                                   else contextlib.nullcontext()):
                stepper.step(idx)

    return _median_seconds(one_round, device, rounds, warmup=WARMUP_STEPS + 2)


def pack_times(device: str, batch: int, rounds: int, packs: dict[str, tuple[int, ...]]
               ) -> list[dict[str, Any]]:
    """(b), packed: median seconds per run-step of N runs stepped in turn (cuda graphs on CUDA
    where they capture, ``auto``), bp/frfb/urfb in turn, seed i for run i."""
    rows = []
    loss_fn, x, y = _timing_batch(device, batch)
    for arch, sizes in packs.items():
        for n in sizes:
            row: dict[str, Any] = {"arch": arch, "runs": n, "batch": batch}
            steppers: list[TrainStepper] = []
            try:
                steppers = [TrainStepper(FeedbackNet(arch, method=METHODS[i % 3], seed=i).to(device),
                                         loss_fn, x, y, lr=0.01, batch_size=batch, mode="auto")
                            for i in range(n)]
                row["round_s"] = _time_rounds(steppers, batch, rounds)
                row["step_s_per_run"] = row["round_s"] / n
                row["captured"] = all(s.captured for s in steppers)
                log(f"  {arch} pack of {n}: {row['round_s'] * 1e3:.2f} ms a round, "
                    f"{row['step_s_per_run'] * 1e3:.3f} ms per run-step"
                    f"{' (captured)' if row['captured'] else ' (eager)'}")
            except Exception as exc:  # noqa: BLE001 (out of memory or a failed replay is a finding)
                row["error"] = f"{type(exc).__name__}: {exc}"
                log(f"  {arch} pack of {n}: failed: {row['error']}")
            rows.append(row)
            del steppers
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
    return rows


def projections(times: list[dict[str, Any]], packs: list[dict[str, Any]], n_train: int = 45000,
                epochs: int = 1000) -> dict:
    """Hours of the paper's full grids (1000 epochs, 45,000 images, one run at a time) at the
    measured step times (the faster of eager and captured), and minutes packed at the best
    measured time per run-step of ``packs`` (simpnet: Figure 4's 6 protocols x 3 seeds;
    deepernet: BP-H, URFB and FRFB x 3 seeds); validation and probe are not counted (a run's
    log gives their time per epoch: ``seconds`` - ``train_seconds``)."""
    timed = {(r["arch"], r["method"]): (min(r[k] for k in ("step_s", "step_s_captured") if k in r),
                                        r["batch"])
             for r in times if "step_s" in r or "step_s_captured" in r}
    per_epoch = {key: step * -(-n_train // batch) for key, (step, batch) in timed.items()}
    simpnet = sum(per_epoch[("simpnet", m)] for m in ("bp", "bp", "urfb", "frfb", "urfb", "frfb")
                  if ("simpnet", m) in per_epoch)
    deeper = sum(per_epoch[("deepernet", m)] for m in ("bp", "bp", "urfb", "frfb", "urfb", "frfb")
                 if ("deepernet", m) in per_epoch)
    steps = -(-n_train // 500)
    packed: dict[str, Any] = {}
    for arch, runs in (("simpnet", 18), ("deepernet", 9)):
        rows = [r for r in packs if r["arch"] == arch and "step_s_per_run" in r]
        if rows:
            best = min(rows, key=lambda r: r["step_s_per_run"])
            packed[f"{arch}_pack_of_{best['runs']}_run_epochs_per_second"] = 1 / (
                best["step_s_per_run"] * steps)
            packed[f"{arch}_grid_of_{runs}_runs_minutes_1000_epochs_packed"] = (
                runs * epochs * steps * best["step_s_per_run"] / 60)
    return {
        "epoch_seconds": {f"{a} {m}": s for (a, m), s in per_epoch.items()},
        "simpnet_figure4_grid_hours_1000_epochs": simpnet * epochs / 3600,
        "deepernet_figure7_grid_hours_1000_epochs": deeper * epochs / 3600,
        **packed,
    }


def grid(args: argparse.Namespace, figures: list[str], extra: list[str], deadline: float,
         refresh: Any = None, name: str = "suite", runs: Path | None = None) -> dict:
    """Run one suite grid into ``runs`` (default ``args.runs``) in a subprocess, killed at
    ``deadline`` (finished epochs are kept), calling ``refresh()`` every :data:`REFRESH_S`
    seconds while it runs; its output goes to ``$OUT/<name>.log``. What is logged names the
    output folder ``$OUT``, the run folders ``$RUNS`` and the interpreter ``python``, not the
    lent machine's paths."""
    runs = args.runs if runs is None else runs
    cmd = [sys.executable, "-m", "deepnets.suite", *figures, "--data", "imagefolder",
           "--data-dir", str(args.data), "--dataset-label", "CIFAR-10 (JPEG re-encoding)",
           "--out", str(runs), "--estimate-steps", "0", "--quiet", *extra]

    def shown(text: str) -> str:
        return (text.replace(sys.executable, "python").replace(str(args.runs), "$RUNS")
                .replace(str(args.out), "$OUT"))

    command = shown(" ".join(cmd))
    left = deadline - time.monotonic()
    if left < 20:
        return {"command": command, "status": "skipped: no time left"}
    log(f"grid: {command} (at most {left:.0f} s)")
    t0 = time.monotonic()
    # its own process group, so that the deadline stops the suite's worker processes too
    raw = args.runs / f"{name}-output.txt"  # beside the runs: it names this machine's paths
    with open(raw, "wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)

        def publish() -> None:
            atomic_write_text(args.out / f"{name}.log",
                              f"$ {command}\n{shown(raw.read_text(errors='replace'))}")
            if refresh is not None:
                refresh()

        status = ""
        while not status:
            try:
                proc.wait(timeout=max(0.1, min(REFRESH_S, deadline - time.monotonic())))
                status = f"exit {proc.returncode}"
            except subprocess.TimeoutExpired:
                if time.monotonic() < deadline:
                    publish()
                    continue
                os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: each run keeps its last epoch
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                status = "stopped at the deadline"
    publish()
    log(f"  {status} after {time.monotonic() - t0:.0f} s")
    return {"command": command, "status": status, "seconds": time.monotonic() - t0}


def write_report(args: argparse.Namespace, report: dict[str, Any]) -> None:
    atomic_write_text(args.out / "gpu_check.json", json.dumps(report, indent=2))


def logged_run_epochs(runs: Path) -> int:
    """Epochs logged by the run folders directly under ``runs``."""
    return sum(r["epochs"] for r in paper_scale_summary(runs))


def refresh_grid_outputs(args: argparse.Namespace, report: dict[str, Any], started: float,
                         before: int) -> None:
    """runs.tar.gz and the summary of the runs so far (the run-epochs this call logged per
    second of the grid included: a rerun that resumes the runs does not count the ``before``
    epochs of the calls before it), rewritten whole: what a stopped script leaves is never
    half-written."""
    report["paper_scale"] = paper_scale_summary(args.runs)
    epochs = sum(r["epochs"] for r in report["paper_scale"])
    report["grid_run_epochs"] = epochs
    report["grid_run_epochs_this_call"] = epochs - before
    report["grid_run_epochs_per_second"] = (epochs - before) / max(1e-9,
                                                                   time.monotonic() - started)
    report["runs"] = pack_runs(args.runs, args.out / "runs.tar.gz")
    write_report(args, report)


def paper_scale_summary(runs: Path) -> list[dict[str, Any]]:
    """Epochs done and median seconds per epoch (training only, and all of it) of each run."""
    rows = []
    for log_file in sorted(runs.glob("*/log.jsonl")):
        records = [json.loads(line) for line in log_file.read_text().splitlines() if line]
        if not records:
            continue
        train = sorted(r["train_seconds"] for r in records)
        whole = sorted(r["seconds"] for r in records)
        rows.append({"run": log_file.parent.name, "epochs": len(records),
                     "median_train_seconds": train[len(train) // 2],
                     "median_epoch_seconds": whole[len(whole) // 2],
                     "last_val_error": records[-1].get("val_error")})
    return rows


def score_runs_on_test(runs: Path, test: Path, device: str, out: Path) -> list[dict[str, Any]]:
    """(e): each run folder under ``runs`` with a finished epoch scored on ``test`` (its
    validation-chosen and last weights) into its ``test.json``, unless it holds that already;
    one row per run. The split is read once per class list; a run that cannot be scored is
    logged and left out, the others still are. ``runs.tar.gz`` in ``out`` is packed again every
    :data:`REFRESH_S` seconds and at the end."""
    rows: list[dict[str, Any]] = []
    read_test_split = split_reader("imagefolder", test)
    packed = time.monotonic()
    for cfg in sorted(runs.rglob(CONFIG)):
        folder, name = cfg.parent, str(cfg.parent.relative_to(runs))
        done = len(read_log(folder))
        if not done:
            continue
        try:
            result = read_test_to_rescore(folder)
            if result is None or (result.get("epochs_done"), result.get("data_dir")) != (
                    done, str(test)):
                result = score_test_split(folder, "imagefolder", test, device=device,
                                          dataset=read_test_split(folder))
                write_test(folder, result)
        except Exception as exc:  # noqa: BLE001 (one run's failure must not lose the others')
            log(f"  {name}: not scored ({type(exc).__name__}: {exc})")
            continue
        best = result.get("best") or {}
        rows.append({"run": name, "epochs": done, "best_epoch": best.get("epoch"),
                     "best_val_error": best.get("val_error"),
                     "best_test_error": best.get("error"),
                     "last_test_error": result["last"]["error"]})
        chosen = (f"epoch {best['epoch']} (validation {best['val_error']}): test error "
                  f"{best['error']:.4f}" if best else "no validation-chosen epoch")
        log(f"  {name}: {chosen}; last epoch {done}: {result['last']['error']:.4f}")
        if time.monotonic() - packed > REFRESH_S:
            pack_runs(runs, out / "runs.tar.gz")
            packed = time.monotonic()
    pack_runs(runs, out / "runs.tar.gz")
    return rows


def pack_runs(runs: Path, dest: Path) -> list[str]:
    """config.json, log.jsonl and test.json of every run folder (no checkpoints) into ``dest``."""
    names = []
    with atomic_path(dest) as tmp, tarfile.open(tmp, "w:gz") as tar:
        for cfg in sorted(runs.rglob(CONFIG)):
            for f in (cfg, cfg.parent / "log.jsonl", cfg.parent / TEST):
                if f.is_file():
                    tar.add(f, arcname=str(Path("gpu-runs") / f.relative_to(runs)))
            names.append(cfg.parent.name)
    return names


def main() -> int:
    p = OneLineParser(description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=path_arg, required=True, help="folder for every output")
    p.add_argument("--data", type=path_arg, required=True,
                   help="the CIFAR-10 JPEG train.zip (or its image-folder tree)")
    p.add_argument("--runs", type=path_arg,
                   default=Path(tempfile.gettempdir()) / "urfb-gpu-runs",
                   help="folder of the run folders of (c), outside --out (their checkpoints do "
                   "not come back; a rerun with the same folder resumes them; default: "
                   "urfb-gpu-runs in the temporary folder)")
    p.add_argument("--test", type=path_arg,
                   help="the CIFAR-10 JPEG test.zip: score every run on it at the end, (e)")
    p.add_argument("--budget-s", type=positive_number(float), default=450,
                   help="wall-clock budget of the script, seconds")
    p.add_argument("--smoke", action="store_true", help="tiny scale, to test the script itself")
    args = p.parse_args()
    for flag, path in (("--data", args.data), ("--test", args.test)):
        if path is not None and not path.exists():
            p.error(f"{flag} {path}: no such file or folder")
    for flag, folder in (("--out", args.out), ("--runs", args.runs)):
        try:
            check_out_dir(folder, flag)
        except OutputPathError as exc:
            p.error(str(exc))
    start = time.monotonic()
    deadline = start + args.budget_s
    args.out.mkdir(parents=True, exist_ok=True)
    args.runs.mkdir(parents=True, exist_ok=True)
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
    write_report(args, report)
    batch, rounds = (16, 2) if args.smoke else (500, 10)
    report["step_times"] = step_times(device, batch, rounds)
    write_report(args, report)
    report["pack_times"] = pack_times(device, batch, rounds,
                                      {a: (2,) for a in PACKS} if args.smoke else PACKS)
    report["projections"] = projections(report["step_times"], report["pack_times"])
    report["epoch_end_costs"] = (epoch_end_costs(device, 20, 8, 2, 1) if args.smoke
                                 else epoch_end_costs(device, 5000, 500, 100, 3))
    # The runs replay CUDA graphs only where every capture in (b) worked.
    graphs = "auto" if all("step_s_captured" in r for r in report["step_times"]) else "off"
    report["grid_cuda_graph"] = graphs
    write_report(args, report)
    scale = (["--epochs", "1", "--train-size", "30", "--val-size", "10", "--batch-size", "10",
              "--probe-size", "8"] if args.smoke else [])
    bf16_epochs = ["--epochs", "1"] if args.smoke else ["--epochs", "100"]
    bf16 = grid(args, ["4"], ["--archs", "simpnet", "--protocols", "urfb", "frfb", "--seeds",
                              "0", "1", "2", "--pack", "6", "--precision", "bf16",
                              "--cuda-graph", graphs, *(scale or []), *bf16_epochs],
                min(deadline, time.monotonic() + (deadline - time.monotonic()) / 3),
                name="suite-bf16", runs=args.runs / "bf16")
    report["bf16_paired"] = {**bf16, "runs": paper_scale_summary(args.runs / "bf16")}
    log(f"(c) bf16 paired runs: {sum(r['epochs'] for r in report['bf16_paired']['runs'])} "
        "run-epochs logged")
    write_report(args, report)
    started, before = time.monotonic(), logged_run_epochs(args.runs)
    grid_deadline = deadline - (TEST_RESERVE_S if args.test and not args.smoke else 0.0)
    report["grids"] = [
        grid(args, ["4"], ["--archs", "simpnet", "--seeds", "0", "1", "2", "--pack", "18",
                           "--cuda-graph", graphs, *(scale or ["--epochs", "1000"])],
             grid_deadline,
             refresh=lambda: refresh_grid_outputs(args, report, started, before)),
    ]
    refresh_grid_outputs(args, report, started, before)
    log(f"(d) {report['grid_run_epochs']} run-epochs logged, {report['grid_run_epochs_this_call']} "
        f"in this call, {report['grid_run_epochs_per_second']:.2f} per second of the grid")
    for row in report["paper_scale"]:
        log(f"  {row['run']}: {row['epochs']} epochs, {row['median_epoch_seconds']:.3f} s/epoch "
            f"({row['median_train_seconds']:.3f} s training), val error {row['last_val_error']}")
    if report["paper_scale"]:  # a packed run's record spans the epoch ends of the runs before it
        report["pack_epoch_seconds"] = max(r["median_epoch_seconds"] for r in report["paper_scale"])
        log(f"  a pack epoch: about {report['pack_epoch_seconds']:.3f} s (the last-placed run's "
            "record; each packed run's spans the epoch ends of the runs placed before it)")
    if args.test:
        log(f"(e) every run scored on the test split of {args.test}:")
        scoring = time.monotonic()
        report["test_scores"] = score_runs_on_test(args.runs, args.test, device, args.out)
        report["test_scoring_seconds"] = time.monotonic() - scoring
        report["runs"] = pack_runs(args.runs, args.out / "runs.tar.gz")
    report["seconds"] = time.monotonic() - start
    write_report(args, report)
    log(f"done in {report['seconds']:.0f} s; {len(report['runs'])} run folders packed")
    failed = [g["command"] for g in (*report["grids"], report["bf16_paired"])
              if g["status"].startswith("exit ") and g["status"] != "exit 0"]
    for command in failed:
        log(f"error: the grid failed ({command}); see its log in $OUT")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
