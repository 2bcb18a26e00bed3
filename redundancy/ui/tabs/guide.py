"""The Guide tab: what a channel, the encoder, the decoder, the metric and redundancy are, with a diagram of the
pipeline, then the method step by step, each step shown on the visitor's own session and timed here."""

from __future__ import annotations

import html
from dataclasses import replace
from types import SimpleNamespace

import gradio as gr
import plotly.graph_objects as go

from ...engine.cost import search_cost
from ...report.gains import scored_scope
from ...report.viz import combination_scatter, feature_image, gain_heatmap
from ..common import components, guard, listen, need, time_range, titled_image
from .search import score_label

RESETS = ("teach_md", "teach_diagram", "teach_fmap", "teach_one", "teach_heat", "teach_top", "teach_combo")
STEP = ("<div style='flex:1 1 110px;max-width:160px;background:{fill};border:1px solid #444;border-radius:8px;"
        "padding:8px 4px;text-align:center;color:#111'><b style='font-size:13px'>{title}</b><br>"
        "<span style='font-size:11.5px'>{sub}</span></div>")  # fmt: skip
ARROW = "<div aria-hidden='true' style='align-self:center;font-size:18px;color:#444'>→</div>"


def diagram(encoder: str, c: int, grid: str, head: str, metric: str) -> str:
    """The pipeline as boxes and arrows: image -> frozen encoder (once) -> C channel maps -> replace i by j -> head
    -> metric, labelled with this session's numbers; the row wraps on a phone, so its text stays readable."""
    steps = [("image", "", "#eef"), (encoder, "frozen, runs once", "#dde7f7"), (f"{c} channel maps", grid, "#e6f4e6"),
             ("replace i by j", "X'[:, i] = X[:, j]", "#fde9c8"), (head, "runs per pair", "#dde7f7"),
             (metric, "the gain", "#f4e1f0")]  # fmt: skip
    boxes = [STEP.format(title=html.escape(t), sub=html.escape(sub) or "&nbsp;", fill=f) for t, sub, f in steps]
    return (
        "<div role='img' aria-label='the pipeline' style='display:flex;flex-wrap:wrap;gap:6px;align-items:stretch'>"
        + ARROW.join(boxes)
        + "</div>"
    )


def placeholder(text: str) -> go.Figure:
    """An empty plot that says what to do first."""
    fig = go.Figure()
    fig.add_annotation(text=text, showarrow=False, font={"size": 15}, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, height=220, margin={"t": 10, "b": 10})
    return fig


@guard
def teach(ws):
    """The method step by step, each step showing this session's own artefact and its measured cost."""
    s = need(ws).session
    ev = s.evaluator("search")
    spr = ev.seconds_per_row()
    enc = ws.encode_seconds_per_image()  # as measured at Load (or one image timed once)
    k = ws.showcase  # an image the model does well on: the replacement's effect shows
    r = ws.result
    i, j = (r.top[0].source, r.top[0].target) if r and r.top else (0, 1)
    feats = ws.features(k)
    one = [(ws.prediction_view(k), "baseline"), (ws.prediction_view(k, pairs=[(i, j)]), f"channel {i} takes {j}")]
    head = f"the {s.task.name} head ({s.head.kind})" if s.head else "the model's own decoder"
    c, b = s.backend.channels, len(ev.set)
    st = r.settings if r else ws.settings
    m = ws.metric(st.metric)
    n = st.top_n
    scope_pairs = len(s.channel_pairs(st))
    scope_s = ws.estimate_seconds(st)
    combos_s = search_cost(s.resolve(st), scope_pairs, b, 0, s.task, top_n=n).combinations * spr
    full_s = ws.estimate_seconds(replace(st, sources="all", targets="all"))
    which = "your latest search's scope" if r else "the Search tab's scope"
    grid = f"{feats.shape[1]} x {feats.shape[2]}"
    concepts = (
        f"**The pieces.** An *encoder* turns an image into a stack of feature maps; each map is a **channel** "
        f"(this model has **{c}**, each a {grid} grid over the image). A *decoder* (here {head}) turns those "
        f"channels into the task's output: a mask, a class or a depth map. The **{m.label}** measures how good "
        f"that output is against the ground truth. A channel is **redundant** when the model does as well, or "
        f"better, with that channel replaced by a copy of another one: the method finds such replacements on a "
        f"few images and keeps the ones that help, changing no weight."
    )
    steps = (
        f"**1. Cache features.** Each image goes through the frozen encoder once: {enc:.2f} s per image here; "
        f"the result is a {c} x {grid} block of channel maps (one shown).\n\n"
        f"**2. Replace one channel.** `X'[:, {i}] = X[:, {j}]`, then only {head} runs: "
        f"{spr * 1000:.2f} ms per image here.\n\n"
        f"**3. Score pairs.** In {which}, {scope_pairs:,} ordered pairs x {b} images: the whole search (every "
        f"stage) {time_range(ws, scope_s, bold=False)} here. All {c * c - c:,} pairs would take "
        f"{time_range(ws, full_s, bold=False)}."
        "\n\n"
        f"**4. Top N.** Keep the {n} best pairs, at most one per replaced channel.\n\n"
        f"**5. Combinations.** Try all {2**n - 1:,} subsets at once: {time_range(ws, combos_s, bold=False)} "
        f"here, keep the best (or nothing, if no subset beats the unmodified model).\n\n"
        f"**6. Apply.** The best set is a zero-parameter patch on the encoder output for any new image "
        "(Results tab, Your image tab)."
    )
    svg = diagram(f"{s.backend.family.label} encoder", c, grid, "decoder / head", m.label)
    first = "Run a search (Search tab) to fill this in"
    heat = combos = placeholder(first)
    if r is not None:  # the finished search's own scores: a later comparison's sparse map is not this search
        gain = r.scores.gain
        heat = gain_heatmap(gain, [(p.source, p.target) for p in r.top], "step 3: pair gains", *scored_scope(gain))
        combos = combination_scatter(*ws.combination_view(r), score_label(m))
    top = [[k + 1, p.source, p.target, round(p.gain, 4)] for k, p in enumerate(r.top)] if r else []
    return concepts + "\n\n" + steps, svg, feature_image(feats[0], 256), one, heat, top, combos


def build() -> SimpleNamespace:
    """The Guide tab's components (layout only; `wire` connects them)."""
    gr.Markdown(
        "What the tool does, in six steps, each shown with this session's own data and timed on this machine. "
        "Load data first (and run a search for steps 3-5)."
    )
    teach_btn = gr.Button("Show the steps for my session", variant="primary", elem_id="teach-btn")
    teach_diagram = gr.HTML(elem_id="teach-diagram")
    teach_md = gr.Markdown(elem_id="teach-steps")
    with gr.Row():
        teach_fmap = titled_image("Step 1: one cached channel map", interactive=False, height=260, buttons=[])
        teach_one = gr.Gallery(
            label="Step 2: one replacement, before / after", columns=2, height=260, object_fit="contain"
        )
    teach_heat = gr.Plot(label="Step 3: pair gains")
    teach_top = gr.Dataframe(headers=["rank", "source i", "target j", "gain"], label="Step 4: top N")
    teach_combo = gr.Plot(label="Step 5: every subset of the top N")
    return components(locals())


def wire(ui: SimpleNamespace) -> None:
    """Connect the Guide tab's components to their handlers."""
    outputs = [ui.teach_md, ui.teach_diagram, ui.teach_fmap, ui.teach_one, ui.teach_heat, ui.teach_top, ui.teach_combo]
    listen(ui.teach_btn.click, teach, [ui.ws], outputs, ui.teach_md)
