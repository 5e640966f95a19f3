"""Bring your own model: :func:`convert` puts feedback layers into any ``torch.nn.Module``.

``convert(model, method=NAME, **rule_params)`` returns a copy of ``model`` in which every
``nn.Linear`` and every ``nn.Conv2d`` (subclasses that keep torch's forward too; any stride, padding -- numbers, ``"same"`` or ``"valid"``
-- and dilation; groups = 1; zero padding mode; with or without bias) is a feedback layer that
computes the same forward function with the same W and the model's own b, in the model's
dtype: plain ``W x + b``, no saturation (``sat_scale=None``). R is drawn as the rule says (Glorot-uniform from ``seed``, independent of
W; sign rules derive it from W; ``symmetric_init`` copies W). Everything else (ReLU, BatchNorm,
residual additions, pooling, dropout) stays plain torch, and the model's own ``forward`` runs
unchanged. Weight parameters that cannot be converted (``Conv1d``, ``Conv3d``, transposed
convolutions, attention projections, ...) stay plain torch, listed in one warning
(``strict=True``: an error); tied weights are refused. The model's own biases are kept: a layer
with a bias keeps it (and learns it like W, with a constant input 1), a layer without one gets
none -- unlike :class:`deepnets.nn.network.FeedbackNet`, which follows eq. (1) and has no biases
unless asked (``bias=True``); ``python -m deepnets.train --arch resnet-mini`` therefore keeps
resnet-mini's one bias (its output layer's) and refuses ``--bias``. :func:`deepnets.train_step`
trains the result (feedback layers by their rule, other
parameters by plain SGD) and :func:`deepnets.alignment` probes it.

With direct feedback (``method="dfa"``) the output layer is the last feedback layer registered,
and each layer sends B_l e down through its input (:func:`deepnets.nn.layers.link_direct_feedback`).

Example:

>>> import torch
>>> from torch import nn
>>> import deepnets
>>> plain = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
...                       nn.Flatten(), nn.Linear(4 * 4 * 4, 10, bias=False))
>>> net = deepnets.convert(plain, method="kp", decay=1e-3)
>>> x = torch.rand(2, 3, 8, 8)
>>> bool(torch.allclose(net.eval()(x), plain.eval()(x)))
True
>>> [type(m).__name__ for m in net]
['ConvertedConv2d', 'BatchNorm2d', 'ReLU', 'Flatten', 'ConvertedLinear']
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deepnets.nn.checks import check_flag, check_model_options
from deepnets.nn.feedback_init import FeedbackInit, check_applies, set_initial_feedback
from deepnets.nn.layers import (
    FeedbackLayer,
    FeedbackLinear,
    FeedbackRule,
    LayerOptions,
    feedback_layers,
    link_direct_feedback,
    set_fast,
)
from deepnets.nn.reference import ConvEquations

__all__ = ["ConvertedConv2d", "ConvertedLinear", "convert"]


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


class ConvertedLinear(FeedbackLinear):
    """A feedback layer computing ``nn.Linear``'s ``x W^t + b`` (bias optional, any leading
    dimensions); ``feedback`` is R of shape (in, out)."""

    def __init__(self, in_features: int, out_features: int, bias: bool,
                 options: LayerOptions, *, generator: torch.Generator | None = None) -> None:
        super().__init__(in_features, out_features, options, generator=generator)
        if not bias:
            self.register_parameter("bias", None)

    def linear_grads(self, x, delta, need_in, need_w, need_b, through=None):
        if x.dim() == 2:
            return super().linear_grads(x, delta, need_in, need_w, need_b, through)
        flat = super().linear_grads(x.reshape(-1, x.shape[-1]), delta.reshape(-1, delta.shape[-1]),
                                    need_in, need_w, need_b, through)
        return (None if flat[0] is None else flat[0].view(x.shape), *flat[1:])


class ConvertedConv2d(FeedbackLayer):
    """A feedback layer computing ``nn.Conv2d`` (groups 1) with its stride, padding, dilation
    and optional bias; R is the transposed convolution whose kernel ``feedback`` has W's layout."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, *, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, bias: bool = True,
                 options: LayerOptions, generator: torch.Generator | None = None) -> None:
        kh, kw = _pair(kernel_size)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, (kh, kw)
        self.stride, self.dilation = _pair(stride), _pair(dilation)
        self._prepad: tuple[int, int, int, int] | None = None
        if padding == "valid":
            padding = 0
        if padding == "same":
            if self.stride != (1, 1):
                raise ValueError("padding='same' needs stride 1 (as torch's Conv2d)")
            sides = []
            for d, k in zip(self.dilation, (kh, kw)):
                total = d * (k - 1)
                sides.append((total // 2, total - total // 2))
            (th, bh), (lw, rw) = sides
            if th == bh and lw == rw:
                padding = (th, lw)
            else:  # torch's 'same': the extra row/column of zeros goes after
                self._prepad, padding = (lw, rw, th, bh), 0
        self.padding = _pair(padding)
        super().__init__((out_channels, in_channels, kh, kw), (out_channels,),
                         in_channels * kh * kw, out_channels * kh * kw, options=options,
                         generator=generator)
        if not bias:
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        if self._prepad is not None:
            x = F.pad(x, self._prepad)
        return super().forward(x)

    def equations(self) -> ConvEquations:
        return ConvEquations(self.stride, self.padding, self.dilation)

    def linear_op(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation)

    def linear_grads(self, x, delta, need_in, need_w, need_b, through=None):
        fb = self.feedback_as_weight() if through is None else through
        bias_sizes = None if self.bias is None else [self.out_channels]
        return torch.ops.aten.convolution_backward(  # grad_input through R (or ``through``)
            delta, x, fb, bias_sizes, list(self.stride), list(self.padding), list(self.dilation),
            False, [0, 0], 1, [need_in, need_w, need_b and self.bias is not None],
        )  # fmt: skip

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"bias={self.bias is not None}, {super().extra_repr()}")


#: Weight parameters a warning or error lists by name before it says "and N more".
_LISTED = 6


def _unconvertible(module: nn.Module, parent: nn.Module | None) -> str | None:
    """Why ``module`` (an ``nn.Linear`` or ``nn.Conv2d``, subclasses included) cannot become a
    feedback layer computing the same function, or None when it can."""
    kind = nn.Linear if isinstance(module, nn.Linear) else nn.Conv2d
    if isinstance(module.weight, nn.parameter.UninitializedParameter):
        return "lazy, not yet initialised: run the model once first"
    if isinstance(parent, nn.MultiheadAttention):
        return "read directly by nn.MultiheadAttention"
    own = [f for f in ("forward", "_conv_forward") if getattr(type(module), f, None) is not
           getattr(kind, f, None)]
    if own:
        return f"{type(module).__name__} has its own {own[0]}"
    if kind is nn.Conv2d and module.groups != 1:
        return f"groups={module.groups}; only groups=1 converts"
    if kind is nn.Conv2d and module.padding_mode != "zeros":
        return f"pads with {module.padding_mode!r}; only zero padding converts"
    return None


def _is_candidate(module: nn.Module) -> bool:
    return isinstance(module, (nn.Linear, nn.Conv2d))


@torch.no_grad()
def _replace(module: nn.Module, name: str, options: LayerOptions, gen: torch.Generator
             ) -> FeedbackLayer:
    """The feedback layer that computes what ``module`` (an nn.Linear or nn.Conv2d) computes,
    in ``module``'s dtype and on its device (W and b copied exactly)."""
    w = module.weight.detach()
    for pname, p in (("weight", w), ("bias", module.bias)):
        if p is not None and p.is_floating_point() and not bool(torch.isfinite(p).all()):
            raise ValueError(f"convert: {name or 'the model'}.{pname} holds NaN or infinite "
                             "entries")
    if isinstance(module, nn.Linear):
        layer: FeedbackLayer = ConvertedLinear(module.in_features, module.out_features,
                                               module.bias is not None, options, generator=gen)
    else:
        layer = ConvertedConv2d(module.in_channels, module.out_channels, module.kernel_size,
                                stride=module.stride, padding=module.padding,
                                dilation=module.dilation, bias=module.bias is not None,
                                options=options, generator=gen)
    layer.to(dtype=w.dtype)  # before the copy: a float64 model's W is not rounded to float32
    layer.weight.copy_(w if layer.mask_weight is None else w * layer.mask_weight.to(w.device))
    if module.bias is not None:
        layer.bias.copy_(module.bias.detach())
    if options.symmetric_init and layer.feedback is not None:
        layer.feedback.copy_(layer._to_feedback_layout(layer.weight.detach()))
    layer.refresh_feedback()  # sign rules: R from the copied W
    layer.frozen = not module.weight.requires_grad
    return layer.to(device=w.device)


def _tied(model: nn.Module) -> str | None:
    """A one-line description of a weight or bias of a convertible layer that another module
    also holds (tied weights), or None."""
    owners: dict[int, list[str]] = {}
    for mname, module in model.named_modules():
        for pname, p in module._parameters.items():
            if p is not None:
                owners.setdefault(id(p), []).append(f"{mname}.{pname}" if mname else pname)
    for mname, module in model.named_modules():
        if not _is_candidate(module):
            continue
        for p in (module.weight, module.bias):
            names = owners.get(id(p), []) if p is not None else []
            if len(names) > 1:
                return " and ".join(repr(n) for n in names[:3])
    return None


def _listed(names: list[str]) -> str:
    more = len(names) - _LISTED
    return ", ".join(names[:_LISTED]) + (f" and {more} more" if more > 0 else "")


def convert(model: nn.Module, method: str = "urfb", *, connectivity: float = 1.0,
            symmetric_init: bool = False, seed: int = 0, strict: bool = False,
            feedback_init: FeedbackInit | None = None, fast: bool = True,
            **rule_params: float) -> nn.Module:
    """A copy of ``model`` whose ``nn.Linear`` and ``nn.Conv2d`` layers (and subclasses that keep
    their forward) are feedback layers of rule ``method`` (:data:`deepnets.rules.METHODS`) with
    ``rule_params`` (urfb's ``epsilon``, kp's ``decay``, usf's ``scale``; checked per rule).

    Each computes the same function with the same W and the model's own biases (their values,
    and whether a layer has one; :class:`deepnets.FeedbackNet`'s start at 0), in the model's
    dtype (a float64 model stays float64) and on its device. ``connectivity`` < 1 masks W and R
    as in the paper (W then differs); ``symmetric_init``: R(0) = W^t; ``feedback_init``: R(0)
    given per layer (name: the module's qualified name; :mod:`deepnets.nn.feedback_init`);
    ``seed`` draws R, the masks and DFA's B (layers in registration order). ``fast=False``: the
    feedback layers compute on the reference path (:mod:`deepnets.nn.reference`; the same numbers
    to float rounding, slower). ``model`` itself is left unchanged.

    Weight parameters (two or more dimensions) that stay plain torch -- ``Conv1d``, ``Conv3d``,
    transposed convolutions, ``nn.MultiheadAttention``'s projections, grouped or non-zero-padded
    ``Conv2d``, a ``Linear`` subclass with its own forward, any module's own matrix -- learn by
    exact gradients and plain SGD and pass the error down by exact back-propagation: one
    warning lists them; ``strict=True`` makes that a ValueError. Tied weights (one parameter
    held by a convertible layer and another module) are refused: a feedback layer owns its W."""
    check_model_options("convert", connectivity=connectivity, symmetric_init=symmetric_init,
                        seed=seed, fast=fast)
    check_flag("convert", "strict", strict)
    epsilon = rule_params.pop("epsilon", None)
    rule = FeedbackRule.make(method, epsilon, **rule_params)
    options = LayerOptions(rule, float(connectivity), None, symmetric_init)
    check_applies(feedback_init, options, "convert")
    if feedback_layers(model):
        raise ValueError("convert: the model already holds feedback layers")
    tied = _tied(model)
    if tied:
        raise ValueError(f"convert: {tied} are one tensor (tied weights); a feedback layer owns "
                         "its W and R: untie them (e.g. b.weight = nn.Parameter(a.weight.detach()"
                         ".clone())) before converting")
    new = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(int(seed))
    done: dict[int, FeedbackLayer] = {}
    left: dict[int, str] = {}  # id of a candidate module that stays plain -> why

    def convert_or_keep(module: nn.Module, name: str, parent: nn.Module | None) -> nn.Module:
        why = _unconvertible(module, parent)
        if why is not None:
            left[id(module)] = why
            return module
        if id(module) not in done:  # a module used twice stays one (shared) layer
            done[id(module)] = _replace(module, name, options, gen)
        return done[id(module)]

    def walk(parent: nn.Module, prefix: str) -> None:
        for name, child in list(parent._modules.items()):  # named_children skips repeats
            if child is None:
                continue
            if _is_candidate(child):
                setattr(parent, name, convert_or_keep(child, prefix + name, parent))
            else:
                walk(child, f"{prefix}{name}.")

    if _is_candidate(new):
        new = convert_or_keep(new, "", None)
    else:
        walk(new, "")
    plain = _plain_weights(new, left)
    if not done:
        raise ValueError("convert: the model has no nn.Linear or nn.Conv2d layer that can be "
                         "converted" + (f" (left: {_listed(plain)})" if plain else ""))
    if plain:
        message = (f"convert: {len(plain)} weight parameter(s) stay plain torch (exact gradients, "
                   f"plain SGD, no feedback rule): {_listed(plain)}")
        if strict:
            raise ValueError(message + "; strict=True")
        warnings.warn(message, stacklevel=2)
    named = [(name, m) for name, m in new.named_modules() if isinstance(m, FeedbackLayer)]
    set_initial_feedback(named, feedback_init, options, "convert")
    link_direct_feedback(new, inject="input")
    set_fast(new, fast)
    return new


def _plain_weights(model: nn.Module, why: dict[int, str]) -> list[str]:
    """``name (Module type[: why])`` of every parameter of two or more dimensions of ``model``
    outside its feedback layers (each named once)."""
    out = []
    for mname, module in model.named_modules():
        if isinstance(module, FeedbackLayer):
            continue
        for pname, p in module._parameters.items():
            lazy = isinstance(p, nn.parameter.UninitializedParameter)
            if p is None or (not lazy and p.dim() < 2):
                continue
            full = f"{mname}.{pname}" if mname else pname
            reason = why.get(id(module))
            out.append(f"{full} ({type(module).__name__}{': ' + reason if reason else ''})")
    return out
