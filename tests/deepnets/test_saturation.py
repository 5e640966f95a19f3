"""saturated_fractions: the share of units with sigma'(h) = 0 (Remark 2), per layer, before any
pool, as a hand-written forward pass counts them; preactivation_sizes: the mean |s h| there;
feedback_norms: |W| and |R|, and R's split by W's mask. The model is left as it was."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from deepnets.nn.network import FeedbackNet, feedback_norms, feedback_norms_by_weight_mask
from deepnets.nn.saturation import preactivation_sizes, saturated_fractions


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
    sizes = preactivation_sizes(net, x, batch_size=3)
    assert sizes == pytest.approx({"conv0": float(h0.detach().abs().mean()),
                                   "full1": float(h1.detach().abs().mean())},
                                  abs=1e-12)
    assert net.training and net.fast


def test_norms_are_those_of_w_and_r_and_none_without_r() -> None:
    net = FeedbackNet("full 4; output", in_shape=(1, 2, 3), n_classes=2, method="urfb", seed=0,
                      connectivity=0.5)
    full, out = net.weight_layers
    want = [float(t.detach().norm()) for m in (full, out) for t in (m.weight, m.feedback)]
    got = [v for pair in feedback_norms(net.weight_layers) for v in pair]
    assert got == pytest.approx(want, rel=1e-6)
    bp = FeedbackNet("full 4; output", in_shape=(1, 2, 3), n_classes=2, method="bp", seed=0)
    assert [r for _, r in feedback_norms(bp.weight_layers)] == [None, None]


def test_r_is_split_by_where_w_keeps_its_connection() -> None:
    net = FeedbackNet("conv 3 3x3; full 4; output", in_shape=(2, 5, 5), n_classes=2,
                      method="urfb", seed=3, connectivity=0.5)
    got = feedback_norms_by_weight_mask(net.weight_layers)
    for layer, (kept, masked) in zip(net.weight_layers, got):
        rt = layer.feedback_as_weight().detach()  # R^t in W's layout
        assert rt.shape == layer.weight.shape
        w_kept = layer.weight.detach() != 0
        assert kept == pytest.approx(float(rt[w_kept].norm()), rel=1e-6)
        assert masked == pytest.approx(float(rt[~w_kept].norm()), rel=1e-6)
        assert kept > 0 and masked > 0  # independent masks: R has entries of both kinds
        assert kept**2 + masked**2 == pytest.approx(float(rt.norm()) ** 2, rel=1e-6)
    full = FeedbackNet("full 4; output", in_shape=(1, 2, 3), n_classes=2, method="urfb", seed=0)
    assert feedback_norms_by_weight_mask(full.weight_layers) == [None, None]  # no mask
    bp = FeedbackNet("full 4; output", in_shape=(1, 2, 3), n_classes=2, method="bp", seed=0,
                     connectivity=0.5)
    assert feedback_norms_by_weight_mask(bp.weight_layers) == [None, None]  # no R


def test_an_untied_layers_split_counts_real_connections_only() -> None:
    """An untied layer's W has zeros at the padding positions, which are no connections: at
    full connectivity it has no split; at 50% the split covers the real connections alone."""
    arch = "conv 3 3x3; full 4; output"
    full = FeedbackNet(arch, in_shape=(2, 5, 5), n_classes=2, method="urfb", seed=3, untied=[0])
    assert feedback_norms_by_weight_mask(full.weight_layers) == [None, None, None]
    half = FeedbackNet(arch, in_shape=(2, 5, 5), n_classes=2, method="urfb", seed=3, untied=[0],
                       connectivity=0.5)
    untied = half.weight_layers[0]
    kept, masked = feedback_norms_by_weight_mask(half.weight_layers)[0]
    real_r = untied.connection_entries(untied.feedback_as_weight().detach())
    real_w = untied.connection_entries(untied.mask_weight)
    assert real_r.numel() < untied.weight.numel()  # there are padding positions
    assert kept == pytest.approx(float(real_r[real_w > 0].norm()), rel=1e-6)
    assert masked == pytest.approx(float(real_r[real_w == 0].norm()), rel=1e-6) and masked > 0


def test_a_bad_batch_size_is_refused() -> None:
    net = FeedbackNet("full 4; output", in_shape=(1, 2, 2), n_classes=2)
    for measure in (saturated_fractions, preactivation_sizes):
        with pytest.raises(ValueError, match="batch_size must be >= 1"):
            measure(net, torch.rand(2, 1, 2, 2), batch_size=0)


def test_an_untied_layer_started_replicated_is_as_far_from_saturation_as_the_tied_one() -> None:
    """An untied layer starts as the tied conv layer of the same seed at every location (the
    author's start), so its units' |s h| are the conv layer's."""
    arch = "conv 3 3x3; maxpool 3; full 5; output"
    untied = FeedbackNet(arch, in_shape=(2, 6, 6), n_classes=3, seed=1, untied=[0]).double()
    tied = FeedbackNet(arch, in_shape=(2, 6, 6), n_classes=3, seed=1).double()
    x = torch.rand(5, 2, 6, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    got, want = preactivation_sizes(untied, x), preactivation_sizes(tied, x)
    assert list(got) == ["untied0", "full1"] and got["untied0"] > 0
    assert list(got.values()) == pytest.approx(list(want.values()), abs=1e-12)
