"""Data readers on small files written in each real format (Section 4: CIFAR, image folders)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from deepnets.training.data import DataError, batch_indices, load_dataset, split_train_val
from deepnets.training.minidata import write_cifar10, write_cifar100, write_imagefolder

SHARED_JPEG = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar10-jpeg"


@pytest.mark.parametrize("archive", [False, True])
def test_cifar10_reader(tmp_path: Path, archive: bool) -> None:
    x, y, xt, yt = write_cifar10(tmp_path, archive=archive)
    ds = load_dataset("cifar10", tmp_path, "train")
    assert ds.x.dtype == torch.uint8 and ds.x.shape == (20, 3, 32, 32)
    assert np.array_equal(ds.x.reshape(20, -1).numpy(), x) and np.array_equal(ds.y.numpy(), y)
    assert ds.classes == [f"c{i}" for i in range(10)]
    test = load_dataset("cifar10", tmp_path, "test")
    assert np.array_equal(test.x.reshape(4, -1).numpy(), xt) and np.array_equal(test.y.numpy(), yt)
    # The archive / extracted folder may also be named directly.
    direct = tmp_path / ("cifar-10-python.tar.gz" if archive else "cifar-10-batches-py")
    assert torch.equal(load_dataset("cifar10", direct, "train").x, ds.x)


@pytest.mark.parametrize("archive", [False, True])
def test_cifar100_reader_uses_fine_labels(tmp_path: Path, archive: bool) -> None:
    x, y = write_cifar100(tmp_path, archive=archive)
    ds = load_dataset("cifar100", tmp_path, "train")
    assert np.array_equal(ds.x.reshape(6, -1).numpy(), x) and np.array_equal(ds.y.numpy(), y)
    assert len(ds.classes) == 100 and ds.classes[5] == "f5"


@pytest.mark.parametrize("as_zip", [False, True])
def test_imagefolder_reader(tmp_path: Path, as_zip: bool) -> None:
    images = write_imagefolder(tmp_path, as_zip)
    for where in [tmp_path] + ([tmp_path / "train.zip"] if as_zip else []):
        ds = load_dataset("imagefolder", where, "train")
        assert ds.classes == ["cat", "dog"]
        assert ds.x.shape == (6, 3, 8, 8) and ds.x.dtype == torch.uint8
        expected = [images[f"train/{c}/{i}.png"] for c in ("cat", "dog") for i in range(3)]
        assert np.array_equal(ds.x.permute(0, 2, 3, 1).numpy(), np.stack(expected))
        assert ds.y.tolist() == [0, 0, 0, 1, 1, 1]


def test_missing_data_says_where_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"cifar-10-python\.tar\.gz.*put .* in " + str(tmp_path)):
        load_dataset("cifar10", tmp_path, "train")
    with pytest.raises(
        DataError, match=r"https://www\.cs\.toronto\.edu/~kriz/cifar-100-python\.tar\.gz"
    ):
        load_dataset("cifar100", tmp_path / "nowhere", "test")
    with pytest.raises(DataError, match="split 'test' not found"):
        write_imagefolder(tmp_path, as_zip=True)
        load_dataset("imagefolder", tmp_path / "train.zip", "test")


def test_missing_batch_file_is_named(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="missing file .*data_batch_3"):
        load_dataset("cifar10", tmp_path, "train")


def test_corrupt_files_are_named(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(DataError, match="corrupt data file .*data_batch_2"):
        load_dataset("cifar10", tmp_path, "train")
    (tmp_path / "broken.tar.gz").write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(DataError, match="corrupt data file .*broken.tar.gz"):
        load_dataset("cifar10", tmp_path / "broken.tar.gz", "train")
    # A pickle that would run code is refused, not executed.
    (tmp_path / "cifar-10-batches-py" / "data_batch_2").write_bytes(pickle.dumps({b"data": print}))
    with pytest.raises(DataError, match="corrupt data file .*data_batch_2.*builtins.print"):
        load_dataset("cifar10", tmp_path, "train")


def test_corrupt_image_is_named(tmp_path: Path) -> None:
    write_imagefolder(tmp_path, as_zip=False)
    (tmp_path / "train" / "dog" / "1.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match=r"corrupt image .*dog/1\.png"):
        load_dataset("imagefolder", tmp_path, "train")


def test_split_train_val_is_a_seeded_partition(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    ds = load_dataset("cifar10", tmp_path, "train")
    ds.y = torch.arange(len(ds))  # label = position, to see which images went where
    train, val = split_train_val(ds, 5, seed=3)
    assert len(train) == 15 and len(val) == 5
    assert sorted(train.y.tolist() + val.y.tolist()) == list(range(20))
    again, _ = split_train_val(ds, 5, seed=3)
    other, _ = split_train_val(ds, 5, seed=4)
    assert torch.equal(again.y, train.y) and not torch.equal(other.y, train.y)
    with pytest.raises(ValueError, match="--val-size 20"):
        split_train_val(ds, 20, seed=0)


def test_batch_indices_permute_and_cover_everything() -> None:
    gen = torch.Generator().manual_seed(0)
    first = list(batch_indices(20, 6, gen))
    assert [len(b) for b in first] == [6, 6, 6, 2]
    seen = torch.cat(first).tolist()
    assert sorted(seen) == list(range(20)) and seen != list(range(20))
    assert torch.cat(list(batch_indices(20, 6, gen))).tolist() != seen  # a fresh draw per epoch


@pytest.mark.skipif(
    not (SHARED_JPEG / "train.zip").is_file(),
    reason=f"shared CIFAR-10 JPEG data absent ({SHARED_JPEG / 'train.zip'})",
)
def test_shared_cifar10_jpeg_zip() -> None:
    ds = load_dataset("imagefolder", SHARED_JPEG, "train")
    assert ds.x.shape == (50000, 3, 32, 32)
    assert ds.classes[:3] == ["airplane", "automobile", "bird"]
    assert torch.bincount(ds.y).tolist() == [5000] * 10


def test_a_damaged_deflate_member_is_a_data_error(image_zips: dict[str, Path]) -> None:
    """zlib.error from a damaged deflate stream becomes a DataError naming the zip."""
    with pytest.raises(DataError, match=r"corrupt data file .*damaged\.zip: Error -3 while decompressing"):
        load_dataset("imagefolder", image_zips["damaged"], "train")
    assert len(load_dataset("imagefolder", image_zips["good"], "train")) == 40


def test_a_zip_read_as_cifar_says_which_data_to_use(tmp_path: Path) -> None:
    write_imagefolder(tmp_path, as_zip=True)
    for kind in ("cifar10", "cifar100"):
        with pytest.raises(DataError, match="train.zip is a zip archive.*use --data imagefolder"):
            load_dataset(kind, tmp_path / "train.zip", "train")
        with pytest.raises(DataError, match="holds .zip archives.*use --data imagefolder"):
            load_dataset(kind, tmp_path, "train")


def test_fingerprint_names_the_data_not_its_place(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    write_cifar10(tmp_path / "a")
    (tmp_path / "b" / "deeper").mkdir(parents=True)
    write_cifar10(tmp_path / "b" / "deeper", archive=True)  # the same data as a .tar.gz
    a = load_dataset("cifar10", tmp_path / "a", "train")
    b = load_dataset("cifar10", tmp_path / "b" / "deeper", "train")
    assert a.fingerprint == b.fingerprint and a.fingerprint.startswith("20:")
    assert load_dataset("cifar10", tmp_path / "a", "test").fingerprint != a.fingerprint
