"""Named models that are not architecture strings: plain torch models trained through
:func:`deepnets.convert`, under the same :class:`deepnets.training.config.TrainConfig` (``--arch
NAME``).

* ``resnet-mini``: a small ResNet-style CIFAR net: conv 3x3 (16) - BN - ReLU, then three
  stages of one basic block each (conv-BN-ReLU-conv-BN plus the identity, then ReLU) at 16, 32
  and 64 channels, joined by stride-2 conv-BN-ReLU layers, global average pooling and a linear
  output layer: 10 weight layers, 121k weights. Its W start from torch's default initialisation
  (drawn from ``seed``); its hidden nonlinearities are ReLU, not the paper's clip.

:class:`ConvertedNet` gives a converted model :class:`deepnets.nn.network.FeedbackNet`'s interface
(``config``, ``weight_layers``, ``weight_layer_names``, ``correlations``), so that the trainer,
checkpoints, the alignment probe and the suite take it; :func:`build_net` builds either from a
network description (``config.json``'s ``net``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from functools import cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deepnets.nn.convert import convert
from deepnets.nn.layers import FeedbackLayer, FeedbackRule, feedback_layers
from deepnets.nn.network import FeedbackNet, feedback_correlations

__all__ = ["MODELS", "BasicBlock", "ConvertedNet", "build_net", "n_weight_layers", "resnet_mini"]


class BasicBlock(nn.Module):
    """conv3x3 - BN - ReLU - conv3x3 - BN, plus the identity, then ReLU (He et al. 2016)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + x)


def _conv_bn_relu(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU()]


def resnet_mini(in_shape: tuple[int, int, int], n_classes: int, width: int = 16) -> nn.Module:
    """The plain torch ``resnet-mini`` (see the module docstring)."""
    w = width
    return nn.Sequential(
        *_conv_bn_relu(in_shape[0], w, 1), BasicBlock(w),
        *_conv_bn_relu(w, 2 * w, 2), BasicBlock(2 * w),
        *_conv_bn_relu(2 * w, 4 * w, 2), BasicBlock(4 * w),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, n_classes),
    )  # fmt: skip


#: Named plain-torch models: name -> builder(in_shape, n_classes).
MODELS: dict[str, Callable[[tuple[int, int, int], int], nn.Module]] = {"resnet-mini": resnet_mini}


@cache
def n_weight_layers(arch: str) -> int:
    """The number of Linear/Conv2d layers of a named model."""
    plain = MODELS[arch]((3, 32, 32), 10)
    return sum(type(m) in (nn.Linear, nn.Conv2d) for m in plain.modules())


class ConvertedNet(nn.Module):
    """A named model of :data:`MODELS`, converted to feedback layers of ``method``; takes
    FeedbackNet's arguments. ``sat_scale`` does not apply (converted layers compute plain
    Linear/Conv2d); ``untied`` must be empty."""

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
        symmetric_init: bool = False,
        seed: int = 0,
        frozen: Collection[int] = (),
        **rule_params: float,
    ) -> None:
        super().__init__()
        if arch not in MODELS:
            raise ValueError(f"no named model {arch!r}; known: {', '.join(MODELS)}")
        if untied:
            raise ValueError(f"untied: {arch} is a converted model; it has no untied layers")
        rule = FeedbackRule.make(method, epsilon, **rule_params)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            plain = MODELS[arch](tuple(in_shape), n_classes)  # type: ignore[arg-type]
        self.model = convert(plain, method, connectivity=connectivity,
                             symmetric_init=symmetric_init, seed=seed, **rule.params)
        layers = self.weight_layers
        names = {id(m): n for n, m in self.model.named_modules()}
        self.weight_layer_names: list[str] = [names[id(m)] for m in layers]
        for i in frozen:
            if not 0 <= i < len(layers):
                raise ValueError(f"frozen: weight layer index {i} out of range 0..{len(layers) - 1}")
            layers[i].frozen = True
        self.config: dict = {
            "arch": arch, "in_shape": list(in_shape), "n_classes": n_classes, "method": method,
            "connectivity": float(connectivity), "sat_scale": float(sat_scale), "untied": [],
            "symmetric_init": bool(symmetric_init), "seed": seed, "frozen": sorted(set(frozen)),
            **rule.params,
        }  # fmt: skip

    @property
    def weight_layers(self) -> list[FeedbackLayer]:
        return feedback_layers(self.model)

    @property
    def method(self) -> str:
        return self.config["method"]

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def correlations(self) -> list[float | None]:
        """Per weight layer, the Pearson correlation of W and R^t (None for dfa, 1 for bp)."""
        return feedback_correlations(self.weight_layers)


def build_net(arch: str, **kwargs) -> nn.Module:
    """The network of a description: a :class:`FeedbackNet` from an architecture string or
    preset, a :class:`ConvertedNet` for a name of :data:`MODELS`."""
    if arch in MODELS:
        return ConvertedNet(arch, **kwargs)
    return FeedbackNet(arch, **kwargs)
