"""The training stepper (deepnets.training.capture): replay bookkeeping, eager fallback, no host
syncs.

Without a GPU a CUDA graph cannot be recorded; these tests check everything around it: a step
makes no host synchronisation on the code path CUDA takes (run on the meta device, where any
``.item()`` or ``bool(tensor)`` raises), and the stepper's static index buffer, metric sums,
warm-up, smaller last batch and fallback, with a recorder that replays the step as a plain
call. The tests that need CUDA record real graphs (``benchmarks/gpu_check.sh`` runs them).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from deepnets.nn.alignment import alignment
from deepnets.nn.layers import feedback_layers
from deepnets.nn.losses import make_loss
from deepnets.nn.network import FeedbackNet
from deepnets.rules import RULES
from deepnets.training.capture import WARMUP_STEPS, CaptureError, TrainStepper, cuda_graph_capture
from deepnets.training.config import TrainConfig
from deepnets.training.rundir import read_log
from deepnets.training.trainer import run
from urfb_common import images_to_float

ARCHS = {
    "dense+dropout": ("full 24; drop 0.5; full 10; output", (3, 4, 4)),
    "conv+pool+sum": ("conv 4 3x3; maxpool 3; conv 4 3x3; conv 4 3x3; sum; drop 0.3; output", (3, 8, 8)),
    "untied+pool": ("untied 3 3x3; maxpool 2; output", (3, 6, 6)),
}
#: Every rule of the registry but direct feedback, which reads its B_l's seed on the host on its
#: first step (tested below: ``test_dfa_syncs_only_on_its_first_step``).
SYNC_FREE = tuple(name for name, rule in RULES.items() if rule.error_path != "direct")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _data(n: int, shape: tuple[int, ...], device: str = "cpu", seed: int = 0
          ) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, *shape), generator=gen, dtype=torch.uint8)
    y = torch.randint(0, 10, (n,), generator=gen)
    return x.to(device), y.to(device)


def _train(stepper: TrainStepper, n: int, batch: int, epochs: int, seed: int = 1
           ) -> list[tuple[float, int]]:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout's draws
    totals = []
    for _ in range(epochs):
        stepper.start_epoch()
        order = torch.randperm(n, generator=gen).to(stepper.x.device)
        for start in range(0, n, batch):
            stepper.step(order[start : start + batch])
        loss_sum, errors = stepper.totals()
        totals.append((float(loss_sum), int(errors)))
    return totals


def _stepper(arch: str, shape: tuple[int, ...], method: str, device: str = "cpu",
             loss: str = "hinge", **kw) -> TrainStepper:
    net = FeedbackNet(arch, in_shape=shape, method=method, seed=3).to(device)
    x, y = _data(46, shape, device)
    return TrainStepper(net, make_loss(loss, 10), x, y, lr=0.05, batch_size=8, **kw)


def _state(stepper: TrainStepper) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in stepper.net.state_dict().items()}


class _Recorder:
    """Stands in for the CUDA graph: records the body (without running it) and replays it."""

    def __init__(self) -> None:
        self.captures = 0
        self.replays = 0

    def __call__(self, body):
        self.captures += 1

        def replay() -> None:
            self.replays += 1
            body()

        return replay


@pytest.mark.parametrize("order", ["simultaneous", "sequential"])
@pytest.mark.parametrize("kind", list(ARCHS))
@pytest.mark.parametrize("method", SYNC_FREE)
def test_step_makes_no_host_sync(method: str, kind: str, order: str) -> None:
    """A capturable step: on the meta device (the code path CUDA takes, no CPU fast paths)
    any .item(), bool(tensor), .tolist() or copy to the host raises."""
    arch, shape = ARCHS[kind]
    net = FeedbackNet(arch, in_shape=shape, method=method, seed=3).to("meta")
    x = torch.empty(16, *shape, dtype=torch.uint8, device="meta")
    y = torch.empty(16, dtype=torch.int64, device="meta")
    stepper = TrainStepper(net, make_loss("hinge", 10), x, y, lr=0.1, batch_size=8,
                           update_order=order, mode="off")
    idx = torch.empty(8, dtype=torch.int64, device="meta")
    for _ in range(2):
        stepper.step(idx)
    assert stepper.totals()[0].device.type == "meta"


def test_paper_nets_step_without_host_sync() -> None:
    for arch in ("simpnet", "deepernet"):
        for precision in ("fp32", "bf16"):
            net = FeedbackNet(arch, method="urfb").to("meta")
            x = torch.empty(4, 3, 32, 32, dtype=torch.uint8, device="meta")
            y = torch.empty(4, dtype=torch.int64, device="meta")
            stepper = TrainStepper(net, make_loss("hinge", 10), x, y, lr=0.1, batch_size=4,
                                   precision=precision, mode="off")
            stepper.step(torch.empty(4, dtype=torch.int64, device="meta"))


class _CountSyncs(TorchDispatchMode):
    """Counts host synchronisations: every .item() / bool() / int() of a tensor dispatches
    aten._local_scalar_dense."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("loss", ["hinge", "softmax"])
def test_dfa_syncs_only_on_its_first_step(loss: str) -> None:
    """DFA draws B_l on its first step (reading the layer's seed, a sync); the warm-up steps
    before a capture do that, and later steps make no sync."""
    stepper = _stepper(*ARCHS["dense+dropout"], "dfa", loss=loss, mode="off")
    idx = torch.arange(8)
    with _CountSyncs() as first:
        stepper.step(idx)
    with _CountSyncs() as later:
        stepper.step(idx)
        stepper.step(idx)
    assert first.count > 0
    assert later.count == 0


def _dfa_matrices(net: torch.nn.Module) -> dict[tuple, torch.Tensor]:
    return {(i, key): b for i, layer in enumerate(feedback_layers(net))
            for key, (_, _, b) in layer.__dict__.get("_direct_cache", {}).items()}


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_probe_between_steps_keeps_dfa_matrices_and_syncs_nothing(precision: str) -> None:
    """The alignment probe between replays (fp32, also under bf16 training) leaves the B_l a
    graph reads in place, and the next step makes no sync."""
    stepper = _stepper(*ARCHS["dense+dropout"], "dfa", mode="off", precision=precision)
    idx = torch.arange(8)
    stepper.step(idx)
    before = _dfa_matrices(stepper.net)
    x = images_to_float(stepper.x[:8])
    alignment(stepper.net, x, stepper.y[:8], stepper.loss_fn)
    with _CountSyncs() as after_probe:
        stepper.step(idx)
    assert after_probe.count == 0
    after = _dfa_matrices(stepper.net)
    assert all(after[k] is b for k, b in before.items())


def test_a_new_dfa_seed_is_drawn_into_the_same_tensor() -> None:
    stepper = _stepper(*ARCHS["dense+dropout"], "dfa", mode="off")
    stepper.step(torch.arange(8))
    (key, b), *_ = _dfa_matrices(stepper.net).items()
    old = b.clone()
    other = FeedbackNet(ARCHS["dense+dropout"][0], in_shape=ARCHS["dense+dropout"][1],
                        method="dfa", seed=4)
    stepper.net.load_state_dict(other.state_dict())
    stepper.step(torch.arange(8))
    assert _dfa_matrices(stepper.net)[key] is b and not torch.equal(b, old)


@pytest.mark.parametrize("kind", list(ARCHS))
@pytest.mark.parametrize("method", ["urfb", "brsf", "kp"])
def test_replayed_step_equals_eager(method: str, kind: str) -> None:
    """Capture once after the warm-up, replay every later full batch with the batch's indices
    copied into the static buffer, run the smaller last batch eagerly: the same weights and
    metric sums, bit for bit, as the eager loop, over several epochs."""
    recorder = _Recorder()
    eager = _stepper(*ARCHS[kind], method, mode="off")
    replayed = _stepper(*ARCHS[kind], method, mode="auto", capture=recorder)
    assert _train(eager, 46, 8, epochs=3) == _train(replayed, 46, 8, epochs=3)
    a, b = _state(eager), _state(replayed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert replayed.captured and not eager.captured
    full_batches = 3 * (46 // 8)
    assert recorder.captures == 1
    assert recorder.replays == full_batches - WARMUP_STEPS


def test_failed_capture_falls_back_to_eager_in_auto_mode() -> None:
    """A capture that fails part-way (gradients half made) leaves the stepper eager, with one
    warning, and the run the same as the eager one."""
    nets = []

    def broken(body):
        for p in nets[0].parameters():
            p.grad = torch.ones_like(p)
        raise RuntimeError("operation not permitted when stream is capturing")

    eager = _stepper(*ARCHS["conv+pool+sum"], "urfb", mode="off")
    fallback = _stepper(*ARCHS["conv+pool+sum"], "urfb", mode="auto", capture=broken)
    nets.append(fallback.net)
    want = _train(eager, 46, 8, epochs=1)
    with pytest.warns(UserWarning, match="capture failed, training eagerly"):
        got = _train(fallback, 46, 8, epochs=1)
    assert got == want and not fallback.captured
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        assert _train(fallback, 46, 8, epochs=1) == _train(eager, 46, 8, epochs=1)
    a, b = _state(eager), _state(fallback)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_failed_capture_is_an_error_in_on_mode() -> None:
    def broken(body):
        raise RuntimeError("not capturable")

    stepper = _stepper(*ARCHS["dense+dropout"], "frfb", mode="on", capture=broken)
    with pytest.raises(CaptureError, match="could not be captured: not capturable"):
        _train(stepper, 46, 8, epochs=1)


def test_cpu_runs_eagerly_and_on_mode_needs_cuda() -> None:
    assert not _stepper(*ARCHS["dense+dropout"], "urfb", mode="auto")._capture
    with pytest.raises(CaptureError, match="needs a CUDA device"):
        _stepper(*ARCHS["dense+dropout"], "urfb", mode="on")
    with pytest.raises(ValueError, match="cuda_graph must be one of"):
        _stepper(*ARCHS["dense+dropout"], "urfb", mode="yes")


@cuda
@pytest.mark.parametrize("order", ["simultaneous", "sequential"])
@pytest.mark.parametrize("kind", list(ARCHS))
@pytest.mark.parametrize("method", list(RULES))
def test_cuda_graph_replay_matches_eager_on_the_gpu(method: str, kind: str, order: str) -> None:
    _check_graph_matches_eager(method, kind, order)


def _check_graph_matches_eager(method: str, kind: str, order: str) -> None:
    """A real CUDA graph: the same metric sums and weights as the eager loop (dropout from
    the same generator state), to float32 rounding."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    results = []
    for mode in ("off", "on"):
        torch.cuda.manual_seed(5)
        stepper = _stepper(*ARCHS[kind], method, device="cuda", mode=mode, update_order=order)
        totals = _train(stepper, 46, 8, epochs=3)
        results.append((totals, _state(stepper), stepper.captured))
    (t_eager, s_eager, c_eager), (t_graph, s_graph, c_graph) = results
    assert c_graph and not c_eager
    for (la, ea), (lb, eb) in zip(t_eager, t_graph):
        assert la == pytest.approx(lb, rel=1e-5) and abs(ea - eb) <= 1
    for k in s_eager:
        torch.testing.assert_close(s_graph[k], s_eager[k], rtol=1e-4, atol=1e-5)


@cuda
@pytest.mark.parametrize("method", ["urfb", "dfa"])
def test_cuda_graph_replay_in_the_trainer_matches_eager(
    cifar: Path, tmp_path: Path, method: str
) -> None:
    """Whole runs on the GPU, probe between replays included: the logs agree with eager runs."""
    logs = {}
    for mode in ("off", "on"):
        cfg = TrainConfig(epochs=3, data_dir=str(cifar), arch=ARCHS["dense+dropout"][0],
                          method=method, val_size=8, batch_size=8, probe_size=4, device="cuda",
                          cuda_graph=mode)
        run(cfg, tmp_path / mode, quiet=True)
        logs[mode] = read_log(tmp_path / mode)
    for a, b in zip(logs["off"], logs["on"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_error"] == pytest.approx(b["val_error"], abs=0.13)


@cuda
def test_cuda_graph_replay_after_a_failed_capture_trains_eagerly() -> None:
    """Runs last: a capture that a host sync breaks falls back to eager steps, dropout and all."""
    def breaks(body):
        def synced() -> None:
            body()
            float(stepper.loss_sum)  # a host read: not allowed while capturing
        return cuda_graph_capture(synced)

    stepper = _stepper(*ARCHS["dense+dropout"], "urfb", device="cuda", mode="auto",
                       capture=breaks)
    with pytest.warns(UserWarning, match="capture failed, training eagerly"):
        _train(stepper, 46, 8, epochs=2)
    assert not stepper.captured and not torch.cuda.is_current_stream_capturing()
    assert torch.isfinite(stepper.totals()[0])
    # a later capture in the same process still works and matches the eager step
    _check_graph_matches_eager("urfb", "conv+pool+sum", "simultaneous")
