"""``python -m deepnets.train``: train a network with BP, FRFB or URFB (Sections 3-4) on CIFAR.

Plain SGD with a fixed step (paper: 0.1, batch 500), a validation split held out of the
training set (paper: 5,000 images), one ``log.jsonl`` line and one atomic checkpoint per epoch.
``--resume`` continues a killed run and ends in the same state (bit-identical on the CPU) as
an uninterrupted one. See :mod:`deepnets.checkpoint` for the run folder's layout and
:mod:`deepnets.runconfig` for the flags.

Each ``log.jsonl`` record: ``train_loss`` / ``train_error``, running means over the epoch's
mini-batches in training mode (dropout on, each batch scored before its update);
``val_loss`` / ``val_error`` in eval mode after the epoch (``null`` with ``--val-size 0``);
``seconds`` (wall time of the epoch, validation included), ``train_seconds`` (its training
part), ``cpu_seconds`` (process CPU time of the epoch, all threads); ``corr``, per weight layer,
the Pearson correlation of W and R^t (Figures 10-11).

Figure 9's deepnet_s protocol ("train tied, freeze the first layer, retrain the rest untied
from scratch", Section 4.1) is two runs::

    python -m deepnets.train --arch deepnet_s --method urfb ... --out tied
    python -m deepnets.train --from tied --copy 0 --freeze 0 --untie 1-6 ... --out untied

``--from RUN_DIR`` builds the new network from ``--seed`` (fresh W, R, biases and masks for
every layer), then replaces the layers listed in ``--copy`` (default: all) by the earlier run's
trained layers -- W, R, bias and connectivity masks, exactly. A copied layer that the new run
unties (``--untie``) receives the conv's W and R at every location (``deepnets.engine.untie``);
an uncopied untied layer is a fresh locally connected layer. ``--freeze`` layers are never
updated (they still pass feedback down). The architecture (default: the earlier run's) and
the data's shape and classes must match the earlier run; the method may differ only for
layers that are not copied (a ``bp`` layer has no R to copy).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from deepnets import checkpoint as ckpt
from deepnets.arch import parse_arch
from deepnets.data import DataError, Dataset, batches, load_dataset, split_train_val
from deepnets.engine import evaluate, train_step, untie
from deepnets.losses import make_loss
from deepnets.network import FeedbackNet
from deepnets.runconfig import (
    build_parser,
    check_layers,
    check_out_dir,
    new_config,
    resumed_config,
)


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN or infinite loss."""


# ---------------------------------------------------------------- data, network, loss


def prepare_data(cfg: dict[str, Any]) -> tuple[Dataset, Dataset]:
    """The training and validation parts of the training split (before moving to the device)."""
    full = load_dataset(cfg["data"], cfg["data_dir"], "train")
    train, val = split_train_val(full, cfg["val_size"], cfg["seed"])
    if cfg["train_subset"] is not None:
        if cfg["train_subset"] > len(train):
            raise ValueError(
                f"--train-subset {cfg['train_subset']} exceeds the {len(train)} training images"
            )
        train = train.subset(torch.arange(cfg["train_subset"]))
    return train, val


def build_network(
    cfg: dict[str, Any], in_shape: tuple[int, ...], n_classes: int, *, copy_from_run: bool = True
) -> FeedbackNet:
    """A fresh network from the config, with ``--from``/``--copy`` and ``--freeze`` applied."""
    net = FeedbackNet(
        cfg["arch"],
        in_shape=in_shape,
        n_classes=n_classes,
        method=cfg["method"],
        epsilon=cfg["epsilon"],
        connectivity=cfg["connectivity"],
        sat_scale=cfg["sat_scale"],
        untied=cfg["untie"],
        symmetric_init=cfg["symmetric_init"],
        seed=cfg["seed"],
        frozen=cfg["freeze"],
    )
    if cfg["from_run"] is not None and copy_from_run:
        _copy_layers(net, cfg)
    return net


def _copy_layers(net: FeedbackNet, cfg: dict[str, Any]) -> None:
    """Replace the ``--copy`` layers of ``net`` by those of the ``--from`` run (see module doc)."""
    src = ckpt.load_network(cfg["from_run"])
    if parse_arch(src.config["arch"]) != parse_arch(cfg["arch"]):
        raise ValueError(f"--arch differs from the --from run's ({src.config['arch']})")
    for key in ("in_shape", "n_classes"):
        if src.config[key] != net.config[key]:
            raise ValueError(f"--from run has {key} {src.config[key]}, this data {net.config[key]}")
    copy = list(range(len(net.weight_layers))) if cfg["copy"] is None else cfg["copy"]
    check_layers("--copy", copy, len(net.weight_layers))
    to_untie = [
        i for i in copy if i in cfg["untie"] and i not in set(src.config.get("untied") or ())
    ]
    if to_untie:
        src = untie(src, to_untie)
    for i in copy:
        try:
            net.weight_layers[i].load_state_dict(src.weight_layers[i].state_dict())
        except RuntimeError as exc:
            lines = str(exc).strip().splitlines()  # torch: "Error(s) in loading ...:" then the keys
            detail = " ".join(line.strip() for line in lines[1:]) or lines[0]
            raise ValueError(
                f"--copy layer {i} from the --from run (method {src.config['method']}) "
                f"does not fit this network (method {cfg['method']}): {detail}"
            ) from None


def build_loss(
    cfg: dict[str, Any], n_classes: int
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss; ``--output-feedback circuit`` takes eq. (6) from the Appendix-1 circuit."""
    feedback = None
    if cfg["output_feedback"] == "circuit":
        try:
            from sims.circuits import circuit_output_feedback
        except ImportError as exc:
            raise ValueError(f"--output-feedback circuit needs sims.circuits ({exc})") from None
        feedback = circuit_output_feedback
    return make_loss(cfg["loss"], n_classes, mu=cfg["mu"], output_feedback=feedback)


def _seed_from(seed: int, stream: int) -> int:
    """Independent 63-bit seeds for the data order (stream 1) and dropout (stream 2)."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0] >> 1)


# ---------------------------------------------------------------- the loop


def _train_epoch(
    net: FeedbackNet,
    train: Dataset,
    loss_fn: Callable,
    cfg: dict[str, Any],
    order: torch.Generator,
    epoch: int,
    quiet: bool,
) -> tuple[float, float]:
    net.train()
    total_loss, errors, n = 0.0, 0, 0
    n_batches = math.ceil(len(train) / cfg["batch_size"])
    bar = tqdm(
        batches(train, cfg["batch_size"], order),
        total=n_batches,
        desc=f"epoch {epoch}",
        leave=False,
        disable=quiet,
        file=sys.stderr,
    )
    for b, (xb, yb) in enumerate(bar, start=1):
        res = train_step(net, xb, yb, loss_fn, lr=cfg["lr"], update_order=cfg["update_order"])
        if not math.isfinite(res.loss):
            raise NonFiniteLoss(
                f"non-finite training loss ({res.loss}) at epoch {epoch}, batch {b}/{n_batches}"
            )
        total_loss += res.loss * res.n
        errors += res.errors
        n += res.n
        bar.set_postfix(loss=f"{total_loss / n:.4f}", error=f"{errors / n:.4f}", refresh=False)
    return total_loss / n, errors / n


@dataclass
class Session:
    """A run ready to train: its folder, config, data on the device, network, loss and RNGs."""

    out: Path
    cfg: dict[str, Any]
    train: Dataset
    val: Dataset
    net: FeedbackNet
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    order: torch.Generator
    records: list[dict[str, Any]]


def setup(out: Path, cfg: dict[str, Any], resume: bool) -> Session:
    """Load data, build (or restore) the network and RNG states, write config.json and log.jsonl."""
    train, val = prepare_data(cfg)
    device = cfg["device"]
    in_shape, n_classes = tuple(train.x.shape[1:]), len(train.classes)
    state = ckpt.load_checkpoint(out) if resume else None
    net = build_network(cfg, in_shape, n_classes, copy_from_run=state is None)
    loss_fn = build_loss(cfg, n_classes)
    order = torch.Generator().manual_seed(_seed_from(cfg["seed"], 1))
    torch.manual_seed(_seed_from(cfg["seed"], 2))  # dropout draws from the global generator
    records: list[dict[str, Any]] = []
    if state is not None:
        net.load_state_dict(state["net"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and device.startswith("cuda"):
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        order.set_state(state["order_rng"])
        records = state["records"]
    cfg.update(net=net.config, weight_layer_names=net.weight_layer_names, classes=train.classes)
    ckpt.write_config(out, cfg)
    ckpt.write_log(out, records)  # drops a line logged after the last checkpoint, if killed there
    return Session(
        out, cfg, train.to(device), val.to(device), net.to(device), loss_fn, order, records
    )


def run(s: Session, quiet: bool) -> int:
    """Train the session's remaining epochs; returns 0, or 1 when the loss became non-finite."""
    cfg, records, device = s.cfg, s.records, s.cfg["device"]
    start = len(records) + 1
    if start > cfg["epochs"]:
        if not quiet:
            print(f"{s.out}: already trained for {len(records)} epochs", file=sys.stderr)
        return 0
    for epoch in tqdm(
        range(start, cfg["epochs"] + 1),
        desc="epochs",
        initial=start - 1,
        total=cfg["epochs"],
        disable=quiet,
        file=sys.stderr,
    ):
        t0, cpu0 = time.perf_counter(), time.process_time()
        try:
            train_loss, train_err = _train_epoch(
                s.net, s.train, s.loss_fn, cfg, s.order, epoch, quiet
            )
        except NonFiniteLoss as exc:
            kept = (
                f"{s.out / ckpt.CHECKPOINT} keeps epoch {len(records)}"
                if records
                else "no checkpoint was written"
            )
            print(
                f"deepnets.train: error: {exc}; training stopped, {kept} (the last good state); "
                "try a smaller --lr",
                file=sys.stderr,
            )
            return 1
        train_seconds = time.perf_counter() - t0
        val_loss, val_err = (
            evaluate(s.net, s.val.x, s.val.y, s.loss_fn) if len(s.val) else (None, None)
        )
        records.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_error": train_err,
                "val_loss": val_loss,
                "val_error": val_err,
                "seconds": time.perf_counter() - t0,
                "train_seconds": train_seconds,
                "cpu_seconds": time.process_time() - cpu0,
                "corr": [float(c) for c in s.net.correlations()],
            }
        )
        ckpt.save_checkpoint(
            s.out,
            {
                "epoch": epoch,
                "net": s.net.state_dict(),
                "records": records,
                "torch_rng": torch.get_rng_state(),
                "order_rng": s.order.get_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.startswith("cuda") else None,
            },
        )
        ckpt.write_log(s.out, records)
        if not quiet:
            val_text = (
                "" if val_err is None else f" val_loss {val_loss:.4f} val_error {val_err:.4f}"
            )
            tqdm.write(
                f"epoch {epoch}: train_loss {train_loss:.4f} train_error {train_err:.4f}{val_text} "
                f"({records[-1]['seconds']:.1f} s)",
                file=sys.stderr,
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    """The CLI: 0 on success, 1 when the loss diverged, 2 on a bad argument or missing data."""
    parser = build_parser()
    given = vars(parser.parse_args(argv))
    out: Path = given.pop("out")
    quiet, resume = given.pop("quiet", False), given.pop("resume", False)
    try:
        check_out_dir(out)
        if resume:
            cfg = resumed_config(out, given)
        else:
            if (out / ckpt.CONFIG).exists():
                raise ValueError(f"--out {out} already holds a run; pass --resume to continue it")
            cfg = new_config(given)
        session = setup(out, cfg, resume)
    except (ValueError, DataError, ckpt.RunError) as exc:
        print(f"deepnets.train: error: {exc}", file=sys.stderr)
        return 2
    return run(session, quiet)


if __name__ == "__main__":
    sys.exit(main())
