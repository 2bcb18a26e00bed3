"""The "Your image" tab: an image of the visitor's own through the loaded model, as it is and with the latest
search's replacement set, side by side with what changed; segmentation takes a click (a point) or two clicks (a
box) as in the SAM demo."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw

from ...data import load_image
from ...data.images import MAX_ASPECT, MAX_PIXELS, MIN_SIDE
from ...data.prompts import Prompt
from ...errors import DataError, RedundancyError
from ...replace import pair_text
from ..common import components, guard, listen, need

POINT, BOX, NONE = "point (one click)", "box (two clicks: corners)", "no prompt"
RESETS = ("your_base", "your_patched", "your_diff", "your_note")


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


def marked(picture: np.ndarray, image_hw: tuple[int, int], prompt: Prompt | None) -> np.ndarray:
    """The prompt drawn on a prediction picture (scaled from the image's size to the picture's)."""
    if prompt is None:
        return picture
    out = Image.fromarray(picture)
    sx, sy = out.width / image_hw[1], out.height / image_hw[0]
    draw = ImageDraw.Draw(out)
    if prompt.point:
        x, y = prompt.point[0] * sx, prompt.point[1] * sy
        draw.ellipse((x - 5, y - 5, x + 5, y + 5), outline=(40, 120, 255), width=3)
    if prompt.box:
        x0, y0, x1, y1 = prompt.box
        draw.rectangle((x0 * sx, y0 * sy, x1 * sx, y1 * sy), outline=(40, 120, 255), width=3)
    return np.asarray(out)


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
    """A click on the image adds a prompt point (a box keeps the last two) and predicts again."""
    clicks = ([*clicks, tuple(evt.index)])[-2:]
    return (clicks, *predict(ws, image, kind, clicks))


def clear(kind: str) -> tuple:
    """Forget the clicks (a new prompt kind, or Clear): no stale point turns into a box's corner."""
    ask = {POINT: "Click the image: one point.", BOX: "Click the image: two corners of a box."}.get(kind, "")
    return [], None, None, None, ask


def build() -> SimpleNamespace:
    """The tab's components (layout only; `wire` connects them)."""
    gr.Markdown(
        "Upload an image of your own: the loaded model predicts it as it is (left) and with the latest search's "
        "replacement set (right). For segmentation, pick a prompt and click the image, as in the SAM demo."
    )
    with gr.Row():
        your_img = unread_upload(gr.Image(type="filepath", label="Your image (click it to prompt)",
                                          sources=["upload", "clipboard"], elem_id="your-img", height=320))  # fmt: skip
        with gr.Column():
            your_kind = gr.Radio([POINT, BOX, NONE], value=POINT, label="Prompt (segmentation)", elem_id="your-kind")
            with gr.Row():
                your_btn = gr.Button("Predict", variant="primary", elem_id="your-btn")
                your_clear = gr.Button("Clear clicks", elem_id="your-clear")
            your_note = gr.Markdown(elem_id="your-note")
    clicks = gr.State([])
    with gr.Row():
        your_base = gr.Image(label="As it is", interactive=False, height=300, buttons=[], elem_id="your-base")
        your_patched = gr.Image(label="With the found set", interactive=False, height=300, buttons=[],
                                elem_id="your-patched")  # fmt: skip
        your_diff = gr.Image(label="What changed", interactive=False, height=300, buttons=[], elem_id="your-diff")
    return components(locals())


def wire(ui: SimpleNamespace) -> None:
    """Connect the tab's components to their handlers."""
    outputs = [ui.your_base, ui.your_patched, ui.your_diff, ui.your_note]
    inputs = [ui.ws, ui.your_img, ui.your_kind, ui.clicks]
    listen(ui.your_btn.click, predict, inputs, outputs, ui.your_note)
    listen(ui.your_img.select, click, inputs, [ui.clicks, *outputs], ui.your_note)
    ui.your_img.upload(lambda: [], None, ui.clicks)  # a new image: its own clicks
    for event in (ui.your_kind.change, ui.your_clear.click):  # a point is not a box's first corner
        event(clear, ui.your_kind, [ui.clicks, *outputs])
    listen(ui.your_img.upload, predict, [ui.ws, ui.your_img, ui.your_kind, ui.clicks], outputs, ui.your_note)
