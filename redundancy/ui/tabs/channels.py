"""The Channels tab: every channel map of a search image, sortable (spread, zero-sweep delta, best pair gain);
click one to enlarge it."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import numpy as np

from ...errors import RedundancyError
from ...interactive.workspace import Workspace
from ...report.gains import best_gain_per_source
from ...report.viz import channel_mosaic, feature_image, mosaic_cell
from ..common import components, guard, need, pick

MOSAIC_COLS, MOSAIC_TILE = 16, 48
RESETS = ("mosaic", "story_img", "image_view", "enlarged")  # what a new Load empties


@guard
def explore(ws, index, sort):
    need(ws)
    feats = ws.features(pick(index))
    labels, order = {}, list(range(len(feats)))
    if sort == "activation spread (std)":
        order = list(np.argsort(-feats.reshape(len(feats), -1).std(1)))
    elif sort == "zero-sweep delta" and ws.sweep:
        order = sorted(order, key=lambda c: ws.sweep.get(c, 0.0))
        labels = {c: f"{d:+.1f}" for c, d in ws.sweep.items()}
    elif sort == "best pair gain (as source)" and ws.result is not None:
        best = best_gain_per_source(ws.result.scores.gain)
        order = list(np.argsort(-np.nan_to_num(best, nan=-np.inf)))
        labels = {c: f"{best[c]:+.1f}" for c in order if np.isfinite(best[c])}
    elif sort != "index":  # the sort needs a result this session does not have yet: say so, never fall back silently
        need_first = "the zero sweep (Ablation tab)" if sort == "zero-sweep delta" else "a search (Search tab)"
        gr.Warning(f"Sorting by {sort} needs {need_first}; showing index order until then.")
    mosaic = channel_mosaic(feats, order, MOSAIC_COLS, MOSAIC_TILE, labels)
    first = int(order[0])
    return mosaic, order, story(ws, feats), ws.target_view(pick(index)), first, feature_image(feats[first], 320)


def story(ws: Workspace, feats: np.ndarray) -> np.ndarray | None:
    """Most effective (zeroing hurts most) vs most redundant (zeroing helps) channels, 8 each."""
    if not ws.sweep:
        return None
    ranked = sorted(ws.sweep, key=ws.sweep.get)
    picks = ranked[:8] + ranked[-8:][::-1]
    return channel_mosaic(feats, picks, 8, 64, {c: f"{ws.sweep[c]:+.2f}" for c in picks})


@guard
def pick_channel(ws, index, channel):
    """Enlarge one channel's map of the chosen image."""
    need(ws)
    feats = ws.features(pick(index))
    channel = int(channel)
    if not 0 <= channel < len(feats):
        raise RedundancyError(f"channel {channel} is out of range; this model has channels 0..{len(feats) - 1}.")
    return channel, feature_image(feats[channel], 320)


@guard
def click_channel(ws, index, order, evt: gr.SelectData):
    """A click on the mosaic enlarges the channel under the pointer."""
    k = mosaic_cell(*evt.index, MOSAIC_COLS, MOSAIC_TILE)
    return pick_channel(ws, index, order[min(k, len(order) - 1)] if order else k)


def build() -> SimpleNamespace:
    """The Channels tab's components (layout only; `wire` connects them)."""
    with gr.Row():
        img_pick = gr.Dropdown(label="Image", choices=[])
        sort = gr.Radio(
            ["index", "activation spread (std)", "zero-sweep delta", "best pair gain (as source)"],
            value="index",
            label="Order channels by",
        )
        show_btn = gr.Button("Show channels", variant="primary", elem_id="show-btn")
    order = gr.State([])
    # Titles above, not over, these pictures: a block label would hide the first channels' numbers.
    gr.Markdown("**All channel maps** (click one to enlarge)")
    mosaic = gr.Image(show_label=False, interactive=False, elem_id="mosaic")
    with gr.Row():
        chan = gr.Number(0, precision=0, label="Channel", minimum=0, elem_id="channel")
        enlarged = gr.Image(label="Channel map", interactive=False, height=320)
        image_view = gr.Image(label="Image with ground truth", interactive=False, height=320)
    gr.Markdown(
        "**Most effective** (first 8: zeroing hurts most) vs **most redundant** (last 8: zeroing "
        "helps); needs the zero sweep from the Ablation tab"
    )
    story_img = gr.Image(show_label=False, interactive=False, elem_id="story")
    return components(locals())


def wire(ui: SimpleNamespace) -> None:
    """Connect the Channels tab's components to their handlers."""
    outputs = [ui.mosaic, ui.order, ui.story_img, ui.image_view, ui.chan, ui.enlarged]
    ui.show_btn.click(explore, [ui.ws, ui.img_pick, ui.sort], outputs)
    ui.sort.change(explore, [ui.ws, ui.img_pick, ui.sort], outputs)  # a new order shows at once
    ui.mosaic.select(click_channel, [ui.ws, ui.img_pick, ui.order], [ui.chan, ui.enlarged])
    ui.chan.submit(pick_channel, [ui.ws, ui.img_pick, ui.chan], [ui.chan, ui.enlarged])
