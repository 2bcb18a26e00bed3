"""Small image helpers on arrays (no model, no plotting library): mask overlays and PNG bytes."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def overlay(image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = (255, 64, 32)) -> np.ndarray:
    """RGB image with the mask tinted in (alpha 0.5), uint8 (H, W, 3)."""
    out = image.astype(np.float32).copy()
    out[mask] = 0.5 * out[mask] + 0.5 * np.array(color, np.float32)
    return out.astype(np.uint8)


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()
