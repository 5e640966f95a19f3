"""What deepnets.convert does with what it cannot or must not convert (issue 19, §1 and §5):
Linear subclasses are converted; every other weight parameter is listed in one warning
(``strict=True``: an error); tied weights are refused; NaN weights are refused; a float64 model
stays float64 end to end."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from deepnets import convert, make_loss, train_step
from deepnets.nn.convert import ConvertedConv2d, ConvertedLinear
from deepnets.nn.layers import feedback_layers


class ScaledLinear(nn.Linear):
    """A Linear subclass that keeps torch's forward (it only adds an attribute)."""

    note = "subclass"


class DoubledLinear(nn.Linear):
    """A Linear subclass with its own forward: converting it would change the function."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * super().forward(x)


class Mixed(nn.Module):
    """One of each weight layer convert must leave plain (and two it converts)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(2, 3, 3, padding=1)
        self.c3 = nn.Conv3d(1, 1, 1)
        self.ct = nn.ConvTranspose2d(1, 1, 2)
        self.grouped = nn.Conv2d(2, 2, 1, groups=2)
        self.reflect = nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect")
        self.attn = nn.MultiheadAttention(4, 2, batch_first=True)
        self.own = DoubledLinear(4, 4)
        self.table = nn.Parameter(torch.randn(4, 4))
        self.sub = ScaledLinear(4, 4)
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, 2, 4, 4)
        n = x.shape[0]
        a = self.c1(x.flatten(2)).sum(1)  # (N, 16)
        b = self.c3(x[:, :1, None]).flatten(1)[:, :16]
        c = self.ct(x[:, :1])[:, :, :4, :4].flatten(1)
        d = self.reflect(self.grouped(self.conv(x))).flatten(1)[:, :16]
        seq = (a + b + c + d).view(n, 4, 4)
        seq = self.attn(seq, seq, seq)[0]
        return self.sub(self.own(seq) @ self.table).flatten(1)


PLAIN = ["c1.weight (Conv1d)", "c3.weight (Conv3d)", "ct.weight (ConvTranspose2d)",
         "grouped.weight (Conv2d: groups=2", "reflect.weight (Conv2d: pads with 'reflect'",
         "attn.in_proj_weight (MultiheadAttention)",
         "attn.out_proj.weight (NonDynamicallyQuantizableLinear: read directly by",
         "own.weight (DoubledLinear: DoubledLinear has its own forward)", "table (Mixed)"]


def test_linear_subclasses_are_converted_and_compute_the_same() -> None:
    torch.manual_seed(0)
    plain = nn.Sequential(ScaledLinear(5, 4), nn.ReLU(),
                          nn.modules.linear.NonDynamicallyQuantizableLinear(4, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is left plain: no warning
        net = convert(plain, method="frfb")
    assert [type(m) for m in net] == [ConvertedLinear, nn.ReLU, ConvertedLinear]
    x = torch.rand(3, 5)
    assert torch.equal(net(x), plain(x))


def test_unconverted_weight_layers_are_listed_in_one_warning() -> None:
    torch.manual_seed(0)
    plain = Mixed()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = convert(plain, method="urfb")
    ours = [w for w in caught if "convert:" in str(w.message)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    message = str(ours[0].message)
    assert "\n" not in message and message.startswith(f"convert: {len(PLAIN)} weight parameter")
    shown = [p for p in PLAIN if p in message]
    assert len(shown) == 6 and f"and {len(PLAIN) - 6} more" in message  # a bounded line
    assert isinstance(net.sub, ConvertedLinear) and isinstance(net.conv, ConvertedConv2d)
    assert len(feedback_layers(net)) == 2
    x = torch.rand(3, 2, 4, 4)
    assert torch.allclose(net(x), plain(x), atol=1e-6)  # the same function, hybrid or not


def test_strict_makes_an_unconverted_weight_an_error() -> None:
    for module, fragment in [(nn.Conv1d(2, 3, 3), "weight (Conv1d)"),
                             (nn.ConvTranspose2d(1, 1, 2), "ConvTranspose2d"),
                             (nn.MultiheadAttention(4, 2), "in_proj_weight"),
                             (DoubledLinear(3, 3), "own forward")]:
        model = nn.Sequential(module, nn.Linear(3, 3))
        with pytest.raises(ValueError, match="strict=True") as err:
            convert(model, strict=True)
        assert fragment in str(err.value) and "\n" not in str(err.value)
    convert(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)), strict=True)  # 1-d: not weights


def test_a_model_with_nothing_convertible_names_what_it_holds() -> None:
    for model, fragment in [(nn.Conv1d(2, 3, 3), "weight (Conv1d)"),
                            (nn.LazyLinear(3), "lazy, not yet initialised"),
                            (nn.Sequential(nn.Embedding(5, 3)), "0.weight (Embedding)")]:
        with pytest.raises(ValueError, match="no nn.Linear or nn.Conv2d layer that can be") as err:
            convert(model)
        assert fragment in str(err.value)


@pytest.mark.parametrize("tie", ["weight", "bias", "embedding", "attribute"])
def test_tied_weights_are_refused(tie: str) -> None:
    a, b = nn.Linear(4, 4), nn.Linear(4, 4)
    model: nn.Module = nn.Sequential(a, nn.ReLU(), b)
    if tie == "weight":
        b.weight = a.weight
    elif tie == "bias":
        b.bias = a.bias
    elif tie == "embedding":  # a language model's input embedding tied to its output layer
        emb = nn.Embedding(4, 4)
        b.weight = emb.weight
        model = nn.Sequential(emb, nn.Flatten(), a, nn.ReLU(), b)
    else:
        model.shared = a.weight  # a parent that uses the layer's weight itself
    with pytest.raises(ValueError, match="tied weights") as err:
        convert(model)
    assert "\n" not in str(err.value)


def test_nan_or_inf_weights_are_refused() -> None:
    for value, part in ((float("nan"), "weight"), (float("inf"), "bias")):
        model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 2))
        with torch.no_grad():
            getattr(model[1], part)[0] = value
        with pytest.raises(ValueError, match=f"convert: 1.{part} holds NaN or infinite"):
            convert(model)


def test_a_float64_model_stays_float64_end_to_end() -> None:
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.Flatten(),
                          nn.Linear(3 * 16, 4)).double()
    with torch.no_grad():  # values a float32 cannot hold (.double() of float32 draws could)
        for p in plain.parameters():
            p.copy_(torch.randn(p.shape, dtype=torch.float64) / 3)
    for method in ("bp", "urfb", "kp", "usf", "dfa"):
        net = convert(plain, method=method)
        for layer, original in zip(feedback_layers(net), (plain[0], plain[3])):
            assert layer.weight.dtype == torch.float64
            assert torch.equal(layer.weight, original.weight)  # not rounded through float32
            assert torch.equal(layer.bias, original.bias)  # the model's own biases
            assert layer.feedback is None or layer.feedback.dtype == torch.float64
    x = torch.rand(5, 2, 4, 4, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 0])
    net = convert(plain, method="bp")
    assert torch.equal(net(x), plain(x))
    # one step of bp equals float64 SGD on the plain model, to 1e-15
    reference = copy.deepcopy(plain)
    loss = nn.functional.cross_entropy(reference(x), y)
    loss.backward()
    with torch.no_grad():
        for p in reference.parameters():
            p -= 0.1 * p.grad
    # the simultaneous order: every layer's step from the one backward pass, as autograd's SGD
    train_step(net, x, y, make_loss("softmax", 4), lr=0.1, update_order="simultaneous")
    for layer, original in zip(feedback_layers(net), (reference[0], reference[3])):
        assert layer.weight.dtype == torch.float64
        assert (layer.weight - original.weight).abs().max() < 1e-15
        assert (layer.bias - original.bias).abs().max() < 1e-15


def test_a_float32_model_stays_float32() -> None:
    net = convert(nn.Linear(3, 2), method="urfb")
    assert net.weight.dtype == net.feedback.dtype == net.bias.dtype == torch.float32
