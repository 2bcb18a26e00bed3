"""Pictures and interactive figures from arrays (plotly for the app); no engine state in here."""

from __future__ import annotations

import functools
import textwrap

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFont
from plotly.colors import sample_colorscale

_LUT: dict[str, np.ndarray] = {}


def colormap(name: str = "Viridis") -> np.ndarray:
    """A (256, 3) uint8 lookup table from a plotly colour scale (colour-blind safe by default)."""
    if name not in _LUT:
        rgb = sample_colorscale(name, list(np.linspace(0, 1, 256)), colortype="tuple")
        _LUT[name] = (np.array(rgb) * (255 if max(max(c) for c in rgb) <= 1 else 1)).astype(np.uint8)
    return _LUT[name]


def normalize(x: np.ndarray) -> np.ndarray:
    """Scale to 0..1 per map (constant maps become 0)."""
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x, dtype=np.float64)


def feature_image(fmap: np.ndarray, size: int = 256) -> np.ndarray:
    """One channel's map (h, w) -> colour image (size, size, 3), nearest-neighbour so cells stay visible."""
    idx = (normalize(fmap.astype(np.float64)) * 255).astype(np.uint8)
    img = Image.fromarray(colormap()[idx])
    return np.asarray(img.resize((size, size), Image.NEAREST))


MOSAIC_LABEL = 14  # pixels above each tile for its channel number


def mosaic_cell(x: float, y: float, cols: int = 16, tile: int = 48) -> int:
    """Position in `channel_mosaic`'s order of the tile under pixel (x, y)."""
    return int(y // (tile + MOSAIC_LABEL)) * cols + int(x // tile)


def channel_mosaic(
    feats: np.ndarray,
    order: list[int] | None = None,
    cols: int = 16,
    tile: int = 48,
    labels: dict[int, str] | None = None,
) -> np.ndarray:
    """All channel maps (C, h, w) as a labelled grid image, in `order` (default 0..C-1), with a colour bar below
    (each tile is scaled to its own range). A label's second part (`labels`: a score change) is drawn in the colour
    of its sign, a gap apart from the next tile's."""
    order = list(range(len(feats))) if order is None else order
    rows = -(-len(order) // cols)
    pad = MOSAIC_LABEL
    canvas = Image.new("RGB", (cols * tile, rows * (tile + pad) + MOSAIC_BAR), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for k, c in enumerate(order):
        x, y = (k % cols) * tile, (k // cols) * (tile + pad)
        canvas.paste(Image.fromarray(feature_image(feats[c], tile - 2)), (x + 1, y + pad))
        extra = f" {labels[c]}" if labels and c in labels else ""
        font = _fitting_font(draw, f"{c}{extra}", tile - 6, MOSAIC_LABEL - 2)
        draw.text((x + 2, y), f"{c}", fill=(20, 20, 20), font=font)
        sign = SIGN_COLOURS.get(extra.strip()[:1], (90, 90, 90))
        draw.text((x + 2 + draw.textlength(f"{c}", font=font), y), extra, fill=sign, font=font)
    _mosaic_bar(draw, canvas, rows * (tile + pad))
    return np.asarray(canvas)


MOSAIC_BAR = 22  # pixels below the tiles for the colour bar
SIGN_COLOURS = {"+": (33, 102, 172), "-": (178, 24, 43)}  # a label's change: RdBu's blue and red ends


def _mosaic_bar(draw: ImageDraw.ImageDraw, canvas: Image.Image, top: int) -> None:
    """The tiles' colour scale along the bottom: each tile's own lowest value on the left, highest on the right."""
    font = _font(11)
    width = min(canvas.width // 3, 200)
    ramp = colormap()[np.linspace(0, 255, width).astype(int)][None].repeat(8, 0)
    x = round(4 + draw.textlength("low", font=font) + 4)
    draw.text((4, top + 5), "low", fill=(20, 20, 20), font=font)
    canvas.paste(Image.fromarray(ramp), (x, top + 7))
    note = "high  (each tile scaled to its own values)"
    if x + width + 4 + draw.textlength(note, font=font) > canvas.width:  # a narrow mosaic: the ends only
        note = "high"
    draw.text((x + width + 4, top + 5), note, fill=(20, 20, 20), font=font)


def _fitting_font(draw: ImageDraw.ImageDraw, text: str, width: int, size: int, smallest: int = 7):
    """The font at `size`, or smaller until `text` fits `width` pixels (a label never runs into the next tile)."""
    while size > smallest and draw.textlength(text, font=_font(size)) > width:
        size -= 1
    return _font(size)


def _cells(values: np.ndarray, fmt: str) -> np.ndarray:
    """Hover text per cell, formatted here (no d3 format string in the browser to go wrong): blank for NaN."""
    return np.array([[format(v, fmt) if np.isfinite(v) else "not scored" for v in row] for row in values], object)


def gain_heatmap(
    gain: np.ndarray,
    top: list[tuple[int, int]] | None = None,
    title: str = "",
    sources: list[int] | None = None,
    targets: list[int] | None = None,
    top_notes: list[str] | None = None,
    unit: str = "gain",
) -> go.Figure:
    """Pair gains (row = source i, column = target j) over the scored channels; NaN cells stay blank.

    `top_notes`: a hover line per top pair (its confidence interval), shown on its marker; `unit`: the colour
    bar's title (e.g. "Δ mIoU (points)"). The axes list the scope's channels in order, fixed, so a finished
    search's markers never reorder them.
    """
    sources = list(range(gain.shape[0])) if sources is None else sources
    targets = list(range(gain.shape[1])) if targets is None else targets
    sub = gain[np.ix_(sources, targets)]
    finite = sub[np.isfinite(sub)]
    bound = float(np.abs(finite).max()) if finite.size else 1.0
    bound = bound or 1.0
    xs, ys = [str(c) for c in targets], [str(c) for c in sources]
    fig = go.Figure(
        go.Heatmap(
            z=np.where(np.isfinite(sub), sub, None),
            x=xs,  # categories: one even cell per scored channel
            y=ys,
            customdata=_cells(sub, "+.3f"),
            colorscale="RdBu",
            zmid=0,
            zmin=-bound,
            zmax=bound,
            colorbar={"title": {"text": unit, "side": "right"}, "thickness": 14},
            hovertemplate="channel %{y} takes channel %{x}'s values: %{customdata}<extra></extra>",
        )
    )
    if top:
        fig.add_trace(
            go.Scatter(
                x=[str(j) for _, j in top],
                y=[str(i) for i, _ in top],
                mode="markers",
                name="top N pairs",
                marker={"symbol": "circle-open", "size": 12, "color": "black", "line": {"width": 2}},
                text=[f"#{k + 1}: {note}" for k, note in enumerate(top_notes)] if top_notes else None,
                hovertemplate="channel %{y} takes %{x}<br>%{text}<extra>top N</extra>" if top_notes else None,
            )
        )
    heading, top_margin = plot_title(title)
    fig.update_layout(
        title=heading,
        xaxis_title="target channel j (copied)",
        yaxis_title="source channel i (replaced)",
        xaxis={"type": "category", "categoryorder": "array", "categoryarray": xs},
        yaxis={"type": "category", "categoryorder": "array", "categoryarray": ys, "autorange": "reversed"},
        margin={"l": 60, "r": 20, "t": top_margin + 30, "b": 50},  # the legend sits between title and plot
        height=520,
        showlegend=bool(top),
        # above the plot area, left of the colour bar: never over data cells
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.01, "x": 1, "xanchor": "right"},
    )
    return fig


TITLE_CHARS = 40  # a plot title's line: fits a phone's 360 px plot at 13 px


def plot_title(text: str) -> tuple[dict, int]:
    """(plotly title, its top margin in px): wrapped into lines that fit a phone's width, left-aligned."""
    lines = textwrap.wrap(text, TITLE_CHARS) or [""]
    return {"text": "<br>".join(lines), "x": 0, "xanchor": "left", "font": {"size": 13}}, 24 + 17 * len(lines)


def delta_bars(
    channels: list[int], deltas: list[float], title: str = "", total: int = 256, label: str = "delta mIoU (points)"
) -> go.Figure:
    """Bar chart of the score's change per channel (zero sweep / ablation); `label` names the score."""
    colors = ["#1b7837" if d > 0 else "#762a83" for d in deltas]
    fig = go.Figure(
        go.Bar(x=channels, y=deltas, marker_color=colors, hovertemplate="channel %{x}: %{y:+.3f}<extra></extra>")
    )
    heading, top_margin = plot_title(title)
    fig.update_layout(
        title=heading,
        xaxis_title="channel",
        yaxis_title=label,
        height=300 + top_margin,
        xaxis={"range": [-1, total]},
        margin={"l": 60, "r": 20, "t": top_margin, "b": 50},
    )
    return fig


def combination_scatter(
    sizes: list[int], scores: list[float], baseline: float, best: int | None, label: str
) -> go.Figure:
    """The score (`label`) of every evaluated subset against its size, baseline line, best marked."""
    fig = go.Figure(
        go.Scatter(
            x=sizes, y=scores, mode="markers", name="subsets", marker={"opacity": 0.6},
            customdata=[format(v, ".3f") for v in scores],
            hovertemplate="%{x} pairs: %{customdata}<extra></extra>",
        )
    )  # fmt: skip
    fig.add_hline(y=baseline, line_dash="dash", annotation_text=f"baseline {baseline:.3f}")
    if best is not None:
        fig.add_trace(
            go.Scatter(
                x=[sizes[best]],
                y=[scores[best]],
                mode="markers",
                name="best",
                marker={"symbol": "star", "size": 16, "color": "#d95f02"},
                hovertemplate=f"best: {sizes[best]} pairs, {scores[best]:.3f}<extra></extra>",
            )
        )
    ticks = sorted(set(sizes)) or [1]
    fig.update_layout(
        xaxis={"title": "pairs in the subset", "tickmode": "array", "tickvals": ticks},  # whole pairs only
        yaxis_title=label,
        height=320,
        margin={"l": 60, "r": 20, "t": 30, "b": 50},
    )
    return fig


@functools.lru_cache(maxsize=32)
def _font(size: int):
    """PIL's bundled scalable font at `size` pixels."""
    return ImageFont.load_default(size=size)


def colour_bar(lo: float, hi: float, height: int, width: int = 70) -> Image.Image:
    """A vertical colour bar of the map colours (high at the top) with its two ends' values."""
    lut = colormap()
    ramp = lut[np.linspace(255, 0, height).astype(int)][:, None].repeat(14, 1)
    bar = Image.new("RGB", (width, height), (255, 255, 255))
    bar.paste(Image.fromarray(ramp), (0, 0))
    draw = ImageDraw.Draw(bar)
    draw.text((17, 0), f"{hi:.3g}", fill=(20, 20, 20), font=_font(12))
    draw.text((17, height - 14), f"{lo:.3g}", fill=(20, 20, 20), font=_font(12))
    return bar


def channel_overlay(image: np.ndarray, fmap: np.ndarray, channel: int, size: int = 360, alpha: float = 0.6):
    """One channel's map laid over its image (bilinear to the image's size), with its number, a colour bar and
    the value range: what the channel responds to, where."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    h, w = max(1, round(h * scale)), max(1, round(w * scale))
    base = Image.fromarray(image).convert("RGB").resize((w, h), Image.BILINEAR)
    heat = Image.fromarray((normalize(fmap.astype(np.float64)) * 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)
    tinted = Image.fromarray(colormap()[np.asarray(heat)])
    blend = Image.blend(base, tinted, alpha)
    canvas = Image.new("RGB", (w + 80, h + 24), (255, 255, 255))
    canvas.paste(blend, (0, 24))
    canvas.paste(colour_bar(float(fmap.min()), float(fmap.max()), h), (w + 6, 24))
    ImageDraw.Draw(canvas).text((2, 3), f"channel {channel}", fill=(20, 20, 20), font=_font(16))
    return np.asarray(canvas)
