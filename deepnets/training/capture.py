"""The training loop's step, eager or captured in a CUDA graph.

An eager GPU step of a small net is bound by kernel launches, not arithmetic: simpnet's ~17
GFLOP step took 3-4 ms on an H200, 1.25 ms replayed
(``results/gpu-h200/2026-12-04-call*/gpu_check.json``). :class:`TrainStepper`
records one whole step in a CUDA graph -- the batch's gather from the device-resident uint8
images, the forward pass, the backward pass through R, the updates of W, b and R (Section 3.1,
:func:`deepnets.training.engine.train_step_on_device`) and the sums of the epoch's metrics -- and
replays it for every later batch, after copying the batch's indices into the graph's own index
tensor.

What makes the replay the same step as the eager one:

- W, R and b are updated in place, so the graph and the eager code (checkpoints, the alignment
  probe, evaluation, all run eagerly between replays) share the same tensors;
- dropout (and brsf's magnitudes) draw from the default CUDA generator, which a capture registers:
  each replay advances its offset as an eager step does, so checkpoints keep the CUDA RNG state;
- the step size is fixed for a run (the paper's constant 0.1), so the graph holds it;
- a step makes no host synchronisation (``tests/deepnets/test_capture.py`` runs it on the meta
  device, where any ``.item()`` or ``bool(tensor)`` fails); DFA's fixed matrices B_l are drawn
  on its first (warm-up) step and, if redrawn, overwritten in place. Appendix 1's circuit
  feedback (``--output-feedback circuit``) reads the logits on the host: the trainer runs it
  eagerly.

The step is captured at the first full batch after :data:`WARMUP_STEPS` eager ones, which run on
a side stream (CUDA's lazy initialisation, cuDNN workspaces and DFA's B_l cache happen there);
a smaller last batch of an epoch runs eagerly. Modes (:data:`CUDA_GRAPH_MODES`): ``auto``
captures on CUDA and falls back to the eager step, with one warning, when the capture fails;
``on`` requires a capture (an error on the CPU or when it fails); ``off`` is always eager.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from deepnets.training.engine import train_step_on_device

__all__ = ["CUDA_GRAPH_MODES", "WARMUP_STEPS", "CaptureError", "TrainStepper", "cuda_graph_capture"]

CUDA_GRAPH_MODES = ("auto", "on", "off")
#: Eager steps before the capture (the number torch's documentation uses for whole-network capture).
WARMUP_STEPS = 3
LossFn = Callable[[Tensor, Tensor], Tensor]
#: Records ``body`` (without running it) and returns the function that replays it.
Capture = Callable[[Callable[[], None]], Callable[[], None]]


class CaptureError(RuntimeError):
    """``cuda_graph="on"`` could not be honoured (no CUDA device, or the capture failed)."""


def cuda_graph_capture(body: Callable[[], None]) -> Callable[[], None]:
    """Record ``body`` in a :class:`torch.cuda.CUDAGraph` (in a memory pool of its own) and
    return its ``replay``. The kernels are recorded, not run: the first replay runs them.

    A failed capture leaves the process able to go on eagerly (:func:`_clean_failed_capture`).
    The error raised names what broke the capture: the body's own exception, else
    ``capture_end``'s."""
    graph = torch.cuda.CUDAGraph()
    stream = torch.cuda.Stream()
    pool = torch.cuda.graph_pool_handle()
    body_error: BaseException | None = None

    def recorded() -> None:
        nonlocal body_error
        try:
            body()
        except Exception as exc:
            body_error = exc
            raise

    # the outer context gives the caller's stream back: torch.cuda.graph does not when its
    # capture_end raises
    with torch.cuda.stream(stream):
        try:
            with torch.cuda.graph(graph, pool=pool, stream=stream):
                recorded()
        except Exception as exc:
            _clean_failed_capture(pool)
            cause = body_error or exc
            raise RuntimeError(f"{type(cause).__name__}: {cause}") from exc
    return graph.replay


def _clean_failed_capture(pool: tuple[int, int]) -> None:
    """What a failed capture leaves behind in torch 2.11 (the lent GPU machines' version): the
    default CUDA generator still in capture mode (until torch 2.13; every later dropout draw
    would fail, while a fresh copy of its state, with the same seed and offset, is not), and
    the caching allocator still allocating into the capture's pool (until 2.12; ended and
    released here where torch has not done so itself). A run holds one graph at a time, so no
    other graph shares the generator state that is replaced."""
    device = torch.cuda.current_device()
    gen = torch.cuda.default_generators[device]
    gen.graphsafe_set_state(gen.clone_state())
    try:
        torch._C._cuda_endAllocateToPool(device, pool)
    except RuntimeError:  # torch ended it already (2.12 and later), or the capture never began
        return
    torch._C._cuda_releasePool(device, pool)


class TrainStepper:
    """The training steps of one run on the images ``x`` (uint8, on the run's device) and labels
    ``y``: ``step(idx)`` trains on the batch ``x[idx]``; ``totals()`` gives the sums of the batch
    losses (times the batch size) and of the misclassified images since ``start_epoch()``.

    ``capture`` replaces :func:`cuda_graph_capture` (the tests record with a plain function).
    ``optimizer``: a torch optimizer takes the steps (:func:`deepnets.training.engine.train_step`);
    its schedule changes the learning rate between epochs, so give it with ``mode="off"``."""

    def __init__(self, net: nn.Module, loss_fn: LossFn, x: Tensor, y: Tensor, *, lr: float,
                 batch_size: int, update_order: str = "sequential", precision: str = "fp32",
                 mode: str = "auto", capture: Capture | None = None,
                 optimizer: torch.optim.Optimizer | None = None) -> None:
        if mode not in CUDA_GRAPH_MODES:
            raise ValueError(f"cuda_graph must be one of {CUDA_GRAPH_MODES}, got {mode!r}")
        cuda = x.device.type == "cuda"
        if mode == "on" and not cuda and capture is None:
            raise CaptureError(f"--cuda-graph on needs a CUDA device; the run is on {x.device}")
        self.net, self.loss_fn, self.x, self.y = net, loss_fn, x, y
        self.batch_size = batch_size
        # a torch optimizer takes its learning rate from its groups, which a schedule changes
        self._step_args: dict[str, Any] = ({"lr": lr} if optimizer is None else
                                           {"optimizer": optimizer})
        self._step_args.update(update_order=update_order, precision=precision)
        self.mode = mode
        self._capture: Capture | None = None
        if mode != "off" and (cuda or capture is not None):
            self._capture = capture or cuda_graph_capture
        self._side = torch.cuda.Stream(x.device) if cuda and self._capture else None
        self._replay: Callable[[], None] | None = None
        self._static_idx: Tensor | None = None
        self._eager_steps = 0
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=x.device)
        self.errors = torch.zeros((), dtype=torch.int64, device=x.device)

    @property
    def captured(self) -> bool:
        """Whether the full batches now replay a CUDA graph."""
        return self._replay is not None

    def start_epoch(self) -> None:
        """Zero the metric sums (on the device, no synchronisation)."""
        self.loss_sum.zero_()
        self.errors.zero_()

    def totals(self) -> tuple[Tensor, Tensor]:
        """(sum of batch loss x batch size, misclassified count) since :meth:`start_epoch`."""
        return self.loss_sum, self.errors

    def _body(self, idx: Tensor) -> None:
        """One eager step on ``x[idx]``, its metrics added to the sums in place."""
        xb, yb = self.x[idx], self.y[idx]
        loss, wrong = train_step_on_device(self.net, xb, yb, self.loss_fn, **self._step_args)
        self.loss_sum += loss.double() * idx.shape[0]
        self.errors += wrong

    def step(self, idx: Tensor) -> None:
        """Train on the batch ``x[idx]``: by replaying the captured step where there is one and
        ``idx`` is a full batch, else eagerly (capturing once the warm-up steps are done)."""
        full = idx.shape[0] == self.batch_size
        if self._replay is not None and full:
            assert self._static_idx is not None
            self._static_idx.copy_(idx)
            self._replay()
            return
        if self._capture is None or not full or self._eager_steps < WARMUP_STEPS:
            self._eager(idx, warmup=self._capture is not None and full)
            return
        self._record(idx)
        if self._replay is None:  # auto mode, the capture failed: this batch runs eagerly
            self._eager(idx, warmup=False)
        else:
            self._replay()

    def _eager(self, idx: Tensor, warmup: bool) -> None:
        if self._side is not None and warmup:  # torch's recipe: warm up on a side stream
            here = torch.cuda.current_stream(self.x.device)
            self._side.wait_stream(here)
            with torch.cuda.stream(self._side):
                self._body(idx)
            here.wait_stream(self._side)
        else:
            self._body(idx)
        self._eager_steps += warmup

    def _record(self, idx: Tensor) -> None:
        """Capture the step on a static copy of ``idx``; in ``auto`` mode a failure is warned
        about once and leaves the stepper eager."""
        assert self._capture is not None
        self._static_idx = idx.clone()
        static = self._static_idx
        try:
            self._replay = self._capture(lambda: self._body(static))
        except Exception as exc:  # any capture failure falls back to eager (auto mode)
            for p in self.net.parameters():  # gradients half-made by the failed capture
                p.grad = None
            self._capture = self._side = self._static_idx = None
            if self.mode == "on":
                raise CaptureError(f"--cuda-graph on: the step could not be captured: {exc}") from exc
            warnings.warn(f"CUDA graph capture failed, training eagerly: {exc}", stacklevel=3)
