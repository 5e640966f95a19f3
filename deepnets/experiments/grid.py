"""The suite's grids: the runs behind Figures 4-11 (Section 4), as :class:`RunSpec` lists.

Each figure's grid (CIFAR-10 unless said; the protocols are :data:`PROTOCOLS`' names):

* 4: simpnet x {bp, bp-h, urfb, frfb, urfb-50, frfb-50};   5: the same on CIFAR-10 and CIFAR-100
* 6: deepnet and deepernet x the six protocols;            7: deepernet x the six protocols
* 8: simpnet untied, urfb;  10: simpnet x {urfb, frfb}
* 9: simpnet tied and untied x {bp, bp-h, urfb, frfb}, and deepnet_s with Section 4.1's protocol:
  train tied, freeze its first layer, retrain the rest from scratch, tied and untied;
  11: deepnet_s as in 9 for {urfb, frfb}

A run's folder name is ``<arch>-<dataset>-<protocol>[-untied]`` (``-pre`` for deepnet_s's tied
pretraining), and ``-s<seed>`` once :meth:`RunSpec.with_seed` gives it a seed. No torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from deepnets.experiments.protocols import PROTOCOLS
from deepnets.nn.arch import WEIGHT_KINDS, parse_arch

ALL = tuple(name for name, p in PROTOCOLS.items() if 4 in p.figures)  # Section 4's six
#: Figure 9's protocols, tied and untied (BP, BP-H, URFB, FRFB).
UNTIE = tuple(name for name, p in PROTOCOLS.items() if 9 in p.figures)
FIGURES = (4, 5, 6, 7, 8, 9, 10, 11)


class SuiteError(ValueError):
    """A grid that cannot run as asked; the message names the argument or the run folder."""


@dataclass(frozen=True)
class RunSpec:
    """One training run of a grid: its folder name and the ``deepnets.train`` settings it differs
    by."""

    name: str
    arch: str
    protocol: str
    dataset: str                     # "cifar10" | "cifar100"
    epochs: int
    untied: tuple[int, ...] = ()
    frozen: tuple[int, ...] = ()
    from_run: str | None = None      # folder name of the run whose weights are taken (deepnet_s)
    role: str = field(default="", compare=False)
    seed: int = 0

    def with_seed(self, seed: int) -> RunSpec:
        """The same run for another seed: ``-s<seed>`` ends its folder name (and its source's)."""
        source = None if self.from_run is None else f"{self.from_run}-s{seed}"
        return replace(self, name=f"{self.name}-s{seed}", from_run=source, seed=seed)


def conv_layers(arch: str) -> list[int]:
    """Indices (into the weight layers, input->output) of the convolutional layers of ``arch``."""
    weights = [s for s in parse_arch(arch) if s.kind in WEIGHT_KINDS]
    return [i for i, s in enumerate(weights) if s.kind == "conv"]


def _plain(arch: str, dataset: str, protocols: Sequence[str], epochs: int,
           untied: bool = False) -> list[RunSpec]:
    untied_layers = tuple(conv_layers(arch)) if untied else ()
    return [RunSpec(f"{arch}-{dataset}-{p}{'-untied' if untied else ''}", arch, p, dataset, epochs,
                    untied=untied_layers) for p in protocols]


def _deepnet_s(protocols: Sequence[str], epochs: int, pretrain_epochs: int,
               untied_only: bool) -> list[RunSpec]:
    """Section 4.1: tied pretraining, then first layer frozen and the rest retrained from
    scratch."""
    rest = tuple(conv_layers("deepnet_s")[1:])
    specs = []
    for p in protocols:
        base = f"deepnet_s-cifar10-{p}"
        specs.append(RunSpec(f"{base}-pre", "deepnet_s", p, "cifar10", pretrain_epochs,
                             role="pretrain"))
        if not untied_only:
            specs.append(RunSpec(base, "deepnet_s", p, "cifar10", epochs, frozen=(0,),
                                 from_run=f"{base}-pre", role="retrain tied"))
        specs.append(RunSpec(f"{base}-untied", "deepnet_s", p, "cifar10", epochs, untied=rest,
                             frozen=(0,), from_run=f"{base}-pre", role="retrain untied"))
    return specs


def grid(figure: int, epochs: int, pretrain_epochs: int,
         protocols: Sequence[str] | None = None) -> list[RunSpec]:
    """The runs behind one figure; ``protocols`` (if given) keeps only those protocols."""
    def pick(default: Sequence[str]) -> list[str]:
        return [p for p in default if protocols is None or p in protocols]

    if figure == 4:
        return _plain("simpnet", "cifar10", pick(ALL), epochs)
    if figure == 5:
        return [s for d in ("cifar10", "cifar100") for s in _plain("simpnet", d, pick(ALL), epochs)]
    if figure == 6:
        return [s for a in ("deepnet", "deepernet")
                for s in _plain(a, "cifar10", pick(ALL), epochs)]
    if figure == 7:
        return _plain("deepernet", "cifar10", pick(ALL), epochs)
    if figure == 8:
        return _plain("simpnet", "cifar10", pick(("urfb",)), epochs, untied=True)
    if figure == 9:
        return (_plain("simpnet", "cifar10", pick(UNTIE), epochs)
                + _plain("simpnet", "cifar10", pick(UNTIE), epochs, untied=True)
                + _deepnet_s(pick(UNTIE), epochs, pretrain_epochs, untied_only=False))
    if figure == 10:
        return _plain("simpnet", "cifar10", pick(("urfb", "frfb")), epochs)
    if figure == 11:
        return _deepnet_s(pick(("urfb", "frfb")), epochs, pretrain_epochs, untied_only=True)
    raise SuiteError(f"argument FIGURE: {figure} is not one of {list(FIGURES)}")


def grids(figures: Sequence[int], epochs: int, pretrain_epochs: int,
          protocols: Sequence[str] | None = None) -> list[RunSpec]:
    """The union of several figures' runs, each once, pretraining before its retraining."""
    seen: dict[str, RunSpec] = {}
    for f in figures:
        for spec in grid(f, epochs, pretrain_epochs, protocols):
            seen.setdefault(spec.name, spec)
    return list(seen.values())
