"""A trained run's weights scored on a data split (Section 4): the library part of
``python -m deepnets.evaluate`` and of ``python -m deepnets.suite --evaluate-test``.

``val`` is the run's own validation split, recomputed from its ``split_seed`` and ``val_size``;
any other name (``train``, ``test``, an image folder's sub-folder) is read whole. The loss is
the run's training loss (hinge, eq. (4), with its mu; or softmax cross-entropy). The run's own
splits (``val``, ``train``) must come from the data it was trained on (its fingerprint), unless
``force_data``. ``which="best"`` scores the weights of the epoch of lowest validation error
(``best.pt``), ``"last"`` the last checkpoint; :func:`score_test_split` scores both, for
``test.json`` (:mod:`deepnets.experiments.testresult`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from deepnets.nn.alignment import layer_names
from deepnets.nn.layers import feedback_layers
from deepnets.nn.losses import make_loss
from deepnets.nn.network import feedback_norms, feedback_norms_by_weight_mask
from deepnets.nn.saturation import saturated_fractions
from deepnets.training import checkpoint as ckpt
from deepnets.training.config import ConfigError, TrainConfig
from deepnets.training.data import Dataset, data_mismatch, load_dataset, split_train_val
from deepnets.training.engine import dropping_layers, evaluate_with_counts
from deepnets.training.rundir import find_data_dir, read_config, read_log
from deepnets.training.trainer import resolve_device, stored_config


@dataclass(frozen=True)
class Score:
    """A run's weights scored on a split: mean loss, error rate, number of images, and which
    weights (``best`` or ``last``) of which epoch, with that epoch's validation error."""

    loss: float
    error: float
    n: int
    which: str
    epoch: int
    val_error: float | None
    #: Per saturating layer, the share of its units with sigma'(h) = 0 on the split
    #: (:func:`deepnets.nn.saturation.saturated_fractions`); None unless asked for.
    saturated: dict[str, float] | None = None
    #: Per class name, the share of the split's images the network puts in that class, the
    #: largest first (:func:`deepnets.training.engine.evaluate_with_counts`); None unless asked
    #: for.
    predicted: dict[str, float] | None = None
    #: Per weight layer, its Frobenius norms (:func:`weight_norms`); None unless asked for.
    norms: dict[str, dict[str, float]] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "val_error": self.val_error, "loss": self.loss,
                "error": self.error}


@dataclass(frozen=True)
class Diagnostics:
    """What :func:`evaluate_run` measures beside the score, nothing by default:
    ``saturation``: the saturated share of each layer's units (:attr:`Score.saturated`);
    ``dropout_seed``: score (and count) with dropout on, as in training, its masks drawn from
    this seed; ``dropout_samples``: with it, the logits are the mean over that many masks per
    image (Monte Carlo dropout; the saturated units are counted under one mask);
    ``dropout_layers``: with it, only these dropout layers drop (0: the network's first);
    ``predictions``: the share of the images put in each class by the score's logits
    (:attr:`Score.predicted`); ``norms``: the weights' norms per layer (:attr:`Score.norms`)."""

    saturation: bool = False
    dropout_seed: int | None = None
    dropout_samples: int = 1
    predictions: bool = False
    dropout_layers: tuple[int, ...] | None = None
    norms: bool = False

    def __post_init__(self) -> None:
        samples = self.dropout_samples
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ConfigError(f"--dropout-samples must be an integer >= 1, got {samples!r}")
        if samples != 1 and self.dropout_seed is None:
            raise ConfigError("--dropout-samples averages dropout masks: give --dropout-seed too")
        if self.dropout_layers is not None:
            if self.dropout_seed is None:
                raise ConfigError("--dropout-layers chooses the layers that drop: give "
                                  "--dropout-seed too")
            if self.saturation:
                raise ConfigError("--saturation counts with every dropout layer on or off: "
                                  "leave out --dropout-layers")

    @property
    def dropout(self) -> bool | tuple[int, ...]:
        """What :func:`deepnets.training.engine.evaluate` takes: no dropout, all, or these
        layers."""
        if self.dropout_seed is None:
            return False
        return True if self.dropout_layers is None else self.dropout_layers


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


def split_reader(kind: str, data_dir: str | Path, split: str = "test"
                 ) -> Callable[[str | Path], Dataset]:
    """A reader of ``split`` (not a run's own ``val`` or ``train``) of ``data_dir`` for many runs:
    called with a run folder, it returns the split as :func:`load_split` reads it for that run,
    read once per list of classes."""
    if split in ("val", "train"):
        raise ValueError(f"split_reader reads a split other than the run's own, not {split!r}")
    read: dict[tuple[str, ...], Dataset] = {}

    def for_run(run_dir: str | Path) -> Dataset:
        classes = read_config(run_dir).get("classes")
        key = tuple(classes or ())
        if key not in read:
            read[key] = load_split(stored_config(Path(run_dir)), classes, kind, data_dir, split)
        return read[key]

    return for_run


def evaluate_run(
    run_dir: str | Path,
    kind: str | None = None,
    data_dir: str | Path | None = None,
    split: str = "val",
    device: str = "auto",
    batch_size: int = 1000,
    force_data: bool = False,
    which: str = "best",
    diagnostics: Diagnostics = Diagnostics(),
) -> Score:
    """The run's weights (``which``: the validation-chosen epoch's or the last) scored on
    ``split``; the data defaults to the run's own; ``diagnostics``: what else to measure, and
    whether with dropout on (:class:`Diagnostics`)."""
    device = resolve_device(device)
    cfg = stored_config(Path(run_dir))
    classes = read_config(run_dir).get("classes")
    data_dir = data_dir or find_data_dir(run_dir, read_config(run_dir))
    ds = load_split(cfg, classes, kind or cfg.data, data_dir, split, force_data)
    return _score(run_dir, cfg, ds, kind or cfg.data, split, device, batch_size, which,
                  diagnostics)


def score_test_split(run_dir: str | Path, kind: str, data_dir: str | Path, split: str = "test",
                device: str = "cpu", batch_size: int = 1000,
                dataset: Dataset | None = None) -> dict[str, Any]:
    """The run's ``test.json`` content (:mod:`deepnets.experiments.testresult`): the
    validation-chosen weights and the last ones, both scored on ``split`` of ``data_dir`` (read
    once; or ``dataset``, that split already read for this run by :func:`split_reader`, when
    many runs are scored on it)."""
    cfg = stored_config(Path(run_dir))
    ds = dataset if dataset is not None else load_split(
        cfg, read_config(run_dir).get("classes"), kind, data_dir, split)
    result: dict[str, Any] = {"data_dir": str(data_dir), "data": kind, "split": split,
                              "fingerprint": ds.fingerprint, "images": len(ds),
                              "epochs_done": len(read_log(run_dir))}
    for which in ckpt.WHICH:
        if which == "best" and ckpt.load_best(run_dir) is None:
            continue
        result[which] = _score(run_dir, cfg, ds, kind, split, device, batch_size, which).as_dict()
    return result


def _score(run_dir: str | Path, cfg: TrainConfig, ds: Dataset, kind: str, split: str,
           device: str, batch_size: int, which: str,
           diagnostics: Diagnostics = Diagnostics()) -> Score:
    if len(ds) == 0:
        raise ConfigError(f"--split {split} is empty")
    net = ckpt.load_network(run_dir, map_location=device, which=which)
    log = read_log(run_dir)
    if which == "best":
        best = ckpt.load_best(run_dir)
        assert best is not None  # load_network found it
        epoch, val_error = int(best["epoch"]), float(best["val_error"])
    else:
        epoch = len(log)
        val_error = log[-1].get("val_error") if log else None
    n_classes = net.config["n_classes"]
    if len(ds.classes) != n_classes or tuple(ds.x.shape[1:]) != tuple(net.config["in_shape"]):
        raise ConfigError(
            f"--data {kind} ({len(ds.classes)} classes, images "
            f"{tuple(ds.x.shape[1:])}) does not fit the run ({n_classes} classes, images "
            f"{tuple(net.config['in_shape'])})"
        )
    if diagnostics.dropout_layers is not None:
        try:
            dropping_layers(net, diagnostics.dropout_layers)
        except ValueError as exc:  # the layer the net lacks, said with the flag that named it
            chosen = " ".join(map(str, diagnostics.dropout_layers))
            raise ConfigError(f"--dropout-layers {chosen}: {exc}") from None
    loss_fn = make_loss(cfg.loss, n_classes, mu=cfg.mu)
    ds = ds.to(device)
    seed = diagnostics.dropout_seed
    dropout = seed is not None
    saturated = predicted = None
    with torch.random.fork_rng():  # the caller's generators are left as they were
        if dropout:
            torch.manual_seed(seed)  # the dropout layers draw from the global generator
        loss, error, counts = evaluate_with_counts(
            net, ds.x, ds.y, loss_fn, batch_size=batch_size, dropout=diagnostics.dropout,
            precision=cfg.eval_precision,  # as the run's validation was
            samples=diagnostics.dropout_samples)
        if diagnostics.saturation:
            if dropout:
                torch.manual_seed(seed)  # reference-path masks: not the score's, alike
            saturated = saturated_fractions(net, ds.x, batch_size, dropout)
    if diagnostics.predictions:
        shares = (counts.double() / len(ds)).tolist()
        predicted = {ds.classes[c]: shares[c]
                     for c in sorted(range(n_classes), key=lambda c: -shares[c])}
    norms = weight_norms(net) if diagnostics.norms else None
    return Score(loss, error, len(ds), which, epoch, val_error, saturated, predicted, norms)


def weight_norms(net: torch.nn.Module) -> dict[str, dict[str, float]]:
    """Per weight layer (:func:`deepnets.nn.alignment.layer_names`), the Frobenius norms ``W``
    and ``R`` (:func:`deepnets.nn.network.feedback_norms`; no ``R`` for a layer without one)
    and, where W lacks some connections (``connectivity < 1``), ``R where W is kept`` and
    ``R where W is masked`` (:func:`deepnets.nn.network.feedback_norms_by_weight_mask`)."""
    layers = feedback_layers(net)
    out: dict[str, dict[str, float]] = {}
    for name, (w, r), split in zip(layer_names(net), feedback_norms(layers),
                                   feedback_norms_by_weight_mask(layers)):
        out[name] = {"W": w} if r is None else {"W": w, "R": r}
        if split is not None:
            out[name].update({"R where W is kept": split[0], "R where W is masked": split[1]})
    return out
