"""Render assets/hero.png, the picture the app's first screen shows: a real search's result, measured here.

What a visitor gets by pressing Load and then Quick search: the Data tab's defaults (`LoadForm()`: the demo model
`sam_tiny_demo`, trained by this repository on synthetic shapes, not SAM; the gray domain; 50 search images, seed
0) and the Search tab's Quick preset (`QUICK`), then baseline vs patched masks on the three held-out images whose
IoU the found set changes most, each with its IoU, under the held-out mean over every held-out image. The Data tab
shows it only while the model box names that model (`HERO_MODEL`). Rerun with `python scripts/make_hero.py`
(under a minute on 2 cores).
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redundancy.bundled import HERO, HERO_MODEL  # noqa: E402
from redundancy.data import load_image  # noqa: E402
from redundancy.engine import Session, run_search  # noqa: E402
from redundancy.engine.features import FeatureCache  # noqa: E402
from redundancy.replace import identity_map, set_map  # noqa: E402
from redundancy.ui.tabs.data import LoadForm  # noqa: E402
from redundancy.ui.tabs.search import QUICK  # noqa: E402

TILE = 200  # pixels per picture


def _font(size: int):
    return ImageFont.load_default(size=size)


def _labelled(image: np.ndarray, text: str) -> Image.Image:
    """A picture TILE wide with a caption band above it."""
    pic = Image.fromarray(image).resize((TILE, round(TILE * image.shape[0] / image.shape[1])), Image.BILINEAR)
    out = Image.new("RGB", (TILE, pic.height + 22), (255, 255, 255))
    out.paste(pic, (0, 22))
    ImageDraw.Draw(out).text((3, 3), text, fill=(20, 20, 20), font=_font(14))
    return out


def main() -> None:
    form = LoadForm()
    assert form.model == HERO_MODEL, "the picture shows the model Load opens by default"
    session = Session.open(form.config(), FeatureCache())
    result = run_search(session, QUICK)
    best = result.combos.best_pairs
    hev = session.evaluator("heldout")
    stats = hev.set_stats([[], best]).values  # (2, B, K): inter, union, loss per image
    iou = 100.0 * stats[..., 0] / np.maximum(stats[..., 1], 1.0)
    picks = np.argsort(-np.abs(iou[1] - iou[0]))[:3]
    c = session.backend.channels
    f, alpha = set_map(best, c)
    columns = []
    for k in picks.tolist():
        sample = session.heldout_set.samples[k]
        image, target = load_image(sample.image_path), session.task.load_target(sample)
        before = hev.logits(identity_map(c), [k])[0]
        after = hev.logits(f, [k], alpha)[0]
        top = _labelled(session.task.prediction_view(image, before, target, ()), f"baseline IoU {iou[0, k]:.1f}")
        low = _labelled(session.task.prediction_view(image, after, target, ()), f"found set IoU {iou[1, k]:.1f}")
        column = Image.new("RGB", (TILE, top.height + low.height + 4), (255, 255, 255))
        column.paste(top, (0, 0))
        column.paste(low, (0, top.height + 4))
        columns.append(column)
    h = result.heldout
    pairs = ", ".join(f"{i}<-{j}" for i, j, *_ in best)
    title = (
        f"held-out mIoU {h['baseline_score']:.2f} -> {h['patched_score']:.2f} on {h['images']} images the search "
        f"never saw, {len(best)} channels replaced ({pairs}), zero trained parameters: Load, then Quick search; the 3 "
        "held-out images the set changes most"
    )
    note = f"{HERO_MODEL}: trained by this repository on synthetic shapes, NOT SAM (gray domain)"
    width = len(columns) * (TILE + 6)
    lines = [*textwrap.wrap(title, width // 7), note]
    top = 18 * len(lines) + 4
    canvas = Image.new("RGB", (width, columns[0].height + top), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for n, line in enumerate(lines):
        draw.text((3, 2 + 18 * n), line, fill=(120, 40, 20) if line is note else (20, 20, 20), font=_font(13))
    for n, column in enumerate(columns):
        canvas.paste(column, (n * (TILE + 6), top))
    canvas.quantize(96).save(HERO, optimize=True)  # a palette keeps it small
    print(title)


if __name__ == "__main__":
    main()
