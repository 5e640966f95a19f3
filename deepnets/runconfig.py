"""Flags and configuration of ``python -m deepnets.train``: parsing, defaults, resume checks.

A new run's configuration is the defaults (the paper's settings where it gives them, Section 4)
overridden by the flags given; a resumed run's is its ``config.json``, of which only
``--epochs``, ``--device`` and ``--data-dir`` may be changed. Bad values raise ``ValueError``
naming the flag.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from deepnets import checkpoint as ckpt
from deepnets.arch import WEIGHT_KINDS, ArchError, parse_arch
from deepnets.data import KINDS

#: Defaults of the training flags (the paper's settings where it gives them, Section 4).
DEFAULTS: dict[str, Any] = {
    "arch": "simpnet",
    "method": "urfb",
    "epsilon": 1.0,
    "loss": "hinge",
    "mu": None,
    "connectivity": 1.0,
    "update_order": "simultaneous",
    "sat_scale": 0.5,
    "symmetric_init": False,
    "lr": 0.1,
    "batch_size": 500,
    "seed": 0,
    "epochs": None,
    "val_size": 5000,
    "train_subset": None,
    "data": "cifar10",
    "data_dir": None,
    "dataset_label": None,
    "untie": [],
    "freeze": [],
    "copy": None,
    "from_run": None,
    "output_feedback": "closed-form",
    "device": "auto",
}
#: Flags that ``--resume`` may change; every other flag must match the run's config.json.
RESUME_MAY_CHANGE = ("epochs", "device", "data_dir")


def layer_list(text: str) -> list[int]:
    """``"0"``, ``"1-6"``, ``"0,2,4-5"`` -> sorted 0-based weight-layer indices."""
    out: set[int] = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            out.update(range(int(lo), int(hi if hi else lo) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a layer list like 0 or 1-6 or 0,2,4"
        ) from None
    if any(i < 0 for i in out):
        raise argparse.ArgumentTypeError(f"{text!r}: layer indices start at 0")
    return sorted(out)


def _positive(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{text!r} must be positive and finite")
        return value

    return parse


EPILOG = """\
architecture items (';'-separated, case-insensitive, Section 4):
  conv N KxK | untied N KxK | maxpool K [stride S] | drop P | full N | sum | output
  e.g. --arch "conv 32 5x5; maxpool 3; drop .8; full 500; drop .3; output" (= simpnet)

examples:
  python -m deepnets.train --arch simpnet --method urfb --data cifar10 --data-dir DIR \\
      --epochs 10 --out runs/simpnet-urfb
  python -m deepnets.train --out runs/simpnet-urfb --resume --epochs 20
  Figure 9's protocol: train tied, then
  python -m deepnets.train --from tied --copy 0 --freeze 0 --untie 1-6 ... --out untied
"""


def build_parser() -> argparse.ArgumentParser:
    d = DEFAULTS
    p = argparse.ArgumentParser(
        prog="python -m deepnets.train",
        argument_default=argparse.SUPPRESS,
        description="Train a network with separate feedback weights R (BP, FRFB, URFB; Sec. 3-4).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    p.add_argument(
        "--out",
        required=True,
        type=Path,
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
        "--arch",
        help=f"preset (simpnet, deepnet, deepernet, deepnet_s) or a ';'-separated "
        f"layer string in the paper's notation (default: {d['arch']}; with --from: that run's)",
    )
    p.add_argument(
        "--method", choices=("bp", "frfb", "urfb"), help=f"feedback rule (default: {d['method']})"
    )
    p.add_argument(
        "--epsilon",
        type=float,
        help="urfb only: dR = epsilon * dW^T; 0 behaves as frfb (default: 1)",
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
        "(Remark 1) (default: simultaneous)",
    )
    p.add_argument(
        "--sat-scale", type=_positive(float), help="s of sigma(h) = clip(s*h, -1, 1) (default: 0.5)"
    )
    p.add_argument(
        "--symmetric-init", action="store_true", help="start with R = W^T (urfb then equals bp)"
    )
    p.add_argument("--lr", type=_positive(float), help="SGD step (default: 0.1)")
    p.add_argument("--batch-size", type=_positive(int), help="mini-batch size (default: 500)")
    p.add_argument(
        "--seed",
        type=int,
        help="seed of weights, masks, validation split, data order, dropout (default: 0)",
    )
    p.add_argument(
        "--epochs", type=_positive(int), help="number of epochs (required for a new run)"
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
        "--train-subset",
        type=_positive(int),
        help="train on the first N of the remaining (shuffled) training images (default: all)",
    )
    p.add_argument(
        "--untie",
        type=layer_list,
        metavar="LAYERS",
        help="weight layers (0-based, e.g. 1-6) built untied (locally connected) instead of conv",
    )
    p.add_argument(
        "--freeze", type=layer_list, metavar="LAYERS", help="weight layers never updated (e.g. 0)"
    )
    p.add_argument(
        "--from",
        dest="from_run",
        type=Path,
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
    p.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")
    return p


# ---------------------------------------------------------------- configuration


def resolve_device(name: str, flag: str = "--device") -> str:
    """``auto`` -> cuda when available, else cpu; any other name must be a usable torch device."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(
            f"{flag} {name!r} is not a torch device (cpu, cuda, cuda:1, auto)"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{flag} {name}: no CUDA device is available")
    return name


def check_out_dir(path: Path, flag: str = "--out") -> None:
    """Raise ``ValueError`` naming ``flag`` when ``path`` (a folder to write into) or the nearest
    of its existing parents is a file."""
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise ValueError(f"{flag} {path}: {p} is a file, not a folder")
            return


def check_layers(flag: str, layers: Sequence[int], n: int) -> None:
    """Raise ``ValueError`` naming ``flag`` when a weight-layer index is not below ``n``."""
    bad = [i for i in layers if i >= n]
    if bad:
        raise ValueError(f"{flag} {bad}: the network has weight layers 0..{n - 1}")


def _check_flags(cfg: dict[str, Any], given: dict[str, Any]) -> None:
    """Reject flag combinations that do nothing, naming the flag."""
    if cfg["data_dir"] is None:
        raise ValueError("--data-dir is required (the folder holding the data)")
    if cfg["epochs"] is None:
        raise ValueError("--epochs is required")
    try:
        kinds = [spec.kind for spec in parse_arch(cfg["arch"]) if spec.kind in WEIGHT_KINDS]
    except ArchError as exc:
        raise ValueError(f"--arch {cfg['arch']!r}: {exc}") from None
    check_layers("--untie", cfg["untie"], len(kinds))
    check_layers("--freeze", cfg["freeze"], len(kinds))
    if len(set(cfg["freeze"])) == len(kinds):
        raise ValueError(
            f"--freeze {cfg['freeze']} freezes every weight layer: nothing would train"
        )
    not_conv = [i for i in cfg["untie"] if kinds[i] not in ("conv", "untied")]
    if not_conv:
        convs = [i for i, kind in enumerate(kinds) if kind in ("conv", "untied")]
        raise ValueError(f"--untie {not_conv}: not conv layers (the conv layers are {convs})")
    if "epsilon" in given and cfg["method"] != "urfb":
        raise ValueError("--epsilon applies to --method urfb only")
    if cfg["loss"] != "hinge" and ("mu" in given or cfg["output_feedback"] != "closed-form"):
        raise ValueError("--mu and --output-feedback apply to --loss hinge only")
    if not 0.0 < cfg["connectivity"] <= 1.0:
        raise ValueError(f"--connectivity {cfg['connectivity']} must be in (0, 1]")
    if not math.isfinite(cfg["epsilon"]):
        raise ValueError(f"--epsilon {cfg['epsilon']} must be finite")
    if cfg["mu"] is not None and not (cfg["mu"] >= 0 and math.isfinite(cfg["mu"])):
        raise ValueError(f"--mu {cfg['mu']} must be >= 0 and finite")
    if cfg["seed"] < 0:
        raise ValueError(f"--seed {cfg['seed']} must be >= 0")
    if cfg["val_size"] < 0:
        raise ValueError(f"--val-size {cfg['val_size']} must be >= 0")
    if ("copy" in given) and cfg["from_run"] is None:
        raise ValueError("--copy needs --from RUN_DIR")


def new_config(given: dict[str, Any]) -> dict[str, Any]:
    """A new run's configuration: :data:`DEFAULTS` overridden by the flags ``given``, checked."""
    cfg = {**DEFAULTS, **given}
    if cfg["from_run"] is not None:
        earlier = ckpt.read_config(cfg["from_run"])
        if "arch" not in given:
            cfg["arch"] = earlier["arch"]
        cfg["from_run"] = str(Path(cfg["from_run"]).resolve())
    _check_flags(cfg, given)
    cfg["data_dir"] = str(Path(cfg["data_dir"]).expanduser().resolve())
    if cfg["dataset_label"] is None:
        cfg["dataset_label"] = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}.get(
            cfg["data"], f"image folder {Path(cfg['data_dir']).name}"
        )
    cfg["device"] = resolve_device(cfg["device"])
    return cfg


def resumed_config(out: Path, given: dict[str, Any]) -> dict[str, Any]:
    """The configuration of the run in ``out``; ``given`` may change only :data:`RESUME_MAY_CHANGE`
    (``--epochs`` not below the epochs already trained)."""
    cfg = ckpt.read_config(out)
    done = len(ckpt.read_log(out))
    if given.get("epochs", done) < done:
        raise ValueError(
            f"--epochs {given['epochs']} is below the {done} epochs {out} has already trained"
        )
    for key, value in given.items():
        old = cfg.get(key)
        if key in ("from_run", "data_dir") and value is not None:
            value = str(Path(value).expanduser().resolve())
        if key not in RESUME_MAY_CHANGE and value != old:
            flag = "--" + ("from" if key == "from_run" else key.replace("_", "-"))
            raise ValueError(
                f"{flag} {value} differs from the run's config.json ({old}); "
                "--resume continues a run with its own settings"
            )
        cfg[key] = value
    cfg["device"] = resolve_device(cfg["device"])
    return cfg
