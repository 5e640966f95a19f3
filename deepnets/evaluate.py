"""``python -m deepnets.evaluate``: loss and error rate of a trained run on any split (Section 4).

``--split val`` (the default) is the run's own validation split, recomputed from its
``split_seed`` and ``val_size``; any other name (``train``, ``test``, an image folder's
sub-folder) is read whole. The loss is the run's training loss (hinge, eq. (4), with its mu;
or softmax cross-entropy). The run's own splits (``val``, ``train``) must come from the data it
was trained on (its fingerprint), unless ``--force-data``; a separate test set
(``--split test --data-dir TESTSET``) is the normal use of other data.

``--which best`` (the default) scores the weights of the epoch of lowest validation error
(``best.pt``), the paper's protocol: choose on validation, report test; ``--which last``
scores the last checkpoint. The scoring itself is :mod:`deepnets.experiments.scoring` (also used by
``deepnets.suite --evaluate-test``).
"""

from __future__ import annotations

import argparse
import sys

from deepnets.experiments.scoring import Diagnostics, evaluate_run
from deepnets.training import checkpoint as ckpt
from deepnets.training.config import ConfigError, shown
from deepnets.training.data import KINDS, DataError
from deepnets.training.runconfig import positive_number, seed_arg
from deepnets.training.rundir import RunError
from deepnets.training.trainer import resolve_device
from urfb_common import OneLineParser, command_line, path_arg, report_error


def dropout_layer(text: str) -> int:
    """An argparse type: the index of a dropout layer, an integer >= 0."""
    try:
        index = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{shown(text)} is not an integer") from None
    if index < 0:
        raise argparse.ArgumentTypeError(f"{index} is below 0: the first dropout layer is 0")
    return index


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
        "--which", choices=ckpt.WHICH, default="best",
        help="best: the weights of the epoch of lowest validation error (best.pt; choose on "
        "validation, report test); last: the last checkpoint (default: best)",
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
    p.add_argument(
        "--dropout-seed", type=seed_arg, metavar="SEED",
        help="score with dropout on, as a training step computes, its masks drawn from SEED "
        "(a diagnostic; default: no dropout, as validation and test are scored); with "
        "--saturation the saturated units are counted with dropout on too",
    )
    p.add_argument(
        "--dropout-samples", type=positive_number(int), default=1, metavar="K",
        help="with --dropout-seed: score the mean of the logits over K dropout masks per image "
        "(Monte Carlo dropout; the network without dropout is the usual stand-in for that "
        "mean; --saturation still counts under one mask; default: 1)",
    )
    p.add_argument(
        "--dropout-layers", type=dropout_layer, nargs="+", metavar="I",
        help="with --dropout-seed: only these dropout layers drop (0: the network's first; "
        "default: all of them)",
    )
    p.add_argument(
        "--predictions",
        action="store_true",
        help="also print the share of the split's images put in each class, the largest "
        "first (a network may put most images in one class)",
    )
    p.add_argument(
        "--saturation",
        action="store_true",
        help="also print, per layer, the share of its units that are saturated on the split "
        "(sigma'(h) = 0, Remark 2: they pass no error down)",
    )
    p.add_argument(
        "--norms",
        action="store_true",
        help="also print, per weight layer, the Frobenius norms of the scored W and R and, "
        "with connectivity < 1, of R's entries where W keeps its connection and where W's is "
        "masked (under URFB the latter grow with nothing to slow them)",
    )
    return p


@command_line("deepnets.evaluate")
def main(argv: list[str] | None = None) -> int:
    """Print ``split S (N images), epoch E (best|last): loss L error E`` for the run; 0 on
    success, 2 on a bad argument or missing data."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"argument --batch-size: {args.batch_size} must be positive")
    try:
        device = resolve_device(args.device)
        diagnostics = Diagnostics(args.saturation, args.dropout_seed, args.dropout_samples,
                                  args.predictions,
                                  None if args.dropout_layers is None else tuple(args.dropout_layers),
                                  args.norms)
        score = evaluate_run(args.run, args.data, args.data_dir, args.split, device,
                             args.batch_size, args.force_data, args.which, diagnostics)
    except (ConfigError, DataError, RunError) as exc:
        report_error("deepnets.evaluate", exc)
        return 2
    layers = ("" if args.dropout_layers is None else
              f" in layers {', '.join(map(str, sorted(set(args.dropout_layers))))}")
    dropout = ("" if args.dropout_seed is None else
               f", dropout on{layers} (seed {args.dropout_seed})")
    masks = f", mean logits of {args.dropout_samples} masks" if args.dropout_samples > 1 else ""
    print(f"split {args.split} ({score.n} images), epoch {score.epoch} ({score.which}"
          f"{dropout}{masks}): loss {score.loss:.4f} error {score.error:.4f}")
    if score.saturated is not None:
        print(f"saturated units (sigma'(h) = 0{dropout}{', one mask' if masks else ''}): "
              + ", ".join(f"{name} {share:.3f}" for name, share in score.saturated.items()))
    if score.predicted is not None:
        print(f"predicted classes (share of images{dropout}{masks}): "
              + ", ".join(f"{name} {share:.3f}" for name, share in score.predicted.items()))
    if score.norms is not None:
        print("Frobenius norms: " + "; ".join(
            f"{layer} " + ", ".join(f"{what} {value:.4g}" for what, value in norms.items())
            for layer, norms in score.norms.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
