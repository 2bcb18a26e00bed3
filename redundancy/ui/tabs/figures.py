"""The Figures tab: publication figures of the latest search (PNG, SVG, PDF with captions) and a zip of them."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from ..common import components, guard, listen, need

RESETS = ("fig_gallery", "fig_zip", "fig_note")  # what a new Load empties


@guard
def make_figures(ws, formats):
    pngs, zip_path = need(ws).render_figures(tuple(formats) or ("png",))
    gallery = [(str(p), caption_of(p)) for p in pngs]
    return gallery, str(zip_path), f"{len(pngs)} figures of the latest search; each caption file is in the zip."


def caption_of(png) -> str:
    """A figure's caption (its .txt beside it, written by `report.figures`), else its name."""
    txt = png.with_suffix(".txt")
    return txt.read_text().strip() if txt.is_file() else png.stem.replace("_", " ")


def build() -> SimpleNamespace:
    """The Figures tab's components (layout only; `wire` connects them)."""
    gr.Markdown(
        "Publication figures of the latest search (PNG 300 dpi, SVG, PDF, each with a caption "
        "file). The same files come from `python -m redundancy figures RUN --out DIR`."
    )
    fig_formats = gr.CheckboxGroup(["png", "svg", "pdf"], value=["png", "svg", "pdf"], label="Formats")
    fig_btn = gr.Button("Render figures", variant="primary", elem_id="figures-btn")
    fig_gallery = gr.Gallery(label="Previews", columns=3, height=420, object_fit="contain")
    fig_note = gr.Markdown(elem_id="figures-note")
    fig_zip = gr.File(label="All figures (.zip)", interactive=False, elem_id="figures-zip", elem_classes="out")
    return components(locals())


def wire(ui: SimpleNamespace) -> None:
    """Connect the Figures tab's components to their handlers."""
    listen(
        ui.fig_btn.click, make_figures, [ui.ws, ui.fig_formats], [ui.fig_gallery, ui.fig_zip, ui.fig_note], ui.fig_note
    )
