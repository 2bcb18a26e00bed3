"""The Data tab: model, weights, task and dataset; Load opens a session (and a reloaded page comes back to it)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from ...data.prompts import PROMPT_MODES
from ...data.synthetic import TARGET_DOMAINS
from ...engine import SessionConfig
from ...errors import RedundancyError
from ...interactive.workspace import Workspace
from ...models import REGISTRY
from ...tasks import SEGMENT, task_names
from ..common import ROOT, badge, blank, components, guard, stream_job
from .search import search_estimate, search_view

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
# every bundled dataset choice -> (its folder, the task its targets serve)
SAMPLES = {
    **{DOMAIN + d: (DOMAINS / d, SEGMENT) for d in TARGET_DOMAINS},
    BUNDLED: (SAMPLE, SEGMENT),
    CLASSIFY_SAMPLE: (ROOT / "assets" / "classify_sample", "classify"),
    DEPTH_SAMPLE: (ROOT / "assets" / "depth_sample", "depth"),
}
SOURCES = [*SAMPLES, UPLOAD]
TASK_AUTO = "from the data"
DEFAULT_MODEL = "sam_tiny_demo"
# the Load button's inputs, in order (`LoadForm`'s fields): what a session is made of
LOAD_FIELDS = ("model", "weights", "ckpt", "ft", "seed", "source", "zip_in", "n_search", "prompt", "hub_ckpt", "task",
               "layer")  # fmt: skip
RESETS = ()  # what a new Load empties on this tab: nothing (Load itself refills its summary, gallery and pickers)


def dataset_path(source: str, zip_file: str | None) -> Path:
    """The folder or zip a Dataset choice names."""
    if source == UPLOAD:
        return Path(zip_file)
    return SAMPLES.get(source, (SAMPLE, None))[0]


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


@dataclass(frozen=True)
class LoadForm:
    """What the Data tab's controls say (in `LOAD_FIELDS` order); `config` turns it into a session config."""

    model: str = DEFAULT_MODEL
    weights: str = WEIGHTS[1]
    ckpt: str | None = None  # an uploaded checkpoint file
    ft: str | None = None  # an uploaded fine-tune
    seed: int = 0
    source: str = SOURCES[0]
    zip_in: str | None = None  # an uploaded dataset zip
    n_search: int = 50
    prompt: str = "none"
    hub_ckpt: str = ""  # hf://OWNER/REPO[/FILE][@REVISION]
    task: str = TASK_AUTO
    layer: str | None = None

    def config(self) -> SessionConfig:
        """The session config, or one line saying what is missing."""
        if self.source == UPLOAD and self.zip_in is None:
            raise RedundancyError("choose a .zip to upload, or pick a bundled dataset.")
        ckpt = (self.hub_ckpt or "").strip() or self.ckpt
        if self.weights == WEIGHTS[2] and not ckpt:
            raise RedundancyError(
                "upload a checkpoint file (.pth / .pt / .safetensors) or name a Hub file (hf://OWNER/REPO/FILE), "
                "or pick another weights source."
            )
        return SessionConfig(
            model=self.model,
            data=str(dataset_path(self.source, self.zip_in)),
            random_init=self.weights == WEIGHTS[0],
            seed=int(self.seed),
            checkpoint=ckpt if self.weights == WEIGHTS[2] else None,
            search_images=int(self.n_search),
            prompt=self.prompt,
            finetuned=self.ft or None,
            task=None if self.task == TASK_AUTO else self.task,
            layer=parse_layer(self.layer),
        )


def load_session(ws: Workspace | None, form: LoadForm, progress=None, scope=("auto", "auto", 10)) -> list:
    """Open the form's model and data in the visitor's workspace (a new one if none); what the page shows."""
    ws = ws if ws is not None else Workspace()
    cfg = form.config()
    if progress:
        progress(0, desc="building model and reading data")
    ws.load(cfg, (lambda d, t: progress(d / t, desc=f"encoding image {d}/{t}")) if progress else None)
    return [ws, *loaded_view(ws, "Loaded", *scope)]


@guard
def load(ws, *values, progress=gr.Progress(track_tqdm=True)):
    """The Load button: the Data tab's controls (`LOAD_FIELDS`), then the Search tab's scope."""
    form, scope = LoadForm(*values[: len(LOAD_FIELDS)]), values[len(LOAD_FIELDS) :]
    return load_session(ws, form, progress, scope or ("auto", "auto", 10))


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


def shown_for(choice: str):
    """A change handler showing a component only while its radio is on `choice`."""
    return lambda value: gr.update(visible=value == choice)


def model_hint(name: str, source: str, weights: str):
    """The chosen model's registry description under the dropdown; data and weights it can use.

    A model gets a bundled dataset of a task it can do when the current choice is another task's (a
    DINOv2 model the classification sample, a SAM one a segmentation domain); a model with no weights to
    load here starts on random weights.
    """
    spec = REGISTRY[name]
    if source != UPLOAD and SAMPLES.get(source, (None, SEGMENT))[1] not in spec.tasks:
        source = next((s for s, (_, task) in SAMPLES.items() if task in spec.tasks), source)
    if spec.url is None and spec.shipped is None and weights == WEIGHTS[1]:
        weights = WEIGHTS[0]
    return gr.update(info=spec.description), source, weights


def build() -> SimpleNamespace:
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
                    [TASK_AUTO, *task_names()],
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


def wire(ui: SimpleNamespace) -> None:
    """Connect the Data tab: Load (which empties every tab's results of the previous session), a reloaded page's
    reconnect, and the controls that show or hint what a choice needs."""
    loaded = [ui.ws, ui.weights_md, ui.info, ui.gallery, ui.img_pick, ui.abl_img, ui.estimate, ui.metric]
    inputs = [ui.ws, *(getattr(ui, name) for name in LOAD_FIELDS), ui.sources, ui.targets, ui.top_n]
    ui.load_btn.click(load, inputs, loaded).success(functools.partial(blank, len(ui.resets)), None, ui.resets).then(
        lambda w: w.key, ui.ws, ui.workspace_id
    )
    reconnected = [*loaded, ui.top_n, ui.sources, ui.targets]
    ui.demo.load(reconnect, [ui.workspace_id], reconnected).then(
        watch, [ui.ws], [ui.heatmap, ui.status, ui.top_table, ui.combo_plot, ui.best_md]
    )
    ui.model.change(model_hint, [ui.model, ui.source, ui.weights], [ui.model, ui.source, ui.weights])
    ui.weights.change(shown_for(WEIGHTS[2]), ui.weights, ui.ckpt)  # upload boxes only where they are used
    ui.weights.change(shown_for(WEIGHTS[2]), ui.weights, ui.hub_ckpt)
    ui.source.change(shown_for(UPLOAD), ui.source, ui.zip_in)
