"""Launching a grid's runs: N at once on this machine, or one SLURM job per run (submitit).

A run is a :class:`Job`: its :class:`~deepnets.training.config.TrainConfig`, its folder and whether
it resumes, trained by :func:`deepnets.training.trainer.run` wherever it lands. Whether it resumes
is decided again when the job starts (a run folder that holds a run is resumed), so a job that
SLURM requeues after its time limit, or a rerun of the grid, continues from the last epoch's
checkpoint. A job whose run depends on another (deepnet_s's retraining takes the first layer of
its tied pretraining, ``after``) starts only once that run is finished: locally when its future
has returned, on SLURM through ``--dependency=afterok:ID``, on submitit's local and debug
executors in waves; and when it starts it checks that the run it takes from has logged all its
epochs, else it is skipped (reported, never trained from a half-trained source).

A diverged run (:class:`~deepnets.training.trainer.NonFiniteState`), or one refused by a one-line
error, is an :class:`Outcome` and the other runs go on, as in the serial grid.

``--launcher local --jobs N`` runs N runs at once in spawned processes with cores // N torch
threads each. ``--launcher slurm`` submits one job per run through submitit (an optional
dependency: ``pip install 'urfb[cluster]'``), records the job ids in ``<slurm folder>/jobs.json``
and does not submit a run again while its job is still queued or running.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import importlib.util
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from deepnets.training import trainer
from deepnets.training.capture import CaptureError
from deepnets.training.config import ConfigError, TrainConfig
from deepnets.training.data import DataError
from deepnets.training.rundir import CONFIG, RunError, read_log
from urfb_common import NoSpaceError, atomic_write_text

__all__ = ["CLUSTER", "Job", "Launcher", "Outcome", "SlurmOptions", "have_submitit", "launch",
           "run_job", "source_finished"]

PROG = "python -m deepnets.suite"
LAUNCHERS = ("local", "slurm")
#: The submitit executor of ``--launcher slurm``; the tests set "debug" (in process) or "local".
CLUSTER = "slurm"
#: SLURM states of a job that will still train its run (``sacct``'s State column).
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD",
          "REQUEUE_FED", "RESIZING", "SUSPENDED", "PREEMPTED", "READY"}
RECORD = "jobs.json"


class LaunchError(ValueError):
    """A launch that cannot go ahead (e.g. submitit missing); the message is one line."""


@dataclass(frozen=True)
class Job:
    """One run of a grid, picklable: trained by :func:`run_job` in any process."""

    name: str
    config: TrainConfig
    folder: Path
    resume: bool = False
    quiet: bool = True
    after: Path | None = None        # the run folder that must be finished first (``from_run``)


@dataclass(frozen=True)
class Outcome:
    """How a job ended: ``ok``, ``diverged``, ``error`` (one-line error) or ``skipped``."""

    folder: Path
    status: str
    message: str = ""


@dataclass(frozen=True)
class SlurmOptions:
    """``--slurm-*``: what each job asks SLURM for (None: the cluster's default)."""

    folder: Path                     # submitit's logs, pickles and jobs.json
    time_min: int
    partition: str | None = None
    gpus_per_job: int | None = None
    cpus_per_job: int | None = None
    mem_gb: float | None = None
    wait: bool = False               # wait for the jobs and report them, as the local launcher


@dataclass(frozen=True)
class Launcher:
    kind: str = "local"              # "local" | "slurm"
    jobs: int = 1                    # local: runs at once
    slurm: SlurmOptions | None = None

    @property
    def serial(self) -> bool:
        """One run at a time in this process (the suite's own loop)."""
        return self.kind == "local" and self.jobs == 1


def have_submitit() -> bool:
    return importlib.util.find_spec("submitit") is not None


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def source_finished(folder: Path) -> str | None:
    """None when the run in ``folder`` has logged all its epochs, else why not."""
    if not (folder / CONFIG).is_file():
        return f"its source run {folder} holds no run"
    done, want = len(read_log(folder)), trainer.stored_config(folder).epochs
    return None if done >= want else f"its source run {folder} has {done} of {want} epochs"


def run_job(job: Job, threads: int | None = None) -> Outcome:
    """Train (or resume) one run; never raises for a diverged or refused run."""
    if threads:
        torch.set_num_threads(threads)
    try:
        if job.after is not None and (why := source_finished(job.after)):
            return Outcome(job.folder, "skipped", why)
        resume = job.resume or (job.folder / CONFIG).is_file()
        trainer.run(job.config, job.folder, resume=resume, quiet=job.quiet)
    except trainer.NonFiniteState as exc:
        return Outcome(job.folder, "diverged", str(exc))
    except (ConfigError, RunError, DataError, CaptureError, NoSpaceError) as exc:
        return Outcome(job.folder, "error", str(exc))
    return Outcome(job.folder, "ok")


class TrainJob:
    """A submitit job: :func:`run_job` of one :class:`Job`; requeued (and so resumed) when SLURM's
    time limit stops it (submitit calls :meth:`checkpoint`)."""

    def __init__(self, job: Job, threads: int | None = None) -> None:
        self.job, self.threads = job, threads

    def __call__(self) -> Outcome:
        outcome = run_job(self.job, self.threads)
        print(f"{self.job.name}: {outcome.status} {outcome.message}".rstrip(), flush=True)
        return outcome

    def checkpoint(self) -> Any:
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(TrainJob(self.job, self.threads))


def _last_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def _failure(folder: Path, exc: BaseException) -> Outcome:
    return Outcome(folder, "error", f"{type(exc).__name__}: {_last_line(exc)}")


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _stop(pool: cf.Executor, grace_s: float = 5.0) -> None:
    """Ctrl-C: cancel the queued runs; workers that the terminal's SIGINT did not reach (the
    parent alone was signalled) get one, so that they stop at once and keep their checkpoints."""
    workers = list((getattr(pool, "_processes", None) or {}).values())  # shutdown drops them
    pool.shutdown(wait=False, cancel_futures=True)
    for sig in (signal.SIGINT, signal.SIGTERM):
        deadline = time.monotonic() + grace_s
        for p in workers:
            p.join(max(0.0, deadline - time.monotonic()))
        alive = [p for p in workers if p.is_alive()]
        if not alive:
            break
        for p in alive:
            with contextlib.suppress(OSError):
                os.kill(p.pid, sig)
    pool.shutdown(wait=True)


# ---------------------------------------------------------------- N at once on this machine


def run_local(jobs: Sequence[Job], n: int, progress: bool = True,
              pool: cf.Executor | None = None) -> list[Outcome]:
    """Train ``jobs`` in ``n`` spawned processes (cores // n threads each), a job as soon as the
    run it depends on (if any in ``jobs``) has finished. Ctrl-C raises RunInterrupted.
    ``pool``: another executor to run them in (it is shut down at the end)."""
    folders = {j.folder for j in jobs}
    waiting, running, outcomes = list(jobs), {}, {}
    bar = tqdm(total=len(jobs), desc="suite", unit="run", disable=not progress, file=sys.stderr)
    if pool is None:
        pool = cf.ProcessPoolExecutor(max_workers=max(1, min(n, len(jobs))),
                                      mp_context=multiprocessing.get_context("spawn"),
                                      initializer=_init_worker, initargs=(max(1, cores() // n),))
    try:
        while waiting or running:
            for job in [j for j in waiting if j.after not in folders or j.after in outcomes]:
                waiting.remove(job)
                running[pool.submit(run_job, job)] = job
            finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                job = running.pop(future)
                try:
                    outcomes[job.folder] = future.result()
                except trainer.RunInterrupted:
                    raise KeyboardInterrupt from None
                except Exception as exc:  # noqa: BLE001 (a crashed worker: report it, go on)
                    outcomes[job.folder] = _failure(job.folder, exc)
                bar.update()
                bar.set_postfix_str(f"{job.name} {outcomes[job.folder].status}")
    except KeyboardInterrupt:
        _stop(pool)
        raise trainer.RunInterrupted("interrupted: every run keeps its last finished epoch") from None
    finally:
        bar.close()
        pool.shutdown(wait=True)
    return [outcomes[j.folder] for j in jobs]


# ---------------------------------------------------------------- one SLURM job per run


def make_executor(opts: SlurmOptions) -> Any:
    """submitit's executor for ``CLUSTER`` with the ``--slurm-*`` settings."""
    if not have_submitit():
        raise LaunchError("--launcher slurm needs submitit: pip install 'urfb[cluster]' "
                          "(or pip install submitit)")
    import submitit

    try:
        ex = submitit.AutoExecutor(folder=opts.folder, cluster=CLUSTER)
    except RuntimeError as exc:  # e.g. no srun on this machine
        raise LaunchError(f"--launcher slurm: {_last_line(exc)}") from None
    ex.update_parameters(timeout_min=opts.time_min, slurm_partition=opts.partition,
                         gpus_per_node=opts.gpus_per_job, cpus_per_task=opts.cpus_per_job,
                         mem_gb=opts.mem_gb)
    return ex


def job_state(folder: Path, job_id: str) -> str:
    """SLURM's state of a job (``sacct``), e.g. ``PENDING``; ``UNKNOWN`` if it cannot tell."""
    import submitit

    return str(submitit.SlurmJob(folder, job_id).state)


def _read_record(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def submit_slurm(jobs: Sequence[Job], opts: SlurmOptions,
                 say: Callable[[str], None] = print) -> list[Outcome] | None:
    """Submit one job per run; the outcomes once they have all ended when ``opts.wait`` (or on
    submitit's local/debug executors, which run the dependent jobs in waves), else None."""
    ex = make_executor(opts)
    on_slurm = ex.cluster == "slurm"
    record = _read_record(opts.folder) if on_slurm else {}
    ids: dict[Path, str] = {}            # run folder -> the job that trains it
    todo = []
    for job in jobs:
        old = record.get(str(job.folder))
        state = job_state(opts.folder, old) if old else ""
        if state.split(" ")[0] in ACTIVE:
            ids[job.folder] = old
            say(f"  {job.name}: already queued as job {old} ({state}), not submitted again")
        else:
            todo.append(job)
    handles: list[tuple[Job, Any]] = []
    outcomes: dict[Path, Outcome] = {}
    remaining = list(todo)
    while remaining:
        unsubmitted = {j.folder for j in remaining}
        wave = [j for j in remaining if j.after not in unsubmitted]
        for job in wave:
            dep = ids.get(job.after) if on_slurm and job.after is not None else None
            extra = {"dependency": f"afterok:{dep}", "kill_on_invalid_dep": "yes"} if dep else {}
            ex.update_parameters(name=job.name, slurm_additional_parameters=extra)
            try:
                handle = ex.submit(TrainJob(job, opts.cpus_per_job))
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:  # sbatch refused
                raise LaunchError(f"submitting {job.name} failed: {_last_line(exc)}") from None
            ids[job.folder] = str(handle.job_id)
            handles.append((job, handle))
            say(f"  {job.name}: job {handle.job_id}" + (f" (after job {dep})" if dep else ""))
            if on_slurm:  # recorded at once: a rerun must not submit it again
                record[str(job.folder)] = ids[job.folder]
                atomic_write_text(opts.folder / RECORD, json.dumps(record, indent=1) + "\n")
        if not on_slurm:  # no job dependencies off SLURM: this wave ends before the next starts
            outcomes.update(_results([(j, h) for j, h in handles if j in wave]))
        remaining = [j for j in remaining if j not in wave]
    if on_slurm and not opts.wait:
        say(f"submitted {len(todo)} jobs to SLURM (logs and {RECORD} in {opts.folder}); rerun "
            "the same command to see which runs are done and to resubmit the unfinished ones")
        return None
    outcomes.update(_results([(j, h) for j, h in handles if j.folder not in outcomes]))
    return [outcomes[j.folder] for j in todo]


def _results(handles: Sequence[tuple[Job, Any]]) -> dict[Path, Outcome]:
    out = {}
    for job, handle in handles:
        try:
            out[job.folder] = handle.result()
        except Exception as exc:  # noqa: BLE001 (the job failed outside run_job: killed, ...)
            out[job.folder] = _failure(job.folder, exc)
    return out


# ---------------------------------------------------------------- the suite's entry


def report(outcomes: Sequence[Outcome], out: Path) -> int:
    """Print what did not finish; 0 if every run trained, 2 if one was refused, else 1."""
    for o in outcomes:
        what = {"diverged": "diverged: ", "skipped": "skipped: ", "error": "error: "}
        if o.status in what:
            print(f"{PROG}: run {o.folder} {what[o.status]}{o.message}", file=sys.stderr)
    bad = [o for o in outcomes if o.status != "ok"]
    if not bad:
        print(f"trained {len(outcomes)} runs in {out}")
        return 0
    parts = []
    for status in ("diverged", "skipped", "error"):
        names = [o.folder.name for o in bad if o.status == status]
        if names:
            parts.append(f"{len(names)} {'failed' if status == 'error' else status}: "
                         f"{', '.join(names)}")
    print(f"{len(bad)} of {len(outcomes)} runs did not finish ({'; '.join(parts)})", file=sys.stderr)
    return 2 if any(o.status == "error" for o in bad) else 1


def launch(jobs: Sequence[Job], launcher: Launcher, out: Path, progress: bool = True) -> int:
    """Run ``jobs`` with ``launcher`` (not the serial one) and report; the suite's exit code."""
    if launcher.kind == "slurm":
        assert launcher.slurm is not None
        outcomes = submit_slurm(jobs, launcher.slurm)
        return 0 if outcomes is None else report(outcomes, out)
    return report(run_local(jobs, launcher.jobs, progress), out)
