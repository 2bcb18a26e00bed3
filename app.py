"""redundancy web app: load a model and data, explore channels, ablate, search, export.

Layout and wiring only: every handler is a few lines around an engine call in `redundancy/`.
Run `python app.py` (or as a Hugging Face Space) and open http://127.0.0.1:7860.
"""

from __future__ import annotations

import functools
import json
import os
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np

from redundancy.confidence import describe
from redundancy.data import load_image
from redundancy.errors import RedundancyError, RunError
from redundancy.gains import best_gain_per_source, scored_scope
from redundancy.imaging import captioned
from redundancy.io import env_number
from redundancy.models import REGISTRY
from redundancy.pipeline import (
    SearchSettings,
    SessionConfig,
    estimate_basis,
    estimate_seconds,
    format_seconds,
    parse_channels,
)
from redundancy.prompts import PROMPT_MODES
from redundancy.redact import PUBLIC
from redundancy.replace import edit_map, pair_text, parse_edits
from redundancy.screen import MODES
from redundancy.share import push_allowed
from redundancy.synthetic import TARGET_DOMAINS
from redundancy.tasks import TASKS
from redundancy.viz import (
    channel_mosaic,
    combination_scatter,
    delta_bars,
    feature_image,
    gain_heatmap,
    mosaic_cell,
)
from redundancy.workspace import Workspace, start_janitor
from redundancy.zerogpu import MAX_S as ZEROGPU_MAX_S

ROOT = Path(__file__).resolve().parent
SAMPLE = ROOT / "assets" / "sample"
DOMAINS = ROOT / "assets" / "domains"
WEIGHTS = [
    "random weights (seeded, for trying the tool)",
    "the model's own weights (the demo file shipped here, or the official download)",
    "my checkpoint file",
]
UPLOAD, BUNDLED = "upload a .zip", "bundled sample (random shapes, 32 images)"
DOMAIN = "demo domain: "  # + a target domain's name
CLASSIFY_SAMPLE = "classification sample (DINOv2: 5 shape classes, 120 images)"
DEPTH_SAMPLE = "depth sample (DINOv2: 120 synthetic rooms)"
SOURCES = [DOMAIN + d for d in TARGET_DOMAINS] + [BUNDLED, CLASSIFY_SAMPLE, DEPTH_SAMPLE, UPLOAD]
TASK_AUTO = "from the data"
TASK_SAMPLES = {CLASSIFY_SAMPLE: ROOT / "assets" / "classify_sample", DEPTH_SAMPLE: ROOT / "assets" / "depth_sample"}
DEFAULT_MODEL = "sam_tiny_demo"
POLL_S = env_number("REDUNDANCY_POLL_S", 0.7, float)
MOSAIC_COLS, MOSAIC_TILE = 16, 48
SESSION_TTL_S = env_number("REDUNDANCY_SESSION_TTL_S", 6 * 3600)  # a session's state and folder go this long after Load
JANITOR_S = max(1, min(600, SESSION_TTL_S // 4))  # how often expired session folders and cached files are removed
CSS = (
    ".badge-random {background:#fde68a;color:#7c2d12;padding:4px 10px;border-radius:6px;font-weight:600}"
    ".badge-demo {background:#dbeafe;color:#1e3a8a;padding:4px 10px;border-radius:6px;font-weight:600}"
    # Phones: tighter tab buttons, and any tab Gradio would fold into its "more" menu shown in the bar
    # itself (wrapping), so that every tab stays one tap away
    "@media (max-width: 520px) {.tab-container button {padding: 4px 4px !important; font-size: 12.5px !important}"
    " .tab-wrapper {flex-wrap: wrap; height: auto !important}"
    " .overflow-menu > button {display: none !important}"
    " .overflow-menu {position: static !important}"
    " .overflow-dropdown {display: flex !important; position: static !important; flex-direction: row !important;"
    " flex-wrap: wrap; box-shadow: none !important; border: none !important; padding: 0 !important}"
    " .overflow-dropdown button {padding: 4px 4px !important; font-size: 12.5px !important; width: auto !important}}"
    ".out .label-clear-button {display: none}"  # files the app hands out: nothing for a user to remove
)


# ---------- small helpers around the engine ----------


def badge(ws: Workspace | None) -> str:
    """The weights line every tab shows; random weights are flagged loudly."""
    if ws is None or ws.session is None:
        return "No model loaded yet: open **Data** and press **Load**."
    b = ws.session.backend
    flag = {
        "random": "<span class='badge-random'>RANDOM WEIGHTS: not a pretrained model</span> ",
        "demo": "<span class='badge-demo'>DEMO MODEL: trained here on synthetic shapes, not SAM</span> ",
    }.get(b.weights.kind, "")
    label = flag + b.weights.label
    s = ws.session
    head = f" · head: {s.head.label}" if s.head else ""
    head += f" · searching at encoder block {s.cfg.layer} ({b.channels} channels)" if s.cfg.layer is not None else ""
    device = f"ZeroGPU (views on {b.device})" if ws.remote else b.device
    return f"**{b.name}** on {device} · task **{s.task.name}** · {label}{head}"


def dataset_path(source: str, zip_file: str | None) -> Path:
    """The folder or zip a Dataset choice names."""
    if source == UPLOAD:
        return Path(zip_file)
    if source.startswith(DOMAIN):
        return DOMAINS / source.removeprefix(DOMAIN)
    return TASK_SAMPLES.get(source, SAMPLE)


def parse_layer(text: str | None) -> int | None:
    """The Data tab's encoder block: empty for the encoder output, else a block number."""
    text = str(text or "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise RedundancyError(
            f"encoder block '{text}' is not a block number (0, 1, ...); leave it empty to search the encoder output."
        )
    return int(text)


def need(ws: Workspace | None) -> Workspace:
    """The session's workspace with a model and data loaded, or a message saying what to do first."""
    if ws is None or ws.session is None:
        raise RunError("no model and dataset loaded yet: open the Data tab and press Load.")
    return ws


def shown(ws: Workspace | None, message: str) -> str:
    """A message as the visitor sees it: no server paths or session folders, escaped for the page."""
    return (ws.redactor if ws is not None else PUBLIC).html(message)


def guard(fn):
    """Turn errors into a readable message in the page, never a traceback; the session's results stay."""

    @functools.wraps(fn)  # keeps the signature, so Gradio still sees gr.Progress / gr.SelectData parameters
    def wrapped(*args, **kwargs):
        ws = next((a for a in args if isinstance(a, Workspace)), None)
        try:
            return fn(*args, **kwargs)
        except RedundancyError as e:
            raise gr.Error(shown(ws, str(e)), print_exception=False) from None
        except gr.Error:
            raise
        except Exception as e:  # a bug must still leave the page usable; the server log keeps the traceback
            traceback.print_exc()
            raise gr.Error(
                shown(ws, f"unexpected error ({e.__class__.__name__}: {e}); your loaded data and results are kept."),
                print_exception=False,
            ) from None

    return wrapped


def pick(index) -> int:
    """Image index from a dropdown that may not have been rendered yet (first image then)."""
    return 0 if index in (None, "") else int(index)


# ---------- handlers ----------


@guard
def load(
    ws,
    model,
    weights,
    ckpt_file,
    ft_file,
    seed,
    source,
    zip_file,
    n_search,
    prompt,
    sources="auto",
    targets="auto",
    top_n=10,
    hub_ckpt="",
    task=TASK_AUTO,
    layer=None,
    progress=gr.Progress(track_tqdm=True),
):
    ws = ws if ws is not None else Workspace()
    if source == UPLOAD and zip_file is None:
        raise RedundancyError("choose a .zip to upload, or pick a bundled dataset.")
    ckpt_file = (hub_ckpt or "").strip() or ckpt_file
    if weights == WEIGHTS[2] and not ckpt_file:
        raise RedundancyError(
            "upload a checkpoint file (.pth / .pt / .safetensors) or name a Hub file (hf://OWNER/REPO/FILE), "
            "or pick another weights source."
        )
    data = dataset_path(source, zip_file)
    cfg = SessionConfig(
        model=model,
        data=str(data),
        random_init=weights == WEIGHTS[0],
        seed=int(seed),
        checkpoint=ckpt_file if weights == WEIGHTS[2] else None,
        search_images=int(n_search),
        prompt=prompt,
        finetuned=ft_file or None,
        task=None if task == TASK_AUTO else task,
        layer=parse_layer(layer),
    )
    progress(0, desc="building model and reading data")
    ws.load(cfg, lambda d, t: progress(d / t, desc=f"encoding image {d}/{t}"))
    return ws, *loaded_view(ws, "Loaded", sources, targets, top_n)


def loaded_view(ws: Workspace, verb: str, sources: str = "auto", targets: str = "auto", top_n: int = 10) -> list:
    """What the Data tab shows for a loaded session: badge, summary, gallery, pickers, estimate, metric."""
    s = ws.session
    names = s.evaluator("search").set.names
    gallery = [(ws.target_view(k), n) for k, n in enumerate(names)]
    warn = "".join(f"\n- ⚠ {w}" for w in s.dataset.warnings[:5])
    head = (
        f" Head split **{len(s.head_set)}** images (never searched or held out): {s.head.label}."
        if s.head_set is not None
        else (f" Head: {s.head.label}." if s.head else "")
    )
    info = (
        f"{verb} **{len(s.dataset)}** images ({s.dataset.layout} layout, task **{s.task.name}**): search set "
        f"**{len(s.search_set)}**, held-out **{len(s.heldout_set)}**; protocol `{s.protocol}`, prompt "
        f"`{s.cfg.prompt}`; feature cache hits {s.cache_hits}/{len(s.search_set)}.{head}{warn}"
    )
    choices = [(n, k) for k, n in enumerate(names)]
    pickers = [gr.update(choices=choices, value=0) for _ in range(2)]  # one update object per component
    metric = gr.update(choices=list(s.task.metric_names), value=s.task.metrics[0].name)  # the task's own
    estimate = search_estimate(ws, sources, targets, top_n)  # the scope as set
    return [badge(ws), info, gallery, *pickers, estimate, metric]


def reconnect(workspace_id: str):
    """A (re)loaded page: back to this browser's own open workspace, if it has one, with what it showed."""
    ws = Workspace.reconnect(workspace_id)
    if ws is None or ws.session is None:
        return [ws] + [gr.update()] * 10
    st = ws.settings  # the latest search's scope goes back into the Search tab's controls
    view = loaded_view(ws, "Reconnected to your session:", st.sources, st.targets, st.top_n)
    names = list(ws.session.task.metric_names)
    view[-1] = gr.update(choices=names, value=st.metric if st.metric in names else names[0])
    return [ws, *view, st.top_n, st.sources, st.targets]


def watch(ws):
    """After a reconnect: follow the session's running search to its end, or show the finished one."""
    if ws is None or ws.session is None or (ws.result is None and not (ws.job and ws.job.kind == "search")):
        yield [gr.update()] * 5
        return
    if ws.job is not None and ws.job.kind == "search":
        yield from stream_job(ws, lambda: search_view(ws, ws.job.result))
    else:
        yield search_view(ws, ws.result)


def blank(count: int) -> list[None]:
    """Empty values for `count` outputs: results of a previous model or dataset must not survive a new Load."""
    return [None] * count


def shown_for(choice: str):
    """A change handler showing a component only while its radio is on `choice`."""
    return lambda value: gr.update(visible=value == choice)


def model_hint(name: str, source: str, weights: str):
    """The chosen model's registry description under the dropdown; data and weights it can use.

    A DINOv2 model gets a classification dataset (a SAM one a segmentation dataset) when the current
    choice is for another task; a model with no weights to load here starts on random weights.
    """
    spec = REGISTRY[name]
    current = {CLASSIFY_SAMPLE: "classify", DEPTH_SAMPLE: "depth"}.get(source, "segment")
    if source != UPLOAD and current not in spec.tasks:
        source = CLASSIFY_SAMPLE if "classify" in spec.tasks else SOURCES[0]
    if spec.url is None and spec.shipped is None and weights == WEIGHTS[1]:
        weights = WEIGHTS[0]
    return gr.update(info=spec.description), source, weights


def search_estimate(
    ws: Workspace | None, sources: str, targets: str, top_n: int, select: str = "search", alphas: str = ""
) -> str:
    if ws is None or ws.session is None:
        return "Load a model and dataset first."
    try:
        s = ws.session
        c, dev = s.backend.channels, s.backend.device
        n = len(parse_channels(sources, c, dev)) * len(parse_channels(targets, c, dev))
        n -= len(set(parse_channels(sources, c, dev)) & set(parse_channels(targets, c, dev)))
        ev = s.evaluator("search")
        st = SearchSettings(top_n=int(top_n), sources=sources, targets=targets, select=select, alphas=alphas or "")
        scoped, full = estimate_seconds(ev, n, st.top_n, st), estimate_seconds(ev, c * c - c, st.top_n, st)
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


@guard
def run_ablation(ws, kind, text, index):
    s = need(ws).session
    from redundancy.pipeline import ablate

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


def stream_job(ws: Workspace, render):
    """Yield `render()` while the workspace's job runs (only when it produced something new), then once more."""
    seen = -1
    while ws.job.running:
        time.sleep(POLL_S)
        if ws.job.state.updates != seen:
            seen = ws.job.state.updates
            yield render()
    yield render()


def progress_line(ws: Workspace) -> str:
    st = ws.job.state
    if st.error:
        return f"⚠ {shown(ws, st.error)}"
    if st.cancelled:
        return f"Cancelled at {st.done:,}/{st.total:,} in '{st.stage}'. Results finished before the cancel are kept."
    if st.finished and st.stage.endswith(" finished"):
        return f"**{st.stage.capitalize()}** in {format_seconds(time.perf_counter() - st.started)}."
    if not st.total:  # a stage without counts (e.g. a screening step announcing itself)
        return f"**{st.stage}**…"
    eta = st.eta()
    tail = f" · {st.rate():.1f}/s · ETA {format_seconds(eta)}" if eta is not None and not st.finished else ""
    return f"**{st.stage}**: {st.done:,}/{st.total:,}{tail}" + (" · done" if st.finished else "")


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


def cancel(ws):
    if ws is not None and ws.job is not None and ws.job.running:
        ws.job.cancel.set()
        return "Cancelling after the current batch…"
    gr.Info("Nothing is running.")  # a toast: the status of a finished job stays as it was
    return gr.update()


def search(ws, top_n, metric, sources, targets, rows, mode="exact", candidates=512, select="search", alphas=""):
    try:
        need(ws).start_search(
            int(top_n), metric, sources or "auto", targets or "auto", int(rows) or None, mode, int(candidates), select,
            (alphas or "").strip(),
        )  # fmt: skip
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
        need(ws).start_compare(
            int(top_n), metric, sources or "auto", targets or "auto", int(rows) or None, int(candidates)
        )
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


def ci_range(conf: dict | None) -> str:
    """A top pair's 95% interval as a table cell ('n/a' for a run resumed from older state)."""
    return (
        "n/a"
        if conf is None
        else f"{conf['lo']:+.3g} to {conf['hi']:+.3g}" + (" (noise)" if conf["within_noise"] else "")
    )


def ci_text(conf: dict, m) -> str:
    """The interval line the CLI prints too, in the metric's units."""
    return describe(conf, "+.2f" if m.percent else "+.4f")


def results_text(ws: Workspace) -> str:
    r = ws.result
    if r is None:
        return "No finished search yet: run one on the **Search** tab."
    c, m = r.combos, ws.metric(r.settings.metric)
    pairs = ", ".join(pair_text(p) for p in c.best_pairs) or "empty set (no subset beat the baseline)"
    lines = [
        f"**Best set**: {pairs}",
        f"- search set ({r.search_images} images): {m.show(c.baseline_miou)} → "
        f"{m.show(c.best.miou if c.best else c.baseline_miou)}",
    ]
    conf = (r.confidence or {}).get("best")
    if conf:
        lines.append(f"  - gain {ci_text(conf, m)} ({r.confidence['unit']}s of the search set)")
    cv = r.selection
    if cv:
        curve = ", ".join(f"{g:+.3g}" for g in cv["curve"])  # oriented: positive is better, as every gain here
        lines.append(
            f"- {cv['select']} selection, {cv['folds']}-fold cross-validated: N = {cv['chosen_n']} (held-out gain for "
            "N = 1, 2, ...: "
            f"{curve})"
        )
        unseen = f"{cv['unit']}s at N = {cv['best_n']}"
        lines.append(f"  - gain on unseen {unseen} (cross-validated) {ci_text(cv['estimate'], m)}")
        if not cv["chosen_n"]:
            lines.append("  - its interval holds 0: no set is chosen, the model stays as it is")
    if r.heldout:
        h = r.heldout
        lines.append(f"- held-out ({h['images']} images): {m.show(h['baseline_miou'])} → {m.show(h['patched_miou'])}")
        lines.append(f"  - gain {ci_text(h['confidence'], m)}; a paired test of patched vs baseline on these images")
    scored = int(np.isfinite(r.scores.gain).sum())
    lines.append(
        f"- mode `{r.settings.mode}`: {scored:,} of {r.pairs_in_scope:,} pairs in scope "
        f"scored exactly ({r.scores.seconds:.1f} s)"
    )
    lines.append(f"- weights: {r.header['weights_label']} · run folder `{ws.run_dir.name}`")
    return "\n".join(lines)


@guard
def show_results(ws):
    if ws is None or ws.result is None:
        return results_text(ws) if ws else "No finished search yet.", [], None
    s = ws.session
    zip_path = ws.export_predictions()
    gallery = []
    for k, sample in enumerate(s.search_set.samples[:8]):
        gallery += [
            (ws.prediction_view(k), f"{sample.name} baseline"),
            (ws.prediction_view(k, pairs=ws.result.best_pairs), f"{sample.name} patched"),
        ]
    files = [
        str(ws.run_dir / f)
        for f in (
            "replacements.json",
            "pair_scores.npy",
            "pair_scores.csv",
            "combinations.csv",
            "topn.json",
            "config.json",
            *(["head.pt"] if (ws.run_dir / "head.pt").is_file() else []),
        )
    ] + [str(zip_path)]
    return results_text(ws), gallery, files


@guard
def apply_uploaded(ws, repl_file, images_zip):
    s = need(ws).session
    if repl_file is None:
        raise RedundancyError("upload a replacements.json (from a search's downloads) first.")
    try:
        repl = json.loads(Path(repl_file).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise RedundancyError(
            f"that file is not valid JSON ({e.__class__.__name__}); upload the replacements.json a search wrote."
        ) from None
    res = ws.apply(repl, Path(images_zip) if images_zip else None)
    score = (
        f" · {res.metric_label} {res.baseline_miou:.4g} → {res.patched_miou:.4g}"
        if res.baseline_miou is not None
        else ""
    )
    label = s.backend.weights.label
    return f"Applied {len(res.pairs)} pairs to {res.images} images{score} ({label}).", str(res.zip_path)


@guard
def share_run(ws, repo, private):
    url = need(ws).push(repo, bool(private))
    return f"Pushed to [{url}]({url}) ({'private' if private else 'public'})."


@guard
def make_figures(ws, formats):
    pngs, zip_path = need(ws).render_figures(tuple(formats) or ("png",))
    return [(str(p), p.stem.replace("_", " ")) for p in pngs], str(zip_path)


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
    head = "the mask decoder" if s.task.name == "segment" else f"the {s.task.name} head ({s.head.kind})"
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


# ---------- layout ----------


def components(scope: dict) -> SimpleNamespace:
    """The Gradio components among a tab builder's local names, by name."""
    return SimpleNamespace(**{k: v for k, v in scope.items() if isinstance(v, gr.components.Component)})


def data_tab() -> SimpleNamespace:
    """The Data tab's components (layout only; `wire` connects them)."""
    with gr.Row():
        with gr.Column(min_width=280):
            model = gr.Dropdown(
                list(REGISTRY),
                value=DEFAULT_MODEL,
                label="Model",
                info=REGISTRY[DEFAULT_MODEL].description,
            )
            weights = gr.Radio(WEIGHTS, value=WEIGHTS[1], label="Weights")
            ckpt = gr.File(  # shown only for 'my checkpoint file'
                label="Checkpoint file",
                file_types=[".pth", ".pt", ".safetensors"],
                height=150,
                visible=False,
            )
            hub_ckpt = gr.Textbox(
                "",  # a default: API clients written before this field still call /load unchanged
                label="…or a Hub file",
                placeholder="hf://OWNER/REPO[/FILE][@REVISION]",
                info="transformers SamModel repositories work too; read through the Hub cache",
                visible=False,
            )
            seed = gr.Number(0, precision=0, label="Seed", info="random weights and search-set split")
            with gr.Accordion("Fine-tuned weights over the base (optional)", open=False):
                ft = gr.File(label="Full, decoder-only or LoRA .pth", file_types=[".pth", ".pt"], height=150)
        with gr.Column(min_width=280):
            source = gr.Radio(
                SOURCES,
                value=SOURCES[0],
                label="Dataset",
                info="demo domains: shifted synthetic data the demo model never saw (120 images each); "
                "your zip: images/ + masks/ or PerSeg Images/<obj>/ + Annotations/<obj>/ (segment), "
                "<class>/ folders or a CSV of image,label (classify), images/ + depth/ (depth)",
            )
            zip_in = gr.File(label="Dataset .zip", file_types=[".zip"], height=150, visible=False)
            n_search = gr.Slider(
                1,
                50,
                value=50,
                step=1,
                label="Search-set images",
                info="the paper uses 50; with the demo model on a 2-core CPU a first search takes about "
                "2 minutes (fewer images: faster, but the set generalises less)",
            )
            with gr.Row():
                prompt = gr.Dropdown(list(PROMPT_MODES), value="none", label="Prompt from GT")
                task = gr.Dropdown(
                    [TASK_AUTO, *TASKS],
                    value=TASK_AUTO,
                    label="Task",
                    info="segment: SAM / SAM2; classify, depth: DINOv2",
                )
                layer = gr.Textbox(
                    "",
                    label="Encoder block (empty = encoder output)",
                    placeholder="e.g. 10",
                    info="search at this encoder block's output (SAM, SAM2, DINOv2); later blocks re-run per pair",
                    elem_id="layer",
                )
    with gr.Accordion("About this demo: how long things take, duplicate it, run it locally", open=False):
        gr.Markdown(
            "On a free CPU Space (2 vCPU) the defaults (the demo model, the gray domain, 50 search "
            "images, every 8th channel, top 10) finish a first search in about **2 minutes**, with the "
            "heatmap filling in live; the DINOv2 samples take seconds. Real SAM models on a CPU take "
            "hours for a full scan: use a GPU for those. Search shows its own estimate before you "
            "start.\n\n**Duplicate this Space** (top right on the Hub) to get your own copy and "
            "hardware, or run it locally:\n\n```\ngit clone https://huggingface.co/spaces/OWNER/"
            "redundancy && cd redundancy\npip install -r requirements.txt\npython app.py\n```\n"
            "Everything here is also a command: `python -m redundancy --help`.\n\n**On ZeroGPU hardware** "
            "encoding, search, sweep, comparison and apply each borrow a GPU for the time their work needs "
            "(at most 5 minutes a call); a bigger scope is refused with the command that runs it locally."
        )
    load_btn = gr.Button("Load", variant="primary", elem_id="load-btn")
    info = gr.Markdown(elem_id="load-info")
    gallery = gr.Gallery(
        label="Search set with its ground truth (masks in green)",
        columns=8,
        height=260,
        object_fit="contain",
    )
    return components(locals())


def explorer_tab() -> SimpleNamespace:
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


def ablation_tab() -> SimpleNamespace:
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


def search_tab() -> SimpleNamespace:
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


def results_tab() -> SimpleNamespace:
    """The Results tab's components (layout only; `wire` connects them)."""
    refresh = gr.Button("Show results and prepare downloads", variant="primary", elem_id="results-btn")
    summary = gr.Markdown(elem_id="summary")
    res_gallery = gr.Gallery(
        label="Baseline vs patched (GT outline in white)", columns=4, height=360, object_fit="contain"
    )
    downloads = gr.File(
        label="Downloads", file_count="multiple", interactive=False, elem_id="downloads", elem_classes="out"
    )
    gr.Markdown("### Apply a saved replacement set to new images")
    with gr.Row():
        repl_in = gr.File(label="replacements.json", file_types=[".json"], height=150)
        imgs_in = gr.File(label="Images .zip (empty = the loaded dataset)", file_types=[".zip"], height=150)
    apply_btn = gr.Button("Apply")
    apply_md = gr.Markdown()
    apply_out = gr.File(label="Patched predictions (.zip)", interactive=False, elem_classes="out")
    with gr.Group(visible=push_allowed()):  # only with the user's own Hub token (see `push_allowed`)
        gr.Markdown(
            "### Share this run on the Hugging Face Hub\nUploads the run's replacement set, config, metrics, "
            "figures and a model card made from them. Others apply it with "
            "`python -m redundancy apply --replacements hf://OWNER/NAME`."
        )
        with gr.Row():
            share_repo = gr.Textbox(label="Hub repository", placeholder="you/my-found-set", scale=3)
            share_private = gr.Checkbox(label="private", value=True, scale=1)
        share_btn = gr.Button("Push to the Hub", elem_id="share-btn")
        share_md = gr.Markdown()
    return components(locals())


def figures_tab() -> SimpleNamespace:
    """The Figures tab's components (layout only; `wire` connects them)."""
    gr.Markdown(
        "Publication figures of the latest search (PNG 300 dpi, SVG, PDF, each with a caption "
        "file). The same files come from `python -m redundancy figures RUN --out DIR`."
    )
    fig_formats = gr.CheckboxGroup(["png", "svg", "pdf"], value=["png", "svg", "pdf"], label="Formats")
    fig_btn = gr.Button("Render figures", variant="primary", elem_id="figures-btn")
    fig_gallery = gr.Gallery(label="Previews", columns=3, height=420, object_fit="contain")
    fig_zip = gr.File(label="All figures (.zip)", interactive=False, elem_id="figures-zip", elem_classes="out")
    return components(locals())


def guide_tab() -> SimpleNamespace:
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


# (label, id, builder) of every tab, in order; short labels so that all of them fit a phone's width.
TABS = (
    ("Data", "data", data_tab),
    ("Channels", "explore", explorer_tab),
    ("Ablation", "ablate", ablation_tab),
    ("Search", "search", search_tab),
    ("Results", "results", results_tab),
    ("Figures", "figures", figures_tab),
    ("Guide", "teach", guide_tab),
)


def build_demo() -> gr.Blocks:
    # delete_cache: Gradio's copies of the files handlers returned go after the session TTL as well.
    with gr.Blocks(
        title="redundancy: parameter-free channel replacement", delete_cache=(JANITOR_S, SESSION_TTL_S)
    ) as demo:
        # A page that goes away (closed, reloaded) only detaches its workspace: a reload within RECONNECT_S finds
        # it again through the id this browser keeps; the janitor closes what nobody came back for.
        ws = gr.State(None, time_to_live=SESSION_TTL_S, delete_callback=lambda w: w.detach() if w else None)
        workspace_id = gr.BrowserState("", storage_key="redundancy-workspace")
        gr.Markdown(
            "# redundancy\nFind channels of a vision foundation model's encoder (SAM, SAM2, DINOv2) that hurt "
            "on your data and replace them with copies of useful ones: zero trained parameters "
            "([paper](https://arxiv.org/abs/2504.08915))."
        )
        weights_md = gr.Markdown(badge(None))
        ui = SimpleNamespace(ws=ws, workspace_id=workspace_id, weights_md=weights_md)
        with gr.Tabs():
            for label, tab_id, build in TABS:
                with gr.Tab(label, id=tab_id):
                    ui.__dict__.update(vars(build()))
        wire(demo, ui)
    return demo


def wire(demo: gr.Blocks, ui: SimpleNamespace) -> None:
    """Connect every tab's components to their handlers (each handler is a few lines around an engine call)."""
    ws, workspace_id, weights_md = ui.ws, ui.workspace_id, ui.weights_md
    # Every result shown for the previous model or dataset: emptied once a new Load succeeds.
    results = [
        ui.mosaic,
        ui.story_img,
        ui.image_view,
        ui.enlarged,
        ui.abl_note,
        ui.abl_table,
        ui.abl_before,
        ui.abl_after,
        ui.sweep_status,
    ]
    results += [
        ui.sweep_plot,
        ui.status,
        ui.heatmap,
        ui.top_table,
        ui.combo_plot,
        ui.best_md,
        ui.compare_status,
        ui.compare_table,
    ]
    results += [
        ui.compare_note,
        ui.summary,
        ui.res_gallery,
        ui.downloads,
        ui.apply_md,
        ui.apply_out,
        ui.fig_gallery,
        ui.fig_zip,
    ]
    results += [ui.teach_md, ui.teach_fmap, ui.teach_one, ui.teach_heat, ui.teach_top, ui.teach_combo]
    ui.load_btn.click(
        load,
        [
            ws,
            ui.model,
            ui.weights,
            ui.ckpt,
            ui.ft,
            ui.seed,
            ui.source,
            ui.zip_in,
            ui.n_search,
            ui.prompt,
            ui.sources,
            ui.targets,
            ui.top_n,
            ui.hub_ckpt,
            ui.task,
            ui.layer,
        ],
        [ws, weights_md, ui.info, ui.gallery, ui.img_pick, ui.abl_img, ui.estimate, ui.metric],
    ).success(functools.partial(blank, len(results)), None, results).then(lambda w: w.key, ws, workspace_id)
    reconnected = [
        ws,
        weights_md,
        ui.info,
        ui.gallery,
        ui.img_pick,
        ui.abl_img,
        ui.estimate,
        ui.metric,
        ui.top_n,
        ui.sources,
        ui.targets,
    ]
    demo.load(reconnect, [workspace_id], reconnected).then(
        watch, [ws], [ui.heatmap, ui.status, ui.top_table, ui.combo_plot, ui.best_md]
    )
    explore_outputs = [ui.mosaic, ui.order, ui.story_img, ui.image_view, ui.chan, ui.enlarged]
    ui.show_btn.click(explore, [ws, ui.img_pick, ui.sort], explore_outputs)
    ui.sort.change(explore, [ws, ui.img_pick, ui.sort], explore_outputs)  # a new order shows at once
    ui.mosaic.select(click_channel, [ws, ui.img_pick, ui.order], [ui.chan, ui.enlarged])
    ui.chan.submit(pick_channel, [ws, ui.img_pick, ui.chan], [ui.chan, ui.enlarged])
    ui.abl_btn.click(
        run_ablation, [ws, ui.kind, ui.edits, ui.abl_img], [ui.abl_table, ui.abl_before, ui.abl_after, ui.abl_note]
    )
    ui.sweep_btn.click(sweep, [ws], [ui.sweep_plot, ui.sweep_status])
    ui.sweep_cancel.click(cancel, [ws], [ui.sweep_status], queue=False)
    for box in (ui.sources, ui.targets, ui.top_n, ui.select, ui.alphas):
        box.change(search_estimate, [ws, ui.sources, ui.targets, ui.top_n, ui.select, ui.alphas], [ui.estimate])
    ui.model.change(model_hint, [ui.model, ui.source, ui.weights], [ui.model, ui.source, ui.weights])
    ui.weights.change(shown_for(WEIGHTS[2]), ui.weights, ui.ckpt)  # upload boxes only where they are used
    ui.weights.change(shown_for(WEIGHTS[2]), ui.weights, ui.hub_ckpt)
    ui.source.change(shown_for(UPLOAD), ui.source, ui.zip_in)
    ui.start_btn.click(
        search,
        [ws, ui.top_n, ui.metric, ui.sources, ui.targets, ui.rows, ui.mode, ui.candidates, ui.select, ui.alphas],
        [ui.heatmap, ui.status, ui.top_table, ui.combo_plot, ui.best_md],
    )
    ui.stop_btn.click(cancel, [ws], [ui.status], queue=False)
    ui.compare_btn.click(
        compare,
        [ws, ui.top_n, ui.metric, ui.sources, ui.targets, ui.rows, ui.candidates],
        [ui.compare_status, ui.compare_table, ui.compare_note],
    )
    ui.refresh.click(show_results, [ws], [ui.summary, ui.res_gallery, ui.downloads])
    ui.apply_btn.click(apply_uploaded, [ws, ui.repl_in, ui.imgs_in], [ui.apply_md, ui.apply_out])
    ui.share_btn.click(share_run, [ws, ui.share_repo, ui.share_private], ui.share_md)
    ui.fig_btn.click(make_figures, [ws, ui.fig_formats], [ui.fig_gallery, ui.fig_zip])
    ui.teach_btn.click(
        teach, [ws], [ui.teach_md, ui.teach_fmap, ui.teach_one, ui.teach_heat, ui.teach_top, ui.teach_combo]
    )


# Session folders older than the TTL go, on a timer: leftovers of a previous server run at once, and
# those of clients that left without the server hearing of it within JANITOR_S of their TTL.
start_janitor(max_age_s=SESSION_TTL_S, every_s=JANITOR_S)
demo = build_demo()

if __name__ == "__main__":
    # At most 4 handlers run at once across all users (each session also runs one long job at a time).
    demo.queue(default_concurrency_limit=env_number("REDUNDANCY_CONCURRENCY", 4)).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        css=CSS,
        allowed_paths=[],
        max_file_size=os.environ.get("REDUNDANCY_MAX_UPLOAD", "500mb"),
    )
