"""The alignment probe: how far the error a feedback rule sends is from exact back-propagation.

Section 4.2 measures alignment as the correlation of W and R^t; what a learning rule *feels*
is the error signal itself. On a fixed batch, with the network's current weights and one
shared forward pass (one dropout mask), the probe back-propagates twice -- once through the
rule's own feedback R (eq. 2 with R), once through W^t at every layer (exact BP) -- and reports
per weight layer:

* ``delta_angle``: the angle (degrees) between the error the rule sends into the layer's input
  (R delta) and the one exact BP sends there, over the whole batch: the *global* comparison of
  Lillicrap et al. (2016), exact BP's error computed through W^t at every layer above, taken
  before the sigma' of the layer below. ``None`` for the first layer, whose input is the image:
  it sends no error down.
* ``local_delta_angle``: the *local* comparison of Akrout et al. (2019)'s released code: the
  delta (after sigma') that this layer's error produces in the weight layer below, sent down
  through R (the rule's) against through W^t -- what BP would compute from the rule's own
  upstream error (in a residual network, the part that goes through this layer). ``None`` where there is no
  weight layer below with a delta (the first layer; a frozen first layer below). The two
  measures differ: the global one accumulates the misalignment of every layer above.
* ``update_angle``: the angle between the layer's weight increment Delta W = delta x^t under the
  rule and under exact BP, for the same batch (the output layer's is 0: its delta comes from the
  loss). ``None`` for a frozen layer, which is not updated.
* ``weight_angle``: the angle between W and R^t as vectors (over real connections); 0 for BP,
  ``None`` for DFA (no R).
* ``norm_ratio``: ||R|| / ||W||; 1 for BP, ``None`` for DFA.

Under DFA (:mod:`deepnets.rules`) a layer whose feedback B_l e enters at its own output sends
no error down: its ``delta_angle`` is ``None`` and its ``update_angle`` measures its B_l e
against exact BP.

Where the error goes down without sigma' (``sigma_prime_down=False``: a layer sends R g), the
rule's route sends R g and exact BP's W^t (sigma' g): ``delta_angle`` and ``update_angle``
include the missing sigma'; ``local_delta_angle`` swaps R for W^t only (both send g), so it
measures R against W^t alone.

The probe reads, never writes: weights, buffers (BatchNorm statistics included) and the RNG
states (CPU and CUDA) are as before it ran.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from deepnets.nn.checks import checked_inputs
from deepnets.nn.layers import BackwardRoute, FeedbackLayer, feedback_layers, route_backward
from deepnets.nn.policy import COMPUTE_DTYPES
from urfb_common import images_to_float

__all__ = ["KEYS", "alignment", "angle_degrees", "layer_names", "probe_batch", "summary"]

KEYS = ("delta_angle", "local_delta_angle", "update_angle", "weight_angle", "norm_ratio")
LossFn = Callable[[Tensor, Tensor], Tensor]


def angle_degrees(a: Tensor, b: Tensor) -> float:
    """The angle between two tensors as flat vectors, in degrees (float64); 90 if one is zero,
    NaN if either holds a NaN or an inf (no angle; not 0)."""
    a, b = a.detach().reshape(-1).double(), b.detach().reshape(-1).double()
    norms = a.norm() * b.norm()
    if not math.isfinite(float(norms)) or not math.isfinite(float(a @ b)):
        return math.nan
    if norms == 0:
        return 90.0
    cos = float((a @ b) / norms)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def layer_names(model: nn.Module) -> list[str]:
    """The names :meth:`FeedbackNet.correlations` and the logs use for the feedback layers:
    the network's own (``conv0``, ``full3``, ``output``) or, for any other model, the module's
    qualified name."""
    layers = feedback_layers(model)
    own = getattr(model, "weight_layer_names", None)
    if own is not None and len(own) == len(layers):
        return list(own)
    names = {id(m): n for n, m in model.named_modules()}
    return [names[id(m)] for m in layers]


@contextmanager
def _untouched(model: nn.Module, device: torch.device):
    """Restore the model's state (W, R, b: the sequential order updates them in the backward
    pass; a converted model's BatchNorm statistics) and the RNG states the forward pass draws
    from. In place, and an integer buffer only where it changed, so that DFA's seed keeps its
    version (its B_l cache, which a captured CUDA graph reads)."""
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    cpu_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    was_training = model.training
    try:
        yield
    finally:
        with torch.no_grad():
            state = model.state_dict()
            for k, v in saved.items():
                if v.is_floating_point() or not torch.equal(state[k], v):
                    state[k].copy_(v)
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state(cuda_rng, device)
        model.train(was_training)


def _weight_stats(layer: FeedbackLayer) -> tuple[float | None, float | None]:
    if layer.rule.direct:
        return None, None
    w = layer.connection_entries(layer.weight.detach())
    r = layer.connection_entries(layer.feedback_as_weight().detach())
    return angle_degrees(w, r), float(r.double().norm() / w.double().norm())


def alignment(
    model: nn.Module, x: Tensor, y: Tensor, loss_fn: LossFn, *, precision: str = "fp32"
) -> dict[str, dict[str, float | None]]:
    """Per feedback layer of ``model`` (keyed as :func:`layer_names`), the four measures of the
    module docstring on the batch (x, y), in training mode (dropout on, one shared mask).
    ``precision="bf16"``: the forward pass and the error signals compute in bfloat16, as a bf16
    training step's do (the loss in float32 from the logits); the angles are taken in float64.
    A one-line ValueError for an empty or mismatched batch, NaN/inf in a float ``x``, labels
    outside the outputs, an unknown ``precision``, or an error signal or weight that is not
    finite (no measure is reported for it)."""
    if precision not in COMPUTE_DTYPES:
        raise ValueError(f"alignment: precision must be one of {tuple(COMPUTE_DTYPES)}, got "
                         f"{precision!r:.60}")
    compute_dtype = COMPUTE_DTYPES[precision]
    loss_fn = checked_inputs("alignment", x, y, loss_fn)
    layers = feedback_layers(model)
    if not layers:
        raise ValueError("alignment: the model has no feedback layers")
    device = layers[0].weight.device
    inputs: dict[int, Tensor] = {}

    outputs: dict[int, Tensor] = {}

    def keep_input(module: nn.Module, args: tuple[Tensor, ...]) -> None:
        inputs[id(module)] = args[0]

    def keep_output(module: nn.Module, args: tuple[Tensor, ...], out: Tensor) -> None:
        outputs[id(module)] = out

    hooks = [layer.register_forward_pre_hook(keep_input) for layer in layers]
    hooks += [layer.register_forward_hook(keep_output) for layer in layers]
    route = BackwardRoute()
    try:
        with _untouched(model, device), torch.enable_grad():
            model.train()
            with route_backward(route):
                images = images_to_float(x, layers[0].weight.dtype)
                logits = model(images if compute_dtype is None else images.to(compute_dtype))
                loss = loss_fn(logits if compute_dtype is None else logits.float(), y)
            targets = [inputs[id(layer)] for layer in layers]
            sends = [t.requires_grad and layer.sends_error for t, layer in zip(targets, layers)]
            learns = [layer.weight.requires_grad for layer in layers]
            wanted = [t for t, s in zip(targets, sends) if s]
            wanted += [layer.weight for layer, ok in zip(layers, learns) if ok]
            own = torch.autograd.grad(loss, wanted, retain_graph=True)
            local = _local_angles(loss, layers, [outputs[id(m)] for m in layers], targets,
                                  sends, learns)
            route.exact = True
            exact = torch.autograd.grad(loss, wanted)
    finally:
        for hook in hooks:
            hook.remove()
    pairs = iter(zip(own, exact))  # (rule's, exact BP's), in the order of ``wanted``
    delta = [next(pairs) if s else None for s in sends]
    update = [next(pairs) if ok else None for ok in learns]
    out: dict[str, dict[str, float | None]] = {}
    for name, layer, d, u in zip(layer_names(model), layers, delta, update):
        weight_angle, norm_ratio = _weight_stats(layer)
        out[name] = {
            "delta_angle": None if d is None else angle_degrees(*d),
            "local_delta_angle": local[id(layer)],
            "update_angle": None if u is None else angle_degrees(*u),
            "weight_angle": weight_angle,
            "norm_ratio": norm_ratio,
        }
        bad = [k for k, v in out[name].items() if v is not None and not math.isfinite(v)]
        if bad:
            raise ValueError(f"alignment: layer {name!r}: {', '.join(bad)} not finite (a NaN or "
                             "inf error signal or weight)")
    return out


@contextmanager
def _deltas_of(layer: FeedbackLayer, into: list[Tensor]):
    """Record the deltas (after sigma') that ``layer``'s backward passes compute. A layer that
    sends R g down (``sigma_prime_down=False``) computes its gradients from delta and the error
    sent down from g in two calls: only the first (weight or bias gradients asked) is delta."""
    own = layer.linear_grads
    both = not layer.sends_error_without_sigma_prime

    def recording(x: Tensor, delta: Tensor, need_in: bool, need_w: bool, need_b: bool,
                  *args: Any, **kwargs: Any) -> Any:
        if both or need_w or need_b:
            into.append(delta.detach().clone())
        return own(x, delta, need_in, need_w, need_b, *args, **kwargs)

    layer.linear_grads = recording  # type: ignore[method-assign]
    try:
        yield
    finally:
        del layer.linear_grads


def _local_angles(loss: Tensor, layers: list[FeedbackLayer], outputs: list[Tensor],
                  targets: list[Tensor], sends: list[bool], learns: list[bool]
                  ) -> dict[int, float | None]:
    """Per layer (by id), ``local_delta_angle``: the delta of the weight layer below that this
    layer's error produces, sent down through R (the rule) against through W^t (R swapped for
    W^t), both from the rule's own error at this layer's output. Each is one backward pass
    over the retained graph from this layer's output to the layer below, so in a residual
    network the contributions of skip paths that bypass this layer are left out of both. Both
    deltas carry the same scaling (a spatial layer's pending s), which an angle does not see."""
    out: dict[int, float | None] = {id(layer): None for layer in layers}
    reach: dict[int, Tensor] = {}
    for k in range(1, len(layers)):
        below = k - 1
        # the weight's gradient where the layer below sends R g: that call computes its delta
        by_weight = learns[below] and layers[below].sends_error_without_sigma_prime
        r = (targets[below] if targets[below].requires_grad and sends[below] and not by_weight
             else layers[below].weight if learns[below] else None)
        if sends[k] and r is not None and outputs[k].requires_grad:
            reach[k] = r
    if not reach:
        return out
    upstream = dict(zip(reach, torch.autograd.grad(loss, [outputs[k] for k in reach],
                                                   retain_graph=True)))
    for k, r in reach.items():
        layer = layers[k]
        deltas: list[Tensor] = []
        with _deltas_of(layers[k - 1], deltas):
            torch.autograd.grad(outputs[k], r, upstream[k], retain_graph=True)
            kept = None if layer.feedback is None else layer.feedback.detach().clone()
            try:
                if kept is not None:  # bp: R is W^t already
                    with torch.no_grad():
                        layer.feedback.copy_(layer._to_feedback_layout(layer.weight.detach()))
                torch.autograd.grad(outputs[k], r, upstream[k], retain_graph=True)
            finally:
                if kept is not None:
                    with torch.no_grad():
                        layer.feedback.copy_(kept)
        out[id(layer)] = angle_degrees(deltas[0], deltas[1]) if len(deltas) == 2 else None
    return out


def probe_batch(x: Tensor, y: Tensor, size: int, seed: int) -> tuple[Tensor, Tensor]:
    """The probe's fixed batch: ``size`` images of (x, y) chosen by ``seed`` (default: 500
    validation images)."""
    size = min(size, int(y.shape[0]))
    gen = torch.Generator().manual_seed(seed)
    index = torch.randperm(int(y.shape[0]), generator=gen)[:size].to(y.device)
    return x[index], y[index]


def summary(values: dict[str, Any]) -> dict[str, Any]:
    """The probe's dict with its floats rounded to 6 decimals, for the log records."""
    return {
        name: {k: (None if v is None else round(float(v), 6)) for k, v in m.items()}
        for name, m in values.items()
    }
