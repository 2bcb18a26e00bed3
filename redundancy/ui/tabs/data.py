"""The Data tab: model, weights, task and dataset; Load opens a session (and a reloaded page comes back to it)."""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from ... import bundled
from ...data.prompts import PROMPT_MODES
from ...data.synthetic import TARGET_DOMAINS, TASK_DOMAINS
from ...engine import SessionConfig
from ...errors import RedundancyError
from ...interactive.workspace import Workspace
from ...models import REGISTRY, ModelSpec, get_spec, names_a_path
from ...replace import LAYER_NAME
from ...tasks import SEGMENT, task_names
from ..common import badge, blank, components, guard, listen
from .search import search_estimate

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
    **{DOMAIN + d: (bundled.DOMAINS / d, SEGMENT) for d in TARGET_DOMAINS},
    BUNDLED: (bundled.SAMPLE, SEGMENT),
    CLASSIFY_SAMPLE: (bundled.CLASSIFY_SAMPLE, "classify"),
    DEPTH_SAMPLE: (bundled.DEPTH_SAMPLE, "depth"),
    **{  # the DINOv2 demo model's shifted target domains
        f"{task} domain: {d} (for dinov2_tiny_demo)": (bundled.TASK_DOMAINS / task / d, task)
        for task, domains in TASK_DOMAINS.items()
        for d in domains
    },
}
SOURCES = [*SAMPLES, UPLOAD]
TASK_AUTO = "from the data"
N_SEARCH_MAX = 50  # the Search-set images box takes 1 to this (the paper's search set)
DEFAULT_MODEL = "sam_tiny_demo"
# the Load button's inputs, in order (`LoadForm`'s fields): what a session is made of
LOAD_FIELDS = ("model", "weights", "ckpt", "ft", "seed", "source", "zip_in", "n_search", "prompt", "hub_ckpt", "task",
               "layer")  # fmt: skip
FILE_FIELDS = ("ckpt", "ft", "zip_in")  # uploads among them
RESETS = ()  # what a new Load empties on this tab: nothing (Load itself refills its summary, gallery and pickers)
WHAT = (
    "**Some channels of a vision model's encoder hurt on new data.** This tool finds them and replaces each with "
    "a copy of a useful channel: the model adapts with **zero trained parameters**. The picture is a real run, "
    "measured here. Press **Load**, then **Search**."
)


def dataset_path(source: str, zip_file: str | None) -> Path:
    """The folder or zip a Dataset choice names."""
    if source == UPLOAD:
        return Path(zip_file)
    return SAMPLES.get(source, (bundled.SAMPLE, None))[0]


def parse_layer(text: str | None) -> int | str | None:
    """The Data tab's encoder block: empty for the encoder output, else a block number (or a timm model's module)."""
    text = str(text or "").strip()
    if not text:
        return None
    if text.isascii() and text.isdigit() and len(text) <= 9:  # '²' and '٣' are digits to str.isdigit
        return int(text)
    if len(text) <= 200 and LAYER_NAME.fullmatch(text):
        return text
    raise RedundancyError(
        f"encoder block '{text}' is not a block number (0, 1, ...) or a module name (layer3, stages.2); leave it "
        "empty to search the encoder output."
    )


@dataclass(frozen=True)
class LoadForm:
    """What the Data tab's controls say (in `LOAD_FIELDS` order); `config` turns it into a session config."""

    model: str = DEFAULT_MODEL
    weights: str = WEIGHTS[1]
    ckpt: str | None = None  # an uploaded checkpoint file
    ft: str | None = None  # an uploaded fine-tune
    seed: int | None = 0  # None: an emptied number box
    source: str = SOURCES[0]
    zip_in: str | None = None  # an uploaded dataset zip
    n_search: int | None = 50
    prompt: str = "none"
    hub_ckpt: str = ""  # hf://OWNER/REPO[/FILE][@REVISION]
    task: str = TASK_AUTO
    layer: str | None = None

    def config(self) -> SessionConfig:
        """The session config, or one line saying what is missing."""
        if self.source == UPLOAD and self.zip_in is None:
            raise RedundancyError("choose a .zip to upload, or pick a bundled dataset.")
        if not n_search_ok(self.n_search):
            shows = "it is empty" if self.n_search is None else f"it shows {self.n_search:g}"
            raise RedundancyError(f"Search-set images: type a whole number from 1 to {N_SEARCH_MAX} ({shows}).")
        spec = typed_spec(self.model)
        if isinstance(spec, str):
            raise RedundancyError(spec)
        ckpt = (self.hub_ckpt or "").strip() or self.ckpt
        if self.weights == WEIGHTS[2] and not ckpt:
            raise RedundancyError(
                "upload a checkpoint file (.pth / .pt / .safetensors) or name a Hub file (hf://OWNER/REPO/FILE), "
                "or pick another weights source."
            )
        return SessionConfig(
            model=spec.name,
            data=str(dataset_path(self.source, self.zip_in)),
            random_init=self.weights == WEIGHTS[0],
            seed=int(self.seed or 0),  # an emptied box: the default seed
            checkpoint=ckpt if self.weights == WEIGHTS[2] else None,
            search_images=int(self.n_search),
            prompt=self.prompt,
            finetuned=self.ft or None,
            task=None if self.task == TASK_AUTO else self.task,
            layer=parse_layer(self.layer),
        )


def load_session(ws: Workspace | None, form: LoadForm, progress=None, scope=("auto", "auto", 10)) -> list:
    """Open the form's model and data in the visitor's workspace (a new one if none); what the Data tab shows
    (each other tab refreshes itself after: `common.on_session`)."""
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
    out = load_session(ws, form, progress, scope or ("auto", "auto", 10))
    out[0].page["form"] = dict(zip(LOAD_FIELDS, values[: len(LOAD_FIELDS)]))  # what a reloaded page puts back
    return out


def loaded_view(ws: Workspace, verb: str, sources: str = "auto", targets: str = "auto", top_n: int = 10) -> list:
    """What the Data tab shows for a loaded session: badge, summary (with the search's time), gallery."""
    s = ws.session
    names = s.evaluator("search").set.names
    gallery = [(ws.target_view(k), n) for k, n in enumerate(names)]
    warn = "".join(f"\n- ⚠ {w}" for w in s.dataset.warnings[:5])
    head = (
        f" Head split **{len(s.head_set)}** images (never searched or held out): {s.head.label}."
        if s.head_set is not None
        else (f" Head: {s.head.label}." if s.head else "")
    )
    hits = s.set_cache_hits.get("search", 0)
    cached = f"{hits} of {len(s.search_set)} search images read from the feature cache, the rest encoded"
    st = ws.settings
    estimate = search_estimate(ws, sources, targets, top_n, st.select, st.alphas)  # the scope as set
    info = (
        f"{verb} **{len(s.dataset)}** images ({s.dataset.layout} layout, task **{s.task.name}**): search set "
        f"**{len(s.search_set)}**, held-out **{len(s.heldout_set)}**; protocol `{s.protocol}`, prompt "
        f"`{s.cfg.prompt}`; {cached}.{head}{warn}\n\n**Next:** open the **Search** tab and press **Start "
        f"search**. {estimate}"
    )
    gallery = gr.update(value=gallery, label=f"Search set with its ground truth ({s.task.target_note})", visible=True)
    return [badge(ws), info, gallery]


def reconnect(workspace_id: str):
    """A (re)loaded page: back to this browser's own open workspace, if it has one, with what it showed: the Data
    tab's form as it was loaded and the tab that was open (each other tab restores itself after: the Search tab
    its latest search's settings, `common.on_session`)."""
    ws = Workspace.reconnect(workspace_id)
    if ws is None or ws.session is None:
        return [ws] + [gr.update()] * (3 + len(LOAD_FIELDS) + 3)
    st = ws.settings
    view = loaded_view(ws, "Reconnected to your session:", st.sources, st.targets, st.top_n)
    form = ws.page.get("form", {})
    values = [form.get(name, gr.update()) for name in LOAD_FIELDS]
    for k, name in enumerate(LOAD_FIELDS):  # an upload the server no longer holds cannot come back
        if name in FILE_FIELDS and values[k] and not Path(values[k]).exists():
            values[k] = None
    model, weights = form.get("model", DEFAULT_MODEL), form.get("weights", WEIGHTS[1])
    summary = load_summary(model, weights, form.get("source", SOURCES[0]), form.get("n_search", 50))
    running = ws.job is not None and ws.job.running and ws.job.kind == "search"
    tab = "search" if running else ws.page.get("tab", "data")
    return [ws, *view, *values, model_notice(model, weights), summary, gr.update(selected=tab)]


def shown_for(choice: str):
    """A change handler showing a component only while its control is on `choice`."""
    return lambda value: gr.update(visible=value == choice)


def typed_spec(name: str) -> ModelSpec | str:
    """The spec of a listed or typed model name (timm:NAME), or the one line saying why there is none."""
    name = str(name or "").strip()
    if "(" in name:  # architecture arguments change what is built (and its size): the CLI and Python take them
        return "a model name here takes no arguments; build a variant from the command line or from Python."
    if names_a_path(name):  # the server's files are not a visitor's to name
        return "a model here is named by the registry or the Hub (hf:OWNER/NAME), not by a folder on the server."
    try:
        return get_spec(name)
    except RedundancyError as e:
        return html.escape(str(e))  # it quotes what was typed


def model_hint(name: str, source: str, weights: str):
    """The chosen model's registry description under the dropdown; data and weights it can use.

    A model gets a bundled dataset of a task it can do when the current choice is another task's (a
    DINOv2 model the classification sample, a SAM one a segmentation domain); a model with no weights to
    load here starts on random weights.
    """
    spec = typed_spec(name)
    if isinstance(spec, str):  # a typed name no family builds: say so where the description goes
        return gr.update(info=f"⚠ {spec[:300]}"), source, weights
    if source != UPLOAD and SAMPLES.get(source, (None, SEGMENT))[1] not in spec.tasks:
        source = next((s for s, (_, task) in SAMPLES.items() if task in spec.tasks), source)
    if not (spec.url or spec.hub or spec.shipped) and weights == WEIGHTS[1]:
        weights = WEIGHTS[0]
    return gr.update(info=spec.description), source, weights


def model_notice(name: str, weights: str) -> str:
    """What the chosen model and weights are, in a line nobody can miss (before anything is loaded)."""
    spec = typed_spec(name)
    if isinstance(spec, str):
        return f"⚠ {spec[:300]}"
    if weights == WEIGHTS[0]:
        return "<span class='badge-random'>RANDOM WEIGHTS</span> not a pretrained model: for trying the tool only"
    if weights == WEIGHTS[2]:
        return f"**{name}** with your checkpoint file"
    if spec.shipped is not None:
        what, _, rest = spec.description.partition("; ")
        return f"<span class='badge-demo'>DEMO MODEL</span> **{name}**: {what}" + (f" ({rest})" if rest else "")
    return f"**{name}**: {spec.description}; the official weights download on Load (needs internet)"


def n_search_ok(n_search) -> bool:
    """Whether the Search-set images box holds a count Load can take (it is empty while a visitor retypes it)."""
    return n_search is not None and 1 <= n_search <= N_SEARCH_MAX


def load_summary(model: str, weights: str, source: str, n_search) -> str:
    """What Load will open, in one line under the button."""
    kind = {WEIGHTS[0]: "random weights", WEIGHTS[1]: "its own weights", WEIGHTS[2]: "your checkpoint"}[weights]
    count = f"{int(n_search)} search images" if n_search_ok(n_search) else f"⚠ search images: type 1 to {N_SEARCH_MAX}"
    return f"Load opens **{model}** ({kind}) on *{source}*, {count}."


def about_text() -> str:
    """The About box: how long things take, duplicating the Space, running it locally."""
    space = os.environ.get("SPACE_ID")  # set by Hugging Face on a Space: its owner/name
    # on a Space its own repository is the one to clone; a local copy already is one (no placeholder URL to edit)
    clone = f"git clone https://huggingface.co/spaces/{space} redundancy && cd redundancy\n" if space else ""
    where = "or run it locally" if space else "or run this copy anywhere else from its folder"
    return (
        "Times depend on the machine: after Load, the Search tab shows the time of the search you set up, "
        "measured on this machine, and updates it while it runs. On a free CPU Space the demo model's default "
        "search takes minutes; the DINOv2 samples take seconds; real SAM models on a CPU take hours for a full "
        "scan (use a GPU for those).\n\n**Duplicate this Space** (top right on the Hub) to get your own copy "
        f"and hardware, {where}:\n\n```\n{clone}pip install -r requirements.txt\npython app.py\n```\n"
        "Everything here is also a command: `python -m redundancy --help`.\n\n**On ZeroGPU hardware** encoding, "
        "search, sweep, comparison and apply each borrow a GPU for the time their work needs (at most 5 minutes a "
        "call); a bigger scope is refused with the command that runs it locally."
    )


def build() -> SimpleNamespace:
    """The Data tab's components (layout only; `wire` connects them)."""
    with gr.Row(elem_id="hero", equal_height=False):
        with gr.Column(scale=2, min_width=300):
            gr.Markdown(WHAT)
            notice = gr.Markdown(model_notice(DEFAULT_MODEL, WEIGHTS[1]), elem_id="model-notice")
            load_btn = gr.Button("Load", variant="primary", elem_id="load-btn", size="lg")
            load_what = gr.Markdown(load_summary(DEFAULT_MODEL, WEIGHTS[1], SOURCES[0], 50), elem_id="load-what")
        with gr.Column(scale=3, min_width=300):
            hero = gr.Image(
                str(bundled.HERO), show_label=False, interactive=False, buttons=[], elem_id="hero-img", container=False
            )
    info = gr.Markdown(elem_id="load-info")
    with gr.Accordion("Model and data: change what Load opens", open=False, elem_id="form"), gr.Row():
        with gr.Column(min_width=280):
            model = gr.Dropdown(
                list(REGISTRY),
                value=DEFAULT_MODEL,
                allow_custom_value=True,  # any timm or transformers model by name (timm:resnet18, hf:OWNER/NAME)
                label="Model (or type timm:NAME, hf:OWNER/NAME)",
                info=REGISTRY[DEFAULT_MODEL].description,
                elem_id="model",
            )
            weights = gr.Radio(WEIGHTS, value=WEIGHTS[1], label="Weights", elem_id="weights")
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
                elem_id="source",
                info="demo domains: shifted synthetic data the demo model never saw (120 images each); "
                "your zip: images/ + masks/ or PerSeg Images/<obj>/ + Annotations/<obj>/ (segment), "
                "<class>/ folders or a CSV of image,label (classify), images/ + depth/ (depth)",
            )
            zip_in = gr.File(label="Dataset .zip", file_types=[".zip"], height=150, visible=False, elem_id="zip-in")
            # a number box, not a slider: Gradio 6.31's slider, typed into after a fresh page sat idle a few
            # seconds, loses the value (back to 50) and then sends its change ~7 times a second. Its range is ours
            # to check (`n_search_ok`): Gradio's own check shows a red error badge over the line under Load
            n_search = gr.Number(
                N_SEARCH_MAX,
                step=1,
                precision=0,
                label="Search-set images",
                elem_id="n-search",
                info=f"1 to {N_SEARCH_MAX}: the paper uses 50; fewer: faster, but the set generalises less (the "
                "Search tab shows the time after Load)",
            )
            with gr.Row():
                prompt = gr.Dropdown(list(PROMPT_MODES), value="none", label="Prompt from GT")
                task = gr.Dropdown(
                    [TASK_AUTO, *task_names()],
                    value=TASK_AUTO,
                    label="Task",
                    info="segment: SAM / SAM2 (timm: a per-patch head); classify, depth: DINOv2, timm",
                )
                layer = gr.Textbox(
                    "",
                    label="Encoder block (empty = encoder output)",
                    placeholder="e.g. 10",
                    info="search at this encoder block's output (SAM, SAM2, DINOv2: later blocks re-run per pair; "
                    "timm: a stage or a module name, read by the head)",
                    elem_id="layer",
                )
    gallery = gr.Gallery(
        label="Search set with its ground truth",
        columns=8,
        height=260,
        object_fit="contain",
        elem_id="gallery",
        visible=False,  # until Load fills it
    )
    with gr.Accordion("About this demo: how long things take, duplicate it, run it locally", open=False):
        gr.Markdown(about_text())
    return components(locals())


def wire(ui: SimpleNamespace) -> None:
    """Connect the Data tab: Load (which empties every tab's results of the previous session), a reloaded page's
    reconnect, and the controls that show or hint what a choice needs. Load and reconnect are the events every
    other tab's own refresh follows (`ui.session_opened`, `ui.reconnected`: `common.on_session`)."""
    loaded = [ui.ws, ui.weights_md, ui.info, ui.gallery]
    inputs = [ui.ws, *(getattr(ui, name) for name in LOAD_FIELDS), ui.sources, ui.targets, ui.top_n]
    n_resets = len(ui.resets)

    def load_and_clear(ws, *values, progress=gr.Progress(track_tqdm=True)):
        """Load; a Load that succeeds also empties every tab's results of the previous session (one that fails
        keeps everything: `listen` leaves every output as it was)."""
        return [*load(ws, *values, progress=progress), *blank(n_resets)]

    ui.session_opened = listen(ui.load_btn.click, load_and_clear, inputs, [*loaded, *ui.resets], ui.info,
                               api_name="load")  # fmt: skip
    ui.session_opened.then(lambda w: w.key if w else "", ui.ws, ui.workspace_id)
    restored = [*loaded, *(getattr(ui, n) for n in LOAD_FIELDS), ui.notice, ui.load_what, ui.tabs]
    ui.reconnected = ui.demo.load(reconnect, [ui.workspace_id], restored)
    ui.model.change(model_hint, [ui.model, ui.source, ui.weights], [ui.model, ui.source, ui.weights])
    ui.weights.change(shown_for(WEIGHTS[2]), ui.weights, ui.ckpt)  # upload boxes only where they are used
    ui.weights.change(shown_for(WEIGHTS[2]), ui.weights, ui.hub_ckpt)
    ui.source.change(shown_for(UPLOAD), ui.source, ui.zip_in)
    ui.model.change(shown_for(bundled.HERO_MODEL), ui.model, ui.hero)  # the picture is that model's result
    for box in (ui.model, ui.weights, ui.source, ui.n_search):  # what Load will open, said before it does
        box.change(model_notice, [ui.model, ui.weights], ui.notice)
        box.change(load_summary, [ui.model, ui.weights, ui.source, ui.n_search], ui.load_what)
