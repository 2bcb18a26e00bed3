"""The Ablation tab: the paper's Table 1 (baseline and single zero / swap / replace / scale edits) with a
before / after / difference picture of the chosen image and its own score, and the zero sweep (every channel
zeroed alone) filling in live."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from ...data.pictures import captioned
from ...engine import ablate
from ...engine.ablate import VERDICT_RULE
from ...errors import RedundancyError
from ...interactive.workspace import Workspace
from ...replace import EDIT_KINDS, edit_map, parse_mixed
from ...report.summary import ablation_lines
from ...report.viz import delta_bars
from ..common import (
    busy_line,
    cancel,
    components,
    gain_unit,
    guard,
    image_picker,
    listen,
    need,
    on_session,
    pick,
    progress_line,
    redraws,
    score_text,
    shown,
    stream_job,
    time_range,
)


def table1_headers(label: str) -> list[str]:
    """Table 1's columns in the app, as the CLI prints them (`label`: the task's score)."""
    return ["edit", label, "change", "95% interval", "loss", "verdict"]


# what a new Load empties (it sets the sweep's status itself)
RESETS = ("abl_note", "abl_table", "abl_rows", "abl_before", "abl_after", "abl_diff", "sweep_plot")


def before_after(ws: Workspace, k: int, edit) -> tuple:
    """Search image k's prediction before and after `edit`, each with the image's own score, and what changed."""
    m = ws.metric()
    before, after = ws.image_scores(k, [None, edit])
    change = score_text(m, after - before, sign=True)
    return (
        captioned(ws.prediction_view(k), f"baseline: {m.label} {score_text(m, before)}"),
        captioned(ws.prediction_view(k, edit=edit), f"{edit}: {m.label} {score_text(m, after)} ({change})"),
        ws.difference_view(k, edit=edit),
    )


@guard
def run_ablation(ws, kind, text, index, kept=None):
    """Table 1 on the search set for the typed edits (kinds mixed as `ablate`'s flags mix them), added to the rows
    of earlier runs until the table is cleared, and the first edit's pictures on the chosen image."""
    s = need(ws).session
    edits = parse_mixed(text, kind)
    if not edits:
        raise RedundancyError(
            "type at least one channel (zero: 6,216), pair (swap / replace: 3:7) or channel:factor (scale: 6:0.5); "
            "mix kinds as 'zero 6,216; swap 1:2; scale 6:0.5'."
        )
    for e in edits:
        edit_map(e, s.backend.channels)  # validate before any compute
    base, rows = ablate(s, edits)
    m = ws.metric()
    d = m.digits
    lines = [
        [line.edit, f"{line.score:.{d}f}", "" if line.change is None else f"{line.change:+.{d}f}",
         "" if line.lo is None else f"{line.lo:+.{d}f} to {line.hi:+.{d}f}", f"{line.loss:.3f}", line.verdict or ""]
        for line in ablation_lines(m, base, rows)
    ]  # fmt: skip
    new = {row[0]: row for row in lines[1:]}  # an edit run again replaces its earlier row
    kept = [row for row in (kept or []) if row[0] not in new] + list(new.values())
    table = {"headers": table1_headers(m.label), "data": [lines[0], *kept]}
    groups = s.evaluator("search").set.n_groups
    note = (
        f"{len(s.search_set)} search images · {m.label} · protocol `{s.protocol}` · {s.backend.weights.label}. "
        f"change: the score's change from the baseline ({'lower' if not m.higher_is_better else 'higher'} is better)"
        f". {VERDICT_RULE[0].upper()}{VERDICT_RULE[1:]} (here {groups} groups). Each run adds its edits to the "
        "table until it is cleared."
    )
    return (table, *before_after(ws, pick(ws, index), edits[0]), note, kept)


def clear_table(ws):
    """An empty Table 1 (its headers in the loaded task's score) and no kept rows."""
    label = ws.metric().label if ws is not None and ws.session is not None else "score"
    return {"headers": table1_headers(label), "data": []}, []


def sweep_estimate(ws) -> str:
    """The sweep's time here, before it starts."""
    if ws is None or ws.session is None:
        return "Load a model and dataset first (Data tab)."
    c = ws.session.backend.channels
    return f"Zeroing each of the {c} channels alone takes {time_range(ws, ws.sweep_seconds())} here.{busy_line(ws)}"


def sweep(ws):
    """Zero every channel alone in the background, the bars filling in; Sweep disabled, Cancel enabled meanwhile."""
    s = need(ws).session
    try:
        ws.start_sweep(list(range(s.backend.channels)))
    except RedundancyError as e:
        gr.Warning(shown(ws, str(e)))
        yield gr.update(), f"⚠ {shown(ws, str(e))}", gr.update(), gr.update()
        return

    due = redraws()  # the bars every few polls, the status line every poll

    def render():
        live = ws.sweep_live  # as far as this sweep got; a complete earlier sweep stays in ws.sweep
        chans = sorted(live)
        label = gain_unit(ws, ws.session.task.metrics[0].name)
        title = f"{label} when each channel is zeroed (positive: zeroing helps)"
        running = ws.job.running
        fig = (
            delta_bars(chans, [live[c] for c in chans], title, s.backend.channels, label)
            if due(not running)
            else gr.update()
        )
        return fig, progress_line(ws), gr.update(interactive=not running), gr.update(interactive=running)

    yield from stream_job(ws, render)


def build() -> SimpleNamespace:
    """The Ablation tab's components (layout only; `wire` connects them)."""
    with gr.Row():
        kind = gr.Radio(
            list(EDIT_KINDS),
            value=EDIT_KINDS[0],
            label="Edit",
            info="replace i:j makes channel i a copy of channel j; scale i:s multiplies channel i by s",
        )
        edits = gr.Textbox(
            "6,216",
            label="Channels",
            info="zero: 6,216 · swap/replace: 1:2,3:7 · scale: 6:0.5 · kinds mixed: zero 6,216; swap 1:2; scale 6:0.5",
            elem_id="ablate-edits",
        )
        abl_img = gr.Dropdown(label="Image for before/after", choices=[])
    with gr.Row():
        abl_btn = gr.Button("Run ablation", variant="primary", elem_id="ablate-btn")
        abl_clear = gr.Button("Clear table", elem_id="ablate-clear")
    abl_rows = gr.State([])  # the edit rows of this session's runs so far: each run adds to them
    abl_note = gr.Markdown(elem_id="ablate-note")
    abl_table = gr.Dataframe(
        headers=table1_headers("score"),
        label="Search-set results",
        elem_id="ablate-table",  # columns at their content's width, each value on one line: it scrolls sideways
    )
    gr.Markdown(
        "**Before / after / what changed** for the first edit, on the chosen image, each with that image's own "
        "score (masks: prediction in orange, ground truth outlined in white; the difference: mask pixels the edit "
        "adds in green, removes in magenta; classes: the label's probability; depth: how far the depth moved)"
    )
    with gr.Row():  # whole pictures, captioned in the picture (a gallery cropped them to a band)
        abl_before = gr.Image(show_label=False, interactive=False, height=300, elem_id="abl-before", buttons=[])
        abl_after = gr.Image(show_label=False, interactive=False, height=300, elem_id="abl-after", buttons=[])
        abl_diff = gr.Image(show_label=False, interactive=False, height=300, elem_id="abl-diff", buttons=[])
    with gr.Row():
        sweep_btn = gr.Button("Zero every channel (sweep)", elem_id="sweep-btn")
        sweep_cancel = gr.Button("Cancel", variant="stop", interactive=False, elem_id="sweep-cancel")
    sweep_status = gr.Markdown(elem_id="sweep-status")
    sweep_plot = gr.Plot(label="Score change per zeroed channel")
    return components(locals())


def wire(ui: SimpleNamespace) -> None:
    """Connect the Ablation tab's components to their handlers."""
    outputs = [ui.abl_table, ui.abl_before, ui.abl_after, ui.abl_diff, ui.abl_note, ui.abl_rows]
    listen(ui.abl_btn.click, run_ablation, [ui.ws, ui.kind, ui.edits, ui.abl_img, ui.abl_rows], outputs, ui.abl_note)
    ui.abl_clear.click(clear_table, [ui.ws], [ui.abl_table, ui.abl_rows], queue=False, api_visibility="private")
    sweep_out = [ui.sweep_plot, ui.sweep_status, ui.sweep_btn, ui.sweep_cancel]
    listen(ui.sweep_btn.click, sweep, [ui.ws], sweep_out, ui.sweep_status)
    ui.sweep_cancel.click(cancel, [ui.ws], [ui.sweep_status], queue=False)
    on_session(ui, lambda ws: {ui.abl_img: image_picker(ws), ui.sweep_status: sweep_estimate(ws)}, [ui.ws],
               [ui.abl_img, ui.sweep_status])  # fmt: skip
