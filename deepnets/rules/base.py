"""What every feedback rule is: :class:`Rule` (its name, parameters, label, colour, source and
what it does to tensors), :class:`ParamSpec` (one parameter's default and range) and the tensors
a layer hands to its rule (:class:`Start`, :class:`Step`).

A rule never sees a layer: the layer hands it tensors in W's layout (R^t, entry for entry the
connection W carries forward) and applies R's connectivity mask itself after the rule has
changed R. This module, like every rule module, imports no torch (tensors are used through their
methods), so that the registry's names, labels and colours load without it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch
    from torch import Tensor

__all__ = ["ERROR_PATHS", "LinearMaps", "ParamSpec", "Rule", "Start", "Step"]

#: What the error goes down through: W^t (exact back-propagation), R (a matrix of W's shape,
#: eq. 2 with R in place of W^t), or nothing chained ("direct": each hidden layer gets B_l e).
ERROR_PATHS = ("W^t", "R", "direct")


@dataclass(frozen=True)
class ParamSpec:
    """One rule parameter: its default, the range it must lie in, and what it means."""

    default: float
    low: float = 0.0
    high: float = 1e6
    low_open: bool = False  # True: must be > low
    meaning: str = ""

    def check(self, method: str, name: str, value: Any) -> float:
        """``value`` as a float, or a one-line ValueError naming the rule and the parameter."""
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"method {method!r}: {name} must be a number, got {value!r}") from None
        above = v > self.low if self.low_open else v >= self.low
        if not (math.isfinite(v) and above and v <= self.high):
            side = ">" if self.low_open else ">="
            raise ValueError(f"method {method!r}: {name} must be {side} {self.low:g} and at most "
                             f"{self.high:g}, got {value!r}")
        return v


@dataclass(frozen=True)
class Start:
    """A freshly built layer, as its rule sees it: W, R^t drawn Glorot-uniform independently of W
    and masked (None where the rule keeps no R), the bound of that draw and the generator that
    drew it."""

    w: Tensor
    r: Tensor | None
    glorot_bound: float
    generator: torch.Generator | None


@dataclass(frozen=True)
class LinearMaps:
    """The layer's two linear maps as functions of tensors, for rules that drive a layer with
    inputs of their own (weight mirror): ``forward(x)`` = W x (no bias, no saturation) and
    ``hebbian(x, y)`` = <y x^t> in W's layout, the weight gradient's product (eq. 2's first
    line, with y in place of delta) averaged over the examples and over the positions that
    share W (a conv's pixels), so that <(W x) x^t> -> sigma^2 W for x ~ N(0, sigma^2) in every
    kind of layer (away from a conv's zero padding); ``input_shape``: the shape of the layer's
    latest input, batch first."""

    forward: Callable[[Tensor], Tensor]
    hebbian: Callable[[Tensor, Tensor], Tensor]
    input_shape: tuple[int, ...]


@dataclass(frozen=True)
class Step:
    """One layer's step, as its rule sees it after W and b have taken it: W took
    dW = -lr grad_W (eq. 3: the Hebbian increment; masked entries of W stay zero), ``grad_w``
    is the unmasked gradient, ``r`` is R^t in W's layout (a view of the stored R, changed in
    place by the rule) and ``state`` the rule's own tensors (:meth:`Rule.start`). Under a torch
    optimizer (rules without ``feedback_by_gradient``): W took the optimizer's step,
    ``grad_w`` is the ``.grad`` it stepped by and ``lr`` the learning rate of W's group."""

    w: Tensor
    r: Tensor
    grad_w: Tensor
    lr: float
    state: Mapping[str, Tensor]
    glorot_bound: float
    maps: LinearMaps


class Rule:
    """A feedback rule: what R is, what the error goes down through, and how R learns.

    Subclasses set the class attributes and override the hooks they need; their parameters
    (``parameters``) become attributes of the instance (``URFB(epsilon=0.5).epsilon``).
    Instances are immutable values: equal when name and parameters are equal.

    Hooks (tensors in W's layout; the layer keeps R's connectivity mask after each):

    * :meth:`start`: the rule's own start of R (e.g. from W) and its own tensors;
    * :meth:`refresh`: R again from W after W was set from outside (``deepnets.convert``);
    * :meth:`after_step`: how R changes after the layer's step (``learns_feedback`` rules);
    * :meth:`feedback_grad`: R's update direction for a torch optimizer
      (``feedback_by_gradient`` rules; ``docs/rules.md``, "Rules under an optimizer");
    * :attr:`weight_decay`: the decay lambda the step puts on W and on a gradient-learnt R
      (W <- (1 - lr lambda) W + dW: torch's ``weight_decay`` on W and R).
    """

    params: Mapping[str, float]
    name: ClassVar[str]
    label: ClassVar[str]  #: the figures' name of the rule
    color: ClassVar[str]  #: the figures' colour of the rule (a matplotlib colour)
    order: ClassVar[int]  #: its place in the registry's listing
    summary: ClassVar[str]  #: what R is and how it learns, in one line
    source: ClassVar[str]  #: who proposed it
    parameters: ClassVar[Mapping[str, ParamSpec]] = MappingProxyType({})
    error_path: ClassVar[str] = "R"  #: one of :data:`ERROR_PATHS`
    learns_feedback: ClassVar[bool] = False  #: whether :meth:`after_step` changes R
    symmetric_init_applies: ClassVar[bool] = True  #: whether R(0) = W(0)^t means anything
    #: whether R learns by a direction a torch optimizer steps (:meth:`feedback_grad`); the
    #: other ``learns_feedback`` rules change R in :meth:`after_step`, after the optimizer's step
    feedback_by_gradient: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            known = f" (its parameters: {', '.join(self.parameters)})" if self.parameters else ""
            raise ValueError(f"method {self.name!r} takes no parameter {', '.join(unknown)}{known}")
        values = {k: spec.check(self.name, k, params.get(k, spec.default))
                  for k, spec in self.parameters.items()}
        object.__setattr__(self, "params", MappingProxyType(values))
        for k, v in values.items():
            object.__setattr__(self, k, v)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"a rule is immutable: cannot set {key!r}")

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self)
                and dict(self.params) == dict(other.params))  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.params.items()))))

    def __reduce__(self) -> tuple[Any, ...]:  # pickling and deep copies (checkpoints, convert)
        return (_rebuild, (type(self), dict(self.params)))

    def __deepcopy__(self, memo: dict) -> Rule:
        return self  # immutable

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"

    @property
    def method(self) -> str:
        """The rule's name (the ``method`` of ``FeedbackNet``, ``convert`` and the CLI)."""
        return self.name

    @property
    def has_feedback(self) -> bool:
        """Whether the layer keeps an R of W's shape."""
        return self.error_path == "R"

    @property
    def direct(self) -> bool:
        """Direct feedback: hidden layers get B_l e instead of the chained error."""
        return self.error_path == "direct"

    @property
    def weight_decay(self) -> float:
        """The decay lambda on W, and on R where R learns by gradient, in the layer's step
        (0: none): under plain SGD p <- (1 - lr lambda) p + dp, under a torch optimizer
        lambda p added to p's ``.grad`` (torch's ``weight_decay``)."""
        return 0.0

    def describe(self) -> str:
        return self.name + "".join(f", {k}={v}" for k, v in self.params.items())

    # ------------------------------------------------------------------ what it does to tensors
    def start(self, start: Start) -> dict[str, Tensor]:
        """Set R's start in place (``start.r``) where the rule has its own, and return the
        rule's own tensors (the layer keeps them as buffers, in checkpoints)."""
        return {}

    def refresh(self, w: Tensor, r: Tensor, state: Mapping[str, Tensor],
                glorot_bound: float) -> None:
        """R again from W, after W was set from outside; most rules keep R as it is."""

    def after_step(self, step: Step) -> None:
        """Change R (``step.r``) after the layer's step; called for ``learns_feedback`` rules
        (under a torch optimizer only for those that do not set ``feedback_by_gradient``)."""

    def feedback_grad(self, grad_w: Tensor) -> Tensor | None:
        """R^t's update direction in W's layout and torch's sign convention (an optimizer steps
        R <- R - lr * direction^t under plain SGD), from W's unmasked gradient ``grad_w``; a
        new tensor (``grad_w`` is not changed), or None where R does not move this step.
        Called for ``feedback_by_gradient`` rules, whose :meth:`after_step` is the same update
        under plain SGD."""
        return None


def _rebuild(cls: type[Rule], params: dict[str, float]) -> Rule:
    """A rule from its class and parameters (what :meth:`Rule.__reduce__` pickles)."""
    return cls(**params)
