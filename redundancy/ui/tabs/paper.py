"""The Paper tab: the committed `redundancy paper` report (every table of the paper regenerated on the demo models,
benchmarks/paper/), and a button that reruns it at the tiny size on the visitor's own session in the background."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
from PIL import Image

from ...errors import RedundancyError
from ...interactive.jobs import Job, JobState, end_job, enter_stage
from ...interactive.workspace import Workspace
from ...report.paper import TINY, read_report, run_paper
from ..common import ROOT, components, progress_line, shown, stream_job

COMMITTED = ROOT / "benchmarks" / "paper"  # the default-size report, measured and committed with its date
SIZE = TINY  # what the rerun button measures: every table in a few CPU minutes at most
RESETS = ()  # a new Load leaves the report as it is: it does not depend on the loaded session


def report_view(folder: Path) -> tuple[str, list[tuple[np.ndarray, str]]]:
    """A report folder as (its markdown without the image lines, its figures as (image, caption))."""
    record = read_report(folder)
    text = (folder / "report.md").read_text()
    markdown = "\n".join(line for line in text.splitlines() if not line.startswith("!["))
    return markdown, [(np.asarray(Image.open(folder / name).convert("RGB")), name) for name in record["figures"]]


def committed_view() -> tuple[str, list]:
    """The committed report, or a line saying how to make one."""
    try:
        return report_view(COMMITTED)
    except RedundancyError:
        return "No committed report here: run `redundancy paper --out benchmarks/paper`.", []


def start(ws: Workspace) -> Job:
    """Start the tiny report in the background, written into the workspace's own folder."""
    ws.busy()
    out = ws.dir / f"paper-{uuid.uuid4().hex[:8]}"

    def work(state: JobState, cancel: threading.Event):
        def on_stage(name: str, k: int, total: int) -> None:
            enter_stage(state, f"measuring: {name}", total)
            state.done = k
            state.updates += 1

        report = run_paper(SIZE, out, log=lambda _m: None, cancel=cancel, on_stage=on_stage, cache=ws.cache)
        end_job(state, "paper report finished")
        return report

    ws.job = Job(work, "paper")
    return ws.job


def rerun(ws):
    """The rerun button: start the tiny report (a new workspace if the visitor has none) and follow it."""
    ws = ws if ws is not None else Workspace()
    try:
        start(ws)
    except RedundancyError as e:  # e.g. a search still running in this session
        gr.Warning(shown(ws, str(e)))
        return

    def view():
        result = ws.job.result
        if result is None:
            return ws, progress_line(ws), gr.update(), gr.update()
        return (ws, progress_line(ws), *report_view(result.out))

    yield from stream_job(ws, view)


def build() -> SimpleNamespace:
    """The Paper tab's components (layout only; `wire` connects them)."""
    markdown, gallery = committed_view()
    gr.Markdown(
        "Every table of the paper, regenerated offline on the demo models by `redundancy paper` (the committed "
        "report below). The rerun measures the same tables at the tiny size (a handful of images: a check that "
        "it runs, not numbers to read) on this session, in the background."
    )
    paper_btn = gr.Button("Rerun at the tiny size", variant="primary", elem_id="paper-btn")
    paper_status = gr.Markdown(elem_id="paper-status")
    paper_gallery = gr.Gallery(value=gallery, label="Figures", columns=3, height=360, object_fit="contain")
    paper_md = gr.Markdown(markdown, elem_id="paper-report")
    return components(locals())


def wire(ui: SimpleNamespace) -> None:
    """Connect the Paper tab's components to their handlers."""
    ui.paper_btn.click(rerun, [ui.ws], [ui.ws, ui.paper_status, ui.paper_md, ui.paper_gallery])
