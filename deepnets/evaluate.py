"""``python -m deepnets.evaluate``: loss and error rate of a trained run on any split (Section 4).

``--split val`` is the run's own validation split (recomputed from its seed and --val-size);
any other name (``train``, ``test``, an image folder's sub-folder) is read whole. The loss is
the run's training loss (hinge, eq. (4), with its mu; or softmax cross-entropy).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from deepnets import checkpoint as ckpt
from deepnets.data import KINDS, DataError, Dataset, load_dataset, split_train_val
from deepnets.engine import evaluate
from deepnets.losses import make_loss
from deepnets.runconfig import resolve_device


def load_split(config: dict[str, Any], kind: str, data_dir: str | Path, split: str) -> Dataset:
    """The images to evaluate on; ``val`` is the run's held-out part of ``train``."""
    classes = config.get("classes") if kind == "imagefolder" else None
    if split == "val":
        full = load_dataset(kind, data_dir, "train", classes=classes)
        return split_train_val(full, config["val_size"], config["seed"])[1]
    return load_dataset(kind, data_dir, split, classes=classes)


def evaluate_run(
    run_dir: str | Path,
    kind: str | None = None,
    data_dir: str | Path | None = None,
    split: str = "test",
    device: str = "cpu",
    batch_size: int = 1000,
) -> tuple[float, float]:
    """(mean loss, error rate) of the run's last checkpoint; data defaults to the run's own."""
    config = ckpt.read_config(run_dir)
    kind = kind or config["data"]
    data_dir = data_dir or config["data_dir"]
    ds = load_split(config, kind, data_dir, split)
    if len(ds) == 0:
        raise ValueError(f"--split {split} is empty")
    net = ckpt.load_network(run_dir, map_location=device)
    n_classes = net.config["n_classes"]
    if len(ds.classes) != n_classes or tuple(ds.x.shape[1:]) != tuple(net.config["in_shape"]):
        raise ValueError(
            f"--data {kind} ({len(ds.classes)} classes, images {tuple(ds.x.shape[1:])}) does not "
            f"fit the run ({n_classes} classes, images {tuple(net.config['in_shape'])})"
        )
    loss_fn = make_loss(config["loss"], n_classes, mu=config["mu"])
    ds = ds.to(device)
    return evaluate(net, ds.x, ds.y, loss_fn, batch_size=batch_size)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m deepnets.evaluate",
        description="Loss and error rate of a trained run on one data split.",
    )
    p.add_argument(
        "--run",
        required=True,
        type=Path,
        metavar="RUN_DIR",
        help="run folder written by deepnets.train",
    )
    p.add_argument("--data", choices=KINDS, help="dataset format (default: the run's)")
    p.add_argument(
        "--data-dir", help="folder holding the data, or the .tar.gz / .zip (default: the run's)"
    )
    p.add_argument(
        "--split",
        default="test",
        help="train, test, val (the run's validation split) or an "
        "image folder's sub-folder (default: test)",
    )
    p.add_argument(
        "--device",
        default="cpu",
        help="cpu, cuda, cuda:1, ... or auto (cuda when available) (default: cpu)",
    )
    p.add_argument(
        "--batch-size", type=int, default=1000, help="evaluation batch size (default: 1000)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Print ``loss L error E`` for the run; 0 on success, 2 on a bad argument or missing data."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"argument --batch-size: {args.batch_size} must be positive")
    try:
        device = resolve_device(args.device)
        loss, error = evaluate_run(
            args.run, args.data, args.data_dir, args.split, device, args.batch_size
        )
    except (ValueError, DataError, ckpt.RunError) as exc:
        print(f"deepnets.evaluate: error: {exc}", file=sys.stderr)
        return 2
    print(f"loss {loss:.4f} error {error:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
