"""Small image helpers on arrays (no model): mask overlays, coloured depth maps and PNG bytes."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def overlay(image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = (255, 64, 32)) -> np.ndarray:
    """RGB image with the mask tinted in (alpha 0.5), uint8 (H, W, 3)."""
    out = image.astype(np.float32).copy()
    out[mask] = 0.5 * out[mask] + 0.5 * np.array(color, np.float32)
    return out.astype(np.uint8)


def mask_overlay(image: np.ndarray, mask: np.ndarray, gt: np.ndarray | None = None) -> np.ndarray:
    """Prediction tinted over the image, GT outline in white when given."""
    out = overlay(image, mask)
    if gt is not None:
        edge = gt & ~(np.roll(gt, 1, 0) & np.roll(gt, -1, 0) & np.roll(gt, 1, 1) & np.roll(gt, -1, 1))
        out[edge] = 255
    return out


CAPTION_WIDTH = 224  # pixels: a caption of ~30 characters fits


def captioned(image: np.ndarray, text: str) -> np.ndarray:
    """The image with `text` on a dark band above it (a class label where a mask would be drawn; on top, so a
    gallery that crops a tall picture still shows it)."""
    from PIL import ImageDraw

    h, w = image.shape[:2]
    if w < CAPTION_WIDTH:  # small images are enlarged so that a caption fits under them
        h, w = round(h * CAPTION_WIDTH / w), CAPTION_WIDTH
        image = np.asarray(Image.fromarray(image).resize((w, h), Image.NEAREST))
    scale = w / CAPTION_WIDTH
    band = Image.new("RGB", (w, round(16 * scale)), (20, 20, 20))
    ImageDraw.Draw(band).text((4, 1), text, fill=(255, 255, 255), font_size=12 * scale)
    return np.concatenate([np.asarray(band), image], 0)


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def depth_colour(depth: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Depth (H, W) in metres -> RGB uint8 (H, W, 3) in matplotlib's turbo map (near red, far blue)."""
    from matplotlib import colormaps

    lo = float(depth.min()) if lo is None else lo
    hi = float(depth.max()) if hi is None else hi
    t = 1.0 - np.clip((depth - lo) / max(hi - lo, 1e-6), 0, 1)
    return (colormaps["turbo"](t)[..., :3] * 255).astype(np.uint8)


def depth_png(depth: np.ndarray) -> bytes:
    """Depth in metres -> 16-bit PNG bytes in millimetres (NYUv2's convention; 0 stays invalid)."""
    return png_bytes(np.clip(np.round(depth * 1000.0), 0, 65535).astype(np.uint16))
