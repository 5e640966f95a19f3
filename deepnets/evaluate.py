"""``python -m deepnets.evaluate``: loss and error rate of a trained run on any split (Section 4).

``--split val`` (the default) is the run's own validation split, recomputed from its
``split_seed`` and ``val_size``; any other name (``train``, ``test``, an image folder's
sub-folder) is read whole. The loss is the run's training loss (hinge, eq. (4), with its mu;
or softmax cross-entropy). The run's own splits (``val``, ``train``) must come from the data it
was trained on (its fingerprint), unless ``--force-data``; a separate test set
(``--split test --data-dir TESTSET``) is the normal use of other data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deepnets import checkpoint as ckpt
from deepnets.config import ConfigError, TrainConfig
from deepnets.data import KINDS, DataError, Dataset, data_mismatch, load_dataset, split_train_val
from deepnets.engine import evaluate
from deepnets.losses import make_loss
from deepnets.rundir import RunError, find_data_dir, read_config
from deepnets.trainer import resolve_device, stored_config
from urfb_common import OneLineParser, command_line, path_arg, report_error


def load_split(cfg: TrainConfig, classes: list[str] | None, kind: str, data_dir: str | Path,
               split: str, force_data: bool = False) -> Dataset:
    """The images to evaluate on; ``val`` is the run's held-out part of ``train``."""
    name = "train" if split == "val" else split
    ds = load_dataset(kind, data_dir, name, classes=classes if kind == "imagefolder" else None)
    own = split in ("val", "train")
    why = data_mismatch(cfg.data_fingerprint, ds.fingerprint) if cfg.data_fingerprint else None
    if own and why and not force_data:
        raise ConfigError(f"--data-dir {data_dir}: its {name} split (fingerprint {ds.fingerprint})"
                          f" is not the data the run was trained on ({cfg.data_fingerprint}: "
                          f"{why}); pass --force-data to score it anyway")
    return split_train_val(ds, cfg.val_size, cfg.split_seed)[1] if split == "val" else ds


def evaluate_run(
    run_dir: str | Path,
    kind: str | None = None,
    data_dir: str | Path | None = None,
    split: str = "val",
    device: str = "auto",
    batch_size: int = 1000,
    force_data: bool = False,
) -> tuple[float, float, int]:
    """(mean loss, error rate, number of images) of the run's last checkpoint on ``split``;
    the data defaults to the run's own."""
    device = resolve_device(device)
    cfg = stored_config(Path(run_dir))
    classes = read_config(run_dir).get("classes")
    data_dir = data_dir or find_data_dir(run_dir, read_config(run_dir))
    ds = load_split(cfg, classes, kind or cfg.data, data_dir, split, force_data)
    if len(ds) == 0:
        raise ConfigError(f"--split {split} is empty")
    net = ckpt.load_network(run_dir, map_location=device)
    n_classes = net.config["n_classes"]
    if len(ds.classes) != n_classes or tuple(ds.x.shape[1:]) != tuple(net.config["in_shape"]):
        raise ConfigError(
            f"--data {kind or cfg.data} ({len(ds.classes)} classes, images "
            f"{tuple(ds.x.shape[1:])}) does not fit the run ({n_classes} classes, images "
            f"{tuple(net.config['in_shape'])})"
        )
    loss_fn = make_loss(cfg.loss, n_classes, mu=cfg.mu)
    ds = ds.to(device)
    return (*evaluate(net, ds.x, ds.y, loss_fn, batch_size=batch_size), len(ds))


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m deepnets.evaluate",
        description="Loss and error rate of a trained run on one data split.",
    )
    p.add_argument(
        "--run",
        required=True,
        type=path_arg,
        metavar="RUN_DIR",
        help="run folder written by deepnets.train",
    )
    p.add_argument("--data", choices=KINDS, help="dataset format (default: the run's)")
    p.add_argument(
        "--data-dir", help="folder holding the data, or the .tar.gz / .zip (default: the run's)"
    )
    p.add_argument(
        "--split",
        default="val",
        help="val (the run's validation split), train, test or an "
        "image folder's sub-folder (default: val)",
    )
    p.add_argument(
        "--force-data",
        action="store_true",
        help="score the run's own splits (val, train) on data whose fingerprint differs",
    )
    p.add_argument(
        "--device",
        default="auto",
        help="cpu, cuda, cuda:1, ... or auto (cuda when available; default, as deepnets.train)",
    )
    p.add_argument(
        "--batch-size", type=int, default=1000, help="evaluation batch size (default: 1000)"
    )
    return p


@command_line("deepnets.evaluate")
def main(argv: list[str] | None = None) -> int:
    """Print ``loss L error E`` for the run; 0 on success, 2 on a bad argument or missing data."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"argument --batch-size: {args.batch_size} must be positive")
    try:
        device = resolve_device(args.device)
        loss, error, n = evaluate_run(args.run, args.data, args.data_dir, args.split, device,
                                      args.batch_size, args.force_data)
    except (ConfigError, DataError, RunError) as exc:
        report_error("deepnets.evaluate", exc)
        return 2
    print(f"split {args.split} ({n} images): loss {loss:.4f} error {error:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
