"""FeedbackNet: a network built from an architecture string (Section 4) out of feedback layers."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import replace

import torch
from torch import Tensor, nn

from deepnets.nn.arch import WEIGHT_KINDS, parse_arch
from deepnets.nn.checks import (
    SAT_SCALE_MAX,
    check_flag,
    check_indices,
    check_model_options,
    check_number,
    net_input_hook,
)
from deepnets.nn.feedback_init import FeedbackInit, check_applies, set_initial_feedback
from deepnets.nn.layers import (
    UNTIED_INITS,
    Dropout,
    FeedbackConv2d,
    FeedbackLayer,
    FeedbackLinear,
    FeedbackRule,
    FeedbackUntied2d,
    LayerOptions,
    ZeroPadMaxPool2d,
    link_direct_feedback,
    set_fast,
)
from deepnets.nn.policy import policy_for

__all__ = ["FeedbackNet", "ResidualSum"]


def _pools_in_one(layer: nn.Module, after: nn.Module | None, fuse_pool: bool) -> bool:
    """Whether a spatial layer and the max pool after it run as one function (the same values,
    less work: :class:`deepnets.nn.layers.PooledFeedbackFunction`): where the policy fuses them
    (``fuse_pool``: the fast path), and not for dfa, whose error enters at the layer's own
    output (the layer itself declines where its error goes down without sigma')."""
    return (fuse_pool and isinstance(after, ZeroPadMaxPool2d)
            and isinstance(layer, (FeedbackConv2d, FeedbackUntied2d))
            and layer.sat_scale is not None and not layer.rule.direct)


class ResidualSum(nn.Module):
    """``sum`` (deepernet, Section 4): adds the outputs of the two preceding conv layers.

    No parameters; :class:`FeedbackNet` feeds it the input and output of the layer before it.
    """

    def forward(self, first: Tensor, second: Tensor) -> Tensor:
        return first + second


class FeedbackNet(nn.Module):
    """A feedforward network whose error travels down through feedback weights R (Section 3).

    Hidden weight layers apply the saturated linearity sigma(h) = clip(s h, -1, 1) (Remark 2,
    ``sat_scale`` = s; the author's code used s = 0.5); the output layer has none.  As in eq. (1)
    and the author's code, the weight layers have no bias; with ``bias=True`` each has one,
    initialised at 0 and updated with the same Hebbian rule (delta times a constant input 1).
    ``drop P`` is inverted dropout: a fraction P of the
    units is zeroed during training (drawn from torch's global generator, on the CPU 32 random
    bits per unit: :class:`deepnets.nn.layers.Dropout`) and the rest are scaled by 1/(1-P), so
    evaluation needs no rescaling. A spatial layer followed by a max pool runs with it as one
    function (:class:`deepnets.nn.layers.PooledFeedbackFunction`: the same values, less work),
    but for ``sigma_prime_down=False`` (:meth:`deepnets.nn.layers.FeedbackLayer.forward`).

    Args:
        arch: preset name (simpnet, deepnet, deepernet, deepnet_s) or architecture string.
        in_shape: (channels, height, width) of the input.
        n_classes: number of output units C.
        method: a feedback rule of the registry :data:`deepnets.rules.RULES` ("bp", "frfb",
            "urfb" are the paper's; ``docs/rules.md`` lists all).
        epsilon: urfb's Delta R = epsilon Delta W^t (default 1; 0 behaves as frfb); a rule
            parameter like the others, given by name.
        connectivity: fraction of W's and of R's entries kept by independent fixed masks
            (the paper's 50% is 0.5; ``shared_masks``: one mask for both).
        sat_scale: s in sigma(h) = clip(s h, -1, 1).
        untied: indices into ``weight_layers`` of conv layers to build untied (Section 4.1).
        untied_init: how untied layers start (:data:`deepnets.nn.layers.UNTIED_INITS`):
            ``replicated`` (default; the author's code) repeats at every location the conv
            filter bank that a tied network of the same seed draws, so the untied network starts
            as the tied one computes; ``independent`` draws every location's filters separately.
        symmetric_init: R(0) = W(0)^t (and R's mask = W's), so that urfb equals bp step for step.
        seed: seeds the draws of W, R (Glorot-uniform, independent) and the masks.
        frozen: indices into ``weight_layers`` whose W and R are not updated (Fig. 9 protocol).
        bias: give every weight layer a bias b (default: none, as eq. (1)); W, R and the masks
            are drawn the same either way.
        sigma_prime_down: hidden layers send the error down as R delta, delta = sigma'(h) (.) g
            (eq. (2); default), or, False, dense and conv layers as R g without their sigma',
            and max pools pass a window's error to all its tied maxima: the author's code after
            April 2019 (:class:`deepnets.nn.layers.LayerOptions`); not for dfa.
        shared_masks: with ``connectivity`` < 1, R's mask is W's instead of drawn separately
            (:class:`deepnets.nn.layers.LayerOptions`); W and R's values are drawn as without it.
        fast: the fast path (default; :mod:`deepnets.nn.policy` chooses its tricks per device and
            dtype) or, False, the reference path (:mod:`deepnets.nn.reference`: the equations in
            plain torch; the same numbers to float rounding, slower). Not part of ``config``.
        feedback_init: R(0) given instead of drawn, per weight layer by name (``conv0``,
            ``full2``, ``output``): a mapping {name: tensor or callable(W)} or a callable
            (name, W) -> tensor, in W's layout (for a dense layer (out, in), i.e. R^t); checked
            for shape, masked like a drawn R; rules frfb, urfb, kp only
            (:mod:`deepnets.nn.feedback_init`). Not part of ``config`` (the state dict holds R).
        **rule_params: the rule's other parameters (kp's ``decay``, usf's ``scale``), checked
            per rule; all the rule's parameters, defaults filled in, are kept in ``config``.
    """

    def __init__(
        self,
        arch: str,
        *,
        in_shape: Collection[int] = (3, 32, 32),
        n_classes: int = 10,
        method: str = "urfb",
        epsilon: float | None = None,
        connectivity: float = 1.0,
        sat_scale: float = 0.5,
        untied: Collection[int] = (),
        untied_init: str = "replicated",
        symmetric_init: bool = False,
        seed: int = 0,
        frozen: Collection[int] = (),
        bias: bool = False,
        sigma_prime_down: bool = True,
        shared_masks: bool = False,
        feedback_init: FeedbackInit | None = None,
        fast: bool = True,
        **rule_params: float,
    ) -> None:
        super().__init__()
        check_model_options("FeedbackNet", connectivity=connectivity,
                            symmetric_init=symmetric_init, seed=seed, fast=fast)
        check_number("FeedbackNet", "sat_scale", sat_scale, 0, SAT_SCALE_MAX, low_open=True)
        check_indices("FeedbackNet", "untied", untied)
        check_indices("FeedbackNet", "frozen", frozen)
        if untied_init not in UNTIED_INITS:
            raise ValueError(f"FeedbackNet: untied_init must be one of {', '.join(UNTIED_INITS)}, "
                             f"got {untied_init!r:.60}")
        check_flag("FeedbackNet", "bias", bias)
        check_flag("FeedbackNet", "sigma_prime_down", sigma_prime_down)
        check_flag("FeedbackNet", "shared_masks", shared_masks)
        rule = FeedbackRule.make(method, epsilon, **rule_params)
        try:
            options = LayerOptions(rule, float(connectivity), float(sat_scale),
                                   bool(symmetric_init), bias=bias,
                                   sigma_prime_down=sigma_prime_down,
                                   shared_masks=shared_masks)
        except ValueError as exc:
            raise ValueError(f"FeedbackNet: {exc}") from None
        check_applies(feedback_init, options, "FeedbackNet")
        specs = parse_arch(arch)
        n_weight = sum(s.kind in WEIGHT_KINDS for s in specs)
        conv_indices = [
            i
            for i, s in enumerate(s for s in specs if s.kind in WEIGHT_KINDS)
            if s.kind in ("conv", "untied")
        ]
        for name, idx in (("untied", untied), ("frozen", frozen)):
            for i in idx:
                if not 0 <= i < n_weight:
                    raise ValueError(
                        f"{name}: weight layer index {i} out of range 0..{n_weight - 1}"
                    )
        bad = sorted(set(untied) - set(conv_indices))
        if bad:
            raise ValueError(
                f"untied: weight layers {bad} are not conv layers (conv: {conv_indices})"
            )
        self.config: dict = {
            "arch": arch,
            "in_shape": list(in_shape),
            "n_classes": n_classes,
            "method": method,
            "connectivity": float(connectivity),
            "sat_scale": float(sat_scale),
            "untied": sorted(set(untied)),
            "untied_init": untied_init,
            "symmetric_init": bool(symmetric_init),
            "seed": seed,
            "frozen": sorted(set(frozen)),
            "bias": bool(bias),
            # stored only when off, so that the config of a run made before the option is
            # written unchanged when it resumes
            **({} if sigma_prime_down else {"sigma_prime_down": False}),
            **({"shared_masks": True} if shared_masks else {}),
            **rule.params,
        }
        gen = torch.Generator().manual_seed(seed)
        linear_options = replace(options, sat_scale=None)  # the output layer is linear
        shape = tuple(in_shape)
        layers: list[nn.Module] = []
        names: list[str] = []
        for spec in specs:
            wi = sum(isinstance(m, FeedbackLayer) for m in layers)
            if spec.kind in ("conv", "untied"):
                if spec.kind == "untied" or wi in untied:
                    layers.append(
                        FeedbackUntied2d(shape, spec.size, spec.kernel, options, generator=gen,
                                         replicated=untied_init == "replicated")
                    )
                    names.append(f"untied{wi}")
                else:
                    layers.append(
                        FeedbackConv2d(shape[0], spec.size, spec.kernel, options, generator=gen)
                    )
                    names.append(f"conv{wi}")
                shape = (spec.size, *shape[1:])
            elif spec.kind == "maxpool":
                pool = ZeroPadMaxPool2d(spec.kernel, spec.stride, all_ties=not sigma_prime_down)
                layers.append(pool)
                shape = (shape[0], pool.output_side(shape[1]), pool.output_side(shape[2]))
            elif spec.kind == "drop":
                layers.append(Dropout(spec.rate))  # torch's global generator draws the mask
            elif spec.kind == "sum":
                layers.append(ResidualSum())
            else:  # full / output
                if len(shape) > 1:
                    layers.append(nn.Flatten())
                    shape = (math.prod(shape),)
                out = n_classes if spec.kind == "output" else spec.size
                opts = linear_options if spec.kind == "output" else options
                layers.append(FeedbackLinear(shape[0], out, opts, generator=gen))
                names.append("output" if spec.kind == "output" else f"full{wi}")
                shape = (out,)
        self.layers = nn.ModuleList(layers)
        self.weight_layer_names: list[str] = names
        for i in frozen:
            self.weight_layers[i].frozen = True
        link_direct_feedback(self, inject="output")  # dfa: B_l e enters at each layer's output
        set_initial_feedback(list(zip(names, self.weight_layers)), feedback_init, options,
                             "FeedbackNet")
        set_fast(self, fast)
        self.fast = fast
        self.register_forward_pre_hook(net_input_hook)  # (N, *in_shape) or a one-line error

    @property
    def weight_layers(self) -> list[FeedbackLayer]:
        """The trainable layers, input -> output."""
        return [m for m in self.layers if isinstance(m, FeedbackLayer)]

    @property
    def method(self) -> str:
        return self.config["method"]

    def forward(self, x: Tensor) -> Tensor:
        before = x
        layers = list(self.layers)
        fuse_pool = policy_for(x, self.fast).fuse_pool
        fused = False
        for i, layer in enumerate(layers):
            if fused:  # this pool ran inside the layer before it
                fused = False
            elif isinstance(layer, ResidualSum):
                x = layer(before, x)  # input and output of the preceding conv = two conv outputs
            elif _pools_in_one(layer, layers[i + 1] if i + 1 < len(layers) else None, fuse_pool):
                before, x, fused = x, layer(x, pool=layers[i + 1]), True
            else:
                before, x = x, layer(x)
        return x

    @torch.no_grad()
    def correlations(self) -> list[float]:
        """Per weight layer, the Pearson correlation of the entries of W and R^t (Section 4.2,
        Figures 10-11), over all entries (masked ones included; for untied layers, over the
        real connections only); 1.0 for bp, None for dfa (no R)."""
        return feedback_correlations(self.weight_layers)


def feedback_correlations(layers: list[FeedbackLayer]) -> list[float | None]:
    """Per layer, the Pearson correlation of W and R^t (see :meth:`FeedbackNet.correlations`)."""
    with torch.no_grad():
        out: list[float | None] = []
        for layer in layers:
            if layer.rule.direct:
                out.append(None)
                continue
            if layer.feedback is None:
                out.append(1.0)
                continue
            w = layer.connection_entries(layer.weight).double()
            r = layer.connection_entries(layer.feedback_as_weight()).double()
            out.append(float(torch.corrcoef(torch.stack([w, r]))[0, 1]))
        return out


def feedback_norms(layers: list[FeedbackLayer]) -> list[list[float | None]]:
    """Per layer, the Frobenius norms [|W|, |R|] of its feedforward and feedback weights (|R|:
    None for a layer without R, bp and dfa); masked entries are 0 in both, so they add nothing.
    Beside :func:`deepnets.nn.saturation.preactivation_sizes`, they tell whether a layer's units
    approach saturation (Remark 2) because W grows or because its input does."""
    with torch.no_grad():
        return [[float(m.weight.double().norm()),
                 None if m.feedback is None else float(m.feedback.double().norm())]
                for m in layers]


def feedback_norms_by_weight_mask(layers: list[FeedbackLayer]) -> list[list[float] | None]:
    """Per layer with R and a connectivity mask on W (``connectivity < 1``: Section 4's 50%,
    independent masks on W and R; with ``shared_masks`` the second norm is 0), the Frobenius
    norms of R's entries [on connections W keeps, on connections W lacks] (R^t in W's layout,
    over the layer's real connections: an untied layer's padding positions are none; None for
    a layer without R or whose W lacks no connection).
    Under URFB (Delta R = Delta W^t, Section 3.1, taken as the Hebbian product at every
    connection R has) an entry of the second kind gets its increment while no W entry can use
    the error it carries, so nothing slows its growth."""
    out: list[list[float] | None] = []
    with torch.no_grad():
        for m in layers:
            if m.feedback is None or m.mask_weight is None:
                out.append(None)
                continue
            rt = m.feedback_as_weight()
            if m.mask_weight.shape != rt.shape:
                raise ValueError(f"W's mask {tuple(m.mask_weight.shape)} and R^t "
                                 f"{tuple(rt.shape)} differ in layout")
            kept = m.connection_entries(m.mask_weight) > 0
            if bool(kept.all()):
                out.append(None)
                continue
            r = m.connection_entries(rt).double()
            out.append([float(r[kept].norm()), float(r[~kept].norm())])
    return out
