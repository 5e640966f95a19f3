"""deepnets.experiments.pack (``suite --pack N``): a packed run is the run trained alone, bit for
bit on the CPU (same initial weights, data order, dropout draws, log and checkpoint), for every rule
of the registry, both update orders, a grid that mixes protocols, and a pack resumed in two legs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deepnets import suite
from deepnets.experiments.launch import Job
from deepnets.experiments.pack import RandomStreams, train_packed
from deepnets.rules import RULES
from deepnets.training import capture, trainer
from deepnets.training.checkpoint import load_checkpoint
from deepnets.training.config import TrainConfig
from deepnets.training.engine import UPDATE_ORDERS
from deepnets.training.minidata import tiny_cifar_folder
from deepnets.training.rundir import read_config, read_log
from deepnets.training.trainer import run

#: Dropout on two layers: a run drawing from another run's stream would show.
ARCH = "conv 4 3x3; maxpool 3; drop .5; full 16; drop .3; output"
TIMES = ("seconds", "train_seconds", "probe_seconds", "cpu_seconds")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _config(cifar: Path, method: str, order: str, seed: int, device: str = "cpu",
            **kw) -> TrainConfig:
    # 32 training images in batches of 12: two full batches and a last one of 8 per epoch
    return TrainConfig(epochs=2, data_dir=str(cifar), arch=ARCH, method=method,
                       update_order=order, seed=seed, val_size=8, batch_size=12, probe_size=6,
                       device=device, **kw)


def _untimed(folder: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMES} for r in read_log(folder)]


def assert_same_run(packed: Path, alone: Path) -> None:
    """Same config.json, log (but for its wall and CPU times) and checkpoint, bit for bit."""
    assert read_config(packed) == read_config(alone)
    assert _untimed(packed) == _untimed(alone)
    a, b = load_checkpoint(packed), load_checkpoint(alone)
    assert a is not None and b is not None and a["epoch"] == b["epoch"]
    assert a["net"].keys() == b["net"].keys()
    for key in a["net"]:
        assert torch.equal(a["net"][key], b["net"][key]), key
    for rng in ("torch_rng", "order_rng"):
        assert torch.equal(a[rng], b[rng]), rng


def test_packed_runs_of_every_rule_and_update_order_equal_the_runs_alone(
    cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = [(m, o) for m in RULES for o in UPDATE_ORDERS]
    jobs = [Job(f"{m}-{o}", _config(cifar, m, o, seed=i), tmp_path / "pack" / f"{m}-{o}")
            for i, (m, o) in enumerate(cases)]
    steppers: list[int] = []
    step = capture.TrainStepper.step

    def spied(self: capture.TrainStepper, idx: torch.Tensor) -> None:
        steppers.append(id(self))
        step(self, idx)

    monkeypatch.setattr(capture.TrainStepper, "step", spied)
    outcomes = train_packed(jobs, 5, "cpu", progress=False)
    assert [o.status for o in outcomes] == ["ok"] * len(jobs)
    assert len(set(steppers[:5])) == 5  # the first round: one step of each of 5 runs
    assert len(steppers) == len(jobs) * 2 * 3
    monkeypatch.setattr(capture.TrainStepper, "step", step)
    for job in jobs:
        run(job.config, tmp_path / "alone" / job.name, quiet=True)
        assert_same_run(job.folder, tmp_path / "alone" / job.name)


def test_random_streams_are_swapped_in_and_kept() -> None:
    torch.manual_seed(1)
    streams = RandomStreams("cpu")
    first = torch.rand(3)
    torch.manual_seed(2)
    home = torch.get_rng_state()
    with streams.installed():
        assert torch.equal(torch.rand(3), first)
    assert torch.equal(torch.get_rng_state(), home)
    with streams.installed():  # continues where it stopped
        later = torch.rand(2)
    torch.manual_seed(1)
    assert torch.equal(torch.rand(5)[3:], later)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_cifar_folder(tmp_path_factory.mktemp("data"))  # 10 classes x 4 images


def _suite(data: Path, out: Path, epochs: int, *extra: str) -> int:
    return suite.main(["4", "--data", "imagefolder", "--data-dir", str(data), "--out", str(out),
                       "--epochs", str(epochs), "--train-size", "20", "--val-size", "10",
                       "--batch-size", "10", "--device", "cpu", "--estimate-steps", "0",
                       "--probe-size", "4", "--quiet", *extra])


def test_a_pack_of_mixed_protocols_resumed_in_two_legs_equals_the_grid_alone(
    data: Path, tmp_path: Path
) -> None:
    """Figure 4's six protocols (BP with softmax, the rest hinge; dense and 50% masks), 4 at a
    time: stopped after epoch 1 and resumed to 2, the runs equal the serial grid's."""
    assert _suite(data, tmp_path / "pack", 1, "--pack", "4") == 0
    assert _suite(data, tmp_path / "pack", 2, "--pack", "4") == 0
    assert _suite(data, tmp_path / "alone", 2) == 0
    names = sorted(p.name for p in (tmp_path / "alone").iterdir())
    assert len(names) == 6 and sorted(p.name for p in (tmp_path / "pack").iterdir()) == names
    for name in names:
        assert_same_run(tmp_path / "pack" / name, tmp_path / "alone" / name)


@pytest.mark.parametrize(("extra", "message"), [
    (("--pack", "0"), "argument --pack: must be >= 1"),
    (("--pack", "2", "--jobs", "2"), "argument --pack: packs runs in this one process"),
])
def test_bad_pack_arguments_exit_2(data: Path, tmp_path: Path, capsys, extra, message) -> None:
    with pytest.raises(SystemExit) as exc:
        _suite(data, tmp_path, 1, *extra)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_a_diverging_run_leaves_the_pack_and_the_others_finish(
    cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    verdicts = iter([False])  # the first epoch to end, the wild run's, ends non-finite
    monkeypatch.setattr(trainer, "_state_is_finite", lambda net: next(verdicts, True))
    jobs = [Job("wild", _config(cifar, "urfb", "simultaneous", 0), tmp_path / "wild"),
            Job("tame", _config(cifar, "urfb", "simultaneous", 1), tmp_path / "tame")]
    wild, tame = train_packed(jobs, 2, "cpu", progress=False)
    assert wild.status == "diverged" and "try a smaller --lr" in wild.message
    assert not (tmp_path / "wild").exists()  # no epoch finished: nothing left behind
    assert tame.status == "ok"
    run(jobs[1].config, tmp_path / "alone", quiet=True)
    assert_same_run(tmp_path / "tame", tmp_path / "alone")


@cuda
@pytest.mark.parametrize("graph", ["off", "on"])
def test_cuda_pack_matches_the_runs_alone_eager(cifar: Path, tmp_path: Path, graph: str) -> None:
    """On the GPU, each packed run on its own stream with its own CUDA generator state (with
    ``graph`` on, replaying its own captured step) against the same run alone and eager: the
    same losses and weights to float tolerance (a different dropout draw would be far off)."""
    jobs = [Job(m, _config(cifar, m, "simultaneous", i, device="cuda", cuda_graph=graph),
                tmp_path / "pack" / m) for i, m in enumerate(("urfb", "frfb", "brsf", "dfa"))]
    assert [o.status for o in train_packed(jobs, 4, "cuda", progress=False)] == ["ok"] * 4
    for job in jobs:
        alone = tmp_path / "alone" / job.name
        run(job.config.replace(cuda_graph="off"), alone, quiet=True)
        for a, b in zip(_untimed(job.folder), _untimed(alone), strict=True):
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        packed, eager = load_checkpoint(job.folder), load_checkpoint(alone)
        assert packed is not None and eager is not None
        for key in packed["net"]:
            torch.testing.assert_close(packed["net"][key], eager["net"][key], rtol=1e-4, atol=1e-5)
        if graph == "off":  # the same dropout draws, eager on both sides: the same offsets
            assert torch.equal(packed["cuda_rng"], eager["cuda_rng"])


def test_an_interrupted_pack_keeps_each_run_resumable_one_by_one(
    cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in the pack's 11th step (run 1's second of epoch 2): the runs keep epoch 1 and,
    resumed each on its own by the trainer, end as the runs trained alone."""
    jobs = [Job(m, _config(cifar, m, "sequential", i), tmp_path / "pack" / m)
            for i, m in enumerate(("urfb", "brsf", "frfb"))]
    calls = []
    step = capture.TrainStepper.step

    def interrupted(self: capture.TrainStepper, idx: torch.Tensor) -> None:
        calls.append(1)
        if len(calls) == 11:
            raise KeyboardInterrupt
        step(self, idx)

    monkeypatch.setattr(capture.TrainStepper, "step", interrupted)
    with pytest.raises(trainer.RunInterrupted, match="every run keeps its last finished epoch"):
        train_packed(jobs, 3, "cpu", progress=False)
    monkeypatch.setattr(capture.TrainStepper, "step", step)
    assert [len(read_log(j.folder)) for j in jobs] == [1, 1, 1]
    for job in jobs:
        run(job.config, job.folder, resume=True, quiet=True)
        run(job.config, tmp_path / "alone" / job.name, quiet=True)
        assert_same_run(job.folder, tmp_path / "alone" / job.name)


def test_a_run_waits_for_the_run_it_takes_from(cifar: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    source = Job("pre", _config(cifar, "urfb", "simultaneous", 0), tmp_path / "pre")
    retrain = Job("re", _config(cifar, "urfb", "simultaneous", 0, frozen=(0,), copy=(0,),
                                from_run=str(tmp_path / "pre")),
                  tmp_path / "re", after=tmp_path / "pre")
    other = Job("other", _config(cifar, "frfb", "simultaneous", 1), tmp_path / "other")
    order: list[str] = []
    step = capture.TrainStepper.step

    def spied(self: capture.TrainStepper, idx: torch.Tensor) -> None:
        config = self.net.config
        order.append(str(config["method"]) + ("-frozen" if config["frozen"] else ""))
        step(self, idx)

    monkeypatch.setattr(capture.TrainStepper, "step", spied)
    outcomes = train_packed([source, retrain, other], 3, "cpu", progress=False)
    assert [o.status for o in outcomes] == ["ok", "ok", "ok"]
    assert order[:2] == ["urfb", "frfb"]  # the retraining waits: two runs in the first round
    assert order.index("urfb-frozen") > max(i for i, m in enumerate(order) if m == "urfb")
