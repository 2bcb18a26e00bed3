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
