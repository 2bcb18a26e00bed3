"""What every tab shares: the weights badge, turning errors into one readable (redacted) message, following a
background job, and the page's constants and style."""

from __future__ import annotations

import functools
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from ..errors import RedundancyError, RunError
from ..interactive.redact import PUBLIC
from ..interactive.workspace import Workspace
from ..io import env_number
from ..report.summary import format_seconds

ROOT = Path(__file__).resolve().parents[2]  # the repository: bundled data lives in its assets/


POLL_S = env_number("REDUNDANCY_POLL_S", 0.7, float)
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


def badge(ws: Workspace | None) -> str:
    """The weights line every tab shows; random weights are flagged loudly."""
    if ws is None or ws.session is None:
        return "No model loaded yet: open **Data** and press **Load**."
    b = ws.session.backend
    flag = {
        "random": "<span class='badge-random'>RANDOM WEIGHTS: not a pretrained model</span> ",
        "demo": f"<span class='badge-demo'>DEMO MODEL: trained here on synthetic data, not {b.family.label}</span> ",
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


def blank(count: int) -> list[None]:
    """Empty values for `count` outputs: results of a previous model or dataset must not survive a new Load."""
    return [None] * count


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


def cancel(ws):
    if ws is not None and ws.job is not None and ws.job.running:
        ws.job.cancel.set()
        return "Cancelling after the current batch…"
    gr.Info("Nothing is running.")  # a toast: the status of a finished job stays as it was
    return gr.update()


def components(scope: dict) -> SimpleNamespace:
    """The Gradio components among a tab builder's local names, by name."""
    return SimpleNamespace(**{k: v for k, v in scope.items() if isinstance(v, gr.components.Component)})
