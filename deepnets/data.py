"""Datasets of Section 4: CIFAR-10 / CIFAR-100 (python version) and image-folder trees.

Every reader returns a :class:`Dataset` whose images are a ``uint8`` tensor ``[N, 3, H, W]``
(CIFAR: 32x32), scaled to ``[0, 1]`` batch by batch on the training device (the training step's
``images_to_float``), the paper's only preprocessing ("Section 4: Experiments"); the batches
are slices of :func:`batch_indices`. The validation split (paper: 5,000 images held
out of the 50,000 training images) is drawn by :func:`split_train_val` from a seed.

Supported layouts (``data_dir`` may name the archive/folder itself or the folder holding it):

* ``cifar10``:  ``cifar-10-python.tar.gz`` or its folder ``cifar-10-batches-py/`` with
  ``data_batch_1..5``, ``test_batch``, ``batches.meta``.
* ``cifar100``: ``cifar-100-python.tar.gz`` or its folder ``cifar-100-python/`` with
  ``train``, ``test`` (``fine_labels``), ``meta`` (``fine_label_names``).
* ``imagefolder``: ``<root>/<split>/<class>/<image>`` as a folder, or as a ``.zip`` holding
  ``<split>/<class>/<image>`` (``data_dir`` is the zip, or a folder holding ``<split>.zip``);
  classes are the sorted folder names. Images are decoded with Pillow.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image

KINDS = ("cifar10", "cifar100", "imagefolder")
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".webp", ".tif", ".tiff"}
)


class DataError(ValueError):
    """Missing or corrupt data; the message names the file and, when missing, where to get it."""


@dataclass
class Dataset:
    """Images ``x`` (uint8 ``[N, C, H, W]``), labels ``y`` (int64 ``[N]``) and class names."""

    x: torch.Tensor
    y: torch.Tensor
    classes: list[str]
    fingerprint: str = ""

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, index: torch.Tensor) -> Dataset:
        """The images at ``index`` (a 1-D int64 tensor), same classes."""
        return Dataset(self.x[index], self.y[index], self.classes, self.fingerprint)

    def to(self, device: str | torch.device) -> Dataset:
        """The same dataset with ``x`` and ``y`` on ``device`` (``x`` stays uint8)."""
        return Dataset(self.x.to(device), self.y.to(device), self.classes, self.fingerprint)


# ---------------------------------------------------------------- CIFAR (python version)


@dataclass(frozen=True)
class _CifarFormat:
    name: str
    archive: str
    folder: str
    url: str
    splits: dict[str, tuple[str, ...]]
    meta: str
    label_key: str
    names_key: str


CIFAR10 = _CifarFormat(
    name="CIFAR-10",
    archive="cifar-10-python.tar.gz",
    folder="cifar-10-batches-py",
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    splits={"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)},
    meta="batches.meta",
    label_key="labels",
    names_key="label_names",
)
CIFAR100 = _CifarFormat(
    name="CIFAR-100",
    archive="cifar-100-python.tar.gz",
    folder="cifar-100-python",
    url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    splits={"train": ("train",), "test": ("test",)},
    meta="meta",
    label_key="fine_labels",
    names_key="fine_label_names",
)

# Globals a CIFAR pickle may name: numpy's array reconstruction, nothing else (no code execution).
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR pickle")
        return super().find_class(module, name)


def _unpickle(raw: bytes, where: str) -> dict[str, object]:
    """A CIFAR pickle as a dict with ``str`` keys (the files use ``bytes`` keys)."""
    try:
        obj = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 (any unpickling failure means a damaged file)
        raise DataError(f"corrupt data file {where}: {exc}") from None
    if not isinstance(obj, dict):
        raise DataError(f"corrupt data file {where}: expected a dict, found {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _missing_cifar(fmt: _CifarFormat, data_dir: Path, detail: str) -> DataError:
    return DataError(
        f"{fmt.name} not found: {detail}. Download {fmt.url} and put the .tar.gz (or the folder "
        f"{fmt.folder}/ it extracts to) in {data_dir}"
    )


class _CifarSource:
    """Reads named members from a CIFAR archive or extracted folder."""

    def __init__(self, fmt: _CifarFormat, data_dir: Path) -> None:
        self.fmt = fmt
        self.tar: Path | None = None
        self.folder: Path | None = None
        marker = fmt.meta
        if data_dir.is_file() and zipfile.is_zipfile(data_dir):
            raise DataError(
                f"{data_dir} is a zip archive, not {fmt.name}'s python-version .tar.gz: "
                "for an image-folder zip use --data imagefolder"
            )
        if data_dir.is_file():
            self.tar = data_dir
        elif (data_dir / marker).is_file() or any(
            (data_dir / f).exists() for f in fmt.splits["train"]
        ):
            self.folder = data_dir
        elif (data_dir / fmt.folder).is_dir():
            self.folder = data_dir / fmt.folder
        elif (data_dir / fmt.archive).is_file():
            self.tar = data_dir / fmt.archive
        elif data_dir.is_dir() and any(data_dir.glob("*.zip")):
            raise DataError(
                f"{data_dir} holds .zip archives but no {fmt.archive} or {fmt.folder}/: "
                "for image-folder zips use --data imagefolder"
            )
        else:
            raise _missing_cifar(fmt, data_dir, f"no {fmt.archive} or {fmt.folder}/ in {data_dir}")

    def read(self, names: Sequence[str]) -> list[tuple[str, bytes]]:
        """``(where, raw bytes)`` of each member, in order."""
        if self.folder is not None:
            out = []
            for name in names:
                path = self.folder / name
                if not path.is_file():
                    raise _missing_cifar(self.fmt, self.folder, f"missing file {path}")
                out.append((str(path), path.read_bytes()))
            return out
        assert self.tar is not None
        try:
            with tarfile.open(self.tar, "r:*") as tar:
                members = {PurePosixPath(m.name).name: m for m in tar.getmembers() if m.isfile()}
                out = []
                for name in names:
                    if name not in members:
                        raise _missing_cifar(self.fmt, self.tar.parent, f"{self.tar} lacks {name}")
                    f = tar.extractfile(members[name])
                    assert f is not None
                    out.append((f"{self.tar}:{members[name].name}", f.read()))
                return out
        except (tarfile.TarError, EOFError, OSError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(":")
            raise DataError(f"corrupt data file {self.tar}: {reason}") from None


def _load_cifar(fmt: _CifarFormat, data_dir: Path, split: str) -> Dataset:
    if split not in fmt.splits:
        raise DataError(f"{fmt.name} has splits {sorted(fmt.splits)}, not {split!r}")
    source = _CifarSource(fmt, data_dir)
    raws = source.read([fmt.meta, *fmt.splits[split]])
    meta = _unpickle(raws[0][1], raws[0][0])
    names = meta.get(fmt.names_key)
    if not isinstance(names, list):
        raise DataError(f"corrupt data file {raws[0][0]}: no {fmt.names_key!r}")
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    xs, ys = [], []
    for where, raw in raws[1:]:
        batch = _unpickle(raw, where)
        data, labels = batch.get("data"), batch.get(fmt.label_key)
        if not isinstance(data, np.ndarray) or labels is None:
            raise DataError(f"corrupt data file {where}: no 'data' array or {fmt.label_key!r}")
        labels = np.asarray(labels, dtype=np.int64)
        if (
            data.dtype != np.uint8
            or data.ndim != 2
            or data.shape[1] != 3 * 32 * 32
            or labels.shape != (data.shape[0],)
        ):
            raise DataError(
                f"corrupt data file {where}: data {data.dtype}{data.shape}, "
                f"{labels.shape[0]} labels (expected uint8 (N, 3072) and N labels)"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise DataError(f"corrupt data file {where}: labels outside 0..{len(classes) - 1}")
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    x = torch.from_numpy(np.concatenate(xs))
    y = torch.from_numpy(np.concatenate(ys))
    members = [PurePosixPath(where).name for where, _ in raws[1:]]
    return Dataset(x, y, classes, fingerprint(members, y.numpy(), classes))


# ---------------------------------------------------------------- image folders


def _is_image(parts: Sequence[str]) -> bool:
    return (
        not any(p.startswith(".") or p == "__MACOSX" for p in parts)
        and PurePosixPath(parts[-1]).suffix.lower() in IMAGE_SUFFIXES
    )


def _imagefolder_entries(data_dir: Path, split: str) -> tuple[str, list[tuple[str, str]], object]:
    """``(where, [(class, member name)], reader)`` for one split of a folder or zip tree."""
    if data_dir.is_file() and zipfile.is_zipfile(data_dir):
        zpath, prefix = data_dir, f"{split}/"
    elif data_dir.is_file():
        raise DataError(f"corrupt data file {data_dir}: not a zip archive")
    elif (data_dir / split).is_dir():
        root = data_dir / split
        entries = []
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root).parts
            if path.is_file() and len(rel) == 2 and _is_image(rel):
                entries.append((rel[0], str(path)))
        return str(root), entries, None
    elif (data_dir / f"{split}.zip").is_file():
        zpath, prefix = data_dir / f"{split}.zip", f"{split}/"
    else:
        raise DataError(
            f"image folder split {split!r} not found: expected {data_dir / split}/<class>/<image>, "
            f"{data_dir / (split + '.zip')}, or a .zip given as --data-dir holding "
            f"{split}/<class>/<image>"
        )
    try:
        zf = zipfile.ZipFile(zpath)
        names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"corrupt data file {zpath}: {exc}") from None
    entries = []
    for name in names:
        if not name.startswith(prefix) or name.endswith("/"):
            continue
        rel = name[len(prefix) :].split("/")
        if len(rel) == 2 and _is_image(rel):
            entries.append((rel[0], name))
    if not entries:
        tops = sorted({n.split("/")[0] for n in names if "/" in n})
        raise DataError(
            f"image folder split {split!r} not found in {zpath} "
            f"(its top-level folders: {', '.join(tops) or 'none'})"
        )
    entries.sort()
    return str(zpath), entries, zf


def _decode(raw: bytes, where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(raw)) as img:
            return np.asarray(img.convert("RGB"))
    except Exception as exc:  # noqa: BLE001 (Pillow raises many types for damaged images)
        raise DataError(f"corrupt image {where}: {exc}") from None


def _load_imagefolder(data_dir: Path, split: str, classes: Sequence[str] | None) -> Dataset:
    where, entries, zf = _imagefolder_entries(data_dir, split)
    if not entries:
        raise DataError(f"no images in {where} (expected <class>/<image> below it)")
    found = sorted({c for c, _ in entries})
    names = list(classes) if classes is not None else found
    unknown = sorted(set(found) - set(names))
    if unknown:
        raise DataError(f"{where} has classes {unknown} that the model was not trained on")
    index = {c: i for i, c in enumerate(names)}
    x = None
    y = np.empty(len(entries), dtype=np.int64)
    try:
        for i, (cls, name) in enumerate(entries):
            label = f"{where}:{name}" if zf is not None else name
            raw = zf.read(name) if zf is not None else Path(name).read_bytes()  # type: ignore[union-attr]
            img = _decode(raw, label)
            if x is None:
                x = np.empty((len(entries), *img.shape), dtype=np.uint8)
            elif img.shape != x.shape[1:]:
                raise DataError(
                    f"image {label} is {img.shape[1]}x{img.shape[0]}, the others "
                    f"{x.shape[2]}x{x.shape[1]}: an image folder needs one size"
                )
            x[i] = img
            y[i] = index[cls]
    except (zipfile.BadZipFile, zlib.error, OSError) as exc:
        raise DataError(f"corrupt data file {where}: {exc}") from None
    finally:
        if zf is not None:
            zf.close()  # type: ignore[union-attr]
    assert x is not None
    members = [PurePosixPath(name).as_posix().rsplit("/", 2)[-2:] for _, name in entries]
    return Dataset(
        torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(),
        torch.from_numpy(y),
        names,
        fingerprint(["/".join(m) for m in members], y, names),
    )


# ---------------------------------------------------------------- public API


def fingerprint(files: Sequence[str], labels: np.ndarray, classes: Sequence[str]) -> str:
    """``"<number of images>:<hash>"`` of a split: a SHA-256 of its file list (member names
    relative to the split, in reading order), class names and labels. Two copies of the same
    data in other places give the same fingerprint; another split or data set does not."""
    h = hashlib.sha256()
    for text in (*files, "\0", *classes, "\0"):
        h.update(text.encode() + b"\n")
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return f"{len(labels)}:{h.hexdigest()[:16]}"



def load_dataset(
    kind: str, data_dir: str | Path, split: str = "train", *, classes: Sequence[str] | None = None
) -> Dataset:
    """Read one split (``train`` / ``test``; image folders: any sub-folder name) into memory.

    ``classes`` (image folders only) fixes the label order, e.g. to evaluate on a split that
    lacks some classes with the labels of the training run. Raises :class:`DataError`.
    """
    data_dir = Path(data_dir).expanduser()
    if kind == "cifar10":
        return _load_cifar(CIFAR10, data_dir, split)
    if kind == "cifar100":
        return _load_cifar(CIFAR100, data_dir, split)
    if kind == "imagefolder":
        if not data_dir.exists():
            raise DataError(
                f"image folder data not found: {data_dir} does not exist (give the folder "
                f"holding <split>/<class>/<image>, or such a .zip, as --data-dir)"
            )
        return _load_imagefolder(data_dir, split, classes)
    raise DataError(f"unknown data kind {kind!r}; expected one of {', '.join(KINDS)}")


def split_train_val(ds: Dataset, val_size: int, seed: int) -> tuple[Dataset, Dataset]:
    """Hold ``val_size`` images out of ``ds`` (paper: 5,000), chosen by a permutation from ``seed``.

    Both parts keep the permutation's (shuffled) order, so the first ``n`` training images are
    a random subset (used by ``--train-subset``).
    """
    if not 0 <= val_size < len(ds):
        raise ValueError(
            f"--val-size {val_size} must be in 0..{len(ds) - 1} (the split has {len(ds)} images)"
        )
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))
    return ds.subset(perm[val_size:]), ds.subset(perm[:val_size])


def batch_indices(n: int, batch_size: int, generator: torch.Generator,
                  device: str | torch.device = "cpu") -> Iterator[torch.Tensor]:
    """The index batches of one epoch over ``n`` images: a fresh permutation drawn from
    ``generator`` (a CPU generator: one draw per epoch, so saving ``generator.get_state()``
    makes the order resumable), copied to ``device`` once and sliced; the last batch may be
    smaller."""
    order = torch.randperm(n, generator=generator).to(device)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]
