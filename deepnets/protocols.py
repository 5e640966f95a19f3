"""The training protocols of Section 4, as data: the one vocabulary of the suite, figures and CLIs.

Beyond the paper's six, one protocol per further rule of :mod:`deepnets.rules` (kp, usf, brsf,
frsf, dfa; hinge loss, full connectivity, default parameters), in no figure (``figures=()``).

A protocol names a learning rule (``method``), a loss, a connectivity and the rule's parameters,
with the label and colour the figures draw it in and the figures whose grids use it. A run's
protocol is read from what its ``config.json`` says (:func:`protocol_of`), never from its folder
name; untied layers are a separate axis of a run (its ``untie`` list), not a protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
        params = config.get("rule_params") or {}
        if self.method == "urfb":  # older configs kept epsilon at the top level
            params = {"epsilon": config.get("epsilon", 1.0), **params}
        return all(abs(float(params.get(k, v)) - v) < 1e-12 for k, v in self.rule_params.items())


_GRIDS_SIX = (4, 5, 6, 7)
#: Section 4's protocols. "50%" is random connectivity (half of W's and of R's entries zero).
PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol("bp", "bp", "softmax", 1.0, "BP", "tab:green", (*_GRIDS_SIX, 9)),
        Protocol("bp-h", "bp", "hinge", 1.0, "BP-H", "darkgreen", _GRIDS_SIX),
        Protocol("urfb", "urfb", "hinge", 1.0, "URFB", "tab:blue", (*_GRIDS_SIX, 8, 9, 10, 11),
                 {"epsilon": 1.0}),
        Protocol("frfb", "frfb", "hinge", 1.0, "FRFB", "tab:red", (*_GRIDS_SIX, 9, 10, 11)),
        Protocol("urfb-50", "urfb", "hinge", 0.5, "URFB 50%", "lightskyblue", _GRIDS_SIX,
                 {"epsilon": 1.0}),
        Protocol("frfb-50", "frfb", "hinge", 0.5, "FRFB 50%", "lightsalmon", _GRIDS_SIX),
        # Beyond the paper (deepnets.rules; docs/rules.md): hinge loss as urfb/frfb, no figure.
        Protocol("kp", "kp", "hinge", 1.0, "KP", "tab:purple", (), {"decay": 1e-4}),
        Protocol("usf", "usf", "hinge", 1.0, "uSF", "tab:orange", (), {"scale": 1.0}),
        Protocol("brsf", "brsf", "hinge", 1.0, "brSF", "tab:brown", ()),
        Protocol("frsf", "frsf", "hinge", 1.0, "frSF", "goldenrod", ()),
        Protocol("dfa", "dfa", "hinge", 1.0, "DFA", "tab:gray", ()),
    )
}  # fmt: skip


def protocol_of(config: Mapping[str, Any]) -> Protocol | None:
    """The protocol a run's config belongs to, or None for a setting outside the vocabulary."""
    for protocol in PROTOCOLS.values():
        if protocol.matches(config):
            return protocol
    return None
