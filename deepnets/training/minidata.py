"""Miniature datasets in the real on-disk formats of :mod:`deepnets.training.data`, for tests and
smoke runs.

Random pixels and labels (from a fixed seed) written exactly as the originals are laid out:
CIFAR-10's ``cifar-10-batches-py`` pickles, CIFAR-100's ``cifar-100-python`` pickles (each as
a folder or as the ``.tar.gz``), and an image-folder tree ``train/<class>/<image>.png`` as a
folder or a ``.zip``. Nothing is downloaded.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def _cifar_batch(
    rng: np.random.Generator, n: int, n_classes: int, label_key: bytes
) -> tuple[dict, np.ndarray, np.ndarray]:
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = rng.integers(0, n_classes, size=n).tolist()
    return {b"data": data, label_key: labels, b"batch_label": b"x"}, data, np.array(labels)


def write_cifar10(
    root: str | os.PathLike[str], n: int = 4, archive: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A miniature cifar-10-batches-py (or its .tar.gz) in ``root``; returns train/test arrays."""
    root = Path(root)
    rng = np.random.default_rng(0)
    files: dict[str, bytes] = {}
    xs, ys = [], []
    for i in range(1, 6):
        batch, x, y = _cifar_batch(rng, n, 10, b"labels")
        files[f"data_batch_{i}"] = pickle.dumps(batch)
        xs.append(x)
        ys.append(y)
    test, xt, yt = _cifar_batch(rng, n, 10, b"labels")
    files["test_batch"] = pickle.dumps(test)
    files["batches.meta"] = pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(10)]})
    _write_tree(root, "cifar-10-batches-py", files, archive, "cifar-10-python.tar.gz")
    return np.concatenate(xs), np.concatenate(ys), xt, yt


def write_cifar100(root: str | os.PathLike[str], n: int = 6,
                   archive: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A miniature cifar-100-python (or its .tar.gz) in ``root``; returns the training arrays."""
    root = Path(root)
    rng = np.random.default_rng(1)
    train, x, y = _cifar_batch(rng, n, 100, b"fine_labels")
    test, _, _ = _cifar_batch(rng, n, 100, b"fine_labels")
    files = {
        "train": pickle.dumps(train),
        "test": pickle.dumps(test),
        "meta": pickle.dumps({b"fine_label_names": [f"f{i}".encode() for i in range(100)]}),
    }
    _write_tree(root, "cifar-100-python", files, archive, "cifar-100-python.tar.gz")
    return x, y


def _write_tree(root: Path, folder: str, files: dict[str, bytes], archive: bool, name: str) -> None:
    if archive:
        with tarfile.open(root / name, "w:gz") as tar:
            for fname, raw in files.items():
                info = tarfile.TarInfo(f"{folder}/{fname}")
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
    else:
        (root / folder).mkdir(parents=True)
        for fname, raw in files.items():
            (root / folder / fname).write_bytes(raw)


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def write_imagefolder(
    root: Path,
    as_zip: bool = False,
    *,
    side: int = 8,
    classes: Sequence[str] = ("dog", "cat"),
    per_class: int = 3,
    seed: int = 2,
) -> dict[str, np.ndarray]:
    """``train/<class>/<image>.png`` (lossless, so pixels can be compared) as a folder or a zip:
    ``per_class`` random ``side`` x ``side`` RGB images per class; returns name -> pixels."""
    rng = np.random.default_rng(seed)
    images = {
        f"train/{c}/{i}.png": rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        for c in classes
        for i in range(per_class)
    }
    if as_zip:
        with zipfile.ZipFile(root / "train.zip", "w") as zf:
            zf.writestr("train/", b"")
            for name, px in images.items():
                zf.writestr(name, _png(px))
            zf.writestr("train/README.txt", b"not an image")
    else:
        for name, px in images.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(_png(px))
    return images


def tiny_cifar_folder(root: Path) -> Path:
    """``root`` holding a CIFAR-10-shaped image-folder tree: 10 classes x 4 random 32x32 images."""
    root.mkdir(parents=True, exist_ok=True)
    write_imagefolder(root, side=32, classes=[f"class{c}" for c in range(10)], per_class=4, seed=0)
    return root
