"""The Ablation tab: the paper's Table 1 (baseline and single zero / swap / replace / scale edits) with a
before / after picture, and the zero sweep (every channel zeroed alone) filling in live."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from ...data.pictures import captioned
from ...engine import ablate
from ...errors import RedundancyError
from ...replace import edit_map, parse_edits
from ...report.viz import delta_bars
from ..common import cancel, components, guard, need, pick, progress_line, shown, stream_job

RESETS = ("abl_note", "abl_table", "abl_before", "abl_after", "sweep_status", "sweep_plot")  # emptied on Load


@guard
def run_ablation(ws, kind, text, index):
    s = need(ws).session
    edits = parse_edits(kind, text)
    if not edits:
        raise RedundancyError(
            "type at least one channel (zero: 6,216), pair (swap / replace: 3:7) or channel:factor (scale: 6:0.5)."
        )
    for e in edits:
        edit_map(e, s.backend.channels)  # validate before any compute
    base, rows = ablate(s, edits)
    m = ws.metric()
    data = [
        [r.edit, round(m.value(r.miou), 4), round(m.value(r.miou) - m.value(base.miou), 4), round(r.loss, 4)]
        for r in [base, *rows]
    ]
    table = {"headers": ["edit", m.label, "delta", "loss"], "data": data}
    k = pick(index)
    before = captioned(ws.prediction_view(k), "baseline")
    after = captioned(ws.prediction_view(k, edit=edits[0]), str(edits[0]))
    note = f"{len(s.search_set)} search images · {m.label} · protocol `{s.protocol}` · {s.backend.weights.label}"
    return table, before, after, note


def sweep(ws):
    try:
        s = need(ws).session
        ws.start_sweep(list(range(s.backend.channels)))
    except RedundancyError as e:
        raise gr.Error(shown(ws, str(e)), print_exception=False) from None

    def render():
        live = ws.sweep_live  # as far as this sweep got; a complete earlier sweep stays in ws.sweep
        chans = sorted(live)
        m = ws.metric(ws.session.task.metrics[0].name)
        label = f"delta {m.label}" if m.higher_is_better else f"{m.label} decrease"
        title = f"{label} when each channel is zeroed (positive: zeroing helps)"
        fig = delta_bars(chans, [live[c] for c in chans], title, s.backend.channels, label)
        return fig, progress_line(ws)

    yield from stream_job(ws, render)


def build() -> SimpleNamespace:
    """The Ablation tab's components (layout only; `wire` connects them)."""
    with gr.Row():
        kind = gr.Radio(
            ["zero", "swap", "replace", "scale"],
            value="zero",
            label="Edit",
            info="replace i:j makes channel i a copy of channel j; scale i:s multiplies channel i by s",
        )
        edits = gr.Textbox(
            "6,216", label="Channels", info="zero: 6,216 · swap/replace: 1:2,3:7 · scale: 6:0.5", elem_id="ablate-edits"
        )
        abl_img = gr.Dropdown(label="Image for before/after", choices=[])
    abl_btn = gr.Button("Run ablation", variant="primary", elem_id="ablate-btn")
    abl_note = gr.Markdown()
    abl_table = gr.Dataframe(
        headers=["edit", "mIoU", "delta", "loss"], label="Search-set results", elem_id="ablate-table"
    )
    gr.Markdown(
        "**Before / after** the first edit, on the chosen image (masks: prediction in orange, ground "
        "truth outlined in white; classes: prediction and confidence above the image; depth: near red, "
        "far blue)"
    )
    with gr.Row():  # whole pictures, captioned in the picture (a gallery cropped them to a band)
        abl_before = gr.Image(show_label=False, interactive=False, height=300, elem_id="abl-before")
        abl_after = gr.Image(show_label=False, interactive=False, height=300, elem_id="abl-after")
    with gr.Row():
        sweep_btn = gr.Button("Zero every channel (sweep)", elem_id="sweep-btn")
        sweep_cancel = gr.Button("Cancel", variant="stop")
    sweep_status = gr.Markdown(elem_id="sweep-status")
    sweep_plot = gr.Plot(label="Score change per zeroed channel")
    return components(locals())


def wire(ui: SimpleNamespace) -> None:
    """Connect the Ablation tab's components to their handlers."""
    ui.abl_btn.click(
        run_ablation,
        [ui.ws, ui.kind, ui.edits, ui.abl_img],
        [ui.abl_table, ui.abl_before, ui.abl_after, ui.abl_note],
    )
    ui.sweep_btn.click(sweep, [ui.ws], [ui.sweep_plot, ui.sweep_status])
    ui.sweep_cancel.click(cancel, [ui.ws], [ui.sweep_status], queue=False)
