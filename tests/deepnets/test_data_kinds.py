"""The image-folder reader on every kind of input a user may hand it: every Pillow mode, every
zip oddity, a folder and its zip (the same data, the same fingerprint), and a fingerprint that
sees the pixels. Nothing is decoded wrongly or dropped without a word (issue 19)."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepnets.training.data import DataError, data_mismatch, load_dataset

SIDE = 6
RNG = np.random.default_rng(0)


def _bytes(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _rgb_png(seed: int) -> tuple[bytes, np.ndarray]:
    px = np.random.default_rng(seed).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    return _bytes(Image.fromarray(px), "PNG"), px


def _modes() -> dict[str, tuple[bytes, str, np.ndarray | str]]:
    """mode -> (file bytes, suffix, expected RGB pixels or the refusal's text)."""
    g = RNG.integers(0, 256, (SIDE, SIDE), dtype=np.uint8)
    rgb = RNG.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    alpha = RNG.integers(0, 256, (SIDE, SIDE), dtype=np.uint8)
    grey3 = np.repeat(g[:, :, None], 3, axis=2)
    bits = g > 127
    palette = RNG.integers(0, 256, (256, 3), dtype=np.uint8)
    p_img = Image.fromarray(g, "L").convert("P")
    p_img.putpalette(palette.tobytes())
    p_img.info["transparency"] = 3
    wide = RNG.integers(0, 65536, (SIDE, SIDE), dtype=np.uint16)
    cmy = RNG.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    cmyk = np.concatenate([cmy, np.zeros((SIDE, SIDE, 1), np.uint8)], axis=2)
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    return {
        "1": (_bytes(Image.fromarray(bits), "PNG"), ".png", np.repeat(bits[:, :, None] * 255, 3, 2)),
        "L": (_bytes(Image.fromarray(g, "L"), "PNG"), ".png", grey3),
        "LA": (_bytes(Image.fromarray(np.stack([g, alpha], 2), "LA"), "PNG"), ".png", grey3),
        "P": (_bytes(p_img, "PNG"), ".png", palette[g]),
        "RGB": (_bytes(Image.fromarray(rgb), "PNG"), ".png", rgb),
        "RGBA": (_bytes(Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), "PNG"), ".png", rgb),
        "CMYK": (_bytes(Image.fromarray(cmyk, "CMYK"), "TIFF"), ".tif", 255 - cmy),
        "I;16 png": (_bytes(Image.fromarray(wide), "PNG"), ".png",
                     np.repeat((wide >> 8).astype(np.uint8)[:, :, None], 3, 2)),
        "I;16 tiff": (_bytes(Image.fromarray(wide), "TIFF"), ".tif",
                      np.repeat((wide >> 8).astype(np.uint8)[:, :, None], 3, 2)),
        "I": (_bytes(Image.fromarray(wide.astype(np.int32) * 3, "I"), "TIFF"), ".tif",
              "Pillow mode 'I' (32-bit integer pixels)"),
        "F": (_bytes(Image.fromarray(g.astype(np.float32) / 255, "F"), "TIFF"), ".tif",
              "Pillow mode 'F' (floating-point pixels)"),
        "animated GIF": (gif.getvalue(), ".gif", "holds 2 frames"),
    }


MODES = _modes()


@pytest.mark.parametrize("as_zip", [False, True])
@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_image_mode_is_read_right_or_refused(tmp_path: Path, mode: str, as_zip: bool) -> None:
    raw, suffix, expected = MODES[mode]
    other, other_px = _rgb_png(1)
    files = {f"train/a/img{suffix}": raw, "train/b/other.png": other}
    if as_zip:
        with zipfile.ZipFile(tmp_path / "train.zip", "w") as zf:
            for name, data in files.items():
                zf.writestr(name, data)
    else:
        for name, data in files.items():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_bytes(data)
    if isinstance(expected, str):
        with pytest.raises(DataError, match=f"img{suffix}") as info:
            load_dataset("imagefolder", tmp_path, "train")
        assert expected in str(info.value) and "\n" not in str(info.value)
        return
    ds = load_dataset("imagefolder", tmp_path, "train")
    assert ds.classes == ["a", "b"] and ds.y.tolist() == [0, 1]
    got = ds.x.permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(got[0], expected)
    np.testing.assert_array_equal(got[1], other_px)


# ---------------------------------------------------------------- zips


def _zip(dest: Path, members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(dest, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name) if name.endswith("/") else name, data)
    return dest


def _patch_headers(zpath: Path, member: str, *, flag: int | None = None,
                   method: int | None = None) -> None:
    """Set the general-purpose flag bits / compression method of ``member`` in its local and
    central headers, as another zip tool would have written them."""
    raw = bytearray(zpath.read_bytes())
    with zipfile.ZipFile(zpath) as zf:
        info = zf.getinfo(member)
    local = info.header_offset
    central = raw.index(b"PK\x01\x02")  # the first central-directory entry
    name = member.encode()
    while raw[central + 46 : central + 46 + len(name)] != name:
        central = raw.index(b"PK\x01\x02", central + 4)
    for offset, at in ((local + 6, "local"), (central + 8, "central")):
        if flag is not None:
            old = struct.unpack_from("<H", raw, offset)[0]
            struct.pack_into("<H", raw, offset, old | flag)
        if method is not None:
            struct.pack_into("<H", raw, offset + 2, method)
    zpath.write_bytes(bytes(raw))


def _members(n_per_class: int = 2) -> tuple[dict[str, bytes], np.ndarray]:
    members, pixels = {}, []
    for c in ("cat", "dog"):
        for i in range(n_per_class):
            raw, px = _rgb_png(len(pixels) + 10)
            members[f"train/{c}/{i}.png"] = raw
            pixels.append(px)
    return members, np.stack(pixels)


def test_zip_oddities_are_read_or_refused_in_one_line(tmp_path: Path) -> None:
    members, pixels = _members()
    expected = torch.from_numpy(pixels).permute(0, 3, 1, 2)
    readable = {
        "backslash names": {k.replace("/", "\\"): v for k, v in members.items()},
        "wrapped in a top folder": {f"cifar/{k}": v for k, v in members.items()},
        "with folder entries": {"train/": b"", "train/cat/": b"", "train/dog/": b"", **members},
        "a README beside the classes": {**members, "train/README.txt": b"text"},
        "macOS metadata": {**members, "__MACOSX/train/cat/._0.png": b"junk",
                           "train/cat/.DS_Store": b"junk"},
    }
    for i, (case, content) in enumerate(readable.items()):
        ds = load_dataset("imagefolder", _zip(tmp_path / f"ok{i}.zip", content), "train")
        assert torch.equal(ds.x, expected) and ds.classes == ["cat", "dog"], case
    for method in (zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        ds = load_dataset("imagefolder", _zip(tmp_path / f"m{method}.zip", members, method), "train")
        assert torch.equal(ds.x, expected), method

    refused: dict[str, tuple[Path, str]] = {}
    enc = _zip(tmp_path / "encrypted.zip", members)
    _patch_headers(enc, "train/dog/1.png", flag=0x1)
    refused["encrypted"] = (enc, "member train/dog/1.png is encrypted")
    odd = _zip(tmp_path / "zstd.zip", members)
    _patch_headers(odd, "train/cat/0.png", method=93)
    refused["unknown method"] = (odd, "member train/cat/0.png uses compression method 93")
    refused["empty class"] = (_zip(tmp_path / "empty.zip", {**members, "train/bird/": b""}),
                              "class folder " + str(tmp_path / "empty.zip") + ":train/bird holds no images")
    refused["image outside a class"] = (
        _zip(tmp_path / "loose.zip", {**members, "train/x.png": members["train/cat/0.png"]}),
        "image " + str(tmp_path / "loose.zip") + ":train/x.png is not inside a class folder")
    dup = _zip(tmp_path / "dup.zip", {**members})
    with zipfile.ZipFile(dup, "a") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("train/cat/0.png", members["train/dog/0.png"])
    refused["duplicate member"] = (dup, "holds the member 'train/cat/0.png' twice")
    refused["no such split"] = (_zip(tmp_path / "nosplit.zip", {"data/x/cat/0.png": b"x",
                                                              "other/y.png": b"y"}),
                                "its top-level folders: data/, other/; 2 members")
    for case, (zpath, message) in refused.items():
        with pytest.raises(DataError) as info:
            load_dataset("imagefolder", zpath, "train")
        assert message in str(info.value) and "\n" not in str(info.value), (case, info.value)


# ---------------------------------------------------------------- folder and zip


def _tree(root: Path) -> dict[str, bytes]:
    """An image-folder tree with images one and two levels below their class, a grey image,
    hidden files and a non-image file; returns its files."""
    files = {}
    for i, name in enumerate(["train/cat/0.png", "train/cat/sub/1.png", "train/cat/sub/deep/2.png",
                              "train/dog/0.png", "train/dog/x/1.png"]):
        files[name] = _rgb_png(i + 30)[0]
    files["train/dog/grey.png"] = MODES["L"][0]
    files["train/dog/notes.txt"] = b"not an image"
    files["train/cat/.hidden.png"] = b"junk"
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def test_a_folder_and_its_zip_read_the_same(tmp_path: Path) -> None:
    files = _tree(tmp_path / "folder")
    folder = load_dataset("imagefolder", tmp_path / "folder", "train")
    assert len(folder) == 6 and folder.classes == ["cat", "dog"]  # nothing below a class dropped
    assert folder.y.tolist() == [0, 0, 0, 1, 1, 1]
    zipped = load_dataset("imagefolder", _zip(tmp_path / "t.zip", files), "train")
    (tmp_path / "z").mkdir()
    _zip(tmp_path / "z" / "train.zip", {k.replace("/", "\\"): v for k, v in files.items()})
    beside = load_dataset("imagefolder", tmp_path / "z", "train")
    for other in (zipped, beside):
        assert torch.equal(other.x, folder.x) and torch.equal(other.y, folder.y)
        assert other.classes == folder.classes and other.fingerprint == folder.fingerprint


def test_folder_oddities_are_refused_in_one_line(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "train" / "bird").mkdir()
    with pytest.raises(DataError, match=r"class folder .*train/bird holds no images"):
        load_dataset("imagefolder", tmp_path, "train")
    (tmp_path / "train" / "bird").rmdir()
    (tmp_path / "train" / "loose.png").write_bytes(_rgb_png(3)[0])
    with pytest.raises(DataError, match=r"image .*train/loose\.png is not inside a class folder"):
        load_dataset("imagefolder", tmp_path, "train")
    (tmp_path / "train" / "loose.png").unlink()
    _zip(tmp_path / "train.zip", {"train/cat/0.png": _rgb_png(3)[0]})
    with pytest.raises(DataError, match=r"holds both train/ and train\.zip: give the zip itself"):
        load_dataset("imagefolder", tmp_path, "train")
    assert len(load_dataset("imagefolder", tmp_path / "train.zip", "train")) == 1


# ---------------------------------------------------------------- the fingerprint


def test_the_fingerprint_sees_the_pixels(tmp_path: Path) -> None:
    files = _tree(tmp_path / "colour")
    grey = {}
    for name, data in files.items():
        if name.endswith(".png") and "/." not in name:
            with Image.open(io.BytesIO(data)) as img:
                data = _bytes(img.convert("L").convert("RGB"), "PNG")
        grey[name] = data
    for name, data in grey.items():
        (tmp_path / "grey" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "grey" / name).write_bytes(data)
    a = load_dataset("imagefolder", tmp_path / "colour", "train").fingerprint
    b = load_dataset("imagefolder", tmp_path / "grey", "train").fingerprint
    assert a.split(":")[:2] == b.split(":")[:2] and a != b  # same names, other pixels
    assert data_mismatch(a, b) == "the same file names and labels, but other pixels"
    assert data_mismatch(a, a) is None
    old = ":".join(a.split(":")[:2])  # a run made before the pixels hash
    assert data_mismatch(old, b) is None and data_mismatch(old, a) is None
    assert data_mismatch(a, "6:0123456789abcdef:0123456789abcdef") == "other images, names or labels"


def test_resume_and_evaluate_refuse_a_grey_copy_and_old_runs_resume_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import json

    import deepnets.evaluate as evaluate_mod
    import deepnets.train as train_mod
    from deepnets.training.minidata import tiny_cifar_folder

    from .test_train import TINY, assert_same_state

    colour = tiny_cifar_folder(tmp_path / "colour")
    grey = tmp_path / "grey"
    for path in sorted(colour.rglob("*.png")):
        dest = grey / path.relative_to(colour)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as img:
            img.convert("L").convert("RGB").save(dest)

    def argv(data: Path, out: Path, epochs: int, *extra: str) -> list[str]:
        return ["--arch", TINY, "--data", "imagefolder", "--data-dir", str(data), "--val-size",
                "8", "--batch-size", "8", "--epochs", str(epochs), "--out", str(out), "--quiet",
                "--device", "cpu", "--probe-size", "4", *extra]

    whole, run = tmp_path / "whole", tmp_path / "run"
    assert train_mod.main(argv(colour, whole, 3)) == 0
    assert train_mod.main(argv(colour, run, 2)) == 0
    assert train_mod.main(argv(grey, run, 3, "--resume")) == 2
    err = capsys.readouterr().err
    assert "the same file names and labels, but other pixels" in err and err.count("\n") == 1
    for split in ("val", "train"):
        assert evaluate_mod.main(["--run", str(run), "--data-dir", str(grey), "--split", split]) == 2
        assert "but other pixels" in capsys.readouterr().err
    # a run made before the pixels hash (its fingerprint "<n>:<names>") still resumes, exactly
    config = json.loads((run / "config.json").read_text())
    new = config["data_fingerprint"]
    config["data_fingerprint"] = ":".join(new.split(":")[:2])
    (run / "config.json").write_text(json.dumps(config))
    assert evaluate_mod.main(["--run", str(run), "--data-dir", str(colour)]) == 0
    torch.manual_seed(123)
    assert train_mod.main(argv(colour, run, 3, "--resume")) == 0
    assert_same_state(whole, run)
    assert json.loads((run / "config.json").read_text())["data_fingerprint"] == new
