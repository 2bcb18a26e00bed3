"""Datasets: segmentation (folder / PerSeg), classification (class folders / CSV) and depth (images + depth).

Any of them may come as a .zip. Masks are binary at the image's own resolution: any non-zero pixel
is foreground (README, Data; `mask_from_image` has the details: alpha, palettes, lossy JPEG
masks). Depth maps are NYUv2's convention: 16-bit PNG in millimetres or .npy in metres, 0 invalid.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import lzma
import os
import random
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DataError
from .io import cache_dir, env_number
from .io import sha256_file as file_sha256

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MASK_EXTS = (".png", ".bmp", ".tif", ".tiff", ".gif", ".jpg", ".jpeg")
DEPTH_EXTS = (".png", ".npy")  # 16-bit PNG in millimetres, or float metres
DEPTH_PNG_SCALE = 1000.0  # NYUv2's PNGs store millimetres
MAX_GT_DEPTH = 1000.0  # metres: a larger ground-truth value is a unit mistake, not a depth
LAYOUT_TASK = {"perseg": "segment", "folder": "segment", "images": "segment", "classes": "classify",
               "csv": "classify", "depth": "depth"}  # fmt: skip
# Limits (environment variables override them; README "Limits and safety").
MAX_PIXELS = env_number("REDUNDANCY_MAX_PIXELS", 40_000_000)  # per image
MAX_IMAGES = env_number("REDUNDANCY_MAX_IMAGES", 5_000)  # per dataset
ZIP_MAX_BYTES = env_number("REDUNDANCY_ZIP_MAX_BYTES", 2 * 1024**3)  # uncompressed total
MIN_SIDE, MAX_ASPECT = 16, 20  # below these an encoder's resize leaves a side of a pixel or less
ARCHIVE_EXTS = (".zip", ".tar", ".gz", ".tgz", ".7z", ".rar")
ORIENTATION_TAG = 0x0112  # EXIF Orientation
ZIP_MAX_RATIO = 200  # uncompressed / compressed, a decompression-bomb guard
ZIP_MAX_FILES = 20_000


@dataclass(frozen=True)
class Sample:
    """One image with its target: a mask or depth map file (`mask_path`) or a class index (`label`).

    `group` is the object (PerSeg) or the image itself.
    """

    name: str
    image_path: Path
    mask_path: Path | None
    group: str
    label: int | None = None


@dataclass
class Dataset:
    """An ordered list of samples plus where they came from."""

    root: Path
    layout: str  # "folder" | "perseg" | "images" (no masks) | "classes" | "csv" | "depth"
    samples: list[Sample]
    warnings: list[str] = field(default_factory=list)
    classes: tuple[str, ...] = ()  # classification: class names, index = label
    _hash: str | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def has_masks(self) -> bool:
        return all(s.mask_path is not None for s in self.samples)

    @property
    def task(self) -> str:
        """The task its targets serve: segment, classify or depth."""
        return LAYOUT_TASK[self.layout]

    @property
    def default_protocol(self) -> str:
        """mIoU protocol the dataset's community uses: pooled per object for PerSeg, else per image."""
        return "perseg" if self.layout == "perseg" else "image"

    def content_hash(self) -> str:
        """sha256 over every image and mask file's bytes, in sample order (identifies the data; read once)."""
        if self._hash is None:
            h = hashlib.sha256()
            for s in self.samples:
                h.update(s.name.encode())
                if s.label is not None:
                    h.update(f"|{self.classes[s.label]}".encode())
                for p in (s.image_path, s.mask_path):
                    if p is not None:
                        h.update(file_sha256(p).encode())
            self._hash = h.hexdigest()
        return self._hash

    def subset(self, indices: list[int]) -> Dataset:
        """The samples at `indices`, in that order."""
        return Dataset(self.root, self.layout, [self.samples[i] for i in indices], self.warnings, self.classes)


def _check_size(path: Path, w: int, h: int, image: bool) -> None:
    if w * h > MAX_PIXELS:
        raise DataError(
            f"{path.name}: {w}x{h} pixels is over the limit of {MAX_PIXELS:,}; "
            "downscale the image (and its mask) first."
        )
    if image and (min(w, h) < MIN_SIDE or max(w, h) > MAX_ASPECT * min(w, h)):
        raise DataError(
            f"{path.name}: {w}x{h} pixels is too small or too elongated to segment (at least {MIN_SIDE} pixels on "
            f"the short side and at most {MAX_ASPECT}:1); crop or pad it (and its mask), or remove it."
        )


def _upright_size(img: Image.Image) -> tuple[int, int]:
    """(W, H) after the EXIF orientation tag is applied (tags 5-8 turn the image by 90 degrees)."""
    turned = img.getexif().get(ORIENTATION_TAG, 1) in (5, 6, 7, 8)
    return (img.height, img.width) if turned else (img.width, img.height)


def _open(path: Path, image: bool = True) -> Image.Image:
    """The image (or mask), loaded and turned upright by its EXIF orientation tag (as viewers show it)."""
    try:
        img = Image.open(path)
        _check_size(path, *_upright_size(img), image)
        img.load()
        return ImageOps.exif_transpose(img)
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(
            f"{path.name}: cannot read this file as an image ({e.__class__.__name__}: {e}); "
            "replace it with a valid JPEG or PNG."
        ) from e


def load_image(path: Path) -> np.ndarray:
    """RGB uint8 array (H, W, 3); grayscale, RGBA, 16-bit and palette images are converted."""
    path = Path(path)
    img = _open(path)
    if img.mode in WIDE_MODES:
        img = Image.fromarray(_to_uint8(np.asarray(img, dtype=np.float64), path))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


WIDE_MODES = ("I;16", "I;16B", "I;16L", "I", "F")  # 16-bit, 32-bit integer and float images: converted to 8 bits


def _to_uint8(arr: np.ndarray, path: Path) -> np.ndarray:
    """A 16-bit, 32-bit integer or float image as 8 bits: 0-255 and 0-65535 data keep their scale, any
    other range (negative, above 16 bits, floats) is stretched from its minimum to its maximum."""
    if not np.isfinite(arr).all():
        raise DataError(
            f"{path.name}: a float image with NaN or Inf pixels; replace those pixels with numbers (or save it "
            "as an 8-bit PNG)."
        )
    lo, hi = float(arr.min()), float(arr.max())
    if lo >= 0 and hi <= 65535 and np.equal(np.mod(arr, 1), 0).all():
        peak = 65535.0 if hi > 255 else 255.0
        return (arr / peak * 255.0).round().astype(np.uint8)
    return np.clip((255.0 * (arr - lo) / max(hi - lo, 1e-12)).round(), 0, 255).astype(np.uint8)


def image_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image file as shown upright (EXIF orientation applied), read from its header."""
    with _open_header(Path(path)) as im:
        w, h = _upright_size(im)
        return h, w


def _open_header(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"{path.name}: cannot read this file as an image ({e}); replace it with a JPEG or PNG.") from e


LOSSY_MASK_EXTS = (".jpg", ".jpeg")  # compression leaves faint non-zero noise: thresholded at half instead


def mask_from_image(img: Image.Image, lossy: bool = False) -> tuple[np.ndarray, int]:
    """(bool mask (H, W), distinct foreground values) under the documented convention (README, Data).

    Any non-zero pixel is foreground (palette: any non-zero index; colour: any non-zero channel), as
    PerSAM's evaluation and most binary-mask datasets read them. Alpha is the mask only where it
    carries it (constant colour, varying alpha); otherwise the colour channels are read. Lossy (JPEG)
    masks count pixels at least half the format's maximum, since compression noise is not foreground.
    """
    arr = np.asarray(img)
    if img.mode in ("LA", "RGBA"):
        colour, alpha = arr[..., :-1], arr[..., -1]
        arr = alpha if colour.min() == colour.max() and alpha.min() != alpha.max() else colour
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if lossy:
        peak = 65535 if arr.dtype == np.uint16 or arr.max() > 255 else 255
        level = arr.max(axis=-1) if arr.ndim == 3 else arr
        return level >= (peak + 1) // 2, 1
    fg = arr.any(axis=-1) if arr.ndim == 3 else arr != 0
    values = np.unique(arr[fg], axis=0) if fg.any() else arr[:0]
    return fg, len(values)


def _mask_of(path: Path, img: Image.Image) -> tuple[np.ndarray, int]:
    return mask_from_image(img, lossy=path.suffix.lower() in LOSSY_MASK_EXTS)


def load_mask(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Boolean mask (H, W); `size` (W, H) checks it matches its image."""
    path = Path(path)
    img = _open(path, image=False)
    if size is not None and img.size != tuple(size):
        raise DataError(
            f"{path.name}: mask is {img.size[0]}x{img.size[1]} but its image is {size[0]}x{size[1]}; "
            "masks must have the same size as their image."
        )
    return _mask_of(path, img)[0]


def _utf8_name(p: Path) -> None:
    """Refuse a file name that is not valid UTF-8 (it could not be shown, logged or written to a run file)."""
    try:
        p.name.encode("utf-8")
    except UnicodeEncodeError:
        shown = p.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise DataError(
            f"{p.parent.name}/{shown}: the file name is not valid UTF-8 (made on another system?); rename it."
        ) from None


def _files(folder: Path, exts: tuple[str, ...]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in exts and not p.name.startswith("."):
            _utf8_name(p)
            if p.stem in out:
                raise DataError(
                    f"{folder.name}/: two files share the name '{p.stem}' ({out[p.stem].name}, {p.name}); "
                    "keep one file per name."
                )
            out[p.stem] = p
    return out


def _child(folder: Path, *names: str) -> Path | None:
    wanted = {n.lower() for n in names}
    for p in sorted(folder.iterdir()):
        if p.is_dir() and p.name.lower() in wanted:
            return p
    return None


def _pair(images: dict[str, Path], masks: dict[str, Path], where: str) -> list[tuple[str, Path, Path]]:
    no_mask = sorted(set(images) - set(masks))
    no_image = sorted(set(masks) - set(images))
    if no_mask:
        raise DataError(
            f"{where}: {len(no_mask)} image(s) have no mask with the same name, e.g. "
            f"{', '.join(no_mask[:5])}; add the masks or remove those images."
        )
    if no_image:
        raise DataError(
            f"{where}: {len(no_image)} mask(s) have no image with the same name, e.g. "
            f"{', '.join(no_image[:5])}; add the images or remove those masks."
        )
    return [(stem, images[stem], masks[stem]) for stem in sorted(images)]


def _find_root(path: Path) -> Path:
    """Descend through single wrapper folders (as zips often have) to the dataset root."""
    for _ in range(3):
        if _child(path, "images", "annotations", "masks"):
            return path
        subdirs = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX"))]
        files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
        if len(subdirs) == 1 and not any(f.suffix.lower() in IMAGE_EXTS + (".csv",) for f in files):
            path = subdirs[0]
        else:
            break
    return path


def load_depth(path: Path) -> np.ndarray:
    """Depth in metres (H, W) float32, 0 where invalid: a 16-bit PNG in millimetres or a .npy in metres."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise DataError(f"{path.name}: cannot read this .npy depth map ({e}); save it with np.save(array).") from e
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
            raise DataError(
                f"{path.name}: a depth map must be a 2-D array of metres, got shape {arr.shape} {arr.dtype}."
            )
        arr = arr.astype(np.float32)
        if not np.isfinite(arr).all() or (arr < 0).any():
            raise DataError(f"{path.name}: depth holds NaN, Inf or negative values; store invalid pixels as 0.")
        if arr.max() > MAX_GT_DEPTH:
            raise DataError(
                f"{path.name}: depth reaches {arr.max():.3g} m, more than {MAX_GT_DEPTH:g} m; depth maps are in "
                "metres (.npy) or millimetres (16-bit PNG): check the unit, or store invalid pixels as 0."
            )
        return arr
    img = _open(path, image=False)
    if img.mode not in ("I;16", "I;16B", "I;16L", "I"):
        raise DataError(
            f"{path.name}: depth PNGs must be 16-bit (millimetres, NYUv2's convention), this one is mode {img.mode}; "
            "save depth as uint16 millimetres or as .npy metres."
        )
    return np.asarray(img, dtype=np.float32) / DEPTH_PNG_SCALE


def load_target(sample: Sample, task: str) -> np.ndarray | None:
    """The sample's ground truth for `task`: bool mask (H, W), class index () or depth in metres (H, W)."""
    if task == "classify":
        return None if sample.label is None else np.asarray(sample.label, dtype=np.int64)
    if sample.mask_path is None:
        return None
    return load_depth(sample.mask_path) if task == "depth" else load_mask(sample.mask_path)


def _scan_classes(root: Path, class_dirs: list[Path]) -> tuple[list[Sample], tuple[str, ...]]:
    """ImageFolder: <class>/<image>; class names from the folder names, sorted."""
    classes = tuple(d.name for d in class_dirs)
    samples = []
    for k, d in enumerate(class_dirs):
        files = _files(d, IMAGE_EXTS)
        if not files:
            raise DataError(f"class folder '{d.name}/' holds no images; add images of that class or remove the folder.")
        samples += [Sample(f"{d.name}/{stem}", f, None, f"{d.name}/{stem}", k) for stem, f in files.items()]
    return samples, classes


def _scan_csv(table: Path, base: Path) -> tuple[list[Sample], tuple[str, ...]]:
    """A CSV of (image, label) rows with a header; image paths relative to the CSV's folder, inside `base`."""
    try:
        with table.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{table.name}: cannot read this CSV ({e}); save it as UTF-8 text.") from e
    except csv.Error as e:
        raise DataError(
            f"{table.name}: not a CSV of image,label rows ({e}); save one row per image, comma-separated."
        ) from e
    header = [h.strip().lower() for h in rows[0]] if rows else []
    col_img = next((header.index(h) for h in ("image", "path", "file", "filename") if h in header), None)
    col_lab = next((header.index(h) for h in ("label", "class", "category") if h in header), None)
    if col_img is None or col_lab is None:
        raise DataError(
            f"{table.name}: the first row must name the columns, e.g. 'image,label' "
            f"(found {', '.join(rows[0]) if rows else 'nothing'}); "
            "add that header row."
        )
    entries = []
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) <= max(col_img, col_lab) or not row[col_lab].strip():
            raise DataError(f"{table.name} line {n}: needs an image and a label; fill in or delete that line.")
        path = (table.parent / row[col_img].strip()).resolve()
        if not path.is_relative_to(base):  # checked before the file is touched: nothing outside is probed
            raise DataError(
                f"{table.name} line {n}: image '{row[col_img].strip()}' is outside the dataset folder; list images "
                "by paths relative to the CSV, inside the dataset."
            )
        if not path.is_file():
            raise DataError(
                f"{table.name} line {n}: image '{row[col_img].strip()}' does not exist next to the CSV; fix the path."
            )
        entries.append((path, row[col_lab].strip()))
    classes = tuple(sorted({lab for _, lab in entries}))
    index = {c: k for k, c in enumerate(classes)}
    seen: set[str] = set()
    samples = []
    for path, lab in entries:
        folder = table.parent.resolve()
        name = str(path.relative_to(folder if path.is_relative_to(folder) else base))
        if name in seen:
            raise DataError(f"{table.name}: image '{name}' is listed twice; keep one row per image.")
        seen.add(name)
        samples.append(Sample(name, path, None, name, index[lab]))
    return samples, classes


def _scan(root: Path, require_masks: bool, base: Path, where: str) -> tuple[str, list[Sample], tuple[str, ...]]:
    """(layout, samples, class names) of the dataset at `root` (inside `base`, the folder the user gave;
    `where` names it in messages)."""
    layout, samples = _scan_masks(root, require_masks, where)
    if layout != "classify":
        return layout, samples, ()
    tables = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    if len(tables) > 1:
        raise DataError(
            f"{where}: {len(tables)} CSV files ({', '.join(t.name for t in tables)}); "
            "keep the one of (image, label) rows."
        )
    if tables:
        return "csv", *_scan_csv(tables[0], base)
    dirs = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith((".", "__MACOSX"))]
    return "classes", *_scan_classes(root, dirs)


def _scan_masks(root: Path, require_masks: bool, where: str) -> tuple[str, list[Sample]]:
    images_dir = _child(root, "images")
    annotations_dir = _child(root, "annotations")
    masks_dir = _child(root, "masks")
    if images_dir and annotations_dir and any(p.is_dir() for p in images_dir.iterdir()):
        samples = []
        for obj_dir in sorted(p for p in images_dir.iterdir() if p.is_dir()):
            ann_dir = annotations_dir / obj_dir.name
            if not ann_dir.is_dir():
                raise DataError(
                    f"PerSeg layout: Images/{obj_dir.name}/ has no Annotations/{obj_dir.name}/ folder; "
                    "add the masks for this object or remove it."
                )
            pairs = _pair(_files(obj_dir, IMAGE_EXTS), _files(ann_dir, MASK_EXTS), f"object '{obj_dir.name}'")
            samples += [Sample(f"{obj_dir.name}/{s}", i, m, obj_dir.name) for s, i, m in pairs]
        return "perseg", samples
    if images_dir and masks_dir:
        pairs = _pair(_files(images_dir, IMAGE_EXTS), _files(masks_dir, MASK_EXTS), "images/ vs masks/")
        return "folder", [Sample(s, i, m, s) for s, i, m in pairs]
    depth_dir = _child(root, "depth")
    if images_dir and depth_dir:
        pairs = _pair(_files(images_dir, IMAGE_EXTS), _files(depth_dir, DEPTH_EXTS), "images/ vs depth/")
        return "depth", [Sample(s, i, m, s) for s, i, m in pairs]
    subdirs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX"))]
    has_csv = any(p.suffix.lower() == ".csv" for p in root.iterdir() if p.is_file())
    if has_csv or (not images_dir and len(subdirs) >= 2 and not _files(root, IMAGE_EXTS)):
        return "classify", []  # class folders or a CSV of labels: read by `_scan`
    if not require_masks:
        folder = images_dir or root
        return "images", [Sample(s, p, None, s) for s, p in _files(folder, IMAGE_EXTS).items()]
    raise DataError(
        f"{where}: no dataset layout found. Expected images/ + masks/ folders (matched by file name), "
        "the PerSeg layout Images/<object>/*.jpg + Annotations/<object>/*.png, class folders <class>/*.jpg or a "
        "CSV of image,label rows (classification), or images/ + depth/ (depth)." + _nested_archives(root)
    )


def _validate(samples: list[Sample]) -> list[str]:
    """Check every mask against its image; return warnings for masks that look multi-class."""
    warnings = []
    for s in samples:
        with _open_header(s.image_path) as im:
            size = _upright_size(im)
            turned = size != im.size
        mask_img = _open(s.mask_path, image=False)
        if mask_img.size != size:
            raise DataError(
                f"{s.name}: mask {s.mask_path.name} is {mask_img.size[0]}x{mask_img.size[1]} but the "
                f"image is {size[0]}x{size[1]}"
                + (" once its EXIF orientation tag is applied (masks go on the upright image)" if turned else "")
                + "; masks must have the same size as their image."
            )
        mask, values = _mask_of(s.mask_path, mask_img)
        if values > 1:
            warnings.append(
                f"{s.name}: mask has {values} different foreground values (multi-class?); every non-zero pixel "
                "counts as foreground (README, Data). Give one object per mask if that is not meant."
            )
        if not mask.any():
            raise DataError(
                f"{s.name}: mask {s.mask_path.name} is empty (no foreground pixel), so IoU is undefined; "
                "remove this image or fix its mask."
            )
    return warnings


def _validate_depth(samples: list[Sample]) -> list[str]:
    """Check every depth map against its image: same size, at least one valid (non-zero) pixel."""
    for s in samples:
        depth = load_depth(s.mask_path)
        h, w = image_size(s.image_path)
        if depth.shape != (h, w):
            raise DataError(
                f"{s.name}: depth map {s.mask_path.name} is {depth.shape[1]}x{depth.shape[0]} but the image is "
                f"{w}x{h}; "
                "depth maps must have the same size as their image."
            )
        if not (depth > 0).any():
            raise DataError(
                f"{s.name}: depth map {s.mask_path.name} has no valid pixel (all 0), so no error can be measured; "
                "remove this image or fix its depth map."
            )
    return []


def open_dataset(path: str | Path, extract_to: str | Path | None = None, require_masks: bool = True) -> Dataset:
    """Open a folder or .zip dataset, check every sample and return it in sorted order."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder; pass a dataset folder or a .zip of one.")
    archive = path if path.is_file() else None
    if archive is not None:
        path = extract_zip(path, Path(extract_to)) if extract_to is not None else extract_cached(path)
    base = path.resolve()
    root = _find_root(path)
    where = str(root) if archive is None else "/".join((archive.name, *root.relative_to(path).parts))
    layout, samples, classes = _scan(root, require_masks, base, where)
    _check_inside(samples, base)
    if not samples:
        raise DataError(
            f"{where}: the dataset holds no images; add images (and masks) and try again." + _nested_archives(root)
        )
    if len(samples) > MAX_IMAGES:
        raise DataError(
            f"{where}: {len(samples):,} images is over the limit of {MAX_IMAGES:,}; use a subset "
            "(the search needs ~50) or raise REDUNDANCY_MAX_IMAGES."
        )
    for s in samples:  # unreadable images fail here, naming the file, not half-way through a search
        with _open(s.image_path) as img:
            if img.mode in WIDE_MODES:  # their conversion can fail (NaN pixels): checked now too
                _to_uint8(np.asarray(img, dtype=np.float64), s.image_path)
    if layout in ("classes", "csv") and len(classes) < 2:
        raise DataError(
            f"{where}: classification needs at least 2 classes, found {len(classes)}; add the other classes."
        )
    validate = {"depth": _validate_depth, "folder": _validate, "perseg": _validate}.get(layout)
    warnings = validate(samples) if validate else []
    return Dataset(root, layout, samples, warnings, classes)


def _check_inside(samples: list[Sample], base: Path) -> None:
    """Every file a dataset names stays inside its folder once links are resolved (a link out is refused)."""
    for s in samples:
        for p in (s.image_path, s.mask_path):
            if p is not None and not Path(p).resolve().is_relative_to(base):
                raise DataError(
                    f"{s.name}: {Path(p).name} is a link to a file outside the dataset folder; copy the file into "
                    "the dataset instead."
                )


def extract_zip(zip_path: Path, dest: Path) -> Path:
    """Extract a dataset zip safely (no path escapes, links, bombs or half-read entries) into `dest`; return it.

    Everything that can be checked from the archive's directory is checked before a byte is written; what
    only shows while reading (damaged data, sizes that lie, a full disk) stops with one line naming the entry.
    """
    zip_path = Path(zip_path)
    if not zipfile.is_zipfile(zip_path):
        raise DataError(f"{zip_path.name}: not a zip archive; upload a .zip of a dataset folder.")
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise DataError(f"{zip_path.name}: cannot open this zip ({_reason(e)}); re-create it.") from None
    with zf:
        plan = _zip_plan(zip_path.name, zf.infolist(), dest.resolve())
        budget = ZIP_MAX_BYTES
        for info, target in plan:
            if info.is_dir():
                _zip_io(zip_path.name, info, lambda t=target: t.mkdir(parents=True, exist_ok=True))
                continue
            budget -= _zip_io(zip_path.name, info, lambda i=info, t=target, b=budget: _copy_entry(zf, i, t, b))
    return dest


ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
MAX_NAME_BYTES = 255  # per path component, as Linux file systems allow


def _zip_plan(archive: str, infos: list[zipfile.ZipInfo], base: Path) -> list[tuple[zipfile.ZipInfo, Path]]:
    """(entry, target) for every entry, after the checks the archive's directory allows; DataError on the first
    entry that is unsafe (outside, a link, encrypted, a method Python lacks) or ambiguous."""
    if len(infos) > ZIP_MAX_FILES:
        raise DataError(f"{archive}: {len(infos)} entries is over the limit of {ZIP_MAX_FILES}.")
    total = sum(i.file_size for i in infos)
    packed = max(1, sum(i.compress_size for i in infos))
    if total > ZIP_MAX_BYTES or total / packed > ZIP_MAX_RATIO:
        raise DataError(
            f"{archive}: unpacks to {total:,} bytes ({total / packed:.0f}x its size); the limits are "
            f"{ZIP_MAX_BYTES:,} bytes and {ZIP_MAX_RATIO}x. Is it a decompression bomb?"
        )
    plan, files, dirs = [], {}, {}
    for info in infos:
        name = info.filename.replace("\\", "/")  # archives made on Windows may use backslashes
        target = (base / name).resolve()
        if name.startswith("/") or ":" in name.split("/")[0] or not target.is_relative_to(base):
            raise DataError(f"{archive}: entry '{name}' points outside the archive; refused.")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DataError(f"{archive}: entry '{name}' is a symbolic link; refused.")
        if info.flag_bits & 0x1:
            raise DataError(f"{archive}: entry '{name}' is encrypted; re-create the zip without a password.")
        if info.compress_type not in ZIP_METHODS:
            raise DataError(
                f"{archive}: entry '{name}' uses a compression method this tool cannot read (number "
                f"{info.compress_type}); re-create the zip with standard (deflate) compression."
            )
        long = next((part for part in name.split("/") if len(part.encode()) > MAX_NAME_BYTES), None)
        if long is not None:
            raise DataError(f"{archive}: entry '{long[:40]}...' has a name over {MAX_NAME_BYTES} bytes; shorten it.")
        if target in files and not info.is_dir():
            raise DataError(
                f"{archive}: entries '{files[target]}' and '{info.filename}' name the same file once "
                "path separators are normalised; refused as ambiguous. Re-create the zip."
            )
        (dirs if info.is_dir() else files)[target] = info.filename
        for parent in target.parents:  # every folder above a file or folder is a folder too
            if parent == base:
                break
            dirs.setdefault(parent, info.filename)
        plan.append((info, target))
    clash = next((t for t in files if t in dirs), None)
    if clash is not None:
        raise DataError(
            f"{archive}: '{files[clash]}' is a file and also the folder of '{dirs[clash]}'; rename one and "
            "re-create the zip."
        )
    return plan


def _copy_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int) -> int:
    """Write one entry to `target`, at most `budget` bytes (whatever its header claims); bytes written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(info) as src, open(target, "wb") as dst:
        while block := src.read(1 << 20):
            written += len(block)
            if written > budget:
                raise DataError(
                    f"entry '{info.filename}' unpacks to more than the {ZIP_MAX_BYTES:,}-byte limit; is it a "
                    "decompression bomb?"
                )
            dst.write(block)
    return written


def _zip_io(archive: str, info: zipfile.ZipInfo, step):
    """Run one extraction step; damaged data and file-system failures become one line naming the entry."""
    try:
        return step()
    except DataError as e:
        raise DataError(f"{archive}: {e}") from None
    except (zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, NotImplementedError, RuntimeError) as e:
        raise DataError(
            f"{archive}: entry '{info.filename}' is damaged ({_reason(e)}: its data or recorded size is wrong); "
            "re-create the zip."
        ) from None
    except OSError as e:
        fix = {
            errno.ENOSPC: "the server's disk is full; try a smaller zip, or free space (or set REDUNDANCY_CACHE)",
            errno.ENAMETOOLONG: "its name is too long for this file system; shorten it",
            errno.EEXIST: "a file and a folder share that name; rename one",
            errno.ENOTDIR: "a file and a folder share that name; rename one",
            errno.EISDIR: "a file and a folder share that name; rename one",
        }.get(e.errno, "re-create the zip, or extract it yourself and give the folder")
        raise DataError(f"{archive}: cannot extract '{info.filename}' ({e.strerror or _reason(e)}); {fix}.") from None


def _reason(e: Exception) -> str:
    """An exception as a short reason: its class and first line, without server paths."""
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{e.__class__.__name__}: {text[:120]}" if text else e.__class__.__name__


def extract_cached(zip_path: Path) -> Path:
    """Extract a dataset zip once into the cache ($REDUNDANCY_CACHE/datasets/<sha256>/) and return that folder."""
    dest = cache_dir() / "datasets" / file_sha256(zip_path)[:24]
    if (dest / ".complete").exists():
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(
            f"cannot extract {zip_path.name} into {dest.parent} ({e.strerror}); "
            "set REDUNDANCY_CACHE to a writable folder."
        ) from None
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".extract-"))
    try:
        extract_zip(zip_path, tmp)
        (tmp / ".complete").write_text(zip_path.name)
        shutil.rmtree(dest, ignore_errors=True)  # a half-extracted copy from a killed run
        os.replace(tmp, dest)
    except OSError:
        if not (dest / ".complete").exists():  # another process may have won the race; that is fine
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _nested_archives(root: Path) -> str:
    """' It holds the archive(s) a.zip, ...: extract ...' when archives sit inside the data, else ''."""
    found = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix.lower() in ARCHIVE_EXTS)
    if not found:
        return ""
    return (
        f" It holds the archive(s) {', '.join(found[:3])}: a zip inside a zip is not opened; zip the folders instead."
    )


def split(dataset: Dataset, n_search: int, seed: int, what: str = "search") -> tuple[Dataset, Dataset]:
    """Seeded split into (`what` set of n_search samples, the rest); both keep sorted order."""
    n = len(dataset)
    if n_search < 1:
        raise DataError(f"{what} set size must be at least 1 (got {n_search}).")
    if n_search > n:
        raise DataError(
            f"the {what} set asks for {n_search} images but {n} are available; use {n} or fewer {what} images."
        )
    chosen = sorted(random.Random(seed).sample(range(n), n_search))
    rest = [i for i in range(n) if i not in set(chosen)]
    return dataset.subset(chosen), dataset.subset(rest)
