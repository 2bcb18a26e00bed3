"""The Results tab: the latest search's summary, baseline vs patched pictures, the run's files to download,
applying a saved replacement set to new images, and pushing the run to the Hub with the user's own token."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from ...errors import RedundancyError
from ...interactive.workspace import Workspace
from ...replace import pair_text
from ...report.share import push_allowed, push_token
from ...report.summary import summary_markdown
from ...runs.rundir import HEAD, RunDir
from ..common import busy_line, components, guard, listen, need, on_session, score_text, time_range

DOWNLOADS = (
    "replacements.json",
    "pair_scores.npy",
    "pair_scores.csv",
    "combinations.csv",
    "topn.json",
    "config.json",
    HEAD,
)  # fmt: skip  (a run's files a visitor may download, those it has)
RESETS = ("summary", "res_gallery", "downloads", "apply_md", "apply_gallery", "apply_out")  # what a new Load empties


def ci_range(conf: dict | None, digits: int = 3) -> str:
    """A top pair's 95% interval as a table cell, at `digits` decimals ('n/a' for a run resumed from older state)."""
    return "n/a" if conf is None else f"{conf['lo']:+.{digits}f}, {conf['hi']:+.{digits}f}"


def stale_notice(ws: Workspace) -> str:
    """A line saying that the latest search is not the one shown (running, cancelled or failed), else ''."""
    last = ws.last_search
    if not last or last["ended"] == "finished":
        return ""
    when = f"started {last['started']}, {last['pairs']:,} pairs"
    state = "is still running" if last["ended"] is None else f"was {last['ended']} ({last.get('at', '')})"
    what = "the previous finished search is shown below" if ws.result is not None else "nothing finished to show"
    return f"⚠ **Your latest search ({when}) {state}**: {what}.\n\n"


def results_text(ws: Workspace) -> str:
    """The latest finished search's summary (the CLI's text, as a markdown list), with a notice when a later
    search did not finish, and its run folder's name."""
    r = ws.result
    notice = stale_notice(ws)
    if r is None:
        return notice + "No finished search yet: run one on the **Search** tab."
    pairs = ", ".join(pair_text(p).replace("<-", "←") for p in r.best_pairs)
    pairs = pairs or "empty set (no subset beat the baseline)"
    st = r.settings
    scope = (
        f"{st.mode} search, top {st.top_n}, sources `{st.sources}`, targets `{st.targets}`, set chosen: {st.select}; "
        f"run folder `{ws.run_dir.name}`"
    )
    return (
        notice
        + f"**Best set**: {pairs}  \n<small>{scope}</small>\n\n"
        + summary_markdown(r, ws.metric(r.settings.metric))
    )


@guard
def show_results(ws):
    """The Results tab's summary, baseline vs patched pictures with each image's score, and the downloads."""
    if ws is None or ws.result is None:
        return results_text(ws) if ws else "No finished search yet.", [], None
    s = ws.session
    zip_path = ws.export_predictions()
    gallery = []
    m = ws.metric(ws.result.settings.metric)
    shown = list(range(min(8, len(s.search_set))))
    scores = ws.images_scores(shown, [None, ws.result.best_pairs])  # each image alone, one batched pass
    best = ws.result.best_pairs
    for k, before, after in zip(shown, ws.prediction_views(shown), ws.prediction_views(shown, pairs=best)):
        name = s.search_set.samples[k].name
        gallery += [
            (before, f"{name} baseline {m.label} {score_text(m, scores[0, k])}"),
            (after, f"{name} patched {m.label} {score_text(m, scores[1, k])}"),
        ]
    run = RunDir(ws.run_dir)
    files = [str(run.path / f) for f in DOWNLOADS if run.has(f)] + [str(zip_path)]
    return results_text(ws), gallery, files


@guard
def apply_uploaded(ws, repl_file, images_zip):
    """Apply an uploaded replacement set to uploaded images (or the loaded dataset): its score, a preview, a zip."""
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
    n = len(res.pairs)
    score = res.score_text()
    what = f"Applied {n} pair{'' if n == 1 else 's'} to {res.images} images" + (f": {score}" if score else "")
    caveat = ""
    if res.split:  # the loaded dataset: its search images scored apart, the set having been chosen on them
        d = res.digits
        (n_s, b_s, p_s), (n_o, b_o, p_o) = res.split["search"], res.split["other"]
        caveat = (
            f" On the {n_s} search images: {b_s:.{d}f} -> {p_s:.{d}f} ({p_s - b_s:+.{d}f}; optimistic, the set was "
            f"chosen on them). On the other {n_o} images: {b_o:.{d}f} -> {p_o:.{d}f} ({p_o - b_o:+.{d}f}): the "
            "number for new images."
        )
    elif images_zip is None and score:  # the loaded dataset, all of it searched (or none: another model's set)
        caveat = (
            f" These images include the {len(s.search_set)} search images: where this set was found on them, part "
            "of the gain is the search's own choice (optimistic). The held-out check (Search, Results) is the number "
            "for new images; upload images the search never saw to measure one here."
        )
    return f"{what} ({s.backend.weights.label}).{caveat}", res.previews, str(res.zip_path)


def apply_estimate(ws, images_zip=None) -> str:
    """The apply's time here, before it starts: on the loaded dataset, or on the uploaded images."""
    if ws is None or ws.session is None or ws.remote:  # on ZeroGPU a GPU worker applies: this CPU's rates say nothing
        return ""
    n, unencoded = ws.apply_images(Path(images_zip) if images_zip else None)  # an upload's zip read once
    what = f"the loaded dataset's {n} images" if not images_zip else f"the upload (up to {n} images, masks counted)"
    took = time_range(ws, ws.apply_seconds(n, unencoded))
    return f"Applying a set to {what} takes {took} here.{busy_line(ws)}"


@guard
def share_run(ws, repo, private):
    """Push the latest run to the Hub with the user's own token (`Workspace.push` refuses where that is not allowed)."""
    url = need(ws).push(repo, bool(private))
    return f"Pushed to [{url}]({url}) ({'private' if private else 'public'})."


def build() -> SimpleNamespace:
    """The Results tab's components (layout only; `wire` connects them)."""
    refresh = gr.Button("Show results and prepare downloads", variant="primary", elem_id="results-btn")
    summary = gr.Markdown(elem_id="summary")
    res_gallery = gr.Gallery(
        label="Baseline vs patched, each with its own score (GT outline in white)",
        columns=4,
        height=360,
        object_fit="contain",
        elem_id="res-gallery",
    )
    downloads = gr.File(
        label="Downloads", file_count="multiple", interactive=False, elem_id="downloads", elem_classes="out"
    )
    gr.Markdown("### Apply a saved replacement set to new images")
    with gr.Row():
        repl_in = gr.File(label="replacements.json", file_types=[".json"], height=150, elem_id="repl-in")
        imgs_in = gr.File(label="Images .zip (empty = the loaded dataset)", file_types=[".zip"], height=150)
    apply_btn = gr.Button("Apply", elem_id="apply-btn")
    apply_est = gr.Markdown(elem_id="apply-estimate")
    apply_md = gr.Markdown(elem_id="apply-md")
    apply_gallery = gr.Gallery(
        label="Applied: baseline vs patched", columns=4, height=300, object_fit="contain", elem_id="apply-gallery"
    )
    apply_out = gr.File(label="Patched predictions (.zip)", interactive=False, elem_classes="out")
    if push_allowed():  # only with the user's own Hub token; elsewhere no control and no endpoint (`wire`)
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
    else:  # say why there is no push here, and the way to one, rather than leave a visitor looking for it
        try:
            push_token()
        except RedundancyError as e:
            share_off = gr.Markdown(
                f"### Share this run on the Hugging Face Hub\n{str(e)[0].upper()}{str(e)[1:]} The downloads above "
                "hold the run; `python -m redundancy push RUN OWNER/NAME` pushes it from your own machine.",
                elem_id="share-off",
            )
    return components(locals())


def wire(ui: SimpleNamespace) -> None:
    """Connect the Results tab's components to their handlers."""
    shown = listen(ui.refresh.click, show_results, [ui.ws], [ui.summary, ui.res_gallery, ui.downloads], ui.summary)
    listen(shown.then, apply_estimate, [ui.ws, ui.imgs_in], ui.apply_est, api_visibility="private")  # after a search
    apply_out = [ui.apply_md, ui.apply_gallery, ui.apply_out]
    # A failed apply empties the last apply's previews and zip: beside the error they would read as its result
    applied = listen(ui.apply_btn.click, apply_uploaded, [ui.ws, ui.repl_in, ui.imgs_in], apply_out, ui.apply_md,
                     clear=apply_out[1:])  # fmt: skip
    listen(applied.then, apply_estimate, [ui.ws, ui.imgs_in], ui.apply_est, api_visibility="private")  # its own rate
    listen(ui.imgs_in.change, apply_estimate, [ui.ws, ui.imgs_in], ui.apply_est, api_visibility="private")
    on_session(ui, lambda ws: {ui.apply_est: apply_estimate(ws)}, [ui.ws], [ui.apply_est])
    if hasattr(ui, "share_btn"):  # built only where pushing is allowed: on a Space the endpoint does not exist
        listen(ui.share_btn.click, share_run, [ui.ws, ui.share_repo, ui.share_private], ui.share_md, ui.share_md)
