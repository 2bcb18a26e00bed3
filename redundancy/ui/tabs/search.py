"""The Search tab: the scope and the search's settings, an estimate of its time, the live pair-gain heatmap, the
top N, every subset and the best set; and the comparison of the search modes on the same scope."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import gradio as gr
import numpy as np

from ...engine import SearchSettings
from ...engine.confidence import HELPS, verdict
from ...engine.evaluator import Evaluator
from ...engine.screening import DEFAULT_MODE, MODES, mode_options, reference_mode
from ...errors import RedundancyError
from ...interactive.workspace import Workspace
from ...interactive.zerogpu import MAX_S as ZEROGPU_MAX_S
from ...models import DEFAULT_MODEL, get_spec
from ...report.summary import WORDS, format_seconds
from ...report.viz import combination_scatter, gain_heatmap
from ...tasks import get_task
from ..common import (
    busy_line,
    cancel,
    components,
    gain_unit,
    listen,
    metric_choices,
    need,
    on_session,
    progress_line,
    redraws,
    shown,
    stream_job,
    time_range,
)
from .results import ci_range, results_text

# The one-minute lesson: 16 channels replaced by any of 32, the paper's best-subset rule, the exact scan. On the
# demo model and its default domain (gray) it took 44 s on a quiet 2-core CPU, held-out encoding included, with a
# held-out gain of +2.0 mIoU points (benchmarks/RESULTS.md); the estimate line says what it takes where it runs.
QUICK = SearchSettings(top_n=4, sources="every:16", targets="every:8")

# Every registered mode's options, each a control of its own (elem_id: the option's name), in this order after
# SEARCH_INPUTS: a new mode's options appear here without an edit to this tab.
MODE_OPTIONS = mode_options()

# what a new Load empties
RESETS = ("status", "heatmap", "top_table", "combo_plot", "best_md", "compare_status", "compare_table", "compare_note")


def shown_options(mode: str) -> list:
    """The option controls of `mode` shown, every other mode's hidden (their values kept)."""
    return [gr.update(visible=owner == mode) for owner, _ in MODE_OPTIONS]


def screening_modes() -> list[str]:
    """The registered modes that screen (score only promising pairs exactly), in registry order."""
    return [name for name, mode in MODES.items() if not mode.exact]


def option_values(values, modes: tuple[str, ...] | None = None) -> dict:
    """The mode option controls' values (in `MODE_OPTIONS` order) as settings options: those of `modes` only
    (None: every mode's), an emptied box left to its default, whole numbers as ints."""
    out = {}
    for (mode, option), value in zip(MODE_OPTIONS, values):
        if value is not None and value != "" and (modes is None or mode in modes):
            out[option.name] = int(value) if option.kind is int and float(value).is_integer() else value
    return out


def settings_from(
    top_n, metric, sources, targets, mode=DEFAULT_MODE, select="search", alphas="", options=None
) -> SearchSettings:
    """The Search tab's controls as search settings (`options`: the mode options by name)."""
    return SearchSettings(
        metric=metric, top_n=int(top_n), sources=sources or "auto", targets=targets or "auto", mode=mode,
        options=options or {}, select=select, alphas=(alphas or "").strip(),
    )  # fmt: skip


def estimate_basis(ev: Evaluator) -> str:
    """What an estimate rests on, in words a user can check."""
    rate = 1.0 / ev.seconds_per_row()
    pace = ev.row_pace()
    if pace is ev.pace:
        basis = f"{rate:,.0f} decoder rows/s, the median of the last {len(pace)} batched calls run here"
    else:
        basis = f"{rate:,.0f} decoder rows/s, the median of {len(pace)} timed calls; refined as work runs"
    basis += "; the range is their spread"
    if ev.backend.has_pair_outputs():
        basis += f"; pairs via the linear head's rank-one shortcut: {1.0 / ev.seconds_per_pair_row():,.0f} rows/s"
    return basis


def score_label(m) -> str:
    """How a score reads on an axis: 'mIoU (%)', 'RMSE'."""
    return f"{m.label} (%)" if m.percent else m.label


def search_estimate(
    ws: Workspace | None,
    sources: str,
    targets: str,
    top_n: int,
    select: str = "search",
    alphas: str = "",
    mode: str = DEFAULT_MODE,
    *options,
) -> str:
    """The time a search of this scope, mode and options takes here (or asks of ZeroGPU), every stage counted."""
    if ws is None or ws.session is None:
        return "Load a model and dataset first (Data tab)."
    try:
        s = ws.session
        c, dev = s.backend.channels, s.backend.device
        st = settings_from(top_n, None, sources, targets, mode, select, alphas, option_values(options, (mode,)))
        n = len(s.channel_pairs(st))
        ev = s.evaluator("search")
        scoped = ws.estimate_seconds(st)
        full = ws.estimate_seconds(replace(st, sources="all", targets="all"))
    except RedundancyError as e:
        return f"⚠ {shown(ws, str(e))}"
    gpu = ws.gpu_seconds(st)
    if gpu is not None:  # ZeroGPU: the GPU worker runs it; this process's CPU rates say nothing about that
        fits = "fits" if gpu <= ZEROGPU_MAX_S else "is more than ZeroGPU grants; narrow it or run it locally"
        return (
            f"This scope: **{n:,} pairs** x {len(ev.set)} images, then {2 ** int(top_n) - 1:,} subsets: it asks "
            f"ZeroGPU for **{format_seconds(gpu)}** of GPU (limit {format_seconds(ZEROGPU_MAX_S)} a call), which "
            f"{fits}. The estimate starts cautious and uses the GPU's measured rates after the first task."
        )
    extra = (f", the {select} selection's {st.folds} folds" if select != "search" else "") + (
        f", every pair again at alpha {', '.join(map(str, st.alpha_grid))}" if st.alpha_grid else ""
    )
    full_note = f" All {c * c - c:,} pairs would take {time_range(ws, full, bold=False)}." if n < c * c - c else ""
    return (
        f"This search: **{n:,} pairs** x {len(ev.set)} images, then {2 ** int(top_n) - 1:,} subsets{extra} and the "
        f"held-out check: {time_range(ws, scoped)} in all on {dev}.{full_note}{busy_line(ws)} "
        f"<small>Basis: {estimate_basis(ev)}.</small>"
    )


def search(
    ws,
    top_n,
    metric,
    sources,
    targets,
    rows,
    mode=DEFAULT_MODE,
    select="search",
    alphas="",
    *options,
):
    """Start a search in the background and follow it: the live heatmap, then the top N, subsets and best set.
    `options`: the mode option controls' values (`MODE_OPTIONS` order); the chosen mode reads its own."""
    try:
        st = settings_from(top_n, metric, sources, targets, mode, select, alphas, option_values(options, (mode,)))
        need(ws).start_search(st, int(rows) or None)
    except RedundancyError as e:  # e.g. a search already running: say so once, keep every finished output
        gr.Warning(shown(ws, str(e)))
        yield [gr.update()] * len(SEARCH_OUTPUTS)
        return
    yield from follow(ws)


def follow(ws: Workspace):
    """Yield the Search tab's outputs while its search runs (Start disabled, Cancel enabled), then once more."""
    frame = [gr.update()] * len(SEARCH_OUTPUTS)  # at once: a second click cannot start anything, Cancel can stop
    frame[1], frame[6], frame[7] = "**Starting the search…**", gr.update(interactive=False), gr.update(interactive=True)
    frame[5] = ""  # the pre-start estimate gives way to the running job's time left (the status line)
    yield frame
    due = redraws()  # the heatmap every few polls, the status line every poll
    yield from stream_job(ws, lambda: search_view(ws, ws.job.result, due(not ws.job.running)))


def search_view(ws: Workspace, finished, draw: bool = True) -> list:
    """The Search tab's outputs (`SEARCH_OUTPUTS`): live heatmap (left as it is unless `draw`), progress, (once
    `finished`) top N, subsets, best set; the estimate line, and the buttons as the job allows them."""
    running = ws.job is not None and ws.job.kind == "search" and ws.job.running
    top = finished.top if finished else None
    cis = ((finished.confidence or {}).get("top") or [None] * len(top)) if top else []
    d = ws.metric(ws.settings.metric).digits + 1 if top else 3  # a decimal more than a score: gains are small
    notes = [f"gain {p.gain:+.{d}f}, 95% interval [{ci_range(c, d)}]" for p, c in zip(top, cis)] if top else None
    unit = gain_unit(ws, ws.settings.metric)
    fig = gain_heatmap(
        ws.gain, [(p.source, p.target) for p in top] if top else None, f"Pair gains ({unit})", *ws.scope,
        top_notes=notes, unit=unit,
    ) if draw else gr.update()  # fmt: skip
    table, combos, best = [], None, ""
    if finished is not None:
        r = finished
        table = [
            [k + 1, f"{p.source} ← {p.target}", f"{p.gain:+.{d}f} [{ci_range(c, d)}]",
             WORDS[verdict(c)] if c else "n/a", round(p.tiebreak, 5)]
            for k, (p, c) in enumerate(zip(r.top, cis))
        ]  # fmt: skip
        combos = combination_scatter(*ws.combination_view(r), score_label(ws.metric(r.settings.metric)))
        best = results_text(ws)
    elif not running and ws.result is not None:
        best = results_text(ws)  # a cancelled or failed search: the previous finished one, said so
    status = progress_line(ws) if ws.job is not None and ws.job.kind == "search" else "**Search finished.**"
    estimate = "" if running else search_estimate(ws, *_scope_of(ws))  # while it runs, the status says the time left
    offer = finished is not None and offers_cv(finished)
    return [fig, status, table, combos, best, estimate, gr.update(interactive=not running),
            gr.update(interactive=running), gr.update(visible=offer)]  # fmt: skip


def _scope_of(ws: Workspace) -> tuple:
    """The latest search's scope, as the estimate reads it."""
    st = ws.settings
    return st.sources, st.targets, st.top_n, st.select, st.alphas


def offers_cv(result) -> bool:
    """Whether to offer the cross-validated choice: the paper's rule picked a set that does not help on the
    held-out images."""
    h = result.heldout
    return (
        result.settings.select == "search"
        and bool(result.best_pairs)
        and h is not None
        and (verdict(h["confidence"]) != HELPS)
    )


def search_with_cv(ws, top_n, metric, sources, targets, rows, mode=DEFAULT_MODE, select="cv", alphas="", *options):
    """The offered rerun: the same scope, the set chosen by cross-validation (which needs the exact mode)."""
    yield from search(ws, top_n, metric, sources, targets, rows, reference_mode().name, "cv", alphas, *options)


COMPARE_HEADERS = [
    "mode", "top-N overlap", "Spearman", "pairs scored", "best-set score", "time (s)", "time vs exact", "rows vs exact",
    "reading",
]  # fmt: skip


def mode_reading(r, n_pairs: int, reused: bool) -> str:
    """What a comparison row's numbers mean where they could mislead: a screening mode that scored every pair, one
    left with fewer pairs than top N, an exact time measured at another moment."""
    if r.mode == reference_mode().name:
        return "the finished search's scan: timed then, under that moment's load" if reused else "timed just now"
    if r.scored >= n_pairs:
        return f"scored all {n_pairs:,} pairs exactly (the scope is not larger than what it rescores): exact's work"
    if r.scored < r.top_n:
        return (
            f"its screening kept {r.scored:,} pair{'' if r.scored == 1 else 's'}, fewer than top N = {r.top_n}: "
            "its set is made of those, so few of exact's top N can be among them"
        )
    return f"scored {r.scored:,} of {n_pairs:,} pairs exactly"


def compare(ws, top_n, metric, sources, targets, rows, *options):
    """Start the mode comparison in the background and follow it to its table (every mode with its options)."""
    try:
        st = settings_from(top_n, metric, sources, targets, options=option_values(options))
        need(ws).start_compare(st, int(rows) or None)
    except RedundancyError as e:  # as for a search: one message, finished outputs kept
        gr.Warning(shown(ws, str(e)))
        yield [gr.update()] * 4
        return

    def render():
        m = ws.metric()
        n_pairs = len(ws.session.channel_pairs(ws.settings)) if ws.comparison else 0
        table = [  # Spearman n/a: a mode without a screening estimate
            [r.mode, f"{r.overlap}/{r.top_n}", round(r.spearman, 3) if np.isfinite(r.spearman) else "n/a", r.scored,
             round(m.value(r.best_score), 4), round(r.seconds, 1), round(r.time_share, 3), round(r.cost, 4),
             mode_reading(r, n_pairs, ws.compared_with_search)]
            for r in ws.comparison
        ]  # fmt: skip
        note = ""
        if ws.comparison:
            label = ws.session.backend.weights.label
            reuse = "a fresh exact scan"
            if ws.compared_with_search:
                reuse = "the finished exact search's scores (no second full scan)"
            note = (
                f"Baseline {m.show(ws.comparison[0].baseline_score)} (best-set score in {m.label}); exact "
                f"reference: {reuse}. Overlap: pairs of "
                f"the exact top N that the mode's top N also holds. Spearman: the mode's screening estimate vs "
                f"exact gains on the pairs it kept. Time vs exact: measured here; rows vs exact: decoder rows "
                f"counted (a forward + backward pass = 3 rows); small screening batches run at another rate than "
                f"the full scan, so the two differ. {label}."
            )
        return progress_line(ws), table, note, gr.update(interactive=not ws.job.running)

    yield [f"Comparing the modes: {time_range(ws, ws.compare_seconds(ws.settings))} in all here…", gr.update(),
           gr.update(), gr.update(interactive=False)]  # fmt: skip
    yield from stream_job(ws, render)


def compare_estimate(ws, top_n, metric, sources, targets) -> str:
    """The comparison's time here, before it starts."""
    if ws is None or ws.session is None:
        return ""
    try:
        seconds = ws.compare_seconds(settings_from(top_n, metric, sources, targets))
    except RedundancyError as e:
        return f"⚠ {shown(ws, str(e))}"
    return f"On this scope the comparison takes {time_range(ws, seconds)} here (every mode's work counted)."


def build() -> SimpleNamespace:
    """The Search tab's components (layout only; `wire` connects them)."""
    estimate = gr.Markdown("Load a model and dataset first (Data tab).", elem_id="estimate")
    with gr.Row():
        start_btn = gr.Button("Start search", variant="primary", elem_id="start-btn")
        quick_btn = gr.Button("Quick search (a result in about a minute)", elem_id="quick-btn")
        stop_btn = gr.Button("Cancel", variant="stop", elem_id="cancel-btn", interactive=False)
    status = gr.Markdown(elem_id="search-status")
    with gr.Accordion("Settings: scope, metric, mode, how the set is chosen", open=True):
        with gr.Row():
            top_n = gr.Slider(1, 12, value=10, step=1, label="Top N pairs", info="2^N - 1 subsets", elem_id="top-n")
            task = get_task(get_spec(DEFAULT_MODEL).tasks[0])  # until Load sets the loaded model's task
            metric = gr.Radio(metric_choices(task), value=task.metrics[0].name, label="Metric",
                              info="what the search ranks by; set by the task on Load", elem_id="metric")  # fmt: skip
            rows = gr.Number(0, precision=0, label="Batch rows (0 = auto)", info="decoder rows per call")
        with gr.Row():
            sources = gr.Textbox(
                "auto",
                label="Source channels (replaced)",
                elem_id="sources",
                info="auto = all on GPU, every 8th on CPU · all · every:K · 0-31,40",
            )
            targets = gr.Textbox("auto", label="Target channels (copied)", elem_id="targets")
        with gr.Row():
            mode = gr.Radio(
                list(MODES),
                value=DEFAULT_MODE,
                label="Search mode",
                info=f"{reference_mode().name} = the paper; {' / '.join(screening_modes())} score only promising "
                "pairs exactly",
            )
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
        with gr.Row():  # each mode's own options, built from its registration (the CLI's flags are too), shown
            option_boxes = tuple(  # while their mode is chosen (the comparison reads every mode's as set)
                gr.Number(
                    option.default,
                    precision=0 if option.kind is int else None,
                    label=option.title,
                    elem_id=option.name,
                    min_width=160,
                    visible=owner == DEFAULT_MODE,
                )
                for owner, option in MODE_OPTIONS
            )
        alphas = gr.Textbox(
            "",
            label="Soft replacement: alphas besides 1 (empty = the paper's copies)",
            placeholder="0.25,0.5,0.75",
            info="pair (i, j, a) makes channel i (1 - a) X_i + a X_j; each pair keeps its best alpha (cv / greedy: "
            "chosen by the folds, like the set)",
            elem_id="alphas",
        )
    heatmap = gr.Plot(label="Pair gains, filling in live", elem_id="heatmap")
    top_table = gr.Dataframe(
        headers=["#", "pair i ← j", "gain [95% interval]", "verdict", "tie-break"],
        label="Top N (channel i takes channel j's values)",
        elem_id="top-table",
        wrap=True,
        column_widths=["6%", "15%", "29%", "21%", "29%"],  # each column's longest word fits a phone's width
    )
    gr.Markdown(
        "gain: the search metric's change on the search set when channel i takes channel j's values "
        "(mIoU or accuracy in points, 0-100; RMSE or AbsRel: their decrease; delta1: its increase; "
        "with metric `loss`, the loss decrease: Dice + CE, cross-entropy or MSE). 95% interval: from resampling "
        "the search images (objects for PerSeg protocols); verdict: *helps* when the interval is above 0, *hurts* "
        "below, else *can't tell from noise*. tie-break: the other metric's change, which orders equal gains.",
        elem_classes="legend",
    )
    combo_plot = gr.Plot(label="Every subset of the top N")
    best_md = gr.Markdown(elem_id="best")
    cv_btn = gr.Button("Run again, the set chosen by cross-validation", visible=False, elem_id="cv-btn")
    with gr.Accordion("Compare search modes on this scope", open=False):
        gr.Markdown(
            f"Runs {' and '.join(screening_modes())} on the pairs above, each with its options as set above (choose "
            "a mode to see them), and measures each against the exact scan: "
            "how much of the exact top N it finds, how well its screening ranks pairs, the best-set "
            "score a user of that mode gets, and its time. A finished exact search on the same pairs "
            "is reused. CLI: `python -m redundancy compare`."
        )
        compare_btn = gr.Button(f"Compare {', '.join(MODES)}", elem_id="compare-btn")
        compare_status = gr.Markdown(elem_id="compare-status")
        compare_table = gr.Dataframe(
            headers=COMPARE_HEADERS,
            label="Modes",
            elem_id="compare-table",
            wrap=True,
            # the reading takes the room; the numbers' columns stay wide enough for their header words
            column_widths=["8%", "9%", "9%", "8%", "9%", "7%", "8%", "8%", "34%"],
        )
        compare_note = gr.Markdown()
    ui = components(locals())
    ui.option_boxes = option_boxes  # read in `MODE_OPTIONS` order
    return ui


SEARCH_INPUTS = ("top_n", "metric", "sources", "targets", "rows", "mode", "select", "alphas")  # then the options
# `search_view`'s outputs, in order
SEARCH_OUTPUTS = (
    "heatmap",
    "status",
    "top_table",
    "combo_plot",
    "best_md",
    "estimate",
    "start_btn",
    "stop_btn",
    "cv_btn",
)


def task_metric(ws: Workspace | None):
    """The metric control for the loaded session's task: its own metrics, the first chosen."""
    if ws is None or ws.session is None:
        return gr.update()
    task = ws.session.task
    return gr.update(choices=metric_choices(task), value=task.metrics[0].name)


def watch(ws):
    """After a reconnect: follow the session's running search to its end, or show the finished one."""
    if ws is None or ws.session is None or (ws.result is None and not (ws.job and ws.job.kind == "search")):
        yield [gr.update()] * len(SEARCH_OUTPUTS)
        return
    if ws.job is not None and ws.job.kind == "search":
        yield from follow(ws)
    else:
        yield search_view(ws, ws.result)


def controls(ws: Workspace) -> list:
    """The values of `SEARCH_INPUTS` the workspace's latest search used (a reloaded page puts them back)."""
    st = ws.settings
    names = list(ws.session.task.metric_names)
    metric = gr.update(choices=metric_choices(ws.session.task), value=st.metric if st.metric in names else names[0])
    return [st.top_n, metric, st.sources, st.targets, ws.rows or 0, st.mode, st.select, st.alphas,
            *(st.option(option.name) for _, option in MODE_OPTIONS)]  # fmt: skip


def search_inputs(ui: SimpleNamespace) -> list:
    """The workspace and the Search tab's controls, in the order `search` and `controls` take them."""
    return [ui.ws, *(getattr(ui, n) for n in SEARCH_INPUTS), *ui.option_boxes]


def wire(ui: SimpleNamespace) -> None:
    """Connect the Search tab's components to their handlers."""
    ui.mode.change(shown_options, ui.mode, list(ui.option_boxes), queue=False, api_visibility="private")
    scope = [ui.ws, ui.sources, ui.targets, ui.top_n, ui.select, ui.alphas, ui.mode, *ui.option_boxes]
    # One queue per line, one at a time: the estimates of quick successive changes (sources, then top N) finish in the
    # order they were asked for, so the line ends on the latest settings (concurrent ones could finish out of order
    # and leave an older scope's estimate on screen)
    for box in scope[1:]:
        box.change(search_estimate, scope, [ui.estimate], concurrency_id="search-estimate", concurrency_limit=1)
    for box in (ui.sources, ui.targets, ui.top_n):
        box.change(compare_estimate, [ui.ws, ui.top_n, ui.metric, ui.sources, ui.targets], [ui.compare_status],
                   concurrency_id="compare-estimate", concurrency_limit=1)  # fmt: skip
    inputs = search_inputs(ui)
    outputs = [getattr(ui, n) for n in SEARCH_OUTPUTS]
    listen(ui.start_btn.click, search, inputs, outputs, ui.status)
    quick = [ui.top_n, ui.sources, ui.targets, ui.mode, ui.select, ui.alphas]  # the preset's controls, set first
    preset = (QUICK.top_n, QUICK.sources, QUICK.targets, QUICK.mode, QUICK.select, QUICK.alphas)
    chosen = ui.quick_btn.click(lambda: preset, None, quick, queue=False, api_visibility="private")
    listen(chosen.then, search, inputs, outputs, ui.status, api_visibility="private")  # the /search endpoint's work
    # Load: the task's metrics and the time of the scope as set; a reloaded page: the latest search's settings
    # back in the controls, its estimate, and its heatmap (a running search followed to its end)
    on_session(ui, lambda ws, *values: {ui.metric: task_metric(ws), ui.estimate: search_estimate(ws, *values)},
               scope, [ui.metric, ui.estimate], reconnect=False)  # fmt: skip
    settings_boxes = inputs[1:]

    def restore(ws) -> dict:
        if ws is None or ws.session is None:  # a first visit: nothing to put back (an empty dict is an error to Gradio)
            return {ui.estimate: gr.update()}
        st = ws.settings
        options = (st.option(option.name) for _, option in MODE_OPTIONS)
        estimate = search_estimate(ws, st.sources, st.targets, st.top_n, st.select, st.alphas, st.mode, *options)
        return {**dict(zip(settings_boxes, controls(ws))), ui.estimate: estimate}

    ui.reconnected = listen(ui.reconnected.then, restore, [ui.ws], [*settings_boxes, ui.estimate],
                            api_visibility="private")  # fmt: skip
    listen(ui.reconnected.then, watch, [ui.ws], outputs, ui.status)  # a branch: it follows a running search to its end
    ui.stop_btn.click(cancel, [ui.ws], [ui.status], queue=False)
    listen(ui.cv_btn.click(lambda: "cv", None, ui.select, queue=False).then, search_with_cv, inputs, outputs, ui.status)
    compare_out = [ui.compare_status, ui.compare_table, ui.compare_note, ui.compare_btn]
    compare_in = [ui.ws, ui.top_n, ui.metric, ui.sources, ui.targets, ui.rows, *ui.option_boxes]
    listen(ui.compare_btn.click, compare, compare_in, compare_out, ui.compare_status)
