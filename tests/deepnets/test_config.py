"""TrainConfig (the one run description) and its config.json; the CLI flags parsed into it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from deepnets.nn.network import FeedbackNet
from deepnets.training.config import SCHEMA_VERSION, SEED_MAX, ConfigError, TrainConfig
from deepnets.training.runconfig import layer_list, parse_run
from figures.runs import Run


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 2, "data_dir": "data", **kw})


def test_json_round_trip_with_schema_version() -> None:
    a = cfg(arch="conv 4 3x3; conv 4 3x3; full 8; output", method="urfb", epsilon=0.5,
            untied=(1, 0, 1), frozen=(0,), seed=7, split_seed=3, train_size=10, rule_params={})
    d = a.to_json_dict()
    assert d["schema_version"] == SCHEMA_VERSION == 4
    assert d["untied"] == [0, 1] and d["frozen"] == [0] and d["train_size"] == 10
    assert "untie" not in d and "freeze" not in d
    b = TrainConfig.from_json_dict(json.loads(json.dumps(d)))
    assert b == a and b.untied == (0, 1)


def test_schema_2_configs_with_the_old_key_names_are_read() -> None:
    new = cfg(arch="conv 4 3x3; conv 4 3x3; full 8; output", untied=(1,), frozen=(0,))
    old = {"untie" if k == "untied" else "freeze" if k == "frozen" else k: v
           for k, v in new.to_json_dict().items()}
    old["schema_version"] = 2
    assert "untied" not in old and old["untie"] == [1] and old["freeze"] == [0]
    assert TrainConfig.from_json_dict(old) == new


@pytest.mark.parametrize(("change", "message"), [
    ({"lr": -1.0}, "config.json: key 'lr' -1.0: must be positive and at most 1e6"),
    ({"update_order": "sideways"}, "config.json: key 'update_order' 'sideways': must be one of"),
    ({"loss": "softmax", "mu": 0.5},
     "config.json: key 'mu' and key 'output_feedback' apply to key 'loss' hinge only"),
    ({"method": "urfb", "rule_params": {"bogus": 1.0}},
     "config.json: key 'rule_params': method 'urfb' takes no parameter bogus"),
])
def test_a_bad_value_in_config_json_is_named_by_its_key(change: dict, message: str) -> None:
    """Said of a stored run, an error names the config.json key, not the flag that made it."""
    with pytest.raises(ConfigError) as exc:
        TrainConfig.from_json_dict({**cfg().to_json_dict(), **change})
    assert str(exc.value).startswith(message) and "--" not in str(exc.value)


def test_epsilon_belongs_to_urfb_only() -> None:
    assert cfg(method="urfb").epsilon == 1.0
    assert cfg(method="frfb").epsilon is None and cfg(method="bp").epsilon is None
    with pytest.raises(ConfigError, match="--epsilon 0.5: applies to --method urfb only"):
        cfg(method="frfb", epsilon=0.5)
    for bad in (1e30, -0.1, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match=r"--epsilon .*must be in \[0, 1e6\]"):
            cfg(epsilon=bad)
    assert cfg(epsilon=1e6).epsilon == 1e6 and cfg(epsilon=0).epsilon == 0.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lr": 1e300}, "--lr 1e+300: must be positive and at most 1e6"),
        ({"lr": 0.0}, "--lr 0.0: must be positive"),
        ({"batch_size": 0}, "--batch-size 0: must be >= 1"),
        ({"train_size": 0}, "--train-size 0: must be >= 1"),
        ({"seed": -1}, f"--seed -1: must be in 0..{SEED_MAX}"),
        ({"split_seed": SEED_MAX + 1}, f"--split-seed {SEED_MAX + 1}: must be in 0..{SEED_MAX}"),
        ({"method": "xyz"}, "--method 'xyz': must be one of bp, frfb, urfb, kp"),
        ({"connectivity": 1.5}, "--connectivity 1.5: must be in (0, 1]"),
        ({"mu": float("inf")}, "--mu inf: must be in [0, 1]"),
        ({"loss": "softmax", "mu": 0.5}, "--mu and --output-feedback apply to --loss hinge only"),
        ({"copy": (0,)}, "--copy needs --from RUN_DIR"),
        ({"arch": "conv 4 3x3; pool 3; output"}, "--arch 'conv 4 3x3; pool 3; output': item 2"),
        ({"arch": "conv 4 3x3; output", "frozen": (0, 1)}, "freezes every weight layer"),
        ({"arch": "conv 4 3x3; full 3; output", "untied": (1,)}, "--untied [1]: not conv layers"),
        ({"arch": "conv 4 3x3; output", "frozen": (5,)}, "--frozen [5]: the network has weight layers 0..1"),
        ({"data_dir": ""}, "--data-dir is required"),
        ({"cuda_graph": "on", "output_feedback": "circuit"},
         "--cuda-graph on: --output-feedback circuit reads the logits on the host"),
    ],
)
def test_bad_values_name_the_flag(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        cfg(**changes)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_defaults_are_the_papers_protocol() -> None:
    """Remark 1's sequential order and eq. (1)'s missing bias, unless asked otherwise."""
    c = cfg()
    assert c.update_order == "sequential" and c.bias is False
    d = c.to_json_dict()
    assert d["update_order"] == "sequential" and d["bias"] is False
    assert TrainConfig.from_json_dict(d) == c


@pytest.mark.parametrize("version", [1, 2])
def test_older_configs_keep_the_settings_they_were_trained_with(version: int) -> None:
    """A config.json written before the paper's defaults and the network's key names (no
    ``bias`` key, the old order stored or absent, ``untie``/``freeze``) reads back as the run it
    was: biases, its own order, its untied and frozen layers."""
    arch = "conv 4 3x3; conv 4 3x3; full 8; output"
    new = cfg(method="urfb", seed=4, arch=arch, untied=(1,), frozen=(0,))
    renamed = {"untied": "untie", "frozen": "freeze"}
    old = {renamed.get(k, k): v for k, v in new.to_json_dict().items()
           if k not in ("bias", "untied_init")}
    old["update_order"] = "simultaneous"
    if version == 1:
        old.pop("schema_version")
    else:
        old["schema_version"] = 2
    back = TrainConfig.from_json_dict(old)
    assert back.bias is True and back.update_order == "simultaneous"
    assert back == new.replace(bias=True, update_order="simultaneous", untied_init="independent")
    assert (back.untied, back.frozen) == ((1,), (0,))
    old.pop("update_order")
    assert TrainConfig.from_json_dict(old).update_order == "simultaneous"
    old["update_order"] = "sequential"  # a stored value is kept as it is
    assert TrainConfig.from_json_dict(old).update_order == "sequential"
    named = {**{k: v for k, v in old.items() if k not in renamed.values()},
             "arch": "resnet-mini"}  # a named model keeps its own biases, not --bias
    assert TrainConfig.from_json_dict(named).bias is False


@pytest.mark.parametrize(("arch", "untied", "expected"), [
    ("conv 4 3x3; conv 4 3x3; full 8; output", [1], "independent"),
    ("conv 4 3x3; untied 4 3x3; full 8; output", [], "independent"),
    ("conv 4 3x3; conv 4 3x3; full 8; output", [], "replicated"),  # no untied layer: no change
])
def test_an_untied_run_of_schema_3_keeps_its_independent_start(arch: str, untied: list,
                                                               expected: str) -> None:
    stored = {k: v for k, v in cfg(arch=arch, untied=tuple(untied)).to_json_dict().items()
              if k != "untied_init"}
    stored["schema_version"] = 3
    assert TrainConfig.from_json_dict(stored).untied_init == expected
    assert cfg().untied_init == "replicated"  # today's default: the author's code's start
    with pytest.raises(ConfigError, match="--untied-init 'tiled': must be one of replicated, "
                                          "independent"):
        cfg(untied_init="tiled")


def test_bias_is_refused_for_a_named_model() -> None:
    with pytest.raises(ConfigError, match="--bias: --arch resnet-mini is a converted model"):
        cfg(arch="resnet-mini", bias=True)


def test_schema_1_configs_are_upgraded() -> None:
    old = {k: v for k, v in cfg(method="frfb", seed=4).to_json_dict().items()
           if k not in ("schema_version", "train_size", "split_seed")}
    old.update(train_subset=12, epsilon=1.0)  # the first landing stored epsilon for every method
    new = TrainConfig.from_json_dict(old)
    assert new.train_size == 12 and new.split_seed == 4 and new.epsilon is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "config.json: expected a JSON object, found list"),
        ("text", "config.json: expected a JSON object, found str"),
        ({"data_dir": "d"}, "config.json: missing key 'epochs'"),
        ({"epochs": "3", "data_dir": "d"}, "config.json: key 'epochs' must be int, found '3'"),
        ({"epochs": True, "data_dir": "d"}, "config.json: key 'epochs' must be int, found True"),
        ({"epochs": 3, "data_dir": "d", "lr": "fast"}, "key 'lr' must be float, found 'fast'"),
        ({"epochs": 3, "data_dir": "d", "schema_version": 3, "untied": "1"},
         "key 'untied' must be a list of integers"),
        ({"epochs": 3, "data_dir": "d", "schema_version": 3, "untie": [1]}, "unknown key 'untie'"),
        ({"epochs": 3, "data_dir": "d", "lr": 1e300}, "config.json: key 'lr' 1e+300: must be positive"),
        ({"epochs": 3, "data_dir": "d", "schema_version": "2"}, "'schema_version' must be an int"),
        ({"epochs": 3, "data_dir": "d", "schema_version": 99}, "'schema_version' must be an int"),
        ({"epochs": 3, "data_dir": "d", "learning_rate": 0.01}, "unknown key 'learning_rate'"),
        ({"epochs": 3, "data_dir": "d", "cuda_graph": "yes"},
         "config.json: key 'cuda_graph' 'yes': must be one of auto, on, off"),
    ],
)
def test_malformed_config_json_is_a_one_line_error(data: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_json_dict(data)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_identity_leaves_out_what_resume_may_change() -> None:
    a, b = cfg(), cfg(epochs=9, device="cpu", data_dir="elsewhere", cuda_graph="off")
    assert a.identity() == b.identity() and a.identity() != cfg(lr=0.2).identity()


def test_layer_lists() -> None:
    assert layer_list("0,2,4-5") == [0, 2, 4, 5] and layer_list("1-1") == [1]
    for bad, message in (("2-0", "the range 2-0 is reversed"), ("0,3-1", "reversed"),
                         ("x", "is not a layer list"), ("-1", "is not a layer list")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            layer_list(bad)


def test_parse_run_builds_the_config(tmp_path: Path) -> None:
    out = tmp_path / "run"
    config, got_out, resume, quiet, force = parse_run(
        ["--out", str(out), "--epochs", "3", "--data-dir", "d", "--method", "frfb",
         "--train-subset", "5", "--untied", "0", "--frozen", "1", "--arch", "conv 4 3x3; output",
         "--quiet"])
    assert (got_out, resume, quiet, force) == (out, False, True, False)
    assert config == cfg(epochs=3, data_dir="d", method="frfb", train_size=5, untied=(0,),
                         frozen=(1,), arch="conv 4 3x3; output")
    old_flags = ["--out", str(out), "--epochs", "3", "--data-dir", "d", "--method", "frfb",
                 "--train-subset", "5", "--untie", "0", "--freeze", "1", "--arch",
                 "conv 4 3x3; output", "--quiet"]
    assert parse_run(old_flags)[0] == config  # the flags' old spellings still work
    with pytest.raises(ConfigError, match="--epochs is required"):
        parse_run(["--out", str(out), "--data-dir", "d"])
    with pytest.raises(ConfigError, match="--force-data applies to --resume and --same-as only"):
        parse_run(["--out", str(out), "--epochs", "1", "--data-dir", "d", "--force-data"])


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("epochs", 2.5, "an integer"), ("epochs", True, "an integer"), ("epochs", "3", "an integer"),
        ("seed", 1.5, "an integer"), ("batch_size", 8.0, "an integer"),
        ("val_size", None, "an integer"), ("lr", "fast", "a number"), ("lr", True, "a number"),
        ("mu", "0.5", "a number"), ("symmetric_init", 1, "True or False"),
        ("arch", 3, "a string"), ("data_dir", Path("d"), "a string"),
        ("frozen", "01", "a list of weight-layer indices"),
        ("untied", [0.5], "a list of weight-layer indices"),
        ("untied", range(10**8), "a list of weight-layer indices"),
        ("copy", {0: 1}, "a list of weight-layer indices"),
        ("rule_params", {"decay": "x"}, "a dict of names to numbers"),
        ("rule_params", [("decay", 1.0)], "a dict of names to numbers"),
    ],
)
def test_field_types_are_checked(field: str, value: object, expected: str) -> None:
    """The Python API checks types as config.json's reader does: one line naming the field,
    its flag and the type (no raw TypeError, no string read as a list of layers)."""
    with pytest.raises(ConfigError) as info:
        cfg(**{field: value})
    message = str(info.value)
    flag = "--from" if field == "from_run" else "--" + field.replace("_", "-")
    assert message.startswith(f"TrainConfig field {field} ({flag}) must be {expected}")
    assert ", found " in message
    assert "\n" not in message and len(message) < 250


def test_numpy_numbers_are_accepted_as_python_ones() -> None:
    import numpy as np

    c = cfg(epochs=np.int64(3), lr=np.float32(0.5), frozen=np.array([0]), seed=np.uint8(4),
            arch="conv 4 3x3; full 8; output")
    assert (c.epochs, c.lr, c.frozen, c.seed) == (3, 0.5, (0,), 4)
    assert type(c.epochs) is int and type(c.seed) is int and type(c.frozen[0]) is int
    json.dumps(c.to_json_dict())  # serialisable: no numpy scalars left


def test_mu_is_refused_outside_appendix_1s_range() -> None:
    for bad in (1e308, 1.5, -0.1, float("nan")):
        with pytest.raises(ConfigError, match=r"--mu .*must be in \[0, 1\] \(Appendix 1"):
            cfg(mu=bad)
    assert cfg(mu=1).mu == 1.0 and cfg(mu=0).mu == 0.0


def test_errors_repeat_long_input_cut_short() -> None:
    """A 100,000-character value, or a layer range of 10**8 layers, gives a short one-line
    error at once (it printed 300 KB, or ran 61 s at 10.5 GB and printed 989 MB)."""
    import time

    long_arch = "conv 4 3x3;" + "x" * 100_000 + "; output"
    with pytest.raises(ConfigError) as info:
        cfg(arch=long_arch)
    assert len(str(info.value)) < 400 and "\n" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        cfg(arch="conv 4 3x3; output", frozen=tuple(range(5, 9999)))
    assert len(str(info.value)) < 250
    start = time.monotonic()
    for text in ("0-99999999", "5-10000", "0,1-" + "9" * 400):
        with pytest.raises(argparse.ArgumentTypeError) as err:
            layer_list(text)
        assert "no network has that many layers" in str(err.value) and len(str(err.value)) < 250
    assert time.monotonic() - start < 1
    assert layer_list("0-9999")[-1] == 9999


@pytest.mark.parametrize("flag", ["--method", "--arch", "--epochs", "--untie", "--loss",
                                  "--seed", "--device"])
def test_cli_errors_stay_short_whatever_the_input(
    tmp_path: Path, capsys: pytest.CaptureFixture, flag: str
) -> None:
    from deepnets import train

    status = None
    try:
        status = train.main(["--out", str(tmp_path / "r"), "--epochs", "1", "--data-dir",
                             str(tmp_path / "none"), flag, "9" * 50_000 + "x" * 50_000])
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    assert status == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error:" in last and len(last) < 400, last[:500]


#: Options whose default a run made before them had: field -> (the other value, its flags, the
#: settings it needs, how the figures name the choice).
STORED_WHEN_SET = {
    "sigma_prime_down": (False, ["--no-sigma-prime-down"], {},
                         "sequential order, no biases, error sent down without sigma'"),
    "shared_masks": (True, ["--connectivity", "0.5", "--shared-masks"], {"connectivity": 0.5},
                     "sequential order, no biases, R masked as W"),
}


@pytest.mark.parametrize("name", STORED_WHEN_SET)
def test_an_option_is_stored_only_away_from_its_default(name: str, tmp_path: Path) -> None:
    value, flags, needs, choices = STORED_WHEN_SET[name]
    default = TrainConfig(epochs=1, data_dir="d", **needs)
    changed = default.replace(**{name: value})
    assert name not in default.to_json_dict()  # a run made before the option reads so
    assert changed.to_json_dict()[name] is value
    assert getattr(TrainConfig.from_json_dict(default.to_json_dict()), name) is not value
    assert TrainConfig.from_json_dict(changed.to_json_dict()) == changed
    assert default.identity() != changed.identity()
    cfg, *_ = parse_run(["--epochs", "1", "--data-dir", "d", "--out", str(tmp_path / "r"), *flags])
    assert getattr(cfg, name) is value
    net = FeedbackNet("full 4; output", in_shape=(3, 4, 4), n_classes=4, **needs, **{name: value})
    assert net.config[name] is value
    assert name not in FeedbackNet("full 4; output", in_shape=(3, 4, 4), n_classes=4,
                                   **needs).config
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(changed.to_json_dict()))
    (folder / "log.jsonl").write_text("")
    assert Run.read(folder).choices() == choices
