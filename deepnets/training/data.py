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
  ``<split>/<class>/<image>`` (``data_dir`` is the zip, or a folder holding ``<split>.zip``, not
  both ``<split>/`` and ``<split>.zip``); classes are the sorted folder names, and a class's
  images may lie at any depth below its folder (as torchvision's ``ImageFolder``). A zip may
  wrap the split in one top folder and may use Windows' ``\\`` separators. Refused in one line,
  never dropped: an empty class folder, an image outside any class folder, a zip member that is
  encrypted, compressed by a method Python cannot read, or present twice.
  Images are decoded with Pillow: 8-bit modes converted to RGB (alpha dropped, as torchvision's
  loader does), 16-bit grey by its high byte; 32-bit integer and float pixels, and files of
  several frames, are refused.

Every split has a fingerprint (:func:`fingerprint`) of its file names, labels and pixels.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import warnings
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
    return Dataset(x, y, classes, fingerprint(members, y.numpy(), classes, x.numpy()))


# ---------------------------------------------------------------- image folders

#: Zip compression methods Python's ``zipfile`` reads (stored, deflate, bzip2, lzma).
ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate",
               zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma"}
#: Pillow modes of 8-bit channels, converted to RGB by Pillow (alpha dropped, as torchvision's
#: loader does; palette looked up; CMYK and YCbCr converted; 1-bit as 0/255).
EIGHT_BIT_MODES = frozenset({"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX",
                             "CMYK", "YCbCr"})
#: Pillow modes of 16-bit unsigned grey (e.g. a 16-bit PNG): kept to their high byte, as
#: Pillow itself reads 16-bit RGB.
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


def _hidden(parts: Sequence[str]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _is_image(parts: Sequence[str]) -> bool:
    return not _hidden(parts) and PurePosixPath(parts[-1]).suffix.lower() in IMAGE_SUFFIXES


@dataclass
class _Tree:
    """One split of an image folder: where it is, its class folders (sorted) and its images as
    ``(class, path below the split, how to read it)``, sorted; ``zf`` when read from a zip."""

    where: str
    classes: list[str]
    entries: list[tuple[str, str, str]]
    zf: zipfile.ZipFile | None = None

    def read(self, member: str) -> bytes:
        return self.zf.read(member) if self.zf is not None else Path(member).read_bytes()


def _tree_from_paths(where: str, paths: Sequence[tuple[str, str]], folders: Sequence[str],
                     ) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Classes and entries of a split from its files ``(path below the split, member)`` and its
    folders (paths below the split): every image at any depth below a class folder (as
    torchvision's ``ImageFolder``), an image outside any class folder or an empty class folder
    refused."""
    classes = {f.split("/")[0] for f in folders if f and not _hidden(f.split("/")[:1])}
    entries = []
    for rel, member in paths:
        parts = rel.split("/")
        if not _is_image(parts):
            continue
        if len(parts) == 1:
            raise DataError(f"image {where}/{rel} is not inside a class folder "
                            f"(expected {where}/<class>/<image>)")
        classes.add(parts[0])
        entries.append((parts[0], rel, member))
    empty = sorted(classes - {c for c, _, _ in entries})
    if empty:
        raise DataError(f"class folder {where}/{empty[0]} holds no images ("
                        f"{len(empty)} empty class folder{'s' if len(empty) > 1 else ''}; "
                        f"images end in {', '.join(sorted(IMAGE_SUFFIXES))})")
    return sorted(classes), sorted(entries)


def _folder_tree(root: Path) -> _Tree:
    paths, folders = [], []
    for top, dirs, files in os.walk(root, followlinks=True):
        rel_top = Path(top).relative_to(root).as_posix()
        prefix = "" if rel_top == "." else rel_top + "/"
        dirs[:] = [d for d in dirs if not _hidden([d])]
        folders += [prefix + d for d in dirs]
        paths += [(prefix + f, str(Path(top) / f)) for f in files]
    classes, entries = _tree_from_paths(str(root), paths, folders)
    return _Tree(str(root), classes, entries)


def _zip_tree(zpath: Path, split: str) -> _Tree:
    try:
        zf = zipfile.ZipFile(zpath)
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"corrupt data file {zpath}: {exc}") from None
    # Zips written on Windows by some tools separate folders with "\\".
    names = {}
    for info in infos:
        name = info.filename.replace("\\", "/")
        if name in names and not name.endswith("/"):
            zf.close()
            raise DataError(f"{zpath} holds the member {name!r} twice")
        names[name] = info
    prefix = f"{split}/"
    if not any(n.startswith(prefix) for n in names):  # a zip of the folder holding the split?
        tops = {n.split("/")[0] for n in names if "/" in n and not _hidden(n.split("/")[:1])}
        if len(tops) == 1 and any(n.startswith(f"{next(iter(tops))}/{prefix}") for n in names):
            prefix = f"{next(iter(tops))}/{prefix}"
    paths = [(n[len(prefix):], info) for n, info in names.items()
             if n.startswith(prefix) and not n.endswith("/")]
    folders = [n[len(prefix):].rstrip("/") for n in names if n.startswith(prefix) and n.endswith("/")]
    folders += [rel.rsplit("/", 1)[0] for rel, _ in paths if "/" in rel]
    if not paths:
        zf.close()
        tops = sorted({n.split("/")[0] + "/" for n in names if "/" in n})
        raise DataError(
            f"image folder split {split!r} not found in {zpath} "
            f"(its top-level folders: {', '.join(tops) or 'none'}; "
            f"{len(names)} members)"
        )
    try:
        classes, entries = _tree_from_paths(f"{zpath}:{prefix.rstrip('/')}",
                                            [(rel, info.filename) for rel, info in paths], folders)
    except DataError:
        zf.close()
        raise
    for _, _, member in entries:
        info = zf.getinfo(member)
        problem = ("is encrypted (no password can be given)" if info.flag_bits & 0x1
                   else None if info.compress_type in ZIP_METHODS
                   else f"uses compression method {info.compress_type}, which this reader cannot "
                        f"read (it reads {', '.join(ZIP_METHODS.values())})")
        if problem:
            zf.close()
            raise DataError(f"{zpath}: member {member} {problem}")
    return _Tree(str(zpath), classes, entries, zf)


def _imagefolder_tree(data_dir: Path, split: str) -> _Tree:
    """The split ``split`` of an image folder or zip (see the module docstring)."""
    if data_dir.is_file() and zipfile.is_zipfile(data_dir):
        return _zip_tree(data_dir, split)
    if data_dir.is_file():
        raise DataError(f"corrupt data file {data_dir}: not a zip archive")
    folder, zpath = data_dir / split, data_dir / f"{split}.zip"
    if folder.is_dir() and zpath.is_file():
        raise DataError(f"{data_dir} holds both {split}/ and {split}.zip: give the zip itself as "
                        f"--data-dir to read it, or move one of the two away")
    if folder.is_dir():
        return _folder_tree(folder)
    if zpath.is_file():
        return _zip_tree(zpath, split)
    raise DataError(
        f"image folder split {split!r} not found: expected {folder}/<class>/<image>, "
        f"{zpath}, or a .zip given as --data-dir holding {split}/<class>/<image>"
    )


def _decode(raw: bytes, where: str) -> np.ndarray:
    """One image as uint8 ``[H, W, 3]``: 8-bit modes through Pillow's RGB conversion, 16-bit
    grey by its high byte; a mode without a fixed range (32-bit integer or float pixels), and
    a file of several frames, are refused."""
    try:
        with Image.open(io.BytesIO(raw)) as img, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Palette images with Transparency ..."
            frames = getattr(img, "n_frames", 1)
            if frames > 1:
                raise DataError(f"image {where} holds {frames} frames (an animation or a "
                                "multi-page file): one image per file")
            if img.mode in EIGHT_BIT_MODES:
                return np.asarray(img.convert("RGB"))
            if img.mode in SIXTEEN_BIT_MODES:
                grey = (np.asarray(img).astype(np.uint16) >> 8).astype(np.uint8)
                return np.repeat(grey[:, :, None], 3, axis=2)
            raise DataError(f"image {where} has Pillow mode {img.mode!r} ("
                            + ("32-bit integer" if img.mode.startswith("I") else
                               "floating-point" if img.mode.startswith("F") else "other")
                            + " pixels), which has no fixed 8-bit reading: convert the images "
                            "to 8-bit RGB or grey")
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 (Pillow raises many types for damaged images)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise DataError(f"corrupt image {where}: {first}") from None


def _load_imagefolder(data_dir: Path, split: str, classes: Sequence[str] | None) -> Dataset:
    tree = _imagefolder_tree(data_dir, split)
    where, entries = tree.where, tree.entries
    names = list(classes) if classes is not None else tree.classes
    unknown = sorted(set(tree.classes) - set(names))
    if unknown:
        raise DataError(f"{where} has classes {unknown} that the model was not trained on")
    index = {c: i for i, c in enumerate(names)}
    x = None
    y = np.empty(len(entries), dtype=np.int64)
    try:
        for i, (cls, rel, member) in enumerate(entries):
            label = f"{where}:{member}" if tree.zf is not None else member
            img = _decode(tree.read(member), label)
            if x is None:
                x = np.empty((len(entries), *img.shape), dtype=np.uint8)
            elif img.shape != x.shape[1:]:
                raise DataError(
                    f"image {label} is {img.shape[1]}x{img.shape[0]}, the others "
                    f"{x.shape[2]}x{x.shape[1]}: an image folder needs one size"
                )
            x[i] = img
            y[i] = index[cls]
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError,
            RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise DataError(f"corrupt data file {where}: {first}") from None
    finally:
        if tree.zf is not None:
            tree.zf.close()
    assert x is not None
    return Dataset(
        torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(),
        torch.from_numpy(y),
        names,
        fingerprint([rel for _, rel, _ in entries], y, names, x),
    )


# ---------------------------------------------------------------- public API


def fingerprint(files: Sequence[str], labels: np.ndarray, classes: Sequence[str],
                pixels: np.ndarray) -> str:
    """``"<number of images>:<names hash>:<pixels hash>"`` of a split: SHA-256s (16 hex digits
    each) of its file list (member names relative to the split, in reading order), class names
    and labels; and of its decoded pixels (uint8, in reading order). Two copies of the same data
    in other places or formats (a folder and its zip, a .tar.gz and its folder) give the same
    fingerprint; another split or data set does not, nor a copy whose images were changed under
    the same names (e.g. made grey). Runs made before the pixels hash have ``"<n>:<names
    hash>"``; :func:`data_mismatch` compares those by names only."""
    h = hashlib.sha256()
    for text in (*files, "\0", *classes, "\0"):
        h.update(text.encode() + b"\n")
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    content = hashlib.sha256(memoryview(np.ascontiguousarray(pixels, dtype=np.uint8)).cast("B"))
    return f"{len(labels)}:{h.hexdigest()[:16]}:{content.hexdigest()[:16]}"


def data_mismatch(stored: str, current: str) -> str | None:
    """Why the data of fingerprint ``current`` is not the data of ``stored`` (a run's), or None
    when it is. A ``stored`` fingerprint without the pixels hash (older runs) is compared by
    image count, names and labels only."""
    old, new = stored.split(":"), current.split(":")
    if old[:2] != new[:2]:
        return "other images, names or labels"
    if len(old) > 2 and old[2:] != new[2:]:
        return "the same file names and labels, but other pixels"
    return None


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
