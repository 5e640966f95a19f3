"""Deep networks with separate, Hebbian-updated feedback weights (Sections 3-4): BP, FRFB, URFB.

Python API for users who bring their own model: build it from :class:`FeedbackLinear`,
:class:`FeedbackConv2d`, :class:`FeedbackUntied2d` (each with ``method`` in :data:`METHODS`),
take a loss from :func:`make_loss`, and train with :func:`train_step`.
"""

from deepnets.arch import PRESETS, ArchError, LayerSpec, format_arch, parse_arch
from deepnets.engine import UPDATE_ORDERS, StepResult, evaluate, freeze, train_step, untie
from deepnets.layers import (
    METHODS,
    FeedbackConv2d,
    FeedbackLayer,
    FeedbackLinear,
    FeedbackUntied2d,
    ZeroPadMaxPool2d,
    feedback_layers,
)
from deepnets.losses import LOSSES, hinge_output_feedback, make_loss
from deepnets.network import FeedbackNet, ResidualSum

__all__ = [
    "LOSSES",
    "METHODS",
    "PRESETS",
    "UPDATE_ORDERS",
    "ArchError",
    "FeedbackConv2d",
    "FeedbackLayer",
    "FeedbackLinear",
    "FeedbackNet",
    "FeedbackUntied2d",
    "LayerSpec",
    "ResidualSum",
    "StepResult",
    "ZeroPadMaxPool2d",
    "evaluate",
    "feedback_layers",
    "format_arch",
    "freeze",
    "hinge_output_feedback",
    "make_loss",
    "parse_arch",
    "train_step",
    "untie",
]
