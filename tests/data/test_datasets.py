"""Dataset layouts, validation messages, zip safety and seeded splits on real files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from redundancy.data import load_image, load_mask, open_dataset, split
from redundancy.data.prompts import interior_point, prompt_from_mask
from redundancy.errors import DataError
from redundancy.tasks import task_for

from ..conftest import write_pair


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


def test_any_non_zero_pixel_is_foreground_and_multi_class_masks_warn(tmp_path):
    write_pair(tmp_path, "a")
    gray = np.zeros((30, 40), np.uint8)
    gray[5:20, 5:20] = 200
    gray[0:3, 0:3] = 100  # a second foreground value: counted, and the mask is reported
    Image.fromarray(gray).save(tmp_path / "masks" / "a.png")
    ds = open_dataset(tmp_path)
    assert any("2 different foreground values" in w for w in ds.warnings)
    mask = load_mask(tmp_path / "masks" / "a.png")
    assert mask.sum() == 15 * 15 + 9 and mask[0, 0]


def _mask_file(path, mode, array):
    Image.fromarray(array, mode=mode).save(path)
    return load_mask(path)


def test_mask_conventions_of_common_formats(tmp_path):
    """Issue 14: each of these was read wrongly (all foreground, a colour lost, or 'empty')."""
    square = np.zeros((20, 24), bool)
    square[2:6, 3:8] = True
    # gray + alpha where the gray channel is the mask and alpha is opaque: the gray values count
    la = np.stack([square * 255, np.full(square.shape, 255)], -1).astype(np.uint8)
    assert np.array_equal(_mask_file(tmp_path / "la.png", "LA", la), square)
    # constant colour, the alpha channel carries the mask: alpha counts
    rgba = np.zeros((20, 24, 4), np.uint8)
    rgba[..., 3] = square * 255
    assert np.array_equal(_mask_file(tmp_path / "rgba.png", "RGBA", rgba), square)
    # RGB with two foreground colours: both are foreground
    rgb = np.zeros((20, 24, 3), np.uint8)
    rgb[2:6, 3:5] = (255, 0, 0)
    rgb[2:6, 5:8] = (0, 255, 0)
    assert np.array_equal(_mask_file(tmp_path / "rgb.png", "RGB", rgb), square)
    # a dark RGB foreground and a 16-bit mask of 0 / 1000: not empty
    dark = np.zeros((20, 24, 3), np.uint8)
    dark[square] = (0, 0, 100)
    assert np.array_equal(_mask_file(tmp_path / "dark.png", "RGB", dark), square)
    sixteen = (square * 1000).astype(np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "m16.png")
    assert np.array_equal(load_mask(tmp_path / "m16.png"), square)
    # lossy JPEG masks: compression noise near zero stays background
    noisy = (square * 250 + (~square) * 6).astype(np.uint8)
    Image.fromarray(noisy).save(tmp_path / "m.jpg", quality=95)
    assert np.array_equal(load_mask(tmp_path / "m.jpg"), square)


def test_image_modes_are_converted(tmp_path):
    for mode, value in (("L", 90), ("RGBA", (10, 20, 30, 255)), ("I;16", 40000), ("P", 3)):
        Image.new(mode, (24, 18), value).save(tmp_path / f"{mode.replace(';', '')}.png")
        arr = load_image(tmp_path / f"{mode.replace(';', '')}.png")
        assert arr.shape == (18, 24, 3) and arr.dtype == np.uint8


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
    with pytest.raises(DataError, match="32 or fewer search images"):
        split(ds, 50, seed=0)


def test_prompts_from_gt():
    mask = np.zeros((20, 30), bool)
    mask[4:15, 10:21] = True  # 11 x 11 square centred at (15, 9)
    assert prompt_from_mask(mask, "box").box == (10.0, 4.0, 20.0, 14.0)
    assert interior_point(mask) == (15.0, 9.0)
    assert prompt_from_mask(mask, "none").box is None
    with pytest.raises(DataError, match="unknown prompt"):
        prompt_from_mask(mask, "scribble")


def test_windows_style_zip_entries_are_read_with_their_folders(tmp_path):
    src = tmp_path / "src"
    write_pair(src, "a")
    write_pair(src, "b")
    path = tmp_path / "win.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted(src.rglob("*.png")):
            zf.write(f, str(f.relative_to(src)).replace("/", "\\"))  # images\a.png, as Windows tools write it
    ds = open_dataset(path, extract_to=tmp_path / "out")
    assert ds.layout == "folder" and [s.name for s in ds.samples] == ["a", "b"]
    assert all(s.mask_path.parent.name == "masks" for s in ds.samples)


def test_exif_orientation_is_applied_to_photos(tmp_path):
    """A photo stored sideways (40 wide x 30 high) with orientation 6 is shown 30 wide x 40 high."""
    write_pair(tmp_path, "a", size=(30, 40))  # the mask, drawn on the upright image
    stored = np.zeros((30, 40, 3), np.uint8)
    stored[:, :20] = 255  # the left half of the stored pixels: the top half once turned
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "images" / "a.jpg", exif=exif, quality=95)
    (tmp_path / "images" / "a.png").unlink()
    ds = open_dataset(tmp_path)
    image = load_image(ds.samples[0].image_path)
    assert image.shape == (40, 30, 3)
    assert image[:20].mean() > 200 and image[20:].mean() < 50


def test_a_zip_from_the_command_line_is_extracted_into_the_cache_once(tmp_path):
    src = tmp_path / "src"
    for k in range(3):
        write_pair(src, f"im{k}")
    path = shutil.make_archive(str(tmp_path / "data"), "zip", src)
    first = open_dataset(path)  # no extract_to: the CLI's case
    again = open_dataset(path)
    assert first.root == again.root and len(first) == 3
    assert first.root.is_relative_to(Path(os.environ["REDUNDANCY_CACHE"]))


@pytest.mark.parametrize(("value", "expected"), [("4e7", "40000000"), ("40_000_000", "40000000")])
def test_numeric_limits_from_the_environment(value, expected):
    out = subprocess.run(
        [sys.executable, "-c", "import redundancy.data.images as d; print(d.MAX_PIXELS)"],
        env={**os.environ, "REDUNDANCY_MAX_PIXELS": value},
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == expected


def test_a_non_numeric_limit_is_one_line():
    out = subprocess.run(
        [sys.executable, "-c", "import redundancy.data"],
        env={**os.environ, "REDUNDANCY_MAX_PIXELS": "lots"},
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        "error: REDUNDANCY_MAX_PIXELS='lots' is not a valid whole number; "
        "set it like REDUNDANCY_MAX_PIXELS=40000000 or unset it."
    ]


def test_classification_layouts_read_the_same_labels(tmp_path):
    """Class folders, a CSV of (image, label) and a zip of the folders: one class per name, sorted."""
    from redundancy.data import open_dataset

    from ..conftest import ROOT

    folders = open_dataset(ROOT / "assets" / "classify_sample")
    assert folders.layout == "classes" and task_for(folders).name == "classify"
    assert folders.classes == ("blob", "disc", "ring", "square", "star") and len(folders) == 120
    rows = ["image,label"] + [
        f"{s.image_path.parent.name}/{s.image_path.name},{folders.classes[s.label]}" for s in folders.samples
    ]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    for s in folders.samples:
        dest = tmp_path / s.image_path.parent.name / s.image_path.name
        dest.parent.mkdir(exist_ok=True)
        dest.write_bytes(s.image_path.read_bytes())
    table = open_dataset(tmp_path)
    assert table.layout == "csv" and table.classes == folders.classes
    assert [table.classes[s.label] for s in table.samples] == [folders.classes[s.label] for s in folders.samples]
    import shutil

    archive = shutil.make_archive(str(tmp_path / "cls"), "zip", ROOT / "assets", "classify_sample")
    zipped = open_dataset(archive, extract_to=tmp_path / "x")
    assert zipped.classes == folders.classes and zipped.content_hash() == folders.content_hash()


def test_depth_maps_read_in_metres(tmp_path):
    """16-bit PNG millimetres and .npy metres give the same depth; 0 stays invalid."""
    from redundancy.data import load_depth, open_dataset

    from ..conftest import ROOT

    ds = open_dataset(ROOT / "assets" / "depth_sample")
    assert ds.layout == "depth" and task_for(ds).name == "depth" and len(ds) == 120
    png = load_depth(ds.samples[0].mask_path)
    np.save(tmp_path / "d.npy", png)
    np.testing.assert_array_equal(load_depth(tmp_path / "d.npy"), png)
    raw = np.asarray(Image.open(ds.samples[0].mask_path))
    np.testing.assert_allclose(png, raw / 1000.0, rtol=1e-6)
    assert (png == 0).any() and png.max() < 10


def test_the_run_markers_are_files_only_a_search_writes(tmp_path):
    from redundancy.data.datasets import RUN_MARKERS
    from redundancy.runs.resume import STATE
    from redundancy.runs.rundir import MANIFEST, SEARCH_FILES

    assert set(RUN_MARKERS) <= {*SEARCH_FILES, f"{STATE}/{MANIFEST}"}  # named here, owned by runs/ (a layer above)
    for marker in RUN_MARKERS:
        folder = tmp_path / marker.replace("/", "_")
        (folder / marker).parent.mkdir(parents=True)
        (folder / marker).write_bytes(b"x")
        for k in range(2):
            write_pair(folder, f"im{k}")  # a dataset layout beside it does not make it data
        with pytest.raises(DataError, match="holds a search's results"):
            open_dataset(folder)
