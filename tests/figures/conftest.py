"""Synthetic run folders in deepnets.train's format (config.json schema 3, 2 or 1, log.jsonl)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deepnets.experiments.protocols import PROTOCOLS

LAYERS = {"simpnet": ["conv 32 5x5", "full 500", "output"],
          "deepnet": [f"l{i}" for i in range(9)], "deepernet": [f"l{i}" for i in range(10)],
          "deepnet_s": ["conv0 16 3x3", "conv1 16 3x3", "conv2 64 3x3", "conv3 64 3x3",
                        "conv4 64 2x2", "conv5 64 2x2", "full6 500", "output"]}
WriteRun = Callable[..., Path]


@pytest.fixture(autouse=True)
def warnings_fail() -> Iterator[None]:
    """A figure that makes matplotlib warn (e.g. "No artists with labels found to put in
    legend") fails its test: every UserWarning is an error here."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        yield
#: Section 4's six protocols (deepnets.experiments.protocols also holds rules beyond the paper, in
#: no figure).
PAPER_PROTOCOLS = [name for name, p in PROTOCOLS.items() if p.figures]


def _config(arch: str, protocol: str, n_classes: int, untied: tuple[int, ...],
            frozen: tuple[int, ...], epochs: int, schema: int, seed: int = 0,
            train_size: int = 200) -> dict:
    """config.json as deepnets.train writes it: schema 3 (``untied``, ``frozen``), schema 2
    (the same as ``untie``, ``freeze``; train_size, split_seed, precision, relative data_dir,
    epsilon null outside URFB) or schema 1 (train_subset, absolute data_dir)."""
    p = PROTOCOLS[protocol]
    config = {
        "arch": arch, "method": p.method, "loss": p.loss, "connectivity": p.connectivity,
        "update_order": "simultaneous", "sat_scale": 0.5, "mu": None, "lr": 0.1, "batch_size": 50,
        "seed": seed, "epochs": epochs, "val_size": 100, "data": "imagefolder",
        "dataset_label": "CIFAR-10 (JPEG re-encoding)", "untied": list(untied),
        "frozen": list(frozen), "from_run": None, "copy": None, "output_feedback": "closed-form",
        "device": "cpu", "weight_layer_names": LAYERS[arch],
        "net": {"arch": arch, "n_classes": n_classes, "method": p.method, "untied": list(untied),
                "seed": seed},
    }
    if schema < 3:
        config["untie"], config["freeze"] = config.pop("untied"), config.pop("frozen")
    if schema == 1:
        return {**config, "epsilon": 1.0, "train_subset": train_size, "data_dir": "/data/train.zip"}
    return {**config, "schema_version": schema, "epsilon": p.rule_params.get("epsilon"),
            "train_size": train_size, "data_dir": "data/train.zip", "split_seed": 7, "precision": "fp32",
            "rule_params": {}}


def _alignment(names: list[str], frozen: tuple[int, ...], angle: float) -> dict:
    """A probe record: no delta_angle for the first layer or above a frozen one (no error sent)."""
    return {n: {"delta_angle": None if i == 0 or (i - 1) in frozen else angle,
                "update_angle": None if i in frozen else (0.0 if i == len(names) - 1 else angle / 2),
                "weight_angle": angle, "norm_ratio": 1.0}
            for i, n in enumerate(names)}


def _log(names: list[str], logged: int, frozen: tuple[int, ...] = (), offset: float = 0.0,
         probe: bool = True, feedback: bool = True) -> str:
    """Epoch e: train error 0.9/e, val error 0.95/sqrt(e) + offset, corr 0.1e + 0.05i, angles
    90 - 10e (degrees) from a probe at 90 before the first update, saturated share 0.05e + 0.1i
    (every layer but the output), norms |W| = e + i + offset, |R| = 2e + i (None without
    ``feedback``: bp)."""
    rows = []
    for e in range(1, logged + 1):
        row = {"epoch": e, "train_loss": 1.0 / e, "train_error": 0.9 / e + offset,
               "val_loss": 1.1 / e, "val_error": 0.95 / e ** 0.5 + offset, "seconds": 1.0,
               "corr": [min(1.0, 0.1 * e + 0.05 * i) for i in range(len(names))]}
        if probe:
            row["alignment"] = _alignment(names, frozen, 90.0 - 10 * e)
            row["saturated"] = {n: min(1.0, 0.05 * e + 0.1 * i) for i, n in enumerate(names[:-1])}
            row["norm"] = [[e + i + offset, 2.0 * e + i if feedback else None]
                           for i in range(len(names))]
            if e == 1:
                row["alignment_steps"] = [{"step": k, "alignment": _alignment(names, frozen, 90.0 - k / 10)}
                                          for k in (0, 1, 2, 5, 10, 20, 50)]
        rows.append(row)
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture()
def write_run() -> WriteRun:
    """``write_run(root, name, arch, protocol, n_classes=10, untied=(), frozen=(), epochs=4,
    logged=epochs, schema=3, seed=0, offset=0.0, train_size=200, probe=True)``: a run folder
    with config.json and one log line per epoch (errors shifted by ``offset``)."""

    def write(root: Path, name: str, arch: str, protocol: str, *, n_classes: int = 10,
              untied: tuple[int, ...] = (), frozen: tuple[int, ...] = (), epochs: int = 4,
              logged: int | None = None, schema: int = 3, seed: int = 0, offset: float = 0.0,
              train_size: int = 200, probe: bool = True) -> Path:
        folder = root / name
        folder.mkdir(parents=True)
        config = _config(arch, protocol, n_classes, untied, frozen, epochs, schema, seed,
                         train_size)
        (folder / "config.json").write_text(json.dumps(config))
        n_logged = epochs if logged is None else logged
        feedback = PROTOCOLS[protocol].method != "bp"
        (folder / "log.jsonl").write_text(_log(LAYERS[arch], n_logged, frozen, offset, probe,
                                               feedback))
        return folder

    return write


@pytest.fixture()
def runs(tmp_path: Path, write_run: WriteRun) -> Path:
    """Every run Figures 4-11 draw, one per description."""
    root = tmp_path / "runs"
    for p in PAPER_PROTOCOLS:
        write_run(root, f"simpnet-cifar10-{p}", "simpnet", p)
        write_run(root, f"simpnet-cifar100-{p}", "simpnet", p, n_classes=100, epochs=3)
        write_run(root, f"deepernet-cifar10-{p}", "deepernet", p)
    write_run(root, "deepnet-cifar10-urfb", "deepnet", "urfb")
    for p in ("bp", "urfb", "frfb"):
        write_run(root, f"simpnet-cifar10-{p}-untied", "simpnet", p, untied=(0,))
        write_run(root, f"deepnet_s-cifar10-{p}-pre", "deepnet_s", p, epochs=2)
        write_run(root, f"deepnet_s-cifar10-{p}", "deepnet_s", p, frozen=(0,), schema=2)
        # an interrupted run, drawn with what it has; written before untie/freeze were renamed
        write_run(root, f"deepnet_s-cifar10-{p}-untied", "deepnet_s", p, untied=(1, 2, 3, 4, 5),
                  frozen=(0,), logged=2, schema=2)
    return root


@pytest.fixture()
def curves_csv() -> Callable[[Path], Path]:
    """``curves_csv(path)``: a small curves.csv in sims.epsilon_sweep's format (2 runs, BP, eps 0, 1)."""

    def write(path: Path) -> Path:
        lines = ["run,method,epsilon,t,error,corr_1,corr_2,corr_3"]
        for run in (0, 1):
            for t in range(5):
                lines.append(f"{run},bp,,{t},{2.718 ** -t},,,")
                for eps in (0.0, 1.0):
                    c = 0.2 * t * (1 + eps) / 2
                    lines.append(f"{run},feedback,{eps},{t},{2.718 ** (-(1 + eps) * t / 2)},{c},{c},{c}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        return path

    return write
