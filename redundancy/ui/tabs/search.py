"""The Search tab: the scope and the search's settings, an estimate of its time, the live pair-gain heatmap, the
top N, every subset and the best set; and the comparison of the search modes on the same scope."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import gradio as gr
import numpy as np

from ...engine import SearchSettings
from ...engine.evaluator import CALIBRATED_CALLS, Evaluator
from ...engine.screening import MODES
from ...errors import RedundancyError
from ...interactive.workspace import Workspace
from ...interactive.zerogpu import MAX_S as ZEROGPU_MAX_S
from ...report.summary import format_seconds
from ...report.viz import combination_scatter, gain_heatmap
from ..common import cancel, components, need, progress_line, shown, stream_job
from .results import ci_range, results_text

RESETS = (
    "status",
    "heatmap",
    "top_table",
    "combo_plot",
    "best_md",
    "compare_status",
    "compare_table",
    "compare_note",
)  # fmt: skip  (what a new Load empties)


def settings_from(
    top_n, metric, sources, targets, mode="exact", candidates=512, select="search", alphas=""
) -> SearchSettings:
    """The Search tab's controls as search settings (taylor's candidates: its mode option)."""
    return SearchSettings(
        metric=metric, top_n=int(top_n), sources=sources or "auto", targets=targets or "auto", mode=mode,
        options={"candidates": int(candidates)}, select=select, alphas=(alphas or "").strip(),
    )  # fmt: skip


def estimate_basis(ev: Evaluator) -> str:
    """What an estimate rests on, in words a user can check."""
    rate = 1.0 / ev.seconds_per_row()
    if ev.observed_rows >= CALIBRATED_CALLS * ev.rows:
        basis = f"{rate:,.0f} decoder rows/s, the mean of {ev.observed_rows:,} rows run so far here"
    else:
        basis = f"{rate:,.0f} decoder rows/s from one timed call; refined as work runs"
    if ev.backend.has_pair_outputs():
        basis += f"; pairs via the linear head's rank-one shortcut: {1.0 / ev.seconds_per_pair_row():,.0f} rows/s"
    return basis


def search_estimate(
    ws: Workspace | None, sources: str, targets: str, top_n: int, select: str = "search", alphas: str = ""
) -> str:
    """The time a search of this scope takes here (or asks of ZeroGPU), every stage counted."""
    if ws is None or ws.session is None:
        return "Load a model and dataset first."
    try:
        s = ws.session
        c, dev = s.backend.channels, s.backend.device
        st = settings_from(top_n, None, sources, targets, select=select, alphas=alphas)
        n = len(s.channel_pairs(st))
        ev = s.evaluator("search")
        scoped = ws.estimate_seconds(st)
        full = ws.estimate_seconds(replace(st, sources="all", targets="all"))
    except RedundancyError as e:
        return f"⚠ {e}"
    gpu = ws.gpu_seconds(st)
    if gpu is not None:  # ZeroGPU: the GPU worker runs it; this process's CPU rates say nothing about that
        fits = "fits" if gpu <= ZEROGPU_MAX_S else "is more than ZeroGPU grants; narrow it or run it locally"
        return (
            f"This scope: **{n:,} pairs** x {len(ev.set)} images, then {2 ** int(top_n) - 1:,} subsets: it asks "
            f"ZeroGPU for **{format_seconds(gpu)}** of GPU (limit {format_seconds(ZEROGPU_MAX_S)} a call), which "
            f"{fits}. The estimate starts cautious and uses the GPU's measured rates after the first task."
        )
    return (
        f"This scope: **{n:,} pairs** x {len(ev.set)} images, then {2 ** int(top_n) - 1:,} subsets"
        + (f" (and the {select} selection's {st.folds} folds)" if select != "search" else "")
        + (f" (and every pair again at alpha {', '.join(map(str, st.alpha_grid))})" if st.alpha_grid else "")
        + f" ≈ **{format_seconds(scoped)}** on {dev}. The full search ({c * c - c:,} pairs) would take ≈ "
        f"{format_seconds(full)} here. Basis: {estimate_basis(ev)}."
    )


def search(ws, top_n, metric, sources, targets, rows, mode="exact", candidates=512, select="search", alphas=""):
    """Start a search in the background and follow it: the live heatmap, then the top N, subsets and best set."""
    try:
        need(ws).start_search(settings_from(top_n, metric, sources, targets, mode, candidates, select, alphas),
                              int(rows) or None)  # fmt: skip
    except RedundancyError as e:  # e.g. a search already running: say so once, keep every finished output
        gr.Warning(shown(ws, str(e)))
        return

    yield from stream_job(ws, lambda: search_view(ws, ws.job.result))  # this search's own result, when done


def search_view(ws: Workspace, finished):
    """The Search tab's outputs: live heatmap, progress, and (once `finished`) top N, subsets, best set."""
    s = ws.session
    top = finished.top if finished else None
    notes = None
    if top:
        cis = (finished.confidence or {}).get("top") or [None] * len(top)
        notes = [f"gain {p.gain:+.4g}, 95% CI {ci_range(c)}" for p, c in zip(top, cis)]
    fig = gain_heatmap(
        ws.gain,
        [(p.source, p.target) for p in top] if top else None,
        f"pair gains ({ws.settings.metric}), {s.backend.weights.label}",
        *ws.scope,
        top_notes=notes,
    )
    table, combos, best = [], None, ""
    if finished is not None:
        r = finished
        cis = (r.confidence or {}).get("top") or [None] * len(r.top)
        table = [
            [k + 1, p.source, p.target, round(p.gain, 4), ci_range(c), round(p.tiebreak, 5)]
            for k, (p, c) in enumerate(zip(r.top, cis))
        ]
        combos = combination_scatter(*ws.combination_view(r), ws.metric(r.settings.metric).label)
        best = results_text(ws)
    status = progress_line(ws) if ws.job is not None and ws.job.kind == "search" else "**Search finished.**"
    return fig, status, table, combos, best


COMPARE_HEADERS = [
    "mode", "top-N overlap", "Spearman", "pairs scored", "best-set score", "time (s)", "time vs exact", "rows vs exact"
]  # fmt: skip


def compare(ws, top_n, metric, sources, targets, rows, candidates=512):
    try:
        need(ws).start_compare(settings_from(top_n, metric, sources, targets, candidates=candidates), int(rows) or None)
    except RedundancyError as e:  # as for a search: one message, finished outputs kept
        gr.Warning(shown(ws, str(e)))
        return

    def render():
        m = ws.metric()
        table = [
            [
                r.mode,
                f"{r.overlap}/{r.top_n}",
                round(r.spearman, 3) if np.isfinite(r.spearman) else "n/a",  # n/a: no screening estimate
                r.scored,
                round(m.value(r.best_miou), 4),
                round(r.seconds, 1),
                round(r.time_share, 3),
                round(r.cost, 4),
            ]
            for r in ws.comparison
        ]
        note = ""
        if ws.comparison:
            label = ws.session.backend.weights.label
            reuse = "a fresh exact scan"
            if ws.compared_with_search:
                reuse = "the finished exact search's scores (no second full scan)"
            note = (
                f"Baseline {m.show(ws.comparison[0].baseline_miou)} (best-set score in {m.label}); exact "
                f"reference: {reuse}. Overlap: pairs of "
                f"the exact top N that the mode's top N also holds. Spearman: the mode's screening estimate vs "
                f"exact gains on the pairs it kept. Time vs exact: measured here; rows vs exact: decoder rows "
                f"counted (a forward + backward pass = 3 rows); small screening batches run at another rate than "
                f"the full scan, so the two differ. {label}."
            )
        return progress_line(ws), table, note

    yield from stream_job(ws, render)


def build() -> SimpleNamespace:
    """The Search tab's components (layout only; `wire` connects them)."""
    with gr.Row():
        top_n = gr.Slider(1, 12, value=10, step=1, label="Top N pairs", info="2^N - 1 combinations", elem_id="top-n")
        metric = gr.Radio(["miou", "loss"], value="miou", label="Metric", info="set by the task on Load")
        rows = gr.Number(0, precision=0, label="Batch rows (0 = auto)")
    with gr.Row():
        mode = gr.Radio(
            list(MODES),
            value="exact",
            label="Search mode",
            info="exact = the paper; taylor / halving score only promising pairs exactly",
        )
        candidates = gr.Number(512, precision=0, label="Taylor: pairs rescored exactly", elem_id="candidates")
        select = gr.Radio(
            [
                ("best on the search set (the paper)", "search"),
                ("cross-validated N and subset", "cv"),
                ("greedy, cross-validated size", "greedy"),
            ],
            value="search",
            label="Choose the set",
            info="cv / greedy: the set size (and subset) that gains on images the choice did not see, from 5 "
            "folds of the search set (mode exact); greedy grows the set from the top 4N pairs",
            elem_id="select",
        )
    alphas = gr.Textbox(
        "",
        label="Soft replacement: alphas besides 1 (empty = the paper's copies)",
        placeholder="0.25,0.5,0.75",
        info="pair (i, j, a) makes channel i (1 - a) X_i + a X_j; each pair keeps its best alpha (cv / greedy: "
        "chosen by the folds, like the set)",
        elem_id="alphas",
    )
    with gr.Row():
        sources = gr.Textbox(
            "auto",
            label="Source channels (replaced)",
            elem_id="sources",
            info="auto = all on GPU, every 8th on CPU · all · every:K · 0-31,40",
        )
        targets = gr.Textbox("auto", label="Target channels (copied)", elem_id="targets")
    estimate = gr.Markdown()
    with gr.Row():
        start_btn = gr.Button("Start search", variant="primary", elem_id="start-btn")
        stop_btn = gr.Button("Cancel", variant="stop", elem_id="cancel-btn")
    status = gr.Markdown(elem_id="search-status")
    heatmap = gr.Plot(label="Pair gains, filling in live", elem_id="heatmap")
    top_table = gr.Dataframe(
        headers=["rank", "source i (replaced)", "target j (copied)", "gain", "95% CI of gain", "tie-break"],
        label="Top N",
    )
    gr.Markdown(
        "gain: the search metric's change on the search set when channel i takes channel j's values "
        "(mIoU or accuracy in points, 0-100; RMSE or AbsRel: their decrease; delta1: its increase; "
        "with metric `loss`, the loss decrease: Dice + CE, cross-entropy or MSE); tie-break: the "
        "other metric's change, which orders equal gains. Positive is better for both. 95% CI: a bootstrap "
        'over the search images (objects for PerSeg protocols); "noise" when it holds 0, so the data '
        "cannot tell that gain from none.",
        elem_classes="legend",
    )
    combo_plot = gr.Plot(label="Every subset of the top N")
    best_md = gr.Markdown()
    with gr.Accordion("Compare search modes on this scope", open=False):
        gr.Markdown(
            "Runs taylor and halving on the pairs above and measures each against the exact scan: "
            "how much of the exact top N it finds, how well its screening ranks pairs, the best-set "
            "mIoU a user of that mode gets, and its time. A finished exact search on the same pairs "
            "is reused. CLI: `python -m redundancy compare`."
        )
        compare_btn = gr.Button("Compare exact, taylor and halving", elem_id="compare-btn")
        compare_status = gr.Markdown(elem_id="compare-status")
        compare_table = gr.Dataframe(headers=COMPARE_HEADERS, label="Modes", elem_id="compare-table")
        compare_note = gr.Markdown()
    return components(locals())


def wire(ui: SimpleNamespace) -> None:
    """Connect the Search tab's components to their handlers."""
    for box in (ui.sources, ui.targets, ui.top_n, ui.select, ui.alphas):
        box.change(search_estimate, [ui.ws, ui.sources, ui.targets, ui.top_n, ui.select, ui.alphas], [ui.estimate])
    ui.start_btn.click(
        search,
        [ui.ws, ui.top_n, ui.metric, ui.sources, ui.targets, ui.rows, ui.mode, ui.candidates, ui.select, ui.alphas],
        [ui.heatmap, ui.status, ui.top_table, ui.combo_plot, ui.best_md],
    )
    ui.stop_btn.click(cancel, [ui.ws], [ui.status], queue=False)
    ui.compare_btn.click(
        compare,
        [ui.ws, ui.top_n, ui.metric, ui.sources, ui.targets, ui.rows, ui.candidates],
        [ui.compare_status, ui.compare_table, ui.compare_note],
    )
