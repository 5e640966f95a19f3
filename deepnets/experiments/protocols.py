"""The training protocols of Section 4, as data: the one vocabulary of the suite, figures and CLIs.

Beyond the paper's six, one protocol per further rule of the registry :data:`deepnets.rules.RULES`
(named as the rule, with its label and colour; hinge loss, full connectivity, default
parameters), in no figure (``figures=()``): a new rule gets its protocol without an edit here.
This module imports no torch (nor does the registry), so the figures' style reads it cheaply.

A protocol names a learning rule (``method``), a loss, a connectivity and the rule's parameters,
with the label and colour the figures draw it in and the figures whose grids use it. A run's
protocol is read from what its ``config.json`` says (:func:`protocol_of`), never from its folder
name; untied layers are a separate axis of a run (its ``untied`` list), not a protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deepnets.rules import RULES

__all__ = ["PROTOCOLS", "Protocol", "protocol_of"]


@dataclass(frozen=True)
class Protocol:
    """One training protocol (Section 4; caption of Figure 5 for the labels, 4 and 7 for colours)."""

    name: str
    method: str
    loss: str
    connectivity: float
    label: str
    color: str
    figures: tuple[int, ...]
    rule_params: Mapping[str, float] = field(default_factory=dict)

    def matches(self, config: Mapping[str, Any]) -> bool:
        """Whether a run's config (``config.json``) is a run of this protocol."""
        if config.get("method") != self.method or config.get("loss") != self.loss:
            return False
        if abs(float(config.get("connectivity", 1.0)) - self.connectivity) > 1e-9:
            return False
        params = dict(config.get("rule_params") or {})
        rule = RULES.get(self.method)
        for name in rule.parameters if rule is not None else ():  # kept at the top level
            if config.get(name) is not None:  # (urfb's epsilon: TrainConfig's --epsilon)
                params.setdefault(name, config[name])
        return all(abs(float(params.get(k, v)) - v) < 1e-12 for k, v in self.rule_params.items())


_GRIDS_SIX = (4, 5, 6, 7)
_BP, _URFB, _FRFB = RULES["bp"], RULES["urfb"], RULES["frfb"]  # the paper's three rules


def _defaults(method: str) -> dict[str, float]:
    return {k: spec.default for k, spec in RULES[method].parameters.items()}


#: Section 4's protocols. "50%" is random connectivity (half of W's and of R's entries zero);
#: the variants' labels and colours are Figure 5's caption and Figures 4 and 7's.
PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol("bp", "bp", "softmax", 1.0, _BP.label, _BP.color, (*_GRIDS_SIX, 9)),
        # BP-H untied too (Figure 9): the hinge-loss reference of the untied URFB and FRFB runs
        Protocol("bp-h", "bp", "hinge", 1.0, "BP-H", "darkgreen", (*_GRIDS_SIX, 9)),
        Protocol("urfb", "urfb", "hinge", 1.0, _URFB.label, _URFB.color,
                 (*_GRIDS_SIX, 8, 9, 10, 11), _defaults("urfb")),
        Protocol("frfb", "frfb", "hinge", 1.0, _FRFB.label, _FRFB.color, (*_GRIDS_SIX, 9, 10, 11)),
        Protocol("urfb-50", "urfb", "hinge", 0.5, "URFB 50%", "lightskyblue", _GRIDS_SIX,
                 _defaults("urfb")),
        Protocol("frfb-50", "frfb", "hinge", 0.5, "FRFB 50%", "lightsalmon", _GRIDS_SIX),
    )
}  # fmt: skip
# Beyond the paper (docs/rules.md): every other rule of the registry, hinge loss as urfb/frfb.
PROTOCOLS.update({
    name: Protocol(name, name, "hinge", 1.0, rule.label, rule.color, (), _defaults(name))
    for name, rule in RULES.items() if name not in PROTOCOLS
})


def protocol_of(config: Mapping[str, Any]) -> Protocol | None:
    """The protocol a run's config belongs to, or None for a setting outside the vocabulary."""
    for protocol in PROTOCOLS.values():
        if protocol.matches(config):
            return protocol
    return None
