"""Reading images, masks and depth maps from files: RGB uint8 images, boolean masks, depth in metres.

Masks are binary at the image's own resolution: any non-zero pixel is foreground (docs/data.md;
`mask_from_image` has the details: alpha, palettes, lossy JPEG masks). Depth maps are NYUv2's
convention: 16-bit PNG in millimetres or .npy in metres, 0 invalid.
"""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DataError
from ..io import env_number

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MASK_EXTS = (".png", ".bmp", ".tif", ".tiff", ".gif", ".jpg", ".jpeg")
DEPTH_EXTS = (".png", ".npy")  # 16-bit PNG in millimetres, or float metres
DEPTH_PNG_SCALE = 1000.0  # NYUv2's PNGs store millimetres
MAX_GT_DEPTH = 1000.0  # metres: a larger ground-truth value is a unit mistake, not a depth
# Limits (environment variables override them; docs/security.md).
MAX_PIXELS = env_number("REDUNDANCY_MAX_PIXELS", 40_000_000)  # per image
MIN_SIDE, MAX_ASPECT = 16, 20  # below these an encoder's resize leaves a side of a pixel or less
ORIENTATION_TAG = 0x0112  # EXIF Orientation


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


def path_too_long(e: OSError, where: str) -> DataError | None:
    """The error to raise for a path longer than the file system allows (`where` names the dataset or file);
    None for any other OSError."""
    if e.errno != errno.ENAMETOOLONG:
        return None
    return DataError(
        f"{where}: a file's path is longer than the file system allows (folders nested too deep, or names too long); "
        "move the dataset to a shallower folder or shorten its folder names."
    )


def upright_size(img: Image.Image) -> tuple[int, int]:
    """(W, H) after the EXIF orientation tag is applied (tags 5-8 turn the image by 90 degrees)."""
    turned = img.getexif().get(ORIENTATION_TAG, 1) in (5, 6, 7, 8)
    return (img.height, img.width) if turned else (img.width, img.height)


def open_image(path: Path, image: bool = True) -> Image.Image:
    """The image (or mask), loaded and turned upright by its EXIF orientation tag (as viewers show it)."""
    try:
        img = Image.open(path)
        # the header's size, before anything decodes pixels (a PNG's EXIF lookup decodes them all); the limits
        # do not depend on orientation
        _check_size(path, *img.size, image)
        img.load()
        return ImageOps.exif_transpose(img)
    except DataError:
        raise
    except OSError as e:
        if (too_long := path_too_long(e, path.name)) is not None:
            raise too_long from None
        raise DataError(
            f"{path.name}: cannot read this file as an image ({e.__class__.__name__}: {e}); "
            "replace it with a valid JPEG or PNG."
        ) from e
    except Image.DecompressionBombError as e:  # Pillow's own check, at open: far over our limit too
        raise DataError(
            f"{path.name}: the image is over the limit of {MAX_PIXELS:,} pixels ({e}); downscale it (and its mask) "
            "first."
        ) from e
    except ValueError as e:
        raise DataError(
            f"{path.name}: cannot read this file as an image ({e.__class__.__name__}: {e}); "
            "replace it with a valid JPEG or PNG."
        ) from e


def load_image(path: Path) -> np.ndarray:
    """RGB uint8 array (H, W, 3); grayscale, RGBA, 16-bit and palette images are converted."""
    path = Path(path)
    img = open_image(path)
    if img.mode in WIDE_MODES:
        img = Image.fromarray(to_uint8(np.asarray(img, dtype=np.float64), path))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


WIDE_MODES = ("I;16", "I;16B", "I;16L", "I", "F")  # 16-bit, 32-bit integer and float images: converted to 8 bits


def to_uint8(arr: np.ndarray, path: Path) -> np.ndarray:
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
    with open_header(Path(path)) as im:
        w, h = upright_size(im)
        return h, w


def open_header(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError) as e:
        if (too_long := path_too_long(e, path.name)) is not None:
            raise too_long from None
        raise DataError(f"{path.name}: cannot read this file as an image ({e}); replace it with a JPEG or PNG.") from e


LOSSY_MASK_EXTS = (".jpg", ".jpeg")  # compression leaves faint non-zero noise: thresholded at half instead


def mask_from_image(img: Image.Image, lossy: bool = False) -> tuple[np.ndarray, int]:
    """(bool mask (H, W), distinct foreground values) under the documented convention (docs/data.md).

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


def mask_of(path: Path, img: Image.Image) -> tuple[np.ndarray, int]:
    return mask_from_image(img, lossy=path.suffix.lower() in LOSSY_MASK_EXTS)


def load_mask(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Boolean mask (H, W); `size` (W, H) checks it matches its image."""
    path = Path(path)
    img = open_image(path, image=False)
    if size is not None and img.size != tuple(size):
        raise DataError(
            f"{path.name}: mask is {img.size[0]}x{img.size[1]} but its image is {size[0]}x{size[1]}; "
            "masks must have the same size as their image."
        )
    return mask_of(path, img)[0]


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
    img = open_image(path, image=False)
    if img.mode not in ("I;16", "I;16B", "I;16L", "I"):
        raise DataError(
            f"{path.name}: depth PNGs must be 16-bit (millimetres, NYUv2's convention), this one is mode {img.mode}; "
            "save depth as uint16 millimetres or as .npy metres."
        )
    return np.asarray(img, dtype=np.float32) / DEPTH_PNG_SCALE


def check_image(path: Path) -> None:
    """Read an image fully once (as a search will): an unreadable or unconvertible file fails now, by name."""
    with open_image(path) as img:
        if img.mode in WIDE_MODES:  # their conversion can fail (NaN pixels)
            to_uint8(np.asarray(img, dtype=np.float64), path)
