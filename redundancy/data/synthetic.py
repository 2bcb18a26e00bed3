"""Synthetic domains: the demo models' source domain and the shifted targets they adapt to.

Every image is one object on a background, rendered from a seeded numpy Generator (no external
data, CC0). The source domain is what the demo models are trained on; each target domain keeps the
same objects and changes how they look, so a model trained on the source meets a real domain shift:

- `source`: saturated object colour on a colour-gradient background with soft noise texture.
- `gray`: "medical-like": gray, low contrast, blurred, with speckle noise.
- `camouflage`: the object takes the background's own colour and texture, offset by a faint tint.
- `texture`: striped backgrounds and objects (different stripe angle and period), muted colours.

The same looks serve classification (the object's kind is the label, `write_classes`) and depth
(synthetic rooms, `depth_scene`: `gray` and `texture` restyle a room, its depth unchanged).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

KINDS = ("disc", "star", "ring", "blob", "square")
DOMAINS = ("source", "gray", "camouflage", "texture")
TARGET_DOMAINS = DOMAINS[1:]
SIZE = 128  # the demo models' input size: images are generated at it, so nothing is resized


def _noise(rng: np.random.Generator, size: int, cell: int) -> np.ndarray:
    """Smooth noise in [-1, 1], (size, size): random values on a coarse grid, bicubic upsampled."""
    coarse = rng.integers(0, 255, (max(size // cell, 2),) * 2, dtype=np.uint8)
    up = Image.fromarray(coarse).resize((size, size), Image.BICUBIC)
    return np.asarray(up, np.float32) / 127.5 - 1.0


def _gradient(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random linear colour gradient, (size, size, 3) in 0..255."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = rng.uniform(40, 210, 3)
    slope = rng.uniform(-70, 70, (2, 3))
    return base + xx[..., None] * slope[0] + yy[..., None] * slope[1]


def _stripes(rng: np.random.Generator, size: int) -> np.ndarray:
    """A sinusoidal stripe pattern in [-1, 1] with random angle and period, (size, size)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle, period = rng.uniform(0, math.pi), rng.uniform(5, 14)
    return np.sin(2 * math.pi * (xx * math.cos(angle) + yy * math.sin(angle)) / period + rng.uniform(0, 6.3))


def _polygon(kind: str, rng: np.random.Generator, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """Outline of a star, a smooth random blob or a rotated square."""
    if kind == "star":
        n, inner = int(rng.integers(5, 8)), rng.uniform(0.4, 0.55)
        angles = np.arange(2 * n) * math.pi / n + rng.uniform(0, math.pi)
        radii = np.where(np.arange(2 * n) % 2 == 0, r, r * inner)
    elif kind == "square":
        angles = np.arange(4) * math.pi / 2 + rng.uniform(0, math.pi / 2)
        radii = np.full(4, r)
    else:
        angles = np.linspace(0, 2 * math.pi, 40, endpoint=False)
        coeffs = rng.normal(0, 0.13, 4)
        radii = r * (1 + sum(c * np.cos((k + 2) * angles + k) for k, c in enumerate(coeffs)))
    return [(cx + rr * math.cos(a), cy + rr * math.sin(a)) for a, rr in zip(angles, radii)]


def object_mask(kind: str, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """A bool mask (size, size) of one object of `kind` at a random place and scale."""
    mask = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(mask)
    r = rng.uniform(0.14, 0.3) * size
    cx, cy = rng.uniform(r + 2, size - r - 2, 2)
    if kind == "disc":
        d.ellipse((cx - r, cy - r * rng.uniform(0.7, 1.0), cx + r, cy + r), fill=255)
    elif kind == "ring":
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        q = r * rng.uniform(0.35, 0.55)
        d.ellipse((cx - q, cy - q, cx + q, cy + q), fill=0)
    else:
        d.polygon(_polygon(kind, rng, cx, cy, r), fill=255)
    return np.asarray(mask) > 0


def _composite(background: np.ndarray, foreground: np.ndarray, mask: np.ndarray, soft: float = 0.8) -> np.ndarray:
    """Paste `foreground` over `background` (H, W, 3) where `mask`, with a slightly blurred edge."""
    alpha = Image.fromarray((mask * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(soft))
    a = np.asarray(alpha, np.float32)[..., None] / 255.0
    return background * (1 - a) + foreground * a


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(img, 0, 255).round().astype(np.uint8)


def _striped(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The `texture` look of an image (H, W, 3): colours halfway to gray, a random stripe pattern over it."""
    gray = img.mean(axis=2, keepdims=True)
    return 0.5 * img + 0.5 * gray + 45 * _stripes(rng, img.shape[0])[..., None]


def _blurred_speckle(lum: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The `gray` look's last steps on a luminance image (H, W): blur, speckle and sensor noise, as RGB uint8."""
    img = np.asarray(Image.fromarray(_to_uint8(lum)).filter(ImageFilter.GaussianBlur(rng.uniform(1.0, 2.0))))
    img = img * (1 + 0.08 * rng.standard_normal(img.shape)) + 4 * rng.standard_normal(img.shape)
    return _to_uint8(np.repeat(img[..., None], 3, axis=2))


def render(domain: str, kind: str, rng: np.random.Generator, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """One image (size, size, 3) uint8 and its bool mask (size, size) of `kind` in `domain`."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain '{domain}'; use one of {', '.join(DOMAINS)}.")
    mask = object_mask(kind, rng, size)
    texture = _noise(rng, size, int(rng.integers(3, 8)))[..., None]
    background = _gradient(rng, size) + 30 * texture
    if domain == "camouflage":
        # the object is the background itself, faintly tinted and re-textured: edges are all that is left
        tint = rng.normal(0, 1, 3)
        tint = 22 * tint / np.linalg.norm(tint)
        fg = _gradient(rng, size) * 0.25 + background * 0.75 + tint + 25 * _noise(rng, size, 5)[..., None]
        return _to_uint8(_composite(background, fg, mask)), mask
    if domain == "texture":
        background = _striped(background, rng)
        colour = rng.uniform(50, 200, 3)
        fg = 0.6 * colour + 0.4 * background.mean() + 45 * _stripes(rng, size)[..., None]
        return _to_uint8(_composite(background, fg, mask)), mask
    if domain == "gray":
        # one gray level per region, the object a fixed step brighter or darker, then blur and speckle
        lum = background.mean(axis=2)
        lum = lum.mean() + rng.uniform(0.3, 0.5) * (lum - lum.mean())
        step = rng.choice([-1.0, 1.0]) * rng.uniform(28, 50)
        return _blurred_speckle(_composite(lum[..., None], lum[..., None] + step, mask)[..., 0], rng), mask
    colour = rng.uniform(0, 255, 3)
    fg = 0.75 * (colour + rng.normal(0, 15, 3)) + 0.25 * background
    img = _composite(background, fg, mask)
    return _to_uint8(img), mask


def batch(domain: str, n: int, rng: np.random.Generator, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """n images (n, size, size, 3) uint8 and masks (n, size, size) bool, object kinds cycling."""
    pairs = [render(domain, KINDS[k % len(KINDS)], rng, size) for k in range(n)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def write_perseg(root: str | Path, domain: str, per_kind: int, seed: int, size: int = SIZE) -> Path:
    """Write `per_kind` images of every object kind in the PerSeg layout under `root`; returns root.

    Images/<kind>/NN.jpg (quality 90) and Annotations/<kind>/NN.png (0/255); deterministic for a seed.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for kind in KINDS:
        (root / "Images" / kind).mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / kind).mkdir(parents=True, exist_ok=True)
        for k in range(per_kind):
            img, mask = render(domain, kind, rng, size)
            Image.fromarray(img).save(root / "Images" / kind / f"{k:02d}.jpg", quality=90)
            Image.fromarray((mask * 255).astype(np.uint8)).save(root / "Annotations" / kind / f"{k:02d}.png")
    return root


def write_classes(root: str | Path, per_class: int, seed: int, size: int = 96, domain: str = "source") -> Path:
    """A classification set in the ImageFolder layout: <kind>/NN.jpg, the object's kind is the label.

    Images are `domain`'s (`render`), so the class is the shape and nothing else.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for kind in KINDS:
        (root / kind).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            Image.fromarray(render(domain, kind, rng, size)[0]).save(root / kind / f"{k:02d}.jpg", quality=90)
    return root


DEPTH_DOMAINS = ("source", "gray", "texture")  # the rooms' looks: as rendered, and two shifts of it
# the shifted target domains bundled for classification and depth (assets/task_domains/<task>/<domain>)
TASK_DOMAINS = {"classify": TARGET_DOMAINS, "depth": DEPTH_DOMAINS[1:]}


def depth_scene(rng: np.random.Generator, size: int = 96, domain: str = "source") -> tuple[np.ndarray, np.ndarray]:
    """An image (size, size, 3) uint8 and its depth in metres (size, size), 0 where invalid.

    A floor receding to a far wall (depth grows up the image, as indoors), one or two nearer objects,
    fog and texture that shrink with distance, and a few invalid pixels (a sensor's holes). `gray` and
    `texture` restyle the same room as the segmentation domains of those names do (the depth is unchanged).
    """
    if domain not in DEPTH_DOMAINS:
        raise ValueError(f"unknown depth domain '{domain}'; use one of {', '.join(DEPTH_DOMAINS)}.")
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    horizon = rng.uniform(0.3, 0.5)
    far = rng.uniform(4.0, 8.0)
    floor = 1.0 / np.maximum((yy - horizon) / (1 - horizon), 1.0 / far)  # perspective: 1/d is linear in y
    depth = np.where(yy > horizon, floor, far).astype(np.float32)
    for _ in range(int(rng.integers(1, 3))):
        mask = object_mask(KINDS[int(rng.integers(len(KINDS)))], rng, size)
        depth = np.where(mask, np.minimum(depth, rng.uniform(0.8, 3.0)), depth)
    colour = rng.uniform(60, 200, 3)
    near = 1.0 / depth[..., None]
    texture = _noise(rng, size, int(rng.integers(3, 6)))[..., None] * np.clip(near, 0, 1)
    fog = np.exp(-depth[..., None] / 6.0)
    img = (colour * (0.35 + 0.65 * fog) + 40 * texture + 25 * (xx[..., None] - 0.5)) * (0.8 + 0.2 * near.clip(0, 1))
    holes = rng.random((size, size)) < 0.01
    depth = np.where(holes, 0.0, depth).astype(np.float32)
    if domain == "gray":  # gray, low contrast, blurred, speckled
        lum = img.mean(axis=2)
        return _blurred_speckle(lum.mean() + rng.uniform(0.3, 0.5) * (lum - lum.mean()), rng), depth
    if domain == "texture":  # muted colours under stripes that do not recede with the floor
        return _to_uint8(_striped(img, rng)), depth
    return _to_uint8(img), depth


def write_depth(root: str | Path, n: int, seed: int, size: int = 96, domain: str = "source") -> Path:
    """A depth set: images/NNN.jpg and depth/NNN.png (16-bit millimetres, 0 invalid: NYUv2's convention)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "depth").mkdir(parents=True, exist_ok=True)
    for k in range(n):
        img, depth = depth_scene(rng, size, domain)
        Image.fromarray(img).save(root / "images" / f"{k:03d}.jpg", quality=90)
        Image.fromarray(np.round(depth * 1000).astype(np.uint16)).save(root / "depth" / f"{k:03d}.png")
    return root
