"""The "Your image" tab: an image of the visitor's own through the loaded model, as it is and with the latest
search's replacement set, side by side with what changed; segmentation takes a click (a point) or two clicks (a
box) as in the SAM demo."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw

from ... import bundled
from ...data import load_image
from ...data.images import MAX_ASPECT, MAX_PIXELS, MIN_SIDE
from ...data.prompts import Prompt
from ...data.synthetic import TARGET_DOMAINS
from ...errors import DataError, RedundancyError
from ...replace import pair_text
from ..common import components, guard, listen, need, titled_image

POINT, BOX, NONE = "point (one click)", "box (two clicks: corners)", "no prompt"
RESETS = ("your_base", "your_patched", "your_diff", "your_note")
# three example images, one object each, from the first demo domain (what Load opens by default)
EXAMPLES = [
    str(sorted(folder.glob("*.jpg"))[0])
    for folder in sorted((bundled.DOMAINS / TARGET_DOMAINS[0] / "Images").iterdir())
][:3]


def unread_upload(image: gr.Image) -> gr.Image:
    """`image` with its upload reaching the handler as its file, unread. Gradio's own reading turns a file that is no
    image, or a decompression bomb, into a bare "Error" before any handler runs; `read_image` reads it with the
    dataset loader's checks instead and says in one line what is wrong. (An instance's method, not a subclass:
    Gradio writes a .pyi stub beside the source of every component class defined.)"""
    read = image.preprocess

    def preprocess(payload):
        if payload is None or payload.path is None:  # nothing, or a data: URL (Gradio decodes those itself)
            return read(payload)
        return payload.path

    image.preprocess = preprocess  # type: ignore[method-assign]
    return image


def read_image(image: str | np.ndarray) -> np.ndarray:
    """The visitor's image as RGB uint8 (H, W, 3): an uploaded file read as a dataset image is (not an image, over
    the pixel limit or too thin: one line saying so), or an array as an API client sends it, checked alike."""
    if isinstance(image, str | Path):
        return load_image(Path(image))
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.size == 0:
        raise DataError(f"your image has shape {image.shape}; upload a picture (png, jpg, …).")
    image = image if image.dtype == np.uint8 else np.clip(image, 0, 255).astype(np.uint8)  # Gradio gives uint8 RGB
    if image.ndim == 3 and image.shape[2] < 3:  # gray, or gray and alpha
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, 2)
    h, w = image.shape[:2]
    if h * w > MAX_PIXELS or min(h, w) < MIN_SIDE or max(h, w) > MAX_ASPECT * min(h, w):
        raise DataError(
            f"your image is {w}x{h} pixels: give at most {MAX_PIXELS:,} pixels, at least {MIN_SIDE} on the short "
            f"side and at most {MAX_ASPECT}:1 (crop or pad it)."
        )
    return image[..., :3]


def prompt_of(kind: str, clicks: list) -> Prompt | None:
    """The SAM-style prompt the clicks make: the last click as a point, the last two as a box's corners."""
    if kind == POINT and clicks:
        return Prompt(point=tuple(map(float, clicks[-1])))
    if kind == BOX and len(clicks) >= 2:
        (x0, y0), (x1, y1) = clicks[-2:]
        return Prompt(box=(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    return None


def marked(picture: np.ndarray, image_hw: tuple[int, int], prompt: Prompt | None, clicks: list = ()) -> np.ndarray:
    """The prompt (and any clicks not yet making one: a box's first corner) drawn on a picture, scaled from the
    image's size to the picture's."""
    if prompt is None and not clicks:
        return picture
    out = Image.fromarray(picture)
    sx, sy = out.width / image_hw[1], out.height / image_hw[0]
    draw = ImageDraw.Draw(out)
    r = max(4, round(min(out.size) / 60))  # a mark that reads at any picture size
    for x, y in [*clicks, *([prompt.point] if prompt and prompt.point else [])]:
        x, y = x * sx, y * sy
        draw.ellipse((x - r, y - r, x + r, y + r), outline=(40, 120, 255), width=max(2, r // 2))
    if prompt is not None and prompt.box:
        x0, y0, x1, y1 = prompt.box
        draw.rectangle((x0 * sx, y0 * sy, x1 * sx, y1 * sy), outline=(40, 120, 255), width=3)
    return np.asarray(out)


def with_clicks(image, kind: str, clicks: list):
    """The visitor's image with the clicks its prompt uses drawn on it (the input shows what the model is asked)."""
    if image is None:
        return gr.update()
    picture = read_image(image)
    kept = clicks[-1:] if kind == POINT else clicks[-2:] if kind == BOX else []
    return marked(picture, picture.shape[:2], None, kept)


@guard
def predict(ws, image, kind, clicks):
    """Baseline and patched predictions of the visitor's image, what changed, and which set was applied."""
    s = need(ws).session
    if image is None:
        raise RedundancyError("upload an image first (png, jpg, …).")
    image = read_image(image)
    prompt = prompt_of(kind, clicks) if s.task.takes_prompts else None
    if s.task.takes_prompts and kind != NONE and prompt is None:
        return None, None, None, "Click the image: one point" + (", then a second corner." if kind == BOX else ".")
    pairs = ws.result.best_pairs if ws.result is not None else []
    base, patched = ws.predict_image(image, prompt, pairs)
    hw, classes = image.shape[:2], s.dataset.classes
    pictures = [marked(s.task.prediction_view(image, out, None, classes), hw, prompt) for out in (base, patched)]
    diff = s.task.difference_view(image, base, patched, None, classes)
    if pairs:
        found = ", ".join(pair_text(p) for p in pairs)
        note = f"Right: with the latest search's set ({found}); {s.backend.weights.label}."
    else:
        note = "No found set yet (run a search): both sides show the model as it is."
    return pictures[0], pictures[1], diff, note


def click(ws, image, kind, clicks, evt: gr.SelectData):
    """A click on the image adds a prompt point (a box keeps the last two), draws it and predicts again."""
    clicks = ([*clicks, tuple(evt.index)])[-2:]
    image = read_image(image) if image is not None else None  # read once: the drawing and the prediction share it
    return (clicks, with_clicks(image, kind, clicks), *predict(ws, image, kind, clicks))


def undo(ws, image, kind, clicks):
    """Take the last click back, redraw and predict again (nothing left: the panes empty, as after Clear)."""
    clicks = clicks[:-1]
    if not clicks:
        return clear(kind, image)
    image = read_image(image) if image is not None else None
    return (clicks, with_clicks(image, kind, clicks), *predict(ws, image, kind, clicks))


def clear(kind: str, image=None) -> tuple:
    """Forget the clicks (a new prompt kind, or Clear): no stale point turns into a box's corner."""
    ask = {POINT: "Click the image: one point.", BOX: "Click the image: two corners of a box."}.get(kind, "")
    return [], with_clicks(image, kind, []), None, None, None, ask


def opened(ws, image, kind):
    """A new image (uploaded, or an example): its own source and no clicks yet, predicted at once."""
    return (image, [], *predict(ws, image, kind, []))


def build() -> SimpleNamespace:
    """The tab's components (layout only; `wire` connects them)."""
    gr.Markdown(
        "Upload an image of your own: the loaded model predicts it as it is (left) and with the latest search's "
        "replacement set (right). For segmentation, pick a prompt and click the image, as in the SAM demo."
    )
    with gr.Row():
        # shows the image with its clicks drawn; the image itself (`your_src`) is what the model reads
        your_img = unread_upload(gr.Image(type="filepath", label="Your image (click it to prompt)",
                                          sources=["upload", "clipboard"], elem_id="your-img", height=320))  # fmt: skip
        with gr.Column():
            your_kind = gr.Radio([POINT, BOX, NONE], value=POINT, label="Prompt (segmentation)", elem_id="your-kind")
            with gr.Row():
                your_btn = gr.Button("Predict", variant="primary", elem_id="your-btn")
                your_undo = gr.Button("Undo click", elem_id="your-undo")
                your_clear = gr.Button("Clear clicks", elem_id="your-clear")
            your_note = gr.Markdown(elem_id="your-note")
            your_examples = gr.Examples(
                EXAMPLES, [your_img], label="Or try an example (the demo domain's)", elem_id="your-examples"
            )
    clicks = gr.State([])
    your_src = gr.State(None)
    with gr.Row():
        your_base = titled_image("As it is", interactive=False, height=300, buttons=[], elem_id="your-base")
        your_patched = titled_image("With the found set", interactive=False, height=300, buttons=[],
                                    elem_id="your-patched")  # fmt: skip
        your_diff = titled_image("What changed", interactive=False, height=300, buttons=[], elem_id="your-diff")
    ui = components(locals())
    ui.your_examples = your_examples
    return ui


def wire(ui: SimpleNamespace) -> None:
    """Connect the tab's components to their handlers."""
    outputs = [ui.your_base, ui.your_patched, ui.your_diff, ui.your_note]
    inputs = [ui.ws, ui.your_src, ui.your_kind, ui.clicks]
    listen(ui.your_btn.click, predict, inputs, outputs, ui.your_note)
    listen(ui.your_img.select, click, inputs, [ui.clicks, ui.your_img, *outputs], ui.your_note)
    listen(ui.your_undo.click, undo, inputs, [ui.clicks, ui.your_img, *outputs], ui.your_note)
    for event in (ui.your_kind.change, ui.your_clear.click):  # a point is not a box's first corner
        event(clear, [ui.your_kind, ui.your_src], [ui.clicks, ui.your_img, *outputs])
    ui.your_img.clear(lambda: (None, []), None, [ui.your_src, ui.clicks])  # no image: nothing to predict or click
    opened_out = [ui.your_src, ui.clicks, *outputs]
    listen(ui.your_img.upload, opened, [ui.ws, ui.your_img, ui.your_kind], opened_out, ui.your_note)
    listen(ui.your_examples.load_input_event.then, opened, [ui.ws, ui.your_img, ui.your_kind], opened_out,
           ui.your_note)  # fmt: skip
