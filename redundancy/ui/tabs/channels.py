"""The Channels tab: every channel map of a search image, sortable (spread, zero-sweep delta, best pair gain);
click one to see it over its image, and edit it live (scale it, or replace it with another channel) with the
prediction and the image's score following at once (one decoder row)."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import numpy as np

from ...data import load_image
from ...data.pictures import captioned
from ...interactive.workspace import Workspace
from ...replace import Edit, check_channel
from ...report.gains import best_gain_per_source
from ...report.viz import channel_mosaic, channel_overlay, mosaic_cell
from ..common import components, guard, image_picker, listen, need, on_session, pick, score_text, titled_image

MOSAIC_COLS, MOSAIC_TILE = 16, 48
SORTS = ("index", "activation spread (std)", "zero-sweep delta", "best pair gain (as source)")
SCALE, REPLACE = "scale it", "replace it with channel"
RESETS = ("mosaic", "story_img", "enlarged", "chan_note", "live_before", "live_after", "live_diff", "live_note")


@guard
def explore(ws, index, sort):
    """The mosaic of the chosen image's channel maps in the chosen order, and its first channel enlarged."""
    k = pick(need(ws), index)
    feats = ws.features(k)
    labels, order, note = {}, list(range(len(feats))), f"{len(feats)} channels in index order."
    if sort == SORTS[1]:
        order = list(np.argsort(-feats.reshape(len(feats), -1).std(1)))
        note = "Channels by the spread of their values on this image, widest first."
    elif sort == SORTS[2] and ws.sweep:
        order = sorted(order, key=lambda c: ws.sweep.get(c, 0.0))
        labels = {c: f"{d:+.1f}" for c, d in ws.sweep.items()}
        note = "Channels by the score change when each is zeroed alone: most useful (zeroing hurts most) first."
    elif sort == SORTS[3] and ws.result is not None:
        best = best_gain_per_source(ws.result.scores.gain)
        scored = [c for c in np.argsort(-np.nan_to_num(best, nan=-np.inf)) if np.isfinite(best[c])]
        unscored = [c for c in range(len(feats)) if not np.isfinite(best[c])]
        order = [int(c) for c in scored] + unscored  # channels the search did not replace come last, marked
        labels = {**{c: f"{best[c]:+.1f}" for c in scored}, **{c: "n/s" for c in unscored}}
        note = (f"Channels by their best gain as the replaced channel; {len(unscored)} were not in the search's "
                "scope (marked n/s: not scored) and come last.")  # fmt: skip
    elif sort != SORTS[0]:  # the sort needs a result this session does not have yet: say so, never fall back silently
        need_first = "the zero sweep (Ablation tab)" if sort == SORTS[2] else "a search (Search tab)"
        note = f"⚠ Sorting by {sort} needs {need_first}; index order until then."
    mosaic = channel_mosaic(feats, order, MOSAIC_COLS, MOSAIC_TILE, labels)
    first, told = int(order[0]), story(ws, feats)
    return mosaic, order, gr.update(value=told, visible=told is not None), first, overlay(ws, k, first), note


def overlay(ws: Workspace, index: int, channel: int) -> np.ndarray:
    """Channel `channel` of search image `index` laid over the image, with its colour bar."""
    s = ws.require()
    image = load_image(s.search_set.samples[index].image_path)
    return channel_overlay(image, ws.features(index)[channel], channel)


@guard
def show_image(ws, index, sort, channel):
    """Another image chosen: its mosaic in the same order, with the channel being looked at kept (not reset)."""
    mosaic, order, told, first, enlarged, note = explore(ws, index, sort)
    if channel in (None, ""):
        return mosaic, order, told, first, enlarged, note
    channel = check_channel(channel, ws.session.backend.channels)
    return mosaic, order, told, channel, overlay(ws, pick(ws, index), channel), note


def story(ws: Workspace, feats: np.ndarray) -> np.ndarray | None:
    """Most effective (zeroing hurts most) vs most redundant (zeroing helps) channels, 8 each."""
    if not ws.sweep:
        return None
    ranked = sorted(ws.sweep, key=ws.sweep.get)
    picks = ranked[:8] + ranked[-8:][::-1]
    return channel_mosaic(feats, picks, 8, 64, {c: f"{ws.sweep[c]:+.2f}" for c in picks})


@guard
def pick_channel(ws, index, channel):
    """Show one channel of the chosen image over the image."""
    s = need(ws).session
    channel = check_channel(channel, s.backend.channels)
    return channel, overlay(ws, pick(ws, index), channel)


@guard
def click_channel(ws, index, order, evt: gr.SelectData):
    """A click on the mosaic shows the channel under the pointer."""
    k = mosaic_cell(*evt.index, MOSAIC_COLS, MOSAIC_TILE)
    if order and k >= len(order):  # the colour bar under the tiles: no channel there
        return gr.update(), gr.update()
    return pick_channel(ws, index, order[k] if order else k)


@guard
def live_edit(ws, index, channel, action, scale, other):
    """The chosen channel edited (scaled, or replaced by another channel): the chosen image's prediction before
    and after, what changed, and its score, from one decoder row per picture."""
    s = need(ws).session
    c = s.backend.channels
    i = check_channel(channel, c)
    edit = Edit("scale", i, scale=float(scale)) if action == SCALE else Edit("replace", i, check_channel(other, c))
    k = pick(ws, index)
    m = ws.metric()
    label = m.label
    before, after = ws.image_scores(k, [None, edit])
    return (
        captioned(ws.prediction_view(k), f"as it is: {label} {score_text(m, before)}"),
        captioned(ws.prediction_view(k, edit=edit), f"{edit}: {label} {score_text(m, after)}"),
        ws.difference_view(k, edit=edit),
        f"**{edit}** on this image: {label} {score_text(m, before)} → **{score_text(m, after)}** "
        f"({score_text(m, after - before, sign=True)}).",
    )


def first_edit(ws, index, channel, action, scale, other):
    """The live panes for the channel a new mosaic enlarged; nothing (the mosaic's note already says why) when
    there is no session yet."""
    if ws is None or ws.session is None:
        return tuple(gr.update() for _ in range(4))
    return live_edit(ws, index, channel, action, scale, other)


def build() -> SimpleNamespace:
    """The Channels tab's components (layout only; `wire` connects them)."""
    with gr.Row():
        img_pick = gr.Dropdown(label="Image", choices=[])
        sort = gr.Radio(list(SORTS), value="index", label="Order channels by")
        show_btn = gr.Button("Show channels", variant="primary", elem_id="show-btn")
    chan_note = gr.Markdown(elem_id="channels-note")
    order = gr.State([])
    with gr.Row():
        with gr.Column(scale=4, min_width=300):
            # A title above, not over, the mosaic: a block label or toolbar would hide the first channels' numbers.
            gr.Markdown("**All channel maps** (click one to see it over the image and edit it)")
            mosaic = gr.Image(show_label=False, interactive=False, elem_id="mosaic", buttons=[], container=False)
        with gr.Column(scale=2, min_width=300):
            chan = gr.Number(0, precision=0, label="Channel", minimum=0, elem_id="channel")
            enlarged = titled_image("Channel over its image (colour bar: its values)", interactive=False,
                                    elem_id="enlarged", buttons=["fullscreen"])  # fmt: skip
    with gr.Accordion("Edit this channel live", open=True):
        with gr.Row():
            action = gr.Radio([SCALE, REPLACE], value=SCALE, label="Edit", elem_id="live-action")
            scale = gr.Slider(0, 2, value=1, step=0.05, label="Scale (0 zeroes it, 1 leaves it)", elem_id="live-scale")
            other = gr.Number(1, precision=0, label="…with channel", minimum=0, elem_id="live-other")
        live_note = gr.Markdown(elem_id="live-note")
        with gr.Row():
            live_before = gr.Image(show_label=False, interactive=False, height=260, buttons=[], elem_id="live-before")
            live_after = gr.Image(show_label=False, interactive=False, height=260, buttons=[], elem_id="live-after")
            live_diff = gr.Image(show_label=False, interactive=False, height=260, buttons=[], elem_id="live-diff")
    gr.Markdown(
        "**Most effective** (first 8: zeroing hurts most) vs **most redundant** (last 8: zeroing "
        "helps); needs the zero sweep from the Ablation tab"
    )
    story_img = gr.Image(show_label=False, interactive=False, elem_id="story", buttons=[], visible=False)
    return components(locals())


def wire(ui: SimpleNamespace) -> None:
    """Connect the Channels tab's components to their handlers."""
    live_in = [ui.ws, ui.img_pick, ui.chan, ui.action, ui.scale, ui.other]
    live_out = [ui.live_before, ui.live_after, ui.live_diff, ui.live_note]
    outputs = [ui.mosaic, ui.order, ui.story_img, ui.chan, ui.enlarged, ui.chan_note]
    for event in (ui.show_btn.click, ui.sort.change):  # a new order at once
        shown_maps = listen(event, explore, [ui.ws, ui.img_pick, ui.sort], outputs, ui.chan_note)
        # The live panes show the first channel's edit at once: `chan.change` does not fire when it stays the same
        listen(shown_maps.then, first_edit, live_in, live_out, ui.live_note, show_progress="hidden")
    # a user's new image redraws at once and keeps the channel; the live panes follow it
    picked = listen(ui.img_pick.input, show_image, [ui.ws, ui.img_pick, ui.sort, ui.chan], outputs, ui.chan_note)
    listen(picked.then, first_edit, live_in, live_out, ui.live_note, show_progress="hidden")
    on_session(ui, lambda ws: {ui.img_pick: image_picker(ws)}, [ui.ws], [ui.img_pick])
    listen(ui.mosaic.select, click_channel, [ui.ws, ui.img_pick, ui.order], [ui.chan, ui.enlarged], None)
    listen(ui.chan.submit, pick_channel, [ui.ws, ui.img_pick, ui.chan], [ui.chan, ui.enlarged], None)
    for event in (ui.scale.release, ui.scale.input, ui.action.change, ui.other.submit, ui.chan.change):
        listen(event, live_edit, live_in, live_out, ui.live_note, trigger_mode="always_last", show_progress="hidden")
