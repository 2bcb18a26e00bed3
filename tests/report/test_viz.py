"""The app's pictures drawn in Python (plotly figures are tested with their tabs)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from redundancy.report import viz


def test_the_mosaic_has_a_colour_bar_and_signs_in_colour():
    """Below the tiles, the colour scale from low to high; a label's change in red (-) or blue (+)."""
    feats = np.random.default_rng(0).normal(size=(32, 8, 8)).astype(np.float32)
    mosaic = viz.channel_mosaic(feats, cols=16, tile=48, labels={0: "-1.5", 1: "+2.0"})
    bar = mosaic[-viz.MOSAIC_BAR :]
    lut = viz.colormap()
    row = bar[10]
    for end in (lut[0], lut[255]):  # both ends of the scale are drawn
        assert (np.abs(row.astype(int) - end.astype(int)).sum(1) < 30).any()
    first, second = mosaic[: viz.MOSAIC_LABEL, :48], mosaic[: viz.MOSAIC_LABEL, 48:96]
    red, blue = viz.SIGN_COLOURS["-"], viz.SIGN_COLOURS["+"]
    assert (np.abs(first.astype(int) - red).sum(2) < 60).any() and (np.abs(second.astype(int) - blue).sum(2) < 60).any()


def test_a_mosaic_label_never_runs_into_the_next_tile():
    """Sorted by sweep delta, a tile reads '255 -41.5': the label shrinks to its tile's width (#37)."""
    feats = np.random.default_rng(0).normal(size=(4, 8, 8)).astype(np.float32)
    labels = {c: f"{-41.5 + c:+.1f}" for c in range(4)}
    tile = 48
    mosaic = viz.channel_mosaic(feats, [3, 2, 1, 0], cols=4, tile=tile, labels=labels)
    assert mosaic.shape == (tile + viz.MOSAIC_LABEL + viz.MOSAIC_BAR, 4 * tile, 3)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    wide = "255 -41.5"
    assert draw.textlength(wide, font=viz._font(viz.MOSAIC_LABEL - 2)) > tile - 3  # too wide at the usual size
    fitted = viz._fitting_font(draw, wide, tile - 6, viz.MOSAIC_LABEL - 2)
    assert draw.textlength(wide, font=fitted) <= tile - 6
    band = mosaic[: viz.MOSAIC_LABEL]  # each label's ink stays left of its tile's right edge
    for k in range(4):
        ink = np.nonzero((band[:, k * tile : (k + 1) * tile] < 200).any(axis=(0, 2)))[0]
        assert ink.max() < tile - 3  # a gap before the next tile's label


def test_plot_titles_wrap_to_fit_a_phone():
    """A long title is cut on a 390 px screen unless it wraps: every line fits, and the top margin holds them."""
    title = "Δ mIoU (points) when each channel is zeroed (positive: zeroing helps)"
    fig = viz.delta_bars([0, 1], [0.5, -0.2], title, 2)
    lines = fig.layout.title.text.split("<br>")
    assert len(lines) == 2 and all(len(line) <= viz.TITLE_CHARS for line in lines) and " ".join(lines) == title
    assert fig.layout.margin.t >= 17 * len(lines) + 24
    heat = viz.gain_heatmap(np.zeros((3, 3)), [(0, 1)], "Pair gains (Δ mIoU (points)) over the chosen scope")
    assert all(len(line) <= viz.TITLE_CHARS for line in heat.layout.title.text.split("<br>"))
