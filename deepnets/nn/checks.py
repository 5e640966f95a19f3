"""Checks of what a user hands the Python API, made before anything changes (issue 19, §1).

Two kinds, so that the training step captured in a CUDA graph (:mod:`deepnets.training.capture`)
stays free of host synchronisations:

* host checks (shapes, dtypes, the step size): no tensor is read, so they cost microseconds and
  run on every step, captured or not (:func:`check_step`, :func:`check_batch`);
* value checks (a NaN or inf in a float input, a non-finite loss or output error): they read
  tensors, so they run where the caller synchronises anyway -- :func:`deepnets.train_step`,
  :func:`deepnets.training.engine.evaluate` and :func:`deepnets.alignment` (:func:`finite_step`,
  :func:`checked_inputs`, :func:`read_inputs`). uint8 images, the form the trainer
  feeds, are finite by type and never read.

:func:`deepnets.train_step` thus refuses, before any weight changes (either update order of
Remark 1): a non-finite ``lr``, a float input holding NaN or inf, labels that do not match the
batch or the outputs, a loss that is not a finite scalar, and a non-finite output error delta_L
(the gradient of the loss with respect to the logits, eq. (5)-(6)). From there down, the
backward pass of :class:`deepnets.FeedbackNet` is linear in delta_L through finite R and W, so
it cannot make a NaN. Not checked: one made below the output by a plain torch module of a
converted model whose derivative is infinite (e.g. ``sqrt`` at 0) or by an R written with
non-finite entries from outside (:mod:`deepnets.nn.feedback_init` checks its own); the trainer's
end-of-epoch check (:class:`deepnets.training.trainer.NonFiniteState`) still stops such a run.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from deepnets.nn.layers import FeedbackLayer

__all__ = [
    "LR_MAX",
    "SAT_SCALE_MAX",
    "SEED_MAX",
    "check_batch",
    "check_flag",
    "check_indices",
    "check_labels",
    "check_model_options",
    "check_number",
    "check_seed",
    "check_step",
    "checked_evaluation",
    "checked_inputs",
    "finite_step",
    "net_input_hook",
    "read_inputs",
]

LossFn = Callable[[Tensor, Tensor], Tensor]


#: Largest step size (as ``--lr``'s): beyond it a float32 update overflows.
LR_MAX = 1e6
#: Largest seed (torch's generators take 64-bit seeds; as ``--seed``'s).
SEED_MAX = 2**63 - 1
#: Largest saturation scale (as ``--sat-scale``'s).
SAT_SCALE_MAX = 1e6


def check_flag(where: str, name: str, value: Any) -> None:
    """One-line ValueError unless ``value`` is True or False (``bool("false")`` is True, so a
    string or a number would silently mean something else)."""
    if not isinstance(value, bool):
        raise ValueError(  # noqa: TRY004 (bad input is a ValueError, as everywhere here)
            f"{where}: {name} must be True or False, got {type(value).__name__} "
                        f"{value!r:.60}")


def check_number(where: str, name: str, value: Any, low: float, high: float, *,
                 low_open: bool = False) -> None:
    """One-line ValueError unless ``value`` is a real number (not a bool or a string) in
    ``[low, high]`` (``(low, high]`` with ``low_open``); NaN and inf are outside."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{where}: {name} must be a number, got {type(value).__name__} "
                         f"{value!r:.60}")
    inside = math.isfinite(value) and (low < value if low_open else low <= value) and value <= high
    if not inside:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise ValueError(f"{where}: {name} must be in {interval}, got {value!r:.60}")


def check_seed(where: str, seed: Any) -> None:
    """One-line ValueError unless ``seed`` is an integer in 0..:data:`SEED_MAX`."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"{where}: seed must be an integer in 0..2**63-1, got {seed!r:.60}")


def check_indices(where: str, name: str, indices: Any) -> None:
    """One-line ValueError unless ``indices`` is a collection of integer weight-layer indices
    (a string ``"01"`` would be read as layers 0 and 1, ``True`` as layer 1)."""
    if isinstance(indices, (str, bytes)) or not isinstance(indices, Collection) or any(
            isinstance(i, bool) or not isinstance(i, numbers.Integral) for i in indices):
        raise ValueError(f"{where}: {name} must be a collection of integer weight-layer indices, "
                         f"got {indices!r:.60}")


def check_model_options(where: str, *, connectivity: Any, symmetric_init: Any, seed: Any,
                        fast: Any) -> None:
    """The arguments :class:`deepnets.FeedbackNet` and :func:`deepnets.convert` share, checked
    before anything is built: ``connectivity`` a number in (0, 1], ``symmetric_init`` and
    ``fast`` bools, ``seed`` an integer in 0..2**63-1."""
    check_number(where, "connectivity", connectivity, 0, 1, low_open=True)
    check_flag(where, "symmetric_init", symmetric_init)
    check_flag(where, "fast", fast)
    check_seed(where, seed)


def check_batch(where: str, x: Any, y: Any) -> None:
    """One-line ValueError unless ``x`` is a non-empty batch of uint8 or float examples and
    ``y`` a 1-d integer tensor of as many labels. Host only (reads shapes and dtypes)."""
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise ValueError(f"{where}: x and y must be torch tensors, got "
                         f"{type(x).__name__} and {type(y).__name__}")
    if x.dim() < 2:
        raise ValueError(f"{where}: x must be a batch (N, ...) of examples, got shape "
                         f"{tuple(x.shape)}")
    if not (x.dtype == torch.uint8 or x.is_floating_point()):
        raise ValueError(f"{where}: x must hold uint8 images or floats, got {x.dtype}")
    if y.dim() != 1 or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"{where}: y must be a 1-d tensor of integer class labels, got "
                         f"{y.dtype} of shape {tuple(y.shape)}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{where}: x holds {x.shape[0]} examples but y {y.shape[0]} labels")
    if x.shape[0] == 0:
        raise ValueError(f"{where}: the batch is empty")
    if x.device != y.device:
        raise ValueError(f"{where}: x is on {x.device} but y on {y.device}")


def check_step(net: nn.Module, x: Any, y: Any, loss_fn: LossFn, *, lr: Any) -> LossFn:
    """The host checks of a training step (:func:`check_batch`, ``lr`` a finite positive number,
    ``loss_fn`` callable) and ``loss_fn`` wrapped to insist that it returns a scalar.
    No synchronisation: safe in a captured step."""
    check_batch("train_step", x, y)
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise ValueError(f"train_step: lr must be a number, got {lr!r}")
    if not (math.isfinite(lr) and 0 < lr <= LR_MAX):
        raise ValueError(f"train_step: lr must be a finite positive number at most {LR_MAX:g}, "
                         f"got {lr!r}")
    if not callable(loss_fn):
        raise ValueError(f"train_step: loss_fn must be callable, got {type(loss_fn).__name__}")
    if next(net.parameters(), None) is None:
        raise ValueError("train_step: the model has no parameters")

    def scalar_loss(logits: Tensor, labels: Tensor) -> Tensor:
        loss = loss_fn(logits, labels)
        if not (isinstance(loss, Tensor) and loss.dim() == 0 and loss.is_floating_point()):
            got = (f"shape {tuple(loss.shape)}, {loss.dtype}" if isinstance(loss, Tensor)
                   else type(loss).__name__)
            raise ValueError(f"train_step: loss_fn must return a 0-d float tensor, the mean loss "
                             f"over the batch; got {got}")
        return loss

    return scalar_loss


def read_inputs(where: str, x: Tensor, y: Tensor) -> tuple[int, int]:
    """(smallest, largest) label, read in one synchronisation together with the check that a
    float ``x`` holds no NaN or inf (one fused reduction; uint8 images are not read)."""
    parts = [y.min(), y.max()]
    if x.is_floating_point():
        parts.append((~torch.isfinite(x)).sum())
    values = torch.stack(parts).tolist()
    if len(values) == 3 and values[2]:
        raise ValueError(f"{where}: x holds {values[2]} NaN or infinite value(s)")
    return values[0], values[1]


def check_labels(where: str, labels: tuple[int, int], logits: Tensor) -> None:
    """One-line ValueError unless the labels' range ``labels`` (:func:`read_inputs`) lies in the
    classes 0..C-1 of the (N, C) ``logits`` (host only; on a GPU an out-of-range label would
    otherwise end in a device-side assert)."""
    lo, hi = labels
    if logits.dim() == 2 and (lo < 0 or hi >= logits.shape[1]):
        raise ValueError(f"{where}: labels must lie in 0..{logits.shape[1] - 1} (the model has "
                         f"{logits.shape[1]} outputs), got {lo}..{hi}")


def checked_inputs(where: str, x: Any, y: Any, loss_fn: LossFn) -> LossFn:
    """For the functions that read their results on the host anyway (evaluation, the alignment
    probe): :func:`check_batch`, :func:`read_inputs`, and ``loss_fn`` wrapped to check the
    labels against the logits first (:func:`check_labels`)."""
    check_batch(where, x, y)
    if not callable(loss_fn):
        raise ValueError(f"{where}: loss_fn must be callable, got {type(loss_fn).__name__}")
    labels = read_inputs(where, x, y)

    def labelled_loss(logits: Tensor, y_batch: Tensor) -> Tensor:
        check_labels(where, labels, logits)
        return loss_fn(logits, y_batch)

    return labelled_loss


def checked_evaluation(x: Any, y: Any, loss_fn: LossFn, batch_size: Any) -> LossFn:
    """:func:`checked_inputs` for :func:`deepnets.training.engine.evaluate`, and its batch size."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"evaluate: batch_size must be a positive integer, got {batch_size!r}")
    return checked_inputs("evaluate", x, y, loss_fn)


@contextmanager
def finite_step(net: nn.Module, x: Any, y: Any, loss_fn: LossFn) -> Iterator[LossFn]:
    """For :func:`deepnets.train_step`: checks the batch (:func:`check_batch`, :func:`read_inputs`)
    and yields ``loss_fn`` wrapped so that labels outside the outputs or a non-finite loss stop
    the step before the backward pass, and a non-finite output error delta_L before the output
    layer's backward (the first place where a weight can change, in either update order).
    If the step raises, the buffers its forward pass changed outside the feedback layers
    (a converted model's BatchNorm statistics) are put back. Three synchronisations a step
    (inputs, loss, output error)."""
    check_batch("train_step", x, y)
    if not callable(loss_fn):
        raise ValueError(f"train_step: loss_fn must be callable, got {type(loss_fn).__name__}")
    labels = read_inputs("train_step", x, y)

    def finite_loss(logits: Tensor, y_batch: Tensor) -> Tensor:
        check_labels("train_step", labels, logits)
        loss = loss_fn(logits, y_batch)
        if isinstance(loss, Tensor) and not bool(torch.isfinite(loss.detach()).all()):
            raise ValueError(f"train_step: the loss is {loss.detach().flatten()[0].item()} "
                             "(not finite); no weight was changed")
        if logits.requires_grad:
            logits.register_hook(_finite_output_error)
        return loss

    saved = [(b, b.clone()) for m in net.modules() if not isinstance(m, FeedbackLayer)
             for b in m._buffers.values() if b is not None]
    try:
        yield finite_loss
    except BaseException:
        with torch.no_grad():
            for b, copy in saved:
                b.copy_(copy)
        raise


def _finite_output_error(grad: Tensor) -> None:
    if not bool(torch.isfinite(grad).all()):
        raise ValueError("train_step: the gradient of the loss with respect to the logits "
                         "(the output error) is not finite; no weight was changed")


def net_input_hook(net: nn.Module, args: tuple[Any, ...]) -> None:
    """A forward pre-hook of :class:`deepnets.nn.network.FeedbackNet`: a one-line ValueError when
    the input is not (N, *in_shape). Host only."""
    x = args[0] if args else None
    want = tuple(net.config["in_shape"])
    if not isinstance(x, Tensor) or tuple(x.shape[1:]) != want or x.dim() != len(want) + 1:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"FeedbackNet: input must have shape (N, {', '.join(map(str, want))}), "
                         f"got {got}")
