"""Deep networks with separate, Hebbian-updated feedback weights (Sections 3-4): BP, FRFB, URFB.

Python API for users who bring their own model:

* Layers (each with W ``weight``, R ``feedback``, fixed masks and, with
  ``LayerOptions(bias=True)``, b ``bias``; a :class:`FeedbackNet` has none unless ``bias=True``):
  :class:`FeedbackLinear`, :class:`FeedbackConv2d` ('same' padding, stride 1) and
  :class:`FeedbackUntied2d` (locally connected, Section 4.1); hidden layers apply
  sigma(h) = clip(s h, -1, 1) (Remark 2, ``sat_scale`` = s; ``None`` for the output layer).
  The backward pass sends R delta down instead of W^t delta (eq. 2 with R).
  :class:`ZeroPadMaxPool2d` is the paper's zero-padded "Maxpool K"; torch's ``nn.Dropout`` and
  ``nn.Flatten`` can be mixed in freely.
* Feedback rules: :data:`RULES`, the registry (name -> rule class, one module each in
  :mod:`deepnets.rules`; :data:`METHODS` its names): ``"bp"`` (R = W^t), ``"frfb"`` (R random
  and fixed), ``"urfb"`` (R random, Delta R = epsilon Delta W^t), and beyond the paper
  Kolen-Pollack, sign-concordant, direct feedback alignment and more, each with its parameters
  (``FeedbackNet(arch, method="kp", decay=1e-3)``); see ``docs/rules.md``.
* Bring your own model: :func:`convert` ``(model, method=NAME, **rule_params)`` returns a copy
  whose ``nn.Linear``/``nn.Conv2d`` layers are feedback layers computing the same function
  (other weight layers stay plain torch, listed in one warning; ``strict=True``: an error).
  ``feedback_init=`` (of :func:`convert` and :class:`FeedbackNet`) sets R(0), any
  ``loss_fn(logits, labels)`` returning the batch mean trains, ``train_step(...,
  bias_lr_scale=k)`` gives biases their own step: ``docs/api.md``. A layer takes its rule and options as one
  :class:`LayerOptions` (``rule=FeedbackRule.make("urfb", epsilon=1)``, ``connectivity``,
  ``sat_scale``, ``symmetric_init``, ``bias``, ``sigma_prime_down``, ``shared_masks``).
* Runs: :class:`TrainConfig` describes a training run and :func:`run` trains it into a run
  folder (what ``python -m deepnets.train`` does); :func:`alignment` probes how far the error
  a rule sends is from exact back-propagation.
* Losses, :data:`LOSSES`: :func:`make_loss` ``("hinge", C, mu=...)`` is loss (4) whose output
  feedback is eq. (6) (:func:`hinge_output_feedback`); ``"softmax"`` is cross-entropy.
* Training: :func:`train_step` (one SGD step; update orders :data:`UPDATE_ORDERS`, the
  ``"sequential"`` one is Remark 1 and the default), :func:`evaluate_net` (mean loss and error rate, eval
  mode); :func:`freeze` and :func:`untie` for :class:`FeedbackNet`, the network built from
  an architecture string (:func:`parse_arch`, :data:`PRESETS`). :class:`TrainStepper` trains
  on images held on the device, batch by batch from index tensors, and on a GPU replays the
  step from a CUDA graph (:mod:`deepnets.training.capture`).

Layout, lowest floor first (each imports only from the ones below it): :mod:`deepnets.rules`
(the feedback rules), :mod:`deepnets.nn` (layers, reference and fast paths, networks,
:func:`convert`, losses, the alignment probe), :mod:`deepnets.training` (the step, the data, a
run and its folder), :mod:`deepnets.experiments` (protocols, the suite's and the rule
benchmark's grids, launching, test scores); on top the CLIs ``python -m deepnets.train``,
``deepnets.evaluate``, ``deepnets.suite`` and ``deepnets.rulebench``.

``deepnets.evaluate`` is exported too (for older code), but it is also the name of the CLI
module ``python -m deepnets.evaluate``: once that module is imported anywhere, the package
attribute is the module. Call :func:`evaluate_net` (or ``deepnets.training.engine.evaluate``).

Example (frfb leaves R unchanged while W learns):

>>> import torch
>>> from torch import nn
>>> import deepnets
>>> gen = torch.Generator().manual_seed(0)
>>> hidden = deepnets.LayerOptions(deepnets.FeedbackRule.make("frfb"))
>>> output = deepnets.LayerOptions(deepnets.FeedbackRule.make("frfb"), sat_scale=None)
>>> net = nn.Sequential(
...     deepnets.FeedbackConv2d(3, 4, 3, hidden, generator=gen),
...     deepnets.ZeroPadMaxPool2d(3, 2), nn.Flatten(),
...     deepnets.FeedbackLinear(4 * 4 * 4, 10, output, generator=gen))
>>> loss_fn = deepnets.make_loss("hinge", 10)
>>> x, y = torch.rand(8, 3, 8, 8, generator=gen), torch.randint(0, 10, (8,), generator=gen)
>>> r_before, w_before = net[0].feedback.clone(), net[0].weight.detach().clone()
>>> result = deepnets.train_step(net, x, y, loss_fn, lr=0.1)
>>> result.n, torch.equal(net[0].feedback, r_before), torch.equal(net[0].weight, w_before)
(8, True, False)
>>> loss, error = deepnets.evaluate_net(net, x, y, loss_fn)
>>> 0.0 <= error <= 1.0
True
"""

import os as _os

# Before torch loads OpenMP: waiting threads sleep instead of spinning (an explicit
# OMP_WAIT_POLICY wins; no effect if torch was imported first). See deepnets.training.cpu.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

#: Public name -> the module that defines it. The package imports nothing up front (PEP 562):
#: ``import deepnets.experiments.protocols`` or ``deepnets.rules`` (names, labels, colours,
#: parameters) loads no torch; the first use of a name below imports its module.
_EXPORTS = {
    # the networks (deepnets.nn)
    "alignment": "deepnets.nn.alignment",
    "PRESETS": "deepnets.nn.arch", "ArchError": "deepnets.nn.arch",
    "LayerSpec": "deepnets.nn.arch", "format_arch": "deepnets.nn.arch",
    "parse_arch": "deepnets.nn.arch",
    "convert": "deepnets.nn.convert",
    "FeedbackConv2d": "deepnets.nn.layers", "FeedbackLayer": "deepnets.nn.layers",
    "FeedbackLinear": "deepnets.nn.layers", "FeedbackRule": "deepnets.nn.layers",
    "FeedbackUntied2d": "deepnets.nn.layers", "LayerOptions": "deepnets.nn.layers",
    "ZeroPadMaxPool2d": "deepnets.nn.layers", "feedback_layers": "deepnets.nn.layers",
    "LOSSES": "deepnets.nn.losses", "hinge_output_feedback": "deepnets.nn.losses",
    "make_loss": "deepnets.nn.losses",
    "FeedbackNet": "deepnets.nn.network", "ResidualSum": "deepnets.nn.network",
    # the rules (deepnets.rules)
    "METHODS": "deepnets.rules", "RULES": "deepnets.rules",
    # training (deepnets.training)
    "TrainStepper": "deepnets.training.capture",
    "ConfigError": "deepnets.training.config", "TrainConfig": "deepnets.training.config",
    "UPDATE_ORDERS": "deepnets.training.engine", "StepResult": "deepnets.training.engine",
    "evaluate": "deepnets.training.engine", "freeze": "deepnets.training.engine",
    "train_step": "deepnets.training.engine", "untie": "deepnets.training.engine",
    "RunResult": "deepnets.training.trainer", "run": "deepnets.training.trainer",
    # experiments (deepnets.experiments)
    "PROTOCOLS": "deepnets.experiments.protocols", "Protocol": "deepnets.experiments.protocols",
}
#: Names exported under another name than their module's.
_RENAMED = {"evaluate_net": ("deepnets.training.engine", "evaluate")}


def __getattr__(name: str) -> object:
    """A public name, imported from its module on first use (PEP 562)."""
    import importlib

    if name in _EXPORTS:
        module, attr = _EXPORTS[name], name
    elif name in _RENAMED:  # evaluate_net: deepnets.training.engine.evaluate, which the CLI
        module, attr = _RENAMED[name]  # module ``deepnets.evaluate`` cannot shadow
    else:
        raise AttributeError(f"module 'deepnets' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS, *_RENAMED})


__all__ = [
    "LOSSES",
    "METHODS",
    "PRESETS",
    "PROTOCOLS",
    "RULES",
    "UPDATE_ORDERS",
    "ArchError",
    "ConfigError",
    "FeedbackConv2d",
    "FeedbackLayer",
    "FeedbackLinear",
    "FeedbackNet",
    "FeedbackRule",
    "FeedbackUntied2d",
    "LayerOptions",
    "LayerSpec",
    "Protocol",
    "ResidualSum",
    "RunResult",
    "StepResult",
    "TrainConfig",
    "TrainStepper",
    "ZeroPadMaxPool2d",
    "alignment",
    "convert",
    "evaluate",
    "evaluate_net",
    "feedback_layers",
    "format_arch",
    "freeze",
    "hinge_output_feedback",
    "make_loss",
    "parse_arch",
    "run",
    "train_step",
    "untie",
]
