"""The Guide tab: the method step by step, each step shown on the visitor's own session and timed here."""

from __future__ import annotations

import time
from types import SimpleNamespace

import gradio as gr

from ...data import load_image
from ...report.gains import scored_scope
from ...report.summary import format_seconds
from ...report.viz import combination_scatter, feature_image, gain_heatmap
from ..common import components, guard, need

RESETS = ("teach_md", "teach_fmap", "teach_one", "teach_heat", "teach_top", "teach_combo")  # emptied on Load


@guard
def teach(ws):
    """The method step by step, each step showing this session's own artefact and its measured cost."""
    s = need(ws).session
    ev = s.evaluator("search")
    spr = ev.seconds_per_row()
    t0 = time.perf_counter()
    s.backend.encode([load_image(s.search_set.samples[0].image_path)])
    enc = time.perf_counter() - t0
    feats = ws.features(0)
    r = ws.result
    i, j = (r.top[0].source, r.top[0].target) if r and r.top else (0, 1)
    one = [(ws.prediction_view(0), "baseline"), (ws.prediction_view(0, pairs=[(i, j)]), f"channel {i} takes {j}")]
    head = f"the {s.task.name} head ({s.head.kind})" if s.head else "the model's own decoder"
    c, b = s.backend.channels, len(ev.set)
    n = r.settings.top_n if r else ws.settings.top_n
    steps = (
        f"**1. Cache features.** Each image goes through the frozen encoder once: {enc:.2f} s per image here; "
        f"the result is a {c} x {feats.shape[1]} x {feats.shape[2]} block of channel maps (one shown).\n\n"
        f"**2. Replace one channel.** `X'[:, {i}] = X[:, {j}]`, then only {head} runs: "
        f"{spr * 1000:.2f} ms per image here.\n\n"
        f"**3. Score all pairs.** {c * c - c:,} ordered pairs x {b} images = {(c * c - c) * b:,} head rows "
        f"≈ {format_seconds((c * c - c) * b * spr)} here (the heatmap fills in on the Search tab).\n\n"
        f"**4. Top N.** Keep the {n} best pairs, at most one per replaced channel.\n\n"
        f"**5. Combinations.** Try all {2**n - 1:,} subsets at once ≈ {format_seconds((2**n - 1) * b * spr)} "
        f"here, keep the best (or nothing, if no subset beats the unmodified model).\n\n"
        f"**6. Apply.** The best set is a zero-parameter patch on the encoder output for any new image."
    )
    heat = None
    if r is not None:  # the finished search's own scores: a later comparison's sparse map is not this search
        gain = r.scores.gain
        heat = gain_heatmap(gain, [(p.source, p.target) for p in r.top], "step 3: pair gains", *scored_scope(gain))
    combos = None
    if r is not None:
        combos = combination_scatter(*ws.combination_view(r), ws.metric(r.settings.metric).label)
    top = [[k + 1, p.source, p.target, round(p.gain, 4)] for k, p in enumerate(r.top)] if r else []
    return steps, feature_image(feats[0], 256), one, heat, top, combos


def build() -> SimpleNamespace:
    """The Guide tab's components (layout only; `wire` connects them)."""
    gr.Markdown(
        "The method in six steps, each shown with this session's own data and timed on "
        "this machine. Load data (and run a search for steps 3-5) first."
    )
    teach_btn = gr.Button("Show the steps for my session", variant="primary", elem_id="teach-btn")
    teach_md = gr.Markdown(elem_id="teach-steps")
    with gr.Row():
        teach_fmap = gr.Image(label="Step 1: one cached channel map", interactive=False, height=260)
        teach_one = gr.Gallery(
            label="Step 2: one replacement, before / after", columns=2, height=260, object_fit="contain"
        )
    teach_heat = gr.Plot(label="Step 3: pair gains")
    teach_top = gr.Dataframe(headers=["rank", "source i", "target j", "gain"], label="Step 4: top N")
    teach_combo = gr.Plot(label="Step 5: every subset of the top N")
    return components(locals())


def wire(ui: SimpleNamespace) -> None:
    """Connect the Guide tab's components to their handlers."""
    ui.teach_btn.click(
        teach, [ui.ws], [ui.teach_md, ui.teach_fmap, ui.teach_one, ui.teach_heat, ui.teach_top, ui.teach_combo]
    )
