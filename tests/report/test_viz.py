"""The app's pictures drawn in Python (plotly figures are tested with their tabs)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from redundancy.report import viz


def test_a_mosaic_label_never_runs_into_the_next_tile():
    """Sorted by sweep delta, a tile reads '255 -41.5': the label shrinks to its tile's width (#37)."""
    feats = np.random.default_rng(0).normal(size=(4, 8, 8)).astype(np.float32)
    labels = {c: f"{-41.5 + c:+.1f}" for c in range(4)}
    tile = 48
    mosaic = viz.channel_mosaic(feats, [3, 2, 1, 0], cols=4, tile=tile, labels=labels)
    assert mosaic.shape == (tile + viz.MOSAIC_LABEL, 4 * tile, 3)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    wide = "255 -41.5"
    assert draw.textlength(wide, font=viz._font(viz.MOSAIC_LABEL - 2)) > tile - 3  # too wide at the usual size
    fitted = viz._fitting_font(draw, wide, tile - 3, viz.MOSAIC_LABEL - 2)
    assert draw.textlength(wide, font=fitted) <= tile - 3
    band = mosaic[: viz.MOSAIC_LABEL]  # each label's ink stays left of its tile's right edge
    for k in range(4):
        ink = np.nonzero((band[:, k * tile : (k + 1) * tile] < 128).any(axis=(0, 2)))[0]
        assert ink.max() < tile - 1
