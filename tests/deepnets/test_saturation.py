"""saturated_fractions: the share of units with sigma'(h) = 0 (Remark 2), per layer, before any
pool, as a hand-written forward pass counts them; the model is left as it was."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from deepnets.nn.network import FeedbackNet
from deepnets.nn.saturation import saturated_fractions


def test_counts_each_layers_saturated_units_before_the_pool() -> None:
    net = FeedbackNet("conv 3 3x3; maxpool 3; drop .5; full 5; output", in_shape=(2, 6, 6),
                      n_classes=3, method="urfb", seed=1).double()
    conv, full, _ = net.weight_layers
    with torch.no_grad():  # large enough weights that some units saturate and some do not
        conv.weight.mul_(6)
        full.weight.mul_(8)
    x = torch.rand(7, 2, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    h0 = 0.5 * F.conv2d(x, conv.weight, padding=1)
    pooled = F.max_pool2d(F.pad(h0.clamp(-1, 1), (1, 1, 1, 1)), 3, 2)  # zero-padded pool
    h1 = 0.5 * F.linear(pooled.flatten(1), full.weight)  # dropout is off in evaluation
    want = {"conv0": float((h0.abs() >= 1).double().mean()),
            "full1": float((h1.abs() >= 1).double().mean())}
    assert 0.05 < want["conv0"] < 0.95 and 0.05 < want["full1"] < 0.95  # a real mix
    net.train()
    got = saturated_fractions(net, x, batch_size=3)  # three batches: 3 + 3 + 1 images
    assert got == pytest.approx(want, abs=1e-12) and list(got) == ["conv0", "full1"]
    assert net.training and net.fast and all(m.fast for m in net.weight_layers)  # as it was
    assert saturated_fractions(net, x) == pytest.approx(got, abs=1e-12)


def test_a_bad_batch_size_is_refused() -> None:
    net = FeedbackNet("full 4; output", in_shape=(1, 2, 2), n_classes=2)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        saturated_fractions(net, torch.rand(2, 1, 2, 2), batch_size=0)
