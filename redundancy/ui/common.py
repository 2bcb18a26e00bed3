"""What every tab shares: the weights badge, turning errors into one readable (redacted) message, following a
background job, and the page's constants and style."""

from __future__ import annotations

import functools
import inspect
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from ..errors import RedundancyError, RunError
from ..interactive.redact import PUBLIC
from ..interactive.workspace import Workspace
from ..io import env_number
from ..logs import incident
from ..report.summary import format_range, format_seconds
from ..tasks.base import LOSS

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]  # the repository (its benchmarks/ hold the committed paper report)


POLL_S = env_number("REDUNDANCY_POLL_S", 0.7, float)
# A live figure redraws at most this often while its job runs (the status line follows every poll): a full scope's
# heatmap is 1.8 MB of JSON and a third of a second to build, and as long again for the page to draw
FIGURE_S = env_number("REDUNDANCY_FIGURE_S", 2.0, float)
SESSION_TTL_S = env_number("REDUNDANCY_SESSION_TTL_S", 6 * 3600)  # a session's state and folder go this long after Load
JANITOR_S = max(1, min(600, SESSION_TTL_S // 4))  # how often expired session folders and cached files are removed


CSS = (
    ".badge-random {background:#fde68a;color:#7c2d12;padding:4px 10px;border-radius:6px;font-weight:600}"
    ".badge-demo {background:#dbeafe;color:#1e3a8a;padding:4px 10px;border-radius:6px;font-weight:600}"
    "#model-notice {font-size:1.05em}"
    ".settled-stamp {display:none !important}"
    "#hero-img img {max-height:420px; object-fit:contain}"
    # The mosaic keeps its own pixels (numbers readable) and scrolls sideways where the screen is narrower
    "#mosaic {overflow-x:auto !important} #mosaic button, #mosaic .image-frame {justify-content:flex-start"
    " !important; align-items:flex-start !important; width:max-content !important; max-width:none !important}"
    " #mosaic img {max-width:none !important; width:auto !important; height:auto !important}"
    "@media (max-width: 520px) {"
    " #title h1 {font-size:1.4em; margin:0} #title p {font-size:0.9em; margin:2px 0}"
    " .tab-container button, #tabs button[role=tab] {padding: 4px 5px !important; font-size: 12.5px !important}"
    " #hero-img img {max-height:230px}"
    # the top N keeps every column (its verdict too) on a phone, in a smaller font, breaking only between words
    " #top-table th, #top-table td {font-size:11px !important; padding:4px 3px !important}"
    " #top-table th *, #top-table td * {word-break:normal !important; overflow-wrap:normal !important}"
    # Table 1's cells keep each value on one line at the font the top N uses; the table scrolls sideways in its box
    " #ablate-table [role=gridcell], #ablate-table th, #ablate-table td {font-size:11px !important}"
    "}"
    ".out .label-clear-button {display: none}"  # files the app hands out: nothing for a user to remove
    # The paper's tables keep each value on one line and scroll sideways on a narrow screen (a phone squeezed
    # them to a letter per line; a desktop broke "33.3 / 1" in two)
    "#paper-report table {display:block; overflow-x:auto; max-width:100%}"
    " #paper-report th, #paper-report td {white-space:nowrap}"
)


def titled_image(title: str, **kwargs) -> gr.Image:
    """An output image with its title above it, not over it: a block label sits on the picture's top-left corner,
    where pictures print their own captions ('channel 12', a predicted class)."""
    with gr.Column(min_width=kwargs.pop("min_width", 160)):
        gr.Markdown(f"**{title}**", elem_classes="pane-title")
        return gr.Image(label=title, show_label=False, **kwargs)


def badge(ws: Workspace | None) -> str:
    """The weights line every tab shows; random weights are flagged loudly."""
    if ws is None or ws.session is None:
        return "No model loaded yet: open **Data** and press **Load**."
    b = ws.session.backend
    flag = {  # the label itself says what the weights are; the flag makes it impossible to miss
        "random": "<span class='badge-random'>RANDOM WEIGHTS: not a pretrained model</span> ",
        "demo": "<span class='badge-demo'>DEMO MODEL</span> ",
    }.get(b.weights.kind, "")
    label = flag + b.weights.label
    s = ws.session
    head = f" · head: {s.head.label}" if s.head else ""
    head += f" · searching at encoder block {s.cfg.layer} ({b.channels} channels)" if s.cfg.layer is not None else ""
    device = f"ZeroGPU (views on {b.device})" if ws.remote else b.device
    return f"**{b.name}** on {device} · task **{s.task.name}** · {label}{head}"


def need(ws: Workspace | None) -> Workspace:
    """The session's workspace with a model and data loaded, or a message saying what to do first."""
    if ws is None or ws.session is None:
        raise RunError("no model and dataset loaded yet: open the Data tab and press Load.")
    return ws


def shown(ws: Workspace | None, message: str) -> str:
    """A message as the visitor sees it: no server paths or session folders, escaped for the page."""
    return (ws.redactor if ws is not None else PUBLIC).html(message)


def unexpected(e: Exception) -> str:
    """A bug as the visitor reads it: one line with a log reference; the traceback goes to the server's log."""
    ref = incident(log, "a handler failed")
    what = f"unexpected error ({e.__class__.__name__}: {e})"
    return f"{what}; your loaded data and results are kept (log reference {ref})."


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
            raise gr.Error(shown(ws, unexpected(e)), print_exception=False) from None

    return wrapped


def _message(ws: Workspace | None, e: Exception) -> str:
    """An error as one line for the page: a guarded handler's text as it is, anything else redacted."""
    if isinstance(e, gr.Error):
        return str(e.message)
    if isinstance(e, RedundancyError):
        return shown(ws, str(e))
    return shown(ws, unexpected(e))


def listen(event, fn, inputs, outputs, note=None, clear=(), **kwargs):
    """Wire `fn` to `event` so that an error never becomes Gradio's red pills over the outputs: it shows as one
    line (⚠) in `note` (one of `outputs`, or none) and a toast, and every other output keeps what it showed,
    except those in `clear` (a result of the failed request itself, which would read as its outcome): they
    empty. A later success replaces the line, since `note` is one of the handler's own outputs."""
    outs = list(outputs) if isinstance(outputs, list | tuple) else [outputs]
    k = outs.index(note) if note is not None else None
    emptied = {outs.index(c) for c in clear}

    def failed(args, e: Exception):
        text = _message(next((a for a in args if isinstance(a, Workspace)), None), e)
        gr.Warning(text)
        values = [gr.update(value=None) if i in emptied else gr.update() for i in range(len(outs))]
        if k is not None:
            values[k] = f"⚠ {text}"
        return values if len(outs) > 1 else values[0]

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def wrapped(*args, **kw):
            try:
                yield from fn(*args, **kw)
            except Exception as e:  # noqa: BLE001 - shown as one line; the server log keeps a bug's traceback
                yield failed(args, e)

    else:

        @functools.wraps(fn)
        def wrapped(*args, **kw):
            try:
                return fn(*args, **kw)
            except Exception as e:  # noqa: BLE001 - as above
                return failed(args, e)

    kwargs.setdefault("api_name", fn.__name__)  # API clients call the handler by its own name
    return event(wrapped, inputs, outputs, **kwargs)


def gain_unit(ws: Workspace, metric: str | None) -> str:
    """How a gain in `metric` reads: 'Δ mIoU (points)', 'RMSE decrease', 'loss decrease'."""
    if metric == LOSS:
        return "loss decrease"
    m = ws.metric(metric)
    if m.percent:
        return f"Δ {m.label} (points)"
    return f"Δ {m.label}" if m.higher_is_better else f"{m.label} decrease"


def score_text(m, value: float, sign: bool = False) -> str:
    """A score (or change) as a user reads it: 2 decimals for percent metrics, 4 for the others."""
    return format(value, ("+" if sign else "") + (".2f" if m.percent else ".4f"))


def metric_choices(task) -> list[tuple[str, str]]:
    """The Search tab's metric choices for a task, by their labels: its scores, then its loss."""
    return [(m.label, m.name) for m in task.metrics] + [(f"loss ({task.loss_label})", LOSS)]


def pick(ws: Workspace, index) -> int:
    """Image index from a dropdown that may not have been rendered yet (the session's showcase image then)."""
    return ws.showcase if index in (None, "") else int(index)


def on_session(ui: SimpleNamespace, fn, inputs: list, outputs: list, reconnect: bool = True):
    """A tab's refresh when Load opens a session and (`reconnect`) when a reloaded page finds its session again,
    after the Data tab's own view: `fn(*inputs) -> {component: value}` over `outputs`. A tab declares its own;
    no other tab's handler lists its components. The refreshes run one after another (each event is the chain's
    new end), so the page can say when all of them are done (`session-settled`)."""
    assert hasattr(ui, "session_opened"), "the Data tab wires Load first (it is TABS' first entry)"
    ui.session_opened = listen(ui.session_opened.then, fn, inputs, outputs, api_visibility="private")
    if reconnect:
        ui.reconnected = listen(ui.reconnected.then, fn, inputs, outputs, api_visibility="private")


def image_picker(ws: Workspace | None):
    """An image dropdown's choices for the loaded session's search set, on its showcase image."""
    if ws is None or ws.session is None:
        return gr.update()
    names = ws.session.evaluator("search").set.names
    return gr.update(choices=[(n, k) for k, n in enumerate(names)], value=ws.showcase)


def blank(count: int) -> list[None]:
    """Empty values for `count` outputs: results of a previous model or dataset must not survive a new Load."""
    return [None] * count


def stream_job(ws: Workspace, render):
    """Yield `render()` while the workspace's job runs (only when it produced something new), then once more. Each
    frame, once sent, tells the job it was shown (a job in lockstep waits for that at each new stage)."""
    seen, state = -1, ws.job.state
    while ws.job.running:
        time.sleep(POLL_S)
        if state.updates != seen:
            seen = state.updates
            yield render()
            state.shown(seen)  # the generator resumes once Gradio has sent the frame
    yield render()


def redraws(seconds: float = FIGURE_S) -> Callable[[bool], bool]:
    """A live figure's clock: `due(final)` is True at most once per `seconds`, and always for a job's last frame."""
    last = -math.inf

    def due(final: bool) -> bool:
        nonlocal last
        now = time.monotonic()
        if final or now - last >= seconds:
            last = now
            return True
        return False

    return due


def time_range(ws: Workspace, seconds: float, bold: bool = True) -> str:
    """An estimate here as a range ('**1.3-2.2 min**'): the recent decoder calls' spread around it."""
    text = format_range(*ws.require().time_range(seconds))
    return f"**{text}**" if bold else text


def busy_line(ws: Workspace) -> str:
    """' ⚠ This machine is busy: ...' where other work slows this one down, else ''."""
    note = ws.require().busy_note()
    return f" <small>⚠ {note}</small>" if note else ""


def progress_line(ws: Workspace) -> str:
    """The running (or last) job's stage, count and the time left in the whole job, in one line."""
    st = ws.job.state
    if st.error:
        return f"⚠ {shown(ws, st.error)}"
    if st.cancelled:
        return f"Cancelled at {st.done:,}/{st.total:,} in '{st.stage}'. Results finished before the cancel are kept."
    elapsed = format_seconds(time.perf_counter() - st.started)
    if st.finished and st.stage.endswith(" finished"):
        return f"**{st.stage.capitalize()}** in {elapsed}."
    eta = None if st.finished else st.eta()
    left = f" · about **{format_seconds(eta)}** left in all ({elapsed} so far)" if eta is not None else ""
    if not st.total:  # a stage without counts (e.g. a screening step announcing itself)
        return f"**{st.stage}**…{left}"
    return f"**{st.stage}**: {st.done:,}/{st.total:,}{left}" + (" · done" if st.finished else "")


def cancel(ws):
    if ws is not None and ws.job is not None and ws.job.running:
        ws.job.cancel.set()
        return "Cancelling after the current batch…"
    gr.Info("Nothing is running.")  # a toast: the status of a finished job stays as it was
    return gr.update()


def components(scope: dict) -> SimpleNamespace:
    """The Gradio components among a tab builder's local names, by name."""
    return SimpleNamespace(**{k: v for k, v in scope.items() if isinstance(v, gr.components.Component)})


def join(ui: SimpleNamespace, tab: SimpleNamespace, where: str) -> None:
    """Add a tab's components to the page's one namespace; a name another tab (or the page) took is refused."""
    clash = sorted(set(vars(tab)) & set(vars(ui)))
    if clash:
        raise ValueError(f"tab {where} names {', '.join(clash)}, which the page already has: rename them in {where}")
    ui.__dict__.update(vars(tab))
