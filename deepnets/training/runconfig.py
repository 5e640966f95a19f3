"""The flags of ``python -m deepnets.train`` and their parsing into a :class:`TrainConfig`.

A new run's configuration is the defaults (the paper's settings where it gives them, Section 4)
overridden by the flags given; a resumed run's is its ``config.json``, of which only
``--epochs``, ``--device``, ``--cuda-graph``, ``--deterministic`` and ``--data-dir`` may be
changed, and so is a new run's with ``--same-as RUN`` (RUN's settings, to repeat it). Bad
values raise :class:`ConfigError` naming the flag.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from deepnets.nn.layers import UNTIED_INITS
from deepnets.rules import METHODS, RULES, rules_with_param
from deepnets.training.capture import CUDA_GRAPH_MODES
from deepnets.training.config import (
    LAYER_INDEX_MAX,
    OWN_FLAG_PARAMS,
    PRECISION_CHOICES,
    PRECISIONS,
    SEED_MAX,
    SHOWN_MAX,
    ConfigError,
    TrainConfig,
    flag_of,
    shown,
)
from deepnets.training.data import KINDS
from deepnets.training.optim import add_optimizer_flags
from deepnets.training.rundir import check_not_busy, find_data_dir, read_config
from deepnets.training.trainer import stored_config
from urfb_common import OneLineParser, path_arg

#: Flags that ``--resume`` may change; every other flag must match the run's config.json.
RESUME_MAY_CHANGE = ("epochs", "device", "cuda_graph", "deterministic", "data_dir")


def layer_list(text: str) -> list[int]:
    """``"0"``, ``"1-6"``, ``"0,2,4-5"`` -> sorted 0-based weight-layer indices (each at most
    :data:`~deepnets.training.config.LAYER_INDEX_MAX`, checked before a range is expanded)."""
    bounds = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            bounds.append((int(lo), int(hi if hi else lo)))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{shown(text)} is not a layer list like 0 or 1-6 or 0,2,4"
            ) from None
    for (lo, hi), part in zip(bounds, text.split(",")):
        if lo < 0:
            raise argparse.ArgumentTypeError(f"{shown(text)}: layer indices start at 0")
        if hi < lo:
            raise argparse.ArgumentTypeError(f"{shown(text)}: the range {part.strip()[:SHOWN_MAX]} "
                                             "is reversed")
        if hi > LAYER_INDEX_MAX:
            raise argparse.ArgumentTypeError(f"{shown(text)}: layer index {shown(hi)} is above "
                                             f"{LAYER_INDEX_MAX}; no network has that many layers")
    return sorted({i for lo, hi in bounds for i in range(lo, hi + 1)})


_KIND_NAMES = {int: "an integer", float: "a number"}


def positive_number(kind: type) -> Callable[[str], Any]:
    """An argparse ``type``: ``kind`` (int or float) parsed from the text, positive and finite,
    else a one-line error."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{shown(text)} is not {_KIND_NAMES[kind]}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{shown(text)} must be positive and finite")
        return value

    return parse


def rule_param(text: str) -> tuple[str, float]:
    """``"decay=1e-3"`` -> ``("decay", 0.001)``; the rule checks the name and range."""
    name, sep, value = text.partition("=")
    try:
        if not sep or not name.strip():
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{shown(text)} is not NAME=NUMBER, e.g. decay=1e-4") from None


def seed_arg(text: str) -> int:
    """An argparse type: a seed, an integer in 0..2**63 - 1 (torch's generators take no more)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{shown(text)} is not an integer") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"{shown(value)} is outside 0..{SEED_MAX} (2**63 - 1)")
    return value


EPILOG = """\
architecture items (';'-separated, case-insensitive, Section 4):
  conv N KxK | untied N KxK | maxpool K [stride S] | drop P | full N | sum | output
  e.g. --arch "conv 32 5x5; maxpool 3; drop .8; full 500; drop .3; output" (= simpnet)

examples:
  python -m deepnets.train --arch simpnet --method urfb --data cifar10 --data-dir DIR \\
      --epochs 10 --out runs/simpnet-urfb
  python -m deepnets.train --out runs/simpnet-urfb --resume --epochs 20
  python -m deepnets.train --same-as runs/simpnet-urfb --out runs/simpnet-urfb-again
  Figure 9's protocol: train tied, then
  python -m deepnets.train --from tied --copy 0 --frozen 0 --untied 1-6 ... --out untied
"""


def _param_help(name: str) -> str:
    """What a rule parameter means, its range and default (from the registry)."""
    specs = [RULES[m].parameters[name] for m in rules_with_param(name)]
    if not specs:
        return name
    spec = specs[0]
    return f"{spec.meaning}, in [{spec.low:g}, {spec.high:g}] (default: {spec.default:g})"


def _rule_params_help() -> str:
    """Every rule's parameters, as the registry lists them."""
    parts = [f"{method} {name}=V ({spec.meaning}; default {spec.default:g})"
             for method, rule in RULES.items() for name, spec in rule.parameters.items()
             if name not in OWN_FLAG_PARAMS]
    own = ", ".join(f"{' or '.join(rules_with_param(n))}'s {n} is {flag_of(n)}"
                    for n in OWN_FLAG_PARAMS)
    return "; ".join(parts) + f"; {own}"


def build_parser() -> argparse.ArgumentParser:
    d = {f.name: f.default for f in fields(TrainConfig)}
    p = OneLineParser(
        prog="python -m deepnets.train",
        argument_default=argparse.SUPPRESS,
        description="Train a network with separate feedback weights R (BP, FRFB, URFB; Sec. 3-4).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    p.add_argument(
        "--out",
        required=True,
        type=path_arg,
        metavar="RUN_DIR",
        help="run folder for config.json, log.jsonl, checkpoint.pt",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the killed or finished run in --out "
        f"(only {', '.join('--' + k.replace('_', '-') for k in RESUME_MAY_CHANGE)} may change)",
    )
    p.add_argument(
        "--same-as",
        type=path_arg,
        metavar="RUN",
        help="train a new run in --out with the settings of the run in RUN (its config.json: "
        "network, rule, seeds, data, precision; only "
        f"{', '.join('--' + k.replace('_', '-') for k in RESUME_MAY_CHANGE)} may change; not a "
        "run trained --from another): on the machine that trained RUN, at the same number of "
        "torch threads (OMP_NUM_THREADS), it repeats RUN number for number (compare them with "
        "python -m figures same-runs)",
    )
    p.add_argument(
        "--arch",
        help=f"preset (simpnet, deepnet, deepernet, deepnet_s), a ';'-separated "
        f"layer string in the paper's notation, or a named torch model trained through "
        f"deepnets.convert (resnet-mini) (default: {d['arch']}; with --from: that run's)",
    )
    p.add_argument(
        "--method", choices=METHODS,
        help=f"feedback rule, one of the registry deepnets.rules (docs/rules.md): "
        f"{', '.join(METHODS)} (default: {d['method']})",
    )
    p.add_argument(
        "--rule-param", dest="rule_params", action="append", type=rule_param,
        metavar="NAME=VALUE",
        help=f"a parameter of the rule, repeatable: {_rule_params_help()}",
    )
    p.add_argument(
        "--epsilon",
        type=float,
        help=f"{' or '.join(rules_with_param('epsilon'))} only: "
        f"{_param_help('epsilon')}",
    )
    p.add_argument(
        "--loss",
        choices=("hinge", "softmax"),
        help="hinge: multi-class hinge loss, eq. (4); softmax: cross-entropy (default: hinge)",
    )
    p.add_argument(
        "--mu", type=float, help="hinge loss: balancing factor mu of eq. (4) (default: 1/(C-1))"
    )
    p.add_argument(
        "--output-feedback",
        choices=("closed-form", "circuit"),
        help="hinge only: output error delta_L from eq. (6) in closed form, or from the simulated "
        "Appendix-1 circuit (sims.circuits) (default: closed-form)",
    )
    p.add_argument(
        "--connectivity",
        type=float,
        help="fraction of W and R entries kept by fixed random masks (paper: 0.5) (default: 1)",
    )
    p.add_argument(
        "--update-order",
        choices=("simultaneous", "sequential"),
        help="sequential: a layer's W, R are updated before its feedback is sent down "
        "(Remark 1 read literally; default); simultaneous: every update from one backward "
        "pass (the author's code of the paper's era in effect; docs/results.md)",
    )
    p.add_argument(
        "--bias", action="store_true",
        help="give every weight layer a bias, learnt like W (default: none, as eq. (1) and the "
        "author's code); a named model (--arch resnet-mini) keeps its own biases",
    )
    p.add_argument(
        "--no-sigma-prime-down", dest="sigma_prime_down", action="store_false",
        help="hidden layers send the error down as R g, without their sigma' (the author's code "
        "after April 2019; docs/results.md); default: R delta with delta = sigma'(h) g, eq. (2); "
        "architecture strings only, not dfa",
    )
    p.add_argument(
        "--shared-masks", action="store_true",
        help="with --connectivity < 1, R's connectivity mask is W's (every feedback connection "
        "has its feedforward partner); default: drawn separately, as the paper's Section 4; "
        "architecture strings and methods with an R only",
    )
    p.add_argument(
        "--untied-init",
        choices=UNTIED_INITS,
        help="how untied layers start: replicated, one conv filter bank at every location (the "
        "author's code; default); independent, each location's filters drawn separately",
    )
    p.add_argument(
        "--sat-scale", type=positive_number(float), help="s of sigma(h) = clip(s*h, -1, 1) (default: 0.5)"
    )
    p.add_argument(
        "--symmetric-init", action="store_true", help="start with R = W^T (urfb then equals bp)"
    )
    p.add_argument("--lr", type=positive_number(float), help="SGD step (default: 0.1)")
    add_optimizer_flags(p)
    p.add_argument("--batch-size", type=positive_number(int), help="mini-batch size (default: 500)")
    p.add_argument(
        "--seed",
        type=seed_arg,
        help="seed of W, R, masks, data order and dropout, 0..2**63-1 (default: 0)",
    )
    p.add_argument(
        "--split-seed",
        type=seed_arg,
        help="seed of the held-out validation images, the same for every --seed so that runs "
        "are paired (default: 0)",
    )
    p.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        help="arithmetic of the forward and backward passes (default: fp32); bf16 computes in "
        "bfloat16 with float32 master copies of W and R and float32 updates; auto: bf16 on a "
        "CPU with AMX tiles or a CUDA device with bf16 tensor cores (compute capability >= 8), "
        "fp32 elsewhere (deepnets.nn.policy). config.json records the precision used; --resume "
        "keeps it on any hardware",
    )
    p.add_argument(
        "--eval-precision",
        choices=PRECISIONS,
        help="arithmetic of validation, the alignment probe and scoring (default: --precision's; "
        "a run written before this flag: fp32)",
    )
    p.add_argument(
        "--probe-size",
        type=int,
        help="validation images of the alignment probe logged every epoch (deepnets.alignment); "
        "0: no probe (default: 500)",
    )
    p.add_argument(
        "--force-data",
        action="store_true",
        help="with --resume or --same-as: train on data whose fingerprint differs from the "
        "run's",
    )
    p.add_argument(
        "--epochs", type=positive_number(int), help="number of epochs (required for a new run)"
    )
    p.add_argument("--data", choices=KINDS, help="dataset format (default: cifar10)")
    p.add_argument("--data-dir", help="folder holding the data (or the .tar.gz / .zip itself)")
    p.add_argument(
        "--dataset-label",
        help="how results name the data, e.g. 'CIFAR-10 (JPEG re-encoding)' "
        "(default: from --data / --data-dir)",
    )
    p.add_argument(
        "--val-size", type=int, help="training images held out for validation (default: 5000)"
    )
    p.add_argument(
        "--train-size",
        "--train-subset",
        dest="train_size",
        type=positive_number(int),
        help="train on the first N of the training images left after --val-size (default: all)",
    )
    p.add_argument(
        "--untied",
        "--untie",
        dest="untied",
        type=layer_list,
        metavar="LAYERS",
        help="weight layers (0-based, e.g. 1-6) built untied (locally connected) instead of conv",
    )
    p.add_argument(
        "--frozen",
        "--freeze",
        dest="frozen",
        type=layer_list,
        metavar="LAYERS",
        help="weight layers never updated (e.g. 0)",
    )
    p.add_argument(
        "--from",
        dest="from_run",
        type=path_arg,
        metavar="RUN_DIR",
        help="earlier run whose trained layers --copy takes",
    )
    p.add_argument(
        "--copy",
        type=layer_list,
        metavar="LAYERS",
        help="with --from: weight layers copied from it "
        "(default: all); the others start fresh from --seed",
    )
    p.add_argument(
        "--device", help="cpu, cuda, cuda:1, ... or auto (cuda when available) (default: auto)"
    )
    p.add_argument(
        "--cuda-graph",
        choices=CUDA_GRAPH_MODES,
        help="on a CUDA device, replay the training step as a captured CUDA graph: auto (capture, "
        "eager if the capture fails; default), on (fail if it cannot), off (eager); the CPU "
        "always runs eagerly",
    )
    p.add_argument(
        "--deterministic", action=argparse.BooleanOptionalAction,
        help="torch's deterministic algorithms, at some speed: meant to make a GPU rerun give "
        "the same numbers on the same GPU, driver and torch (the default kernels may sum in "
        "another order; the CPU's repeat either way); an operation without a deterministic "
        "kernel stops the run with an error (default: off; a resumed run keeps its own "
        "unless given)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")
    return p




# ---------------------------------------------------------------- flags -> TrainConfig

def config_from_flags(given: dict[str, Any]) -> TrainConfig:
    """A new run's config from the flags ``given`` (only those the user typed)."""
    given = dict(given)
    if "rule_params" in given:
        given["rule_params"] = dict(given["rule_params"])
    if given.get("from_run") is not None and "arch" not in given:
        given["arch"] = read_config(given["from_run"]).get("arch", "simpnet")
    for key in ("from_run", "data_dir"):
        if given.get(key) is not None:
            given[key] = str(given[key])
    if "epochs" not in given:
        raise ConfigError("--epochs is required for a new run")
    if given.get("data_dir") is None:
        raise ConfigError("--data-dir is required (the folder or archive holding the data)")
    return TrainConfig(**given)


def resumed_config(out: Path, given: dict[str, Any],
                   why: str = "--resume continues a run with its own settings") -> TrainConfig:
    """The config of the run in ``out`` with the changes ``given`` may make (only
    :data:`RESUME_MAY_CHANGE`; any other flag must repeat the run's own value, else a
    :class:`ConfigError` that ends with ``why``)."""
    cfg = stored_config(out)
    stored = cfg.settings_dict()
    for key, value in given.items():
        if key in RESUME_MAY_CHANGE or (key == "precision" and value == "auto"):
            continue  # a resumed --precision auto run keeps the precision it was trained in
        old = stored.get(key)
        new = list(value) if isinstance(value, (tuple, list)) else value
        if key == "rule_params":  # the run's config holds every parameter, defaults included
            new = {**old, **dict(value)}
        new = str(new) if key == "from_run" and new is not None else new
        if new != old:
            raise ConfigError(f"{flag_of(key)} {shown(new)} differs from the run's config.json "
                              f"({shown(old)}); {why}")
    changes = {k: (str(v) if k == "data_dir" else v) for k, v in given.items()
               if k in RESUME_MAY_CHANGE}
    changes.setdefault("data_dir", find_data_dir(out, read_config(out)))  # from any folder
    return cfg.replace(**changes)


def parse_run(argv: list[str] | None) -> tuple[TrainConfig, Path, bool, bool, bool]:
    """``(config, out, resume, quiet, force_data)`` from the command line; argparse errors exit
    2, bad values raise :class:`ConfigError`."""
    given = vars(build_parser().parse_args(argv))
    out, resume = given.pop("out"), given.pop("resume", False)
    quiet, force_data = given.pop("quiet", False), given.pop("force_data", False)
    same_as = given.pop("same_as", None)
    if force_data and not resume and same_as is None:
        raise ConfigError("--force-data applies to --resume and --same-as only")
    if same_as is not None and resume:
        raise ConfigError("--same-as starts a new run; --resume continues the one in --out")
    if resume:
        check_not_busy(out)  # its config.json may not be written yet
        cfg = resumed_config(out, given)
    elif same_as is not None:
        cfg = resumed_config(same_as, given, "--same-as repeats the run with its own settings")
        if cfg.from_run is not None:  # its start is another run's checkpoint as it is now
            raise ConfigError(f"--same-as {same_as}: that run started from the weights of "
                              f"another (--from {cfg.from_run}), which cannot be repeated")
        if force_data:  # train on the data given, whatever the run was trained on
            cfg = cfg.replace(data_fingerprint=None)
    else:
        cfg = config_from_flags(given)
    return cfg, out, resume, quiet, force_data
