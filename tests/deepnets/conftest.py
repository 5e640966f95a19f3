"""Shared fixtures of the deepnets tests."""

import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from deepnets.training.minidata import write_cifar10, write_imagefolder


@pytest.fixture(autouse=True, scope="session")
def one_thread() -> Iterator[None]:
    """Tiny tensors: one torch thread avoids OpenMP waits on this shared 2-core machine (~40x).

    Session-wide, so it is in force before any module-scoped fixture runs: a result computed
    in a fixture and one computed in a test then use the same thread count (float reductions
    differ in their last bits between thread counts; test_circuit_feedback compares bit for bit).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- small data in the real formats

CLASSES = tuple(f"c{i}" for i in range(10))  # the class names of minidata's CIFAR-10


@pytest.fixture(scope="session")
def cifar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A miniature cifar-10-batches-py: 40 training images (5 x 8), 8 test images."""
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, n=8)
    return root


def _deflated_zip(dest: Path, tree: Path) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(tree.rglob("*.png")):
            zf.write(path, path.relative_to(tree).as_posix())
    return dest


def _damage(zpath: Path, split: str) -> str:
    """Overwrite the start of the deflate stream of the first ``split`` member; its name."""
    with zipfile.ZipFile(zpath) as zf:
        info = next(i for i in zf.infolist() if i.filename.startswith(f"{split}/"))
    raw = bytearray(zpath.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start + 2 : start + 40] = b"\xff" * 38
    zpath.write_bytes(bytes(raw))
    return info.filename


@pytest.fixture(scope="session")
def image_zips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """CIFAR-shaped image-folder zips (deflate), classes c0..c9 as minidata's CIFAR-10:
    ``good`` (train/ 40 images, test/ 20), ``damaged`` (the same with one member of each split
    damaged: reading it raises zlib.error), ``one_class`` (train/ of a single class)."""
    root = tmp_path_factory.mktemp("zips")
    tree = root / "tree"
    tree.mkdir()
    write_imagefolder(tree, side=32, classes=CLASSES, per_class=4, seed=5)
    other = root / "other"
    other.mkdir()
    write_imagefolder(other, side=32, classes=CLASSES, per_class=2, seed=6)
    (other / "train").rename(tree / "test")
    good = _deflated_zip(root / "good.zip", tree)
    damaged = _deflated_zip(root / "damaged.zip", tree)
    for split in ("train", "test"):
        name = _damage(damaged, split)
        with zipfile.ZipFile(damaged) as zf, pytest.raises(zlib.error):
            zf.read(name)
    one = root / "one"
    one.mkdir()
    write_imagefolder(one, side=32, classes=["only"], per_class=12, seed=7)
    return {"good": good, "damaged": damaged,
            "one_class": _deflated_zip(root / "one_class.zip", one)}
