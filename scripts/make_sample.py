"""Generate the bundled sample dataset (assets/sample/) procedurally: no external data, CC0.

PerSeg layout: Images/<object>/NN.jpg and Annotations/<object>/NN.png, 4 objects x 8 images,
each a textured background with one object at a random place, size and colour.
Rerun with `python scripts/make_sample.py` to regenerate identical files.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root

from redundancy.bundled import ASSETS  # noqa: E402

OBJECTS = ("disc", "star", "ring", "blob")
PER_OBJECT = 8
SIZES = ((160, 120), (192, 144), (144, 144), (200, 150))  # (W, H): varied on purpose


def background(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Smooth colour gradient plus blurred noise texture."""
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    base = rng.uniform(40, 200, 3)
    slope = rng.uniform(-80, 80, (2, 3))
    img = base + xx[..., None] * slope[0] + yy[..., None] * slope[1]
    noise = Image.fromarray(rng.integers(0, 255, (h // 4, w // 4), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
    img = img + (np.asarray(noise, np.float32)[..., None] - 128) * 0.35
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def shape_polygon(kind: str, rng: np.random.Generator, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """Outline of a star or a random smooth blob."""
    if kind == "star":
        n, inner = int(rng.integers(5, 8)), rng.uniform(0.4, 0.55)
        angles = np.arange(2 * n) * math.pi / n + rng.uniform(0, math.pi)
        radii = np.where(np.arange(2 * n) % 2 == 0, r, r * inner)
    else:
        angles = np.linspace(0, 2 * math.pi, 40, endpoint=False)
        coeffs = rng.normal(0, 0.12, 4)
        radii = r * (1 + sum(c * np.cos((k + 2) * angles + k) for k, c in enumerate(coeffs)))
    return [(cx + rr * math.cos(a), cy + rr * math.sin(a)) for a, rr in zip(angles, radii)]


def draw_object(kind: str, rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Binary mask (mode L, 0/255) of one object."""
    mask = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(mask)
    r = rng.uniform(0.18, 0.32) * min(w, h)
    cx, cy = rng.uniform(r + 4, w - r - 4), rng.uniform(r + 4, h - r - 4)
    if kind == "disc":
        d.ellipse((cx - r, cy - r * rng.uniform(0.8, 1.0), cx + r, cy + r), fill=255)
    elif kind == "ring":
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        q = r * rng.uniform(0.4, 0.6)
        d.ellipse((cx - q, cy - q, cx + q, cy + q), fill=0)
    else:
        d.polygon(shape_polygon(kind, rng, cx, cy, r), fill=255)
    return mask


def make(root: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for obj_index, kind in enumerate(OBJECTS):
        colour = rng.uniform(0, 255, 3)
        for k in range(PER_OBJECT):
            w, h = SIZES[(obj_index + k) % len(SIZES)]
            img = background(rng, w, h)
            mask = draw_object(kind, rng, w, h)
            tint = np.clip(colour + rng.normal(0, 20, 3), 0, 255)
            shade = np.asarray(img, np.float32) * 0.25 + tint * 0.75
            obj = Image.fromarray(shade.astype(np.uint8)).filter(ImageFilter.SMOOTH)
            img.paste(obj, (0, 0), mask)
            (root / "Images" / kind).mkdir(parents=True, exist_ok=True)
            (root / "Annotations" / kind).mkdir(parents=True, exist_ok=True)
            img.save(root / "Images" / kind / f"{k:02d}.jpg", quality=88)
            mask.save(root / "Annotations" / kind / f"{k:02d}.png", optimize=True)


if __name__ == "__main__":
    make(ASSETS / "sample")
