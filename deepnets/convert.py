"""Bring your own model: :func:`convert` puts feedback layers into any ``torch.nn.Module``.

``convert(model, method=NAME, **rule_params)`` returns a copy of ``model`` in which every
``nn.Linear`` and every ``nn.Conv2d`` (any stride, padding -- numbers, ``"same"`` or ``"valid"``
-- and dilation; groups = 1; zero padding mode; with or without bias) is a feedback layer that
computes the same forward function with the same W and b: plain ``W x + b``, no saturation
(``sat_scale=None``). R is drawn as the rule says (Glorot-uniform from ``seed``, independent of
W; sign rules derive it from W; ``symmetric_init`` copies W). Everything else (ReLU, BatchNorm,
residual additions, pooling, dropout) stays plain torch, and the model's own ``forward`` runs
unchanged. :func:`deepnets.train_step` trains the result (feedback layers by their rule, other
parameters by plain SGD) and :func:`deepnets.alignment` probes it.

With direct feedback (``method="dfa"``) the output layer is the last feedback layer registered,
and each layer sends B_l e down through its input (:func:`deepnets.layers.link_direct_feedback`).

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
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deepnets.layers import (
    FeedbackFunction,
    FeedbackLayer,
    FeedbackLinear,
    FeedbackRule,
    LayerOptions,
    feedback_layers,
    link_direct_feedback,
)

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
        return FeedbackFunction.apply(x, self.weight, self.bias, self, self.sequential_lr)

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


@torch.no_grad()
def _replace(module: nn.Module, options: LayerOptions, gen: torch.Generator) -> FeedbackLayer:
    """The feedback layer that computes what ``module`` (an nn.Linear or nn.Conv2d) computes."""
    if isinstance(module, nn.Linear):
        layer: FeedbackLayer = ConvertedLinear(module.in_features, module.out_features,
                                               module.bias is not None, options, generator=gen)
    else:
        if module.groups != 1:
            raise ValueError(f"convert: {module} has groups={module.groups}; only groups=1 "
                             "convolutions can be converted")
        if module.padding_mode != "zeros":
            raise ValueError(f"convert: {module} pads with {module.padding_mode!r}; only zero "
                             "padding can be converted")
        layer = ConvertedConv2d(module.in_channels, module.out_channels, module.kernel_size,
                                stride=module.stride, padding=module.padding,
                                dilation=module.dilation, bias=module.bias is not None,
                                options=options, generator=gen)
    w = module.weight.detach().to(layer.weight.dtype).cpu()
    layer.weight.copy_(w if layer.mask_weight is None else w * layer.mask_weight)
    if module.bias is not None:
        layer.bias.copy_(module.bias.detach())
    if options.symmetric_init and layer.feedback is not None:
        layer.feedback.copy_(layer._to_feedback_layout(layer.weight.detach()))
    layer.refresh_feedback()  # sign rules: R from the copied W
    layer.frozen = not module.weight.requires_grad
    return layer.to(device=module.weight.device, dtype=module.weight.dtype)


def convert(model: nn.Module, method: str = "urfb", *, connectivity: float = 1.0,
            symmetric_init: bool = False, seed: int = 0, **rule_params: float) -> nn.Module:
    """A copy of ``model`` whose ``nn.Linear`` and ``nn.Conv2d`` layers are feedback layers of
    rule ``method`` (:data:`deepnets.rules.METHODS`) with ``rule_params`` (urfb's ``epsilon``,
    kp's ``decay``, usf's ``scale``; checked per rule). Each computes the same function with
    the same W and b; ``connectivity`` < 1 masks W and R as in the paper (W then differs);
    ``symmetric_init``: R(0) = W^t; ``seed`` draws R, the masks and DFA's B (layers in
    registration order). ``model`` itself is left unchanged."""
    epsilon = rule_params.pop("epsilon", None)
    rule = FeedbackRule.make(method, epsilon, **rule_params)
    options = LayerOptions(rule, float(connectivity), None, bool(symmetric_init))
    if feedback_layers(model):
        raise ValueError("convert: the model already holds feedback layers")
    new = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(int(seed))
    done: dict[int, FeedbackLayer] = {}

    def walk(parent: nn.Module) -> None:
        for name, child in list(parent._modules.items()):  # named_children skips repeats
            if child is None:
                continue
            if type(child) in (nn.Linear, nn.Conv2d):
                if id(child) not in done:  # a module used twice stays one (shared) layer
                    done[id(child)] = _replace(child, options, gen)
                setattr(parent, name, done[id(child)])
            else:
                walk(child)

    if type(new) in (nn.Linear, nn.Conv2d):
        new = _replace(new, options, gen)
        link_direct_feedback(new, inject="input")
        return new
    walk(new)
    if not done:
        raise ValueError("convert: the model has no nn.Linear or nn.Conv2d layer")
    link_direct_feedback(new, inject="input")
    return new
