"""``--precision auto`` (issue 18, part 1): decided from the hardware in deepnets.nn.policy,
recorded in config.json as the precision used, kept on resume; validation, the probe and
scoring in the run's precision (``eval_precision``), fp32 for a config.json written before it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from deepnets import suite
from deepnets import train as train_mod
from deepnets.experiments import runs
from deepnets.experiments.grid import SuiteError, grid
from deepnets.experiments.runs import Settings, run_state, train_config
from deepnets.experiments.scoring import evaluate_run
from deepnets.nn import policy
from deepnets.nn.alignment import alignment
from deepnets.nn.losses import make_loss
from deepnets.nn.network import FeedbackNet
from deepnets.training import checkpoint as ckpt
from deepnets.training import trainer
from deepnets.training.checkpoint import load_checkpoint
from deepnets.training.config import SCHEMA_VERSION, ConfigError, TrainConfig
from deepnets.training.engine import evaluate
from deepnets.training.rundir import read_log

TINY = "conv 4 3x3; maxpool 3; drop .5; full 16; drop .3; output"


def amx(monkeypatch: pytest.MonkeyPatch, present: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: present)


# ---------------------------------------------------------------- the decision


def test_auto_is_bf16_on_a_cpu_with_amx_tiles_only(monkeypatch: pytest.MonkeyPatch) -> None:
    amx(monkeypatch, True)
    assert policy.auto_precision("cpu") == "bf16" == policy.resolve_precision("auto", "cpu")
    assert policy.cpu_bf16_hardware()["amx_tiles"] is True
    assert policy.resolve_precision("fp32", "cpu") == "fp32"  # a given precision stays
    amx(monkeypatch, False)
    assert policy.auto_precision("cpu") == "fp32"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert policy.auto_precision("cpu") == "fp32"  # bf16 instructions alone: half fp32's rate

    def broken() -> bool:
        raise RuntimeError("no cpuinfo")

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", broken)
    assert policy.cpu_bf16_hardware()["amx_tiles"] is None
    assert policy.auto_precision("cpu") == "fp32"
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")  # a torch without the probe
    assert policy.cpu_bf16_hardware()["amx_tiles"] is None
    assert policy.auto_precision("cpu") == "fp32"


@pytest.mark.parametrize(("capability", "expected"),
                         [((9, 0), "bf16"), ((8, 0), "bf16"), ((7, 5), "fp32"), ((6, 1), "fp32")])
def test_auto_on_cuda_is_bf16_with_bf16_tensor_cores(
    monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int], expected: str
) -> None:
    amx(monkeypatch, True)  # the host CPU does not decide for a CUDA device
    seen: list[str] = []

    def device_capability(device: str) -> tuple[int, int]:
        seen.append(device)
        return capability

    monkeypatch.setattr(torch.cuda, "get_device_capability", device_capability)
    assert policy.auto_precision("cuda:1") == expected and seen == ["cuda:1"]


def test_auto_on_cuda_without_a_usable_device_is_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_device(device: str) -> tuple[int, int]:
        raise AssertionError("Torch not compiled with CUDA enabled")

    monkeypatch.setattr(torch.cuda, "get_device_capability", no_device)
    assert policy.auto_precision("cuda") == "fp32"


# ---------------------------------------------------------------- config.json


def test_config_round_trip_and_old_configs_evaluate_in_fp32() -> None:
    bf16 = TrainConfig(epochs=1, data_dir="d", precision="bf16")
    assert bf16.eval_precision == "bf16"
    d = bf16.to_json_dict()
    assert (d["precision"], d["eval_precision"]) == ("bf16", "bf16")
    assert TrainConfig.from_json_dict(json.loads(json.dumps(d))) == bf16
    old = {k: v for k, v in d.items() if k != "eval_precision"}  # written before the key
    assert TrainConfig.from_json_dict(old) == bf16.replace(eval_precision="fp32")
    fp32 = TrainConfig(epochs=1, data_dir="d")
    assert fp32.eval_precision == "fp32" and fp32.identity()["eval_precision"] == "fp32"
    assert "eval_precision" not in fp32.to_json_dict()  # as code from before the key wrote it
    assert TrainConfig.from_json_dict(fp32.to_json_dict()) == fp32
    assert bf16.identity() != bf16.replace(eval_precision="fp32").identity()
    auto = TrainConfig(epochs=1, data_dir="d", precision="auto")
    assert auto.eval_precision is None  # until the trainer resolves the precision
    assert auto.replace(precision="bf16").eval_precision == "bf16"
    with pytest.raises(ConfigError, match="--eval-precision 'auto': must be one of fp32, bf16"):
        TrainConfig(epochs=1, data_dir="d", eval_precision="auto")
    with pytest.raises(ConfigError, match="--precision 'fp16': must be one of fp32, bf16, auto"):
        TrainConfig(epochs=1, data_dir="d", precision="fp16")
    with pytest.raises(ConfigError, match="config.json: key 'precision' must be one of fp32, "
                       "bf16, found 'auto'"):  # a run records the precision it used
        TrainConfig.from_json_dict({**d, "precision": "auto"})


def test_resuming_takes_the_runs_precisions_where_the_asked_config_leaves_them_open() -> None:
    old_bf16 = TrainConfig(epochs=1, data_dir="d", precision="bf16", eval_precision="fp32")
    asked = TrainConfig(epochs=1, data_dir="d", precision="bf16")  # eval follows: bf16
    assert asked.resuming(old_bf16).identity() == old_bf16.identity()
    auto = TrainConfig(epochs=1, data_dir="d", precision="auto")
    assert auto.resuming(old_bf16).identity() == old_bf16.identity()
    fp32 = TrainConfig(epochs=1, data_dir="d")
    assert fp32.resuming(old_bf16).precision == "fp32"  # another precision: reported later
    bf16_eval = asked.replace(eval_precision="bf16", precision="fp32")  # asked explicitly
    assert bf16_eval.resuming(fp32).eval_precision == "bf16"


# ---------------------------------------------------------------- training and resuming


def train_args(cifar: Path, out: Path, *extra: str, epochs: int) -> list[str]:
    return ["--arch", TINY, "--data", "cifar10", "--data-dir", str(cifar), "--val-size", "8",
            "--batch-size", "8", "--epochs", str(epochs), "--out", str(out), "--quiet",
            "--device", "cpu", "--probe-size", "4", *extra]


def assert_same_run(a: Path, b: Path) -> None:
    sa, sb = load_checkpoint(a), load_checkpoint(b)
    assert sa is not None and sb is not None and sa["epoch"] == sb["epoch"]
    for key in sa["net"]:
        assert torch.equal(sa["net"][key], sb["net"][key]), key
    strip = [{k: v for k, v in r.items() if "seconds" not in k} for r in read_log(a)]
    assert strip == [{k: v for k, v in r.items() if "seconds" not in k} for r in read_log(b)]


def spy_precisions(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The precisions the trainer hands validation and the probe, call by call."""
    seen: dict[str, list[str]] = {"evaluate": [], "alignment": []}
    real_evaluate, real_alignment = trainer.evaluate, trainer.alignment

    def evaluate_spy(*a: object, precision: str = "fp32", **k: object) -> object:
        seen["evaluate"].append(precision)
        return real_evaluate(*a, precision=precision, **k)

    def alignment_spy(*a: object, precision: str = "fp32", **k: object) -> object:
        seen["alignment"].append(precision)
        return real_alignment(*a, precision=precision, **k)

    monkeypatch.setattr(trainer, "evaluate", evaluate_spy)
    monkeypatch.setattr(trainer, "alignment", alignment_spy)
    return seen


def test_an_auto_run_records_bf16_on_amx_and_keeps_it_on_resume_elsewhere(
    cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert train_mod.main(train_args(cifar, whole, "--precision", "bf16", epochs=2)) == 0
    amx(monkeypatch, True)
    seen = spy_precisions(monkeypatch)
    assert train_mod.main(train_args(cifar, parts, "--precision", "auto", epochs=1)) == 0
    stored = json.loads((parts / "config.json").read_text())
    assert (stored["precision"], stored["eval_precision"]) == ("bf16", "bf16")
    assert set(seen["evaluate"]) == set(seen["alignment"]) == {"bf16"}
    amx(monkeypatch, False)  # resumed on a machine where auto would choose fp32
    assert train_mod.main(train_args(cifar, parts, "--precision", "auto", "--resume",
                                     epochs=2)) == 0
    assert json.loads((parts / "config.json").read_text())["precision"] == "bf16"
    assert_same_run(whole, parts)  # bf16 throughout, as the uninterrupted run
    auto = trainer.stored_config(parts).replace(precision="auto", eval_precision=None, epochs=3)
    trainer.run(auto, parts, resume=True, quiet=True)  # as the suite resumes an auto run
    assert json.loads((parts / "config.json").read_text())["precision"] == "bf16"
    assert seen["evaluate"][-1] == "bf16" and len(read_log(parts)) == 3
    last = read_log(parts)[-1]  # scoring the run evaluates as its validation did
    score = evaluate_run(parts, kind="cifar10", data_dir=cifar, device="cpu", which="last")
    assert (score.loss, score.error) == (last["val_loss"], last["val_error"])
    assert train_mod.main(train_args(cifar, parts, "--precision", "fp32", "--resume",
                                     epochs=3)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--precision 'fp32' differs from the run's config.json" in err


def test_a_bf16_run_of_an_old_config_json_resumes_exactly_evaluating_in_fp32(
    cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bf16 run written before ``eval_precision`` (validated and probed in fp32) resumes
    with fp32 validation, bit-identical to an uninterrupted run of those settings."""
    whole, old = tmp_path / "whole", tmp_path / "old"
    bf16 = ("--precision", "bf16", "--eval-precision", "fp32")
    assert train_mod.main(train_args(cifar, whole, *bf16, epochs=2)) == 0
    assert train_mod.main(train_args(cifar, old, *bf16, epochs=1)) == 0
    config = json.loads((old / "config.json").read_text())  # the layout from before the key:
    assert config["precision"] == "bf16" and "eval_precision" not in config  # absent is fp32
    seen = spy_precisions(monkeypatch)
    assert train_mod.main(train_args(cifar, old, "--resume", epochs=2)) == 0
    assert seen == {"evaluate": ["fp32"], "alignment": ["fp32"]}
    assert_same_run(whole, old)
    assert train_mod.main(train_args(cifar, old, "--resume", "--eval-precision", "fp32",
                                     epochs=2)) == 0  # repeating the run's own value is fine
    assert "eval_precision" not in json.loads((old / "config.json").read_text())


def test_a_precision_edited_into_config_json_after_training_began_is_refused(
    cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The checkpoint keeps the config it was trained with: a config.json edited by hand
    between epochs stops the resume (one line) instead of training on in another arithmetic.
    The kept config is compared as today's code reads it (an older layout of the same settings
    resumes), and a checkpoint written before it was kept resumes as it did."""
    run = tmp_path / "run"
    assert train_mod.main(train_args(cifar, run, epochs=1)) == 0
    original = (run / "config.json").read_text()
    config = json.loads(original)
    assert config["precision"] == "fp32"
    (run / "config.json").write_text(json.dumps({**config, "precision": "bf16"}))
    before = (run / "checkpoint.pt").read_bytes()
    assert train_mod.main(train_args(cifar, run, "--precision", "auto", "--resume",
                                     epochs=2)) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert (f"{run / 'config.json'} does not match the settings {run / 'checkpoint.pt'} was "
            "trained with: precision='bf16' there, 'fp32' in the checkpoint") in err
    assert (run / "checkpoint.pt").read_bytes() == before and len(read_log(run)) == 1
    (run / "config.json").write_text(original)  # restored, and the checkpoint's copy made
    state = load_checkpoint(run)  # older (schema 2: the same settings in an older layout)
    assert state is not None
    kept = json.loads(state[ckpt.TRAINED_CONFIG])
    assert kept["precision"] == "fp32" and kept["schema_version"] == SCHEMA_VERSION
    state[ckpt.TRAINED_CONFIG] = json.dumps({**kept, "schema_version": 2})
    torch.save(state, run / "checkpoint.pt")
    assert train_mod.main(train_args(cifar, run, "--resume", epochs=2)) == 0
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "precision": "bf16"}))
    state = load_checkpoint(run)  # as a checkpoint from before the key: not checked
    assert state is not None
    del state[ckpt.TRAINED_CONFIG]
    torch.save(state, run / "checkpoint.pt")
    assert train_mod.main(train_args(cifar, run, "--precision", "auto", "--resume",
                                     epochs=3)) == 0
    assert json.loads((run / "config.json").read_text())["precision"] == "bf16"


def test_bad_precision_values_are_one_line_cli_errors(
    cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for main, argv, prog in (
        (train_mod.main, train_args(cifar, tmp_path / "r", "--precision", "fp16", epochs=1),
         "python -m deepnets.train"),
        (train_mod.main, train_args(cifar, tmp_path / "r", "--eval-precision", "auto", epochs=1),
         "python -m deepnets.train"),
        (suite.main, ["10", "--dry-run", "--out", str(tmp_path), "--precision", "half"],
         "python -m deepnets.suite"),
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        last = err.strip().splitlines()[-1]
        assert "Traceback" not in err and last.startswith(f"{prog}: error: argument --"), err
        assert "invalid choice" in last
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------- the suite


def test_the_suite_passes_its_precision_to_every_run_and_auto_resumes_stored_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    trained: list[TrainConfig] = []
    monkeypatch.setattr(runs, "run", lambda cfg, out, **k: trained.append(cfg))
    data = tmp_path / "data"
    data.mkdir()
    base = ["10", "--data-dir", str(data), "--out", str(tmp_path / "runs"), "--device", "cpu",
            "--estimate-steps", "0", "--quiet", "--protocols", "urfb"]
    assert suite.main(base) == 0
    assert suite.main([*base, "--precision", "auto"]) == 0
    assert [c.precision for c in trained] == ["fp32", "auto"]  # auto: each new run resolves it
    assert "held issue 18's paired convergence check" in " ".join(suite.build_parser().format_help().split())

    spec = grid(10, 2, 1)[0].with_seed(0)
    s = Settings({"cifar10": data}, "cifar10", 500, 0.1, 5000, None, "cpu", None, True)
    stored = train_config(spec, tmp_path, replace(s, precision="bf16"))
    (tmp_path / spec.name).mkdir()
    (tmp_path / spec.name / "config.json").write_text(json.dumps(stored.to_json_dict()))
    amx(monkeypatch, False)
    assert run_state(spec, tmp_path, replace(s, precision="auto")) == ("resume", 0)
    assert run_state(spec, tmp_path, replace(s, precision="bf16")) == ("resume", 0)
    with pytest.raises(SuiteError, match="precision='bf16' \\(asked 'fp32'\\)"):
        run_state(spec, tmp_path, s)
    old = {k: v for k, v in stored.to_json_dict().items() if k != "eval_precision"}
    (tmp_path / spec.name / "config.json").write_text(json.dumps(old))  # before the key: fp32
    assert run_state(spec, tmp_path, replace(s, precision="bf16")) == ("resume", 0)


# ---------------------------------------------------------------- evaluation and the probe


def _input_dtypes(net: FeedbackNet) -> list[torch.dtype]:
    dtypes: list[torch.dtype] = []
    for layer in net.weight_layers:
        layer.register_forward_pre_hook(lambda m, args: dtypes.append(args[0].dtype))
    return dtypes


def test_evaluation_and_the_probe_compute_in_the_precision_given() -> None:
    net = FeedbackNet(TINY, in_shape=(3, 8, 8), n_classes=10, seed=0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (12, 3, 8, 8), generator=gen, dtype=torch.uint8)
    y = torch.randint(0, 10, (12,), generator=gen)
    loss_fn = make_loss("hinge", 10)
    dtypes = _input_dtypes(net)
    fp32 = evaluate(net, x, y, loss_fn, batch_size=5)
    assert set(dtypes) == {torch.float32}
    dtypes.clear()
    bf16 = evaluate(net, x, y, loss_fn, batch_size=5, precision="bf16")
    assert set(dtypes) == {torch.bfloat16}
    assert bf16[0] == pytest.approx(fp32[0], rel=0.05) and bf16 != fp32  # bf16, not fp32 again
    dtypes.clear()
    probe = alignment(net, x, y, loss_fn, precision="bf16")
    assert set(dtypes) == {torch.bfloat16}
    exact = alignment(net, x, y, loss_fn)
    assert probe.keys() == exact.keys() and probe != exact
    for name, measures in probe.items():  # bf16 rounding moves an angle by little
        for key, value in measures.items():
            assert (value is None) == (exact[name][key] is None), (name, key)
            if value is not None:
                assert value == pytest.approx(exact[name][key], abs=3.0), (name, key)
    for bad in (lambda: evaluate(net, x, y, loss_fn, precision="fp16"),
                lambda: alignment(net, x, y, loss_fn, precision="fp16")):
        with pytest.raises(ValueError, match="precision must be one of"):
            bad()
