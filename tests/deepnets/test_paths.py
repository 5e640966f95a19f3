"""Fast path = reference path (issue 17): for every rule of the registry, every layer kind
(dense, conv, untied, a conv and an untied layer each fused with its pool), both update orders
(Remark 1) and both compute dtypes, a few training steps on the fast path (``fast=True``:
folding, channels-last, fused kernels, :mod:`deepnets.nn.kernels`) leave the same W, b, R and rule
tensors, and give the same losses, as on the reference path (``fast=False``:
:mod:`deepnets.nn.reference`).

Tolerances (also in ``docs/equations.md``):
* fp32: rtol 1e-5, atol 1e-6 -- the two paths sum the same products in different orders
  (oneDNN against plain convolutions, batched matmuls against einsum), ~1e-7 relative apart.
* bf16 (float32 masters): each tensor's total change over the steps agrees to 5% in norm
  (||change_fast - change_ref|| <= 0.05 ||change_ref||; measured worst 2.5%, an untied layer's
  W), losses to rtol 2e-2. bf16 keeps 8 significant bits (one rounding is up to 2^-9 = 0.2%
  relative), the paths round different intermediates (the fast path rounds s h after folding s
  into W, the reference rounds h, then s h; the untied layer's fast bias rides in its bf16
  matmul), and a unit whose s h lies within a rounding of +-1 saturates on one path only,
  which moves its whole delta x^t term (an untied location's W sees only the batch's 8
  examples, so one flip is a large share of its change: entrywise bounds are too tight).

A new fast kernel is correct when this test passes.
"""

import inspect
import re
from pathlib import Path

import pytest
import torch

from deepnets import convert
from deepnets.nn import reference
from deepnets.nn.layers import FeedbackLayer, ZeroPadMaxPool2d, set_fast
from deepnets.nn.losses import make_loss
from deepnets.nn.network import FeedbackNet
from deepnets.nn.policy import execution_policy
from deepnets.rules import RULES
from deepnets.training.engine import train_step, train_step_on_device

SHAPE = (2, 6, 6)
N_CLASSES = 3
LAYER_KINDS = {
    "dense": "full 5; output",
    "conv": "conv 3 3x3; conv 2 2x2; output",  # odd and even kernels ('same' padding after)
    "untied": "untied 3 3x3; output",
    "pooled": "conv 3 3x3; maxpool 3; untied 2 3x3; maxpool 2; output",
}
ORDERS = ("simultaneous", "sequential")
STEPS = 3
FP32_TOL = {"rtol": 1e-5, "atol": 1e-6}
BF16_NORM_SHARE = 0.05  # of the norm of a tensor's change


def _train(arch: str, method: str, order: str, precision: str, fast: bool
           ) -> tuple[FeedbackNet, dict[str, torch.Tensor], list[float]]:
    """(the net, its state before training, the losses) after STEPS steps."""
    net = FeedbackNet(arch, in_shape=SHAPE, n_classes=N_CLASSES, method=method, seed=1,
                      fast=fast)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    loss_fn = make_loss("hinge", N_CLASSES)
    gen = torch.Generator().manual_seed(2)
    torch.manual_seed(3)  # the rules' own draws (wm's mirror noise)
    losses = []
    for _ in range(STEPS):
        x = torch.rand(8, *SHAPE, generator=gen) * 4 - 1  # many saturated units
        y = torch.randint(0, N_CLASSES, (8,), generator=gen)
        result = train_step(net, x, y, loss_fn, lr=0.1, update_order=order, precision=precision)
        losses.append(result.loss)
    return net, start, losses


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("kind", sorted(LAYER_KINDS))
@pytest.mark.parametrize("method", sorted(RULES))
def test_fast_path_equals_reference_path(method: str, kind: str, order: str,
                                         precision: str) -> None:
    fast, start, fast_losses = _train(LAYER_KINDS[kind], method, order, precision, True)
    ref, _, ref_losses = _train(LAYER_KINDS[kind], method, order, precision, False)
    fast_state, ref_state = fast.state_dict(), ref.state_dict()
    assert fast_state.keys() == ref_state.keys()
    changed = 0
    for name, before in start.items():
        if not before.is_floating_point():
            continue
        a, b = fast_state[name], ref_state[name]
        if precision == "fp32":
            torch.testing.assert_close(a, b, **FP32_TOL, msg=lambda m, n=name: f"{n}: {m}")
        else:
            change = (b - before).norm().item()
            assert (a - b).norm().item() <= BF16_NORM_SHARE * change + 1e-7, name
        changed += not torch.equal(b, before)
    assert changed >= 2  # the steps did change W and b (and R where the rule learns it)
    tol = FP32_TOL if precision == "fp32" else {"rtol": 2e-2, "atol": 1e-2}
    torch.testing.assert_close(torch.tensor(fast_losses), torch.tensor(ref_losses), **tol)


def test_the_reference_path_runs_no_fast_function() -> None:
    """fast=False reaches every layer and pool, and its forward graph holds only the reference
    path's function (no pooled-layer fusion, no fast kernel)."""
    net = FeedbackNet(LAYER_KINDS["pooled"], in_shape=SHAPE, n_classes=N_CLASSES, fast=False)
    assert all(not m.fast for m in net.modules()
               if isinstance(m, (FeedbackLayer, ZeroPadMaxPool2d)))
    names = set()
    node = net(torch.rand(2, *SHAPE)).grad_fn
    stack = [node]
    while stack:
        node = stack.pop()
        if node is not None:
            names.add(type(node).__name__)
            stack.extend(n for n, _ in node.next_functions)
    assert "ReferenceFunctionBackward" in names
    assert not any(n.startswith(("FeedbackFunction", "PooledFeedback", "_ZeroPad")) for n in names)
    set_fast(net, True)
    assert all(m.fast for m in net.modules() if isinstance(m, FeedbackLayer))


def test_policy_decides_the_fast_tricks_per_device_and_dtype() -> None:
    cpu32 = execution_policy("cpu", torch.float32, True)
    assert cpu32.channels_last and cpu32.fold_scale and cpu32.implicit_pool_padding
    assert not cpu32.one_thread_bf16_weight_grad
    assert execution_policy("cpu", torch.bfloat16, True).one_thread_bf16_weight_grad
    cpu64 = execution_policy("cpu", torch.float64, True)
    assert not cpu64.channels_last and not cpu64.fused_clip_conv and cpu64.fold_scale
    cuda = execution_policy("cuda", torch.float32, True)  # a step must not synchronise
    assert not (cuda.implicit_pool_padding or cuda.cpu_dropout_noise or cuda.channels_last)
    ref = execution_policy("cpu", torch.float32, False)
    assert ref.reference and ref.keep_freed_memory
    assert not any((ref.fold_scale, ref.channels_last, ref.fused_clip_conv, ref.fuse_pool,
                    ref.implicit_pool_padding, ref.cpu_dropout_noise))


def test_reference_dropout_keeps_and_scales() -> None:
    """Each unit kept (scaled by 1/(1-p)) or zeroed, a fraction ~p zeroed; the gradient is the
    same mask times the same scale."""
    torch.manual_seed(0)
    x = torch.rand(200, 50) + 0.5
    x.requires_grad_()
    out = reference.dropout(x, 0.3)
    kept = out != 0
    torch.testing.assert_close(out[kept], x.detach()[kept] / 0.7)
    assert abs(1 - kept.float().mean().item() - 0.3) < 0.02
    out.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.7)


def test_reference_untied_equals_a_conv_with_the_same_filters() -> None:
    """An untied layer whose locations all hold a conv's filters computes that conv (eq. (1)),
    and sends down and collects the same gradients (eq. (2))."""
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(2, 3, 5, 5, generator=g), torch.randn(4, 3, 3, 3, generator=g)
    delta = torch.randn(2, 4, 5, 5, generator=g)
    conv, untied = reference.ConvEquations(padding=(1, 1)), reference.UntiedEquations(3, (1,) * 4)
    wu = w.reshape(4, -1).expand(25, 4, 27)
    torch.testing.assert_close(untied.linear(x, wu, None), conv.linear(x, w, None))
    gi_c, gw_c, _ = conv.grads(x, delta, w, True, True, False)
    gi_u, gw_u, _ = untied.grads(x, delta, wu, True, True, False)
    torch.testing.assert_close(gi_u, gi_c)
    torch.testing.assert_close(gw_u.sum(0), gw_c.reshape(4, -1))


@pytest.mark.parametrize("method", sorted(name for name, rule in RULES.items()
                                           if rule.error_path != "direct"))
def test_reference_path_steps_without_host_sync(method: str) -> None:
    """The reference path is capturable too: a step of every layer kind, with dropout, on the
    meta device (any .item(), bool(tensor) or copy to the host raises there). Direct feedback
    reads its seed on the host at its first step, on both paths (as ``test_capture.py``)."""
    arch = LAYER_KINDS["pooled"].replace("; output", "; drop .5; full 4; output")
    net = FeedbackNet(arch, in_shape=SHAPE, n_classes=N_CLASSES, method=method,
                      fast=False).to("meta")
    x = torch.empty(4, *SHAPE, dtype=torch.uint8, device="meta")
    y = torch.empty(4, dtype=torch.int64, device="meta")
    for order in ORDERS:
        loss, errors = train_step_on_device(net, x, y, make_loss("hinge", N_CLASSES),
                                            update_order=order)
        assert loss.device.type == errors.device.type == "meta"


def test_equations_md_points_at_the_reference_lines() -> None:
    """Every row of docs/equations.md naming deepnets/nn/reference.py with a line number gives the
    line where that function starts (so the pointers cannot drift)."""
    root = Path(__file__).resolve().parents[2]
    rows = []
    for line in (root / "docs" / "equations.md").read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if len(cells) == 4 and cells[1] == "`deepnets/nn/reference.py`" and cells[3].isdigit():
            rows.append((cells[2].strip("`"), int(cells[3])))
    assert len(rows) >= 10
    for name, line in rows:
        obj = reference
        for part in name.split("."):
            obj = getattr(obj, part)
        assert inspect.getsourcelines(obj)[1] == line, name


def _plain_model() -> torch.nn.Module:
    torch.manual_seed(4)
    return torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(3, 3, 2, padding="same", dilation=2, bias=False), torch.nn.Tanh(),
        torch.nn.Flatten(), torch.nn.Linear(27, N_CLASSES))


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("method", sorted(RULES))
def test_converted_model_fast_path_equals_reference_path(method: str, order: str) -> None:
    """deepnets.convert(..., fast=False): a converted model's strided, dilated and 'same'-padded
    convolutions and its linear layer step the same on both paths (fp32 tolerance)."""
    states = []
    for fast in (True, False):
        net = convert(_plain_model(), method, seed=5, fast=fast)
        gen = torch.Generator().manual_seed(6)
        torch.manual_seed(7)
        for _ in range(STEPS):
            x = torch.rand(8, *SHAPE, generator=gen)
            y = torch.randint(0, N_CLASSES, (8,), generator=gen)
            train_step(net, x, y, make_loss("softmax", N_CLASSES), lr=0.1, update_order=order)
        states.append(net.state_dict())
    for name, value in states[0].items():
        torch.testing.assert_close(value, states[1][name], **FP32_TOL,
                                   msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("method", sorted(RULES))
def test_the_orders_differ_only_where_the_error_goes_through_weights_that_move(method: str) -> None:
    """Remark 1's sequential order changes what goes down only through weights the step has just
    changed: W^t (bp) or a learnt R (urfb, kp, ...). Where the error goes through a fixed R
    (frfb, the sign rules that do not learn R) or directly (dfa), both orders are the same
    training, step for step; where it goes through moving weights they part at the first step
    (deepnets.nn.reference, both paths)."""
    rule = RULES[method]
    same = rule.error_path == "direct" or (rule.error_path == "R" and not rule.learns_feedback)
    arch = "conv 3 3x3; maxpool 2; full 5; output"
    for fast in (False, True):
        nets = {order: _train(arch, method, order, "fp32", fast)[0] for order in ORDERS}
        a, b = (nets[order].state_dict() for order in ORDERS)
        if same:
            for k in a:
                torch.testing.assert_close(a[k], b[k], **FP32_TOL, msg=k)
        else:
            assert any(not torch.allclose(a[k], b[k], **FP32_TOL) for k in a), method
