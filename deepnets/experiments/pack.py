"""Many runs of a grid at once in one process on one device (``python -m deepnets.suite ...
--pack N``, issue 18 §2).

A grid is many small runs of the same shape (Section 4: protocols x seeds), and one simpnet step
fills a small part of a large GPU. :func:`train_packed` keeps up to N runs open and advances
them in turn, one SGD step of each per round, each run through the trainer's own code: its
set-up (:func:`deepnets.training.trainer._setup`: the same ``config.json``, initial weights and
resumed state as a single run), its epoch (:func:`deepnets.training.trainer._epoch`, which yields
after every step: the same data order, step, validation, ``log.jsonl`` record and checkpoint). A run
that finishes, diverges or is refused leaves the pack and the next run of the grid takes its place
(a run that takes its first layer from another, deepnet_s's retraining, only once that one is
finished). Every run folder is a single run's: resumable one by one by ``deepnets.train
--resume``, by the suite with or without ``--pack``.

What makes a packed run the run trained alone:

- each run has its own dropout stream (and brsf's magnitudes, which draw from the same
  generators): torch's global CPU generator state and, on CUDA, its own state object of the
  device's default generator, seeded as a single run seeds them, installed around each of its
  steps and read back after (:class:`RandomStreams`; CUDA's are swapped with
  ``graphsafe_set_state``, so a run's captured graph registers and advances its own state);
- its data order has its own generator already (``order`` of the trainer's session);
- on CUDA each run's work (set-up, steps, evaluation, checkpoint) is issued on its own stream.

Why streams and one CUDA graph per run rather than the runs stacked into batched weights: the
stacked form needs every run of a pack to share one architecture, one rule, one loss and one
connectivity (a pack of the Figure 4 grid mixes BP, BP-H, URFB and FRFB, hinge and softmax,
dense and 50% masks), a batched rewrite of every layer and rule, and its batched reductions
would not be the single run's arithmetic. With one graph per run (:mod:`deepnets.training.capture`)
the host launches a whole step with one replay call (tens of microseconds), so one Python thread
keeps N streams fed; the GPU overlaps the small kernels of different runs, which is where a
small network's step leaves the device idle. ``benchmarks/gpu_check.sh`` measures it: on an H200
(2026-12-04) a pack of 18 simpnet runs took 1.03 ms per run-step against 1.13 in a pack of 3, and
the packed grid logged about 4.4 run-epochs a second, everything after the steps included --
60-70 minutes for the 18,000 run-epochs, not the issue's 10 (``results/cifar10-paper-h200/``);
the writes of ``checkpoint.pt`` and ``best.pt`` at each run's epoch end take an estimated 28-35%
of a pack epoch (isolated timings, ``results/cifar10-paper-h200-run2/README.md``).

On the CPU a pack trains the same runs one step of each at a time, no faster than one after the
other (a step already uses every core); ``--jobs`` is the CPU's way. The records' ``seconds``,
``train_seconds`` and ``cpu_seconds`` of a packed run are wall and CPU times from the start of
the run's epoch: they include every run's steps of that epoch and the epoch ends (validation,
probe, checkpoint) of the runs placed before it in the pack, so they grow with the run's place;
the last-placed run's are closest to the pack's epoch.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from deepnets.experiments.launch import Job, Outcome, source_finished
from deepnets.training import trainer
from deepnets.training.capture import CaptureError
from deepnets.training.config import ConfigError
from deepnets.training.data import DataError
from deepnets.training.rundir import CHECKPOINT, CONFIG, RunError, claim_folder
from urfb_common import check_out_dir, remove_stale_temps

__all__ = ["RandomStreams", "train_packed"]


class RandomStreams:
    """One run's random streams: torch's global CPU generator state and, on a CUDA ``device``,
    a state object of that device's default generator. Made from the generators as they are
    now (a run's set-up has just seeded them, or set them from its checkpoint)."""

    def __init__(self, device: str) -> None:
        dev = torch.device(device)
        self._cuda_gen = (torch.cuda.default_generators[dev.index if dev.index is not None
                                                         else torch.cuda.current_device()]
                          if dev.type == "cuda" else None)
        self.cpu = torch.get_rng_state()
        self.cuda = self._cuda_gen.clone_state() if self._cuda_gen is not None else None

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """These streams are the global ones inside the block; what was there before is put back
        after, and what the block drew is kept here."""
        cpu_before = torch.get_rng_state()
        torch.set_rng_state(self.cpu)
        gen = self._cuda_gen
        cuda_before = gen.graphsafe_get_state() if gen is not None else None
        if gen is not None:
            gen.graphsafe_set_state(self.cuda)
        try:
            yield
        finally:
            self.cpu = torch.get_rng_state()
            torch.set_rng_state(cpu_before)
            if gen is not None:  # a failed capture may have replaced the state object: keep it
                self.cuda = gen.graphsafe_get_state()
                gen.graphsafe_set_state(cuda_before)


@dataclass
class _Open:
    """A run of the pack: its trainer session, its streams and where its training stands."""

    job: Job
    existed: bool
    resume: bool
    claim: contextlib.ExitStack  # holds the run folder's lock while the run is in the pack
    session: trainer._Session
    streams: RandomStreams
    stream: Any  # its torch.cuda.Stream, or None on the CPU
    epoch: int
    steps: Generator[None, None, None] | None = field(default=None)

    def context(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        stack.enter_context(self.streams.installed())
        cfg = self.session.cfg  # torch's setting is the process's: each run's around its steps
        stack.enter_context(trainer.deterministic_algorithms(cfg.deterministic, cfg.device))
        if self.stream is not None:
            stack.enter_context(torch.cuda.stream(self.stream))
        return stack

    def advance(self) -> bool:
        """One step of this run (the epoch's end comes with the step after its last batch);
        True once the run has trained all its epochs."""
        if self.epoch > self.session.cfg.epochs:
            return True
        if self.steps is None:
            self.steps = trainer._epoch(self.session, self.epoch)
        with self.context():
            try:
                next(self.steps)
                return False
            except StopIteration:
                self.steps, self.epoch = None, self.epoch + 1
        return self.epoch > self.session.cfg.epochs


def _device_stream(device: str) -> Any:
    return torch.cuda.Stream(torch.device(device)) if device.startswith("cuda") else None


def _open(job: Job, device: str) -> _Open | Outcome:
    """Claim ``job``'s run folder and set its run up as :func:`deepnets.training.trainer.run` does,
    with its own streams; an Outcome when it cannot start (as
    :func:`deepnets.experiments.launch.run_job` reports it)."""
    if job.after is not None and (why := source_finished(job.after)):
        return Outcome(job.folder, "skipped", why)
    out = job.folder
    resume = job.resume or (out / CONFIG).is_file()
    claim = contextlib.ExitStack()
    existed = out.exists()
    try:
        check_out_dir(out)
        claim.enter_context(claim_folder(out))  # a second training into ``out`` stops at once
        remove_stale_temps(out)
        stream = _device_stream(device)
        with (torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext(),
              trainer.deterministic_algorithms(job.config.deterministic, device)):
            session = trainer._setup(job.config, out, resume, force_data=False, quiet=True)
        streams = RandomStreams(session.cfg.device)  # as the set-up seeded or restored them
    except BaseException as exc:
        _release(claim, out, existed)
        if isinstance(exc, (ConfigError, RunError, DataError, CaptureError)):
            return Outcome(out, "error", str(exc))
        raise
    return _Open(job, existed, resume, claim, session, streams, stream, len(session.records) + 1)


def _release(claim: contextlib.ExitStack, out: Path, existed: bool) -> None:
    """Drop the folder's lock; a folder this pack made and left empty goes (as in ``run``)."""
    claim.close()
    if not existed and out.is_dir() and not any(out.iterdir()):
        out.rmdir()


def _close(run: _Open) -> None:
    """A run leaving the pack unfinished: a new run without a finished epoch leaves nothing."""
    if run.steps is not None:
        run.steps.close()
    trainer._clean_failed_start(run.job.folder, run.resume, run.session)
    _release(run.claim, run.job.folder, run.existed)


def _diverged(run: _Open, exc: trainer.NonFiniteState) -> Outcome:
    done = len(run.session.records)
    kept = (f"{run.job.folder / CHECKPOINT} keeps epoch {done}, the last finite state"
            if done else "no checkpoint was written")
    return Outcome(run.job.folder, "diverged",
                   f"{exc}; training stopped, {kept}; try a smaller --lr")


def train_packed(jobs: Sequence[Job], n: int, device: str, progress: bool = True
                 ) -> list[Outcome]:
    """Train ``jobs`` (all on ``device``) up to ``n`` at once, one step of each in turn; a job as
    soon as the run it depends on (if any in ``jobs``) has ended. The outcomes in the order of
    ``jobs``; Ctrl-C raises :class:`deepnets.training.trainer.RunInterrupted` (every run keeps its
    last finished epoch)."""
    if n < 1:
        raise ValueError(f"a pack holds at least 1 run, got {n}")
    if device.startswith("cuda"):
        torch.cuda.init()  # seeds are then applied at once, not at CUDA's lazy initialisation
    folders = {j.folder for j in jobs}
    waiting, active = list(jobs), []
    outcomes: dict[Path, Outcome] = {}
    total = sum(j.config.epochs for j in jobs)
    bar = tqdm(total=total, desc=f"pack of {n}", unit="run-epoch", disable=not progress,
               file=sys.stderr)
    try:
        with trainer._fp32_exact(device):
            while waiting or active:
                for job in [j for j in waiting if j.after not in folders or j.after in outcomes]:
                    if len(active) >= n:
                        break
                    waiting.remove(job)
                    opened = _open(job, device)
                    if isinstance(opened, Outcome):
                        outcomes[job.folder] = opened
                        bar.update(job.config.epochs)
                    else:
                        active.append(opened)
                        bar.update(opened.epoch - 1)
                for run in list(active):
                    epoch = run.epoch
                    outcome = _round(run)
                    bar.update(run.epoch - epoch)
                    if outcome is not None:
                        active.remove(run)
                        outcomes[run.job.folder] = outcome
                        bar.update(run.session.cfg.epochs - run.epoch + 1)
                        bar.set_postfix_str(f"{run.job.name} {outcome.status}")
    except KeyboardInterrupt:
        for run in active:
            _close(run)
        raise trainer.RunInterrupted("interrupted: every run keeps its last finished epoch"
                                     ) from None
    except BaseException:
        for run in active:
            _close(run)
        raise
    finally:
        bar.close()
    return [outcomes[j.folder] for j in jobs]


def _round(run: _Open) -> Outcome | None:
    """One step of ``run``; its Outcome when it has left the pack (finished, diverged, refused)."""
    try:
        if not run.advance():
            return None
        _release(run.claim, run.job.folder, run.existed)
        return Outcome(run.job.folder, "ok")
    except trainer.NonFiniteState as exc:
        _close(run)
        return _diverged(run, exc)
    except (ConfigError, RunError, DataError, CaptureError) as exc:
        _close(run)
        return Outcome(run.job.folder, "error", str(exc))

