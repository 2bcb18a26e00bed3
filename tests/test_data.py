"""Dataset layouts, validation messages, zip safety and seeded splits on real files."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PIL import Image

from redundancy.data import load_image, load_mask, open_dataset, split
from redundancy.errors import DataError
from redundancy.prompts import interior_point, prompt_from_mask

from .conftest import write_pair


def test_sample_is_perseg_layout(sample):
    ds = open_dataset(sample)
    assert ds.layout == "perseg" and ds.default_protocol == "perseg"
    assert len(ds) == 32 and {s.group for s in ds.samples} == {"disc", "star", "ring", "blob"}
    assert ds.samples[0].name == "blob/00"
    for s in ds.samples[:4]:
        image, mask = load_image(s.image_path), load_mask(s.mask_path)
        assert image.shape[:2] == mask.shape and mask.any() and image.dtype == np.uint8


def test_folder_layout_and_zip(tmp_path):
    for k in range(3):
        write_pair(tmp_path / "ds", f"im{k}")
    ds = open_dataset(tmp_path / "ds")
    assert ds.layout == "folder" and [s.name for s in ds.samples] == ["im0", "im1", "im2"]
    assert ds.default_protocol == "image"
    archive = tmp_path / "ds.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in (tmp_path / "ds").rglob("*.png"):
            zf.write(p, "wrapper/" + str(p.relative_to(tmp_path / "ds")))
    unzipped = open_dataset(archive, extract_to=tmp_path / "x")
    assert [s.name for s in unzipped.samples] == ["im0", "im1", "im2"]
    assert unzipped.content_hash() == ds.content_hash()


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: (d / "masks" / "im1.png").unlink(), "no mask"),
        (lambda d: (d / "images" / "im1.png").unlink(), "no image"),
        (lambda d: Image.new("L", (10, 10), 255).save(d / "masks" / "im1.png"), "10x10"),
        (lambda d: Image.new("L", (40, 30), 0).save(d / "masks" / "im1.png"), "empty"),
        (lambda d: (d / "images" / "im1.png").write_bytes(b"not an image"), "im1.png: cannot read"),
    ],
)
def test_validation_names_the_file(tmp_path, setup, message):
    for k in range(2):
        write_pair(tmp_path, f"im{k}")
    setup(tmp_path)
    with pytest.raises(DataError, match=message):
        open_dataset(tmp_path)


def test_non_binary_masks_are_thresholded_with_a_warning(tmp_path):
    write_pair(tmp_path, "a")
    gray = np.zeros((30, 40), np.uint8)
    gray[5:20, 5:20] = 200
    gray[0:3, 0:3] = 100  # below half: background
    Image.fromarray(gray).save(tmp_path / "masks" / "a.png")
    ds = open_dataset(tmp_path)
    assert any("thresholded" in w for w in ds.warnings)
    mask = load_mask(tmp_path / "masks" / "a.png")
    assert mask.sum() == 15 * 15 and not mask[0, 0]


def test_image_modes_are_converted(tmp_path):
    for mode, value in (("L", 90), ("RGBA", (10, 20, 30, 255)), ("I;16", 40000), ("P", 3)):
        Image.new(mode, (8, 6), value).save(tmp_path / f"{mode.replace(';', '')}.png")
        arr = load_image(tmp_path / f"{mode.replace(';', '')}.png")
        assert arr.shape == (6, 8, 3) and arr.dtype == np.uint8


def test_zip_slip_and_non_zip_are_refused(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(DataError, match="outside"):
        open_dataset(evil, extract_to=tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"PNG pretending")
    with pytest.raises(DataError, match="not a zip"):
        open_dataset(fake, extract_to=tmp_path / "out2")


def test_split_is_seeded_and_disjoint(sample):
    ds = open_dataset(sample)
    a, rest = split(ds, 8, seed=0)
    b, _ = split(ds, 8, seed=0)
    c, _ = split(ds, 8, seed=1)
    names = [s.name for s in a.samples]
    assert names == [s.name for s in b.samples] and names != [s.name for s in c.samples]
    assert not set(names) & {s.name for s in rest.samples} and len(rest) == 24
    with pytest.raises(DataError, match="--search-images 32"):
        split(ds, 50, seed=0)


def test_prompts_from_gt():
    mask = np.zeros((20, 30), bool)
    mask[4:15, 10:21] = True  # 11 x 11 square centred at (15, 9)
    assert prompt_from_mask(mask, "box").box == (10.0, 4.0, 20.0, 14.0)
    assert interior_point(mask) == (15.0, 9.0)
    assert prompt_from_mask(mask, "none").box is None
    with pytest.raises(DataError, match="unknown prompt"):
        prompt_from_mask(mask, "scribble")
