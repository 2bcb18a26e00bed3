"""The web app: one module per tab (`tabs/`), what they share (`common`), and the page that assembles them.

`build_demo()` lays out the page and wires every tab; `launch(demo)` starts the janitor and serves it.
"""

from __future__ import annotations

import functools
import os
import time
from types import SimpleNamespace

import gradio as gr

from ..interactive.janitor import start_janitor
from ..io import env_number
from ..logs import configure
from .common import CSS, JANITOR_S, SESSION_TTL_S, badge, join
from .tabs import TABS


def build_demo() -> gr.Blocks:
    """The page: title, the weights badge, every tab, wired."""
    # delete_cache: Gradio's copies of the files handlers returned go after the session TTL as well.
    with gr.Blocks(
        title="redundancy: parameter-free channel replacement", delete_cache=(JANITOR_S, SESSION_TTL_S)
    ) as demo:
        # A page that goes away (closed, reloaded) only detaches its workspace: a reload within RECONNECT_S finds
        # it again through the key this browser keeps; the janitor closes what nobody came back for.
        ws = gr.State(None, time_to_live=SESSION_TTL_S, delete_callback=lambda w: w.detach() if w else None)
        workspace_id = gr.BrowserState("", storage_key="redundancy-workspace")
        gr.Markdown(
            "# redundancy\nRedundant encoder channels of SAM, SAM2, DINOv2, CLIP, MAE and any timm model, found and "
            "replaced: zero trained parameters ([paper](https://arxiv.org/abs/2504.08915)).",
            elem_id="title",
        )
        weights_md = gr.Markdown(badge(None), elem_id="badge")
        # a stamp that changes once Load (or a reconnect) has refreshed every tab: state a test (or script) waits on
        settled = gr.HTML("", elem_id="session-settled", elem_classes="settled-stamp")
        ui = SimpleNamespace(demo=demo, ws=ws, workspace_id=workspace_id, weights_md=weights_md)
        with gr.Tabs(elem_id="tabs", overflow_behavior="wrap") as tabs:  # every tab one tap away on a phone
            for label, tab_id, tab in TABS:
                with gr.Tab(label, id=tab_id) as page:
                    join(ui, tab.build(), tab.__name__)
                page.select(functools.partial(remember_tab, tab_id), ws, None, queue=False)
        ui.tabs = tabs
        ui.resets = [getattr(ui, name) for _, _, tab in TABS for name in tab.RESETS]
        for _, _, tab in TABS:
            tab.wire(ui)
        for event in (ui.session_opened, ui.reconnected):  # the end of each tab refresh chain (`common.on_session`)
            event.then(lambda: str(time.monotonic_ns()), None, settled, api_visibility="private", queue=False)
    return demo


def remember_tab(tab_id: str, ws) -> None:
    """The open tab, kept in the workspace: a reloaded page opens on it again."""
    if ws is not None:
        ws.page["tab"] = tab_id


# Gradio's status region announces a finished or failed event by these keys, which its English strings lack: a
# screen reader read "common.complete" aloud after every click.
STATUS_WORDS = gr.I18n(en={"common.complete": "Done", "common.error": "Error"})


def launch(demo: gr.Blocks) -> None:
    """Serve the app (and reclaim expired session folders on a timer while it runs)."""
    # Session folders older than the TTL go: leftovers of a previous server run at once, and those of clients
    # that left without the server hearing of it within JANITOR_S of their TTL.
    start_janitor(max_age_s=SESSION_TTL_S, every_s=JANITOR_S)
    # The server's console gets warnings (REDUNDANCY_VERBOSITY=1: info); the log file everything, tracebacks of
    # the "log reference" a visitor sees included. Its path is for the operator's console only, never the page.
    log_path = configure(env_number("REDUNDANCY_VERBOSITY", 0))
    print(f"redundancy: full log in {log_path}" if log_path else "redundancy: no writable log folder; console only")
    # At most 4 handlers run at once across all users (each session also runs one long job at a time).
    demo.queue(default_concurrency_limit=env_number("REDUNDANCY_CONCURRENCY", 4)).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        css=CSS,
        allowed_paths=[],
        max_file_size=os.environ.get("REDUNDANCY_MAX_UPLOAD", "500mb"),
        i18n=STATUS_WORDS,
    )
