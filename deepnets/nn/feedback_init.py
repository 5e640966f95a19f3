"""Supplying the initial feedback weights R(0) (issue 19, §5): ``feedback_init=`` of
:class:`deepnets.FeedbackNet` and :func:`deepnets.convert`.

By default R(0) is drawn Glorot-uniform, independent of W (Section 4), or copied from W with
``symmetric_init``. ``feedback_init`` gives it instead, per weight layer, as

* a mapping ``{layer name: value}``, ``value`` a tensor or a callable ``value(W) -> tensor``;
  the layers it does not name keep the drawn R; or
* one callable ``feedback_init(name, W) -> tensor`` called for every weight layer.

Layer names are those of :func:`deepnets.nn.alignment.layer_names`: a FeedbackNet's ``conv0``,
``full2``, ``output`` (``weight_layer_names``); in a converted model the module's qualified
name (``"0"``, ``"encoder.fc1"``). ``W`` is a copy of the layer's weight.

**Layout: W's.** The tensor is R^t laid out as W, entry for entry the feedback weight on the
connection that W's entry carries forward: for a dense layer (out, in) -- R itself, stored in
the layer's ``feedback`` buffer, is its transpose (in, out), so pass ``R.T`` for an R of shape
(in, out) --; for a conv layer W's (out, in, kh, kw); for an untied layer W's
(L, out, in*k*k). It is what :meth:`deepnets.FeedbackLayer.feedback_as_weight` returns.

Checks (one-line ValueError, nothing changed): the shape is W's and every entry finite; the
rule has a free R -- ``frfb``, ``urfb``, ``kp``, ``wm``; not ``bp`` and ``dfa`` (no R) nor the sign
rules ``usf``, ``brsf``, ``frsf`` (R is derived from W) -- and ``symmetric_init`` is off.
With ``connectivity`` < 1 (or an untied layer's padding) R's fixed mask applies: the entries it
removes are set to 0, as for a drawn R. The tensor is copied into the layer's dtype and device.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from deepnets.nn.layers import FeedbackLayer, LayerOptions
from deepnets.rules import RULES

__all__ = ["FeedbackInit", "set_initial_feedback"]

LayerValue = Tensor | Callable[[Tensor], Tensor]
FeedbackInit = Mapping[str, LayerValue] | Callable[[str, Tensor], Tensor]
#: Rules whose R is a free matrix that may start anywhere.
FREE_FEEDBACK = tuple(m for m, r in RULES.items() if r.error_path == "R" and r.symmetric_init_applies)


def check_applies(feedback_init: FeedbackInit | None, options: LayerOptions, where: str) -> None:
    """One-line ValueError when ``feedback_init`` is given for a rule or option it cannot serve."""
    if feedback_init is None:
        return
    method = options.rule.method
    if method not in FREE_FEEDBACK:
        has_r = RULES[method].error_path == "R"
        why = "R is derived from W" if has_r else "it has no feedback matrix R"
        raise ValueError(f"{where}: feedback_init does not apply to method {method!r} ({why}); "
                         f"it applies to {', '.join(FREE_FEEDBACK)}")
    if options.symmetric_init:
        raise ValueError(f"{where}: give feedback_init or symmetric_init, not both")
    if not (callable(feedback_init) or isinstance(feedback_init, Mapping)):
        raise ValueError(f"{where}: feedback_init must be a mapping {{layer name: tensor or "
                         f"callable}} or a callable (name, W) -> tensor, got "
                         f"{type(feedback_init).__name__}")


@torch.no_grad()
def set_initial_feedback(named_layers: Sequence[tuple[str, FeedbackLayer]],
                         feedback_init: FeedbackInit | None, options: LayerOptions,
                         where: str) -> None:
    """Write ``feedback_init`` (module docstring) into the layers' R. Every value is checked
    before the first is written, so that a bad one leaves every R as drawn."""
    check_applies(feedback_init, options, where)
    if feedback_init is None:
        return
    names = [name for name, _ in named_layers]
    if isinstance(feedback_init, Mapping):
        unknown = sorted(set(feedback_init) - set(names))
        if unknown:
            raise ValueError(f"{where}: feedback_init names no weight layer {unknown[0]!r} "
                             f"(the weight layers: {', '.join(names)})")
    values: list[tuple[FeedbackLayer, Tensor]] = []
    for name, layer in named_layers:
        w = layer.weight.detach().clone()
        if isinstance(feedback_init, Mapping):
            if name not in feedback_init:
                continue
            value = feedback_init[name]
            value = value(w) if callable(value) else value
        else:
            value = feedback_init(name, w)
        values.append((layer, _checked(value, w, f"{where}: feedback_init[{name!r}]")))
    for layer, value in values:
        r = layer.feedback_as_weight()  # R^t in W's layout: a view of ``feedback``
        mask = layer.mask_feedback
        r.copy_(value if mask is None else value * layer._as_weight_layout(mask))


def _checked(value: object, w: Tensor, what: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise ValueError(f"{what} must be a tensor, got {type(value).__name__}")
    if tuple(value.shape) != tuple(w.shape):
        hint = " (R^t in W's layout: for R of shape (in, out) pass R.T)" if w.dim() == 2 else ""
        raise ValueError(f"{what} has shape {tuple(value.shape)}, not W's {tuple(w.shape)}{hint}")
    if value.is_complex():
        raise ValueError(f"{what} must be real, got {value.dtype}")
    value = value.detach().to(device=w.device, dtype=w.dtype)
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{what} holds NaN or infinite entries")
    return value
