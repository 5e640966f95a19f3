"""The feedback rules: one class per rule, one module per class, and the registry everything
else reads.

A rule (:class:`deepnets.rules.base.Rule`) says what R is and how it learns: its name, its
parameters (defaults and ranges), its label and colour for the figures, its source, what the
error goes down through (W^t, R, or nothing: direct feedback) and what it does to tensors -- how
R starts, how R (and, for KP's decay, W) change after a step. Layers hand tensors to their rule;
a rule never sees a layer, and this package imports neither the layers nor torch (its names,
labels and colours load without them).

:data:`RULES` maps each name to its class, found by importing every public module of this
package: **a new rule is one new module** here (``frfb.py`` is the smallest example; see
CONTRIBUTING.md). :func:`make` builds a rule from a name and parameters, with a one-line error
for an unknown name or a bad parameter.

Rules (``method`` names, the same in ``FeedbackNet``, :func:`deepnets.convert`, the CLI, the
suite and the protocol vocabulary): see :data:`RULES` and ``docs/rules.md``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any

from deepnets.rules.base import ERROR_PATHS, ParamSpec, Rule

__all__ = ["ERROR_PATHS", "METHODS", "RULES", "ParamSpec", "Rule", "check_params", "make",
           "resolved_params", "rules_with_param"]


def _discover() -> dict[str, type[Rule]]:
    """Every rule class defined in a public module of this package, in the rules' ``order``."""
    found: dict[str, type[Rule]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for obj in vars(module).values():
            if (isinstance(obj, type) and issubclass(obj, Rule)
                    and obj.__module__ == module.__name__ and "name" in vars(obj)):
                if obj.name in found:
                    raise RuntimeError(f"two rules are named {obj.name!r}")
                if obj.error_path not in ERROR_PATHS:
                    raise RuntimeError(f"rule {obj.name!r}: error_path must be one of "
                                       f"{ERROR_PATHS}")
                found[obj.name] = obj
    return dict(sorted(found.items(), key=lambda kv: (kv[1].order, kv[0])))


#: name -> rule class, in the order the CLI, the docs and the suite list them.
RULES: dict[str, type[Rule]] = _discover()
METHODS: tuple[str, ...] = tuple(RULES)


def rule_class(method: str) -> type[Rule]:
    """The class of rule ``method``; a one-line ValueError naming the rules for another name."""
    try:
        return RULES[method]
    except (KeyError, TypeError):
        raise ValueError(f"method must be one of {METHODS}, got {method!r}") from None


def make(method: str, **params: Any) -> Rule:
    """The rule ``method`` with ``params`` (checked; the defaults of the others filled in)."""
    return rule_class(method)(**params)


def check_params(method: str, params: Mapping[str, Any]) -> dict[str, float]:
    """``params`` checked against ``method``'s (names and ranges), as floats; a one-line
    ValueError otherwise."""
    rule = make(method, **params)
    return {k: rule.params[k] for k in params}


def resolved_params(method: str, params: Mapping[str, Any]) -> dict[str, float]:
    """``params`` checked, with the defaults of the ones not given filled in."""
    return dict(make(method, **params).params)


def rules_with_param(param: str) -> tuple[str, ...]:
    """The names of the rules that take parameter ``param`` (e.g. ``epsilon``: urfb)."""
    return tuple(name for name, cls in RULES.items() if param in cls.parameters)
