"""Callback-level tests of the app's tabs with sam_tiny (random weights) and the sample data: the handlers called in
this process, no browser. Those that load, sweep or search take more than a few seconds on 2 cores: `slow`."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest

from redundancy.data import load_image
from redundancy.report.viz import MOSAIC_BAR
from redundancy.ui import common
from redundancy.ui.tabs import ablation, channels, data, figures, guide, results, search

from ..conftest import load_app


def _load(n_search=4, model="sam_tiny", source=None):
    return load_app(model=model, source=source, n_search=n_search)


@pytest.fixture(scope="module")
def ws():
    workspace = _load()[0]
    yield workspace
    workspace.close()
    assert not workspace.dir.exists()  # closing a session deletes its folder


@pytest.mark.slow
def test_load_reports_counts_and_the_random_weights_badge(ws):
    loaded, badge, info, gallery = _load()
    # the other tabs refresh themselves after Load (`common.on_session`): the same handlers, called here
    estimate, metric = search.search_estimate(loaded, "auto", "auto", 10), search.task_metric(loaded)
    sweep, picker = ablation.sweep_estimate(loaded), common.image_picker(loaded)
    assert len(picker["choices"]) == 4 and picker["value"] == loaded.showcase
    assert "RANDOM WEIGHTS" in badge and "random weights (seed 0)" in badge
    assert "**32** images" in info and "search set **4**" in info and "Next:" in info and estimate in info
    assert len(gallery["value"]) == 4 and gallery["value"][0][0].ndim == 3 and "tinted green" in gallery["label"]
    assert "992 pairs" in estimate and "65,280" in estimate and "in all" in estimate
    assert [c[1] for c in metric["choices"]] == ["miou", "loss"] and metric["value"] == "miou"  # the task's own
    assert metric["choices"][0][0] == "mIoU" and "256 channels" in sweep


def test_explorer_grid_and_channel_pick(ws):
    mosaic, order, story, first, big, note = channels.explore(ws, 0, "activation spread (std)")
    assert first == order[0] and big.ndim == 3 and "spread" in note
    assert mosaic.shape == (16 * (channels.MOSAIC_TILE + 14) + MOSAIC_BAR, 16 * channels.MOSAIC_TILE, 3)  # + colour bar
    from redundancy.report.viz import mosaic_cell

    assert mosaic_cell(3 * 48 + 5, 62 + 20) == 19  # row 1, column 3
    assert sorted(order) == list(range(256)) and story["visible"] is False  # no sweep yet
    channel, enlarged = channels.pick_channel(ws, 0, 7)
    assert channel == 7 and enlarged.ndim == 3 and enlarged.shape[1] > enlarged.shape[0] - 24  # image + colour bar
    with pytest.raises(gr.Error, match="out of range"):
        channels.pick_channel(ws, 0, 300)
    *_, note = channels.explore(ws, 0, "zero-sweep delta")
    assert "needs the zero sweep" in note  # said, not silently another order
    mosaic, order, _, channel, enlarged, _ = channels.show_image(ws, 1, "index", 7)  # another image: channel 7 kept
    assert channel == 7 and order == list(range(256)) and enlarged.ndim == 3
    assert not np.array_equal(mosaic, channels.explore(ws, 0, "index")[0])  # the new image's maps


def test_the_teaching_views_open_on_an_image_the_model_does_well_on(ws):
    scores = ws.images_scores(list(range(len(ws.session.search_set))), [None])[0]
    assert scores[ws.showcase] >= np.median(scores)  # not image 0 whatever it scores (#37: 0.00 before and after)
    unrendered = channels.explore(ws, None, "index")[4]  # a picker not rendered yet: the showcase image
    assert np.array_equal(unrendered, channels.explore(ws, ws.showcase, "index")[4])


@pytest.mark.slow
def test_ablation_table_matches_the_engine(ws):
    table, before, after, diff, note, kept = ablation.run_ablation(ws, "zero", "6,216", 0)
    from redundancy.engine import ablate
    from redundancy.replace import Edit

    base, rows = ablate(ws.session, [Edit("zero", 6), Edit("zero", 216)])
    data = table["data"]
    assert table["headers"] == ["edit", "mIoU", "change", "95% interval", "loss", "verdict"]  # Table 1, as the CLI
    assert [r[0] for r in data] == ["baseline", "zero 6", "zero 216"]
    assert data[2][2] == f"{rows[1].delta_score:+.2f}" and data[0][1] == f"{base.score:.2f}"
    assert data[2][3] == f"{rows[1].delta_lo:+.2f} to {rows[1].delta_hi:+.2f}" and data[2][5] == rows[1].verdict
    assert data[0][2:4] == ["", ""] and data[0][5] == "" and rows[1].verdict in ("useful", "redundant", "harmful")
    assert "bootstrap interval" in note
    assert before.shape == after.shape and before.ndim == 3 and diff.ndim == 3 and "random weights" in note
    for bad, message in (("300", "out of range"), ("x", "not a channel"), ("", "at least one")):
        with pytest.raises(gr.Error, match=message):
            ablation.run_ablation(ws, "zero", bad, 0)
    with pytest.raises(gr.Error, match="pairs like"):
        ablation.run_ablation(ws, "swap", "4", 0)
    # kinds mixed in one run, as `ablate`'s flags mix them, added to the table until it is cleared
    table, *_, kept = ablation.run_ablation(ws, "zero", "swap 1:2; scale 6:0.5; zero 216", 0, kept)
    edits = [r[0] for r in table["data"]]
    assert edits == ["baseline", "zero 6", "swap 1<->2", "scale 6x0.5", "zero 216"], edits  # run again: moved last
    assert len(kept) == 4 and all(r[5] for r in table["data"] if r[0].startswith("zero"))
    cleared, kept = ablation.clear_table(ws)
    assert cleared["data"] == [] and kept == [] and cleared["headers"][1] == "mIoU"


@pytest.mark.slow
def test_sweep_then_search_then_results_and_apply(ws, tmp_path):
    frames = list(ablation.sweep(ws))
    assert len(ws.sweep) == 256 and "256/256" in frames[-1][1]
    assert len(frames[-1][0].data[0].x) == 256  # the last frame draws every bar, whenever the one before it drew
    _, _, story, _, _, _ = channels.explore(ws, 0, "zero-sweep delta")
    assert story["value"] is not None and story["visible"]
    outs = list(search.search(ws, 3, "miou", "every:32", "every:32", 0))
    fig, status, top, combos, best, estimate, start, stop, offer = outs[-1]
    assert "Search finished" in status and len(top) == 3 and "Best set" in best
    assert len(fig.data) == 2  # the finished heatmap drawn, with its top N's markers
    assert start["interactive"] and not stop["interactive"]  # Start back, Cancel off once it is done
    assert not outs[0][6]["interactive"] and outs[0][7]["interactive"]  # while it runs: Start off, Cancel on
    assert np.isfinite(ws.gain).sum() == 56
    summary, gallery, files = results.show_results(ws)
    assert "random weights" in summary and len(gallery) == 8
    names = {f.rsplit("/", 1)[-1] for f in files}
    assert {"replacements.json", "pair_scores.npy", "pair_scores.csv", "combinations.csv", "predictions.zip"} <= names
    repl = next(f for f in files if f.endswith("replacements.json"))
    before = results.apply_estimate(ws)  # the line under Apply: a range for the loaded dataset's images, read here
    assert "the loaded dataset's 32 images" in before and re.search(r"\*\*[\d.]+(-[\d.]+)? (ms|s|min)\*\*", before), (
        before
    )
    assert ws.stage_rates["apply writes"] > 0  # writing one image's predictions, timed
    msg, previews, zip_path = results.apply_uploaded(ws, repl, None)
    assert ws.stage_rates["apply writes"] > 0  # the apply's own rate replaced the one-image probe
    upload = tmp_path / "imgs.zip"
    with zipfile.ZipFile(upload, "w") as zf:
        zf.writestr("images/a.png", b""), zf.writestr("images/b.jpg", b""), zf.writestr("notes.txt", b"")
    assert "the upload (up to 2 images" in results.apply_estimate(ws, str(upload))
    assert "32 images" in msg and "mIoU" in msg and len(previews) == 12 and "mIoU" in previews[1][1]
    n_search = len(ws.session.search_set)  # the search images scored apart from the rest: said, not hidden
    assert f"On the {n_search} search images" in msg and "optimistic" in msg
    assert f"On the other {32 - n_search} images" in msg and "the number for new images" in msg
    with zipfile.ZipFile(zip_path) as zf:
        assert len([n for n in zf.namelist() if n.startswith("masks/")]) == 32
    previews, fig_zip, _ = figures.make_figures(ws, ["png", "svg"])
    with zipfile.ZipFile(fig_zip) as zf:
        names = zf.namelist()
    assert {"pair_heatmap.png", "pair_heatmap.svg", "ablation.png", "pair_heatmap.txt"} <= set(names)
    assert len(previews) == sum(n.endswith(".png") for n in names)
    steps, diagram, fmap, one, heat, top_rows, combo = guide.teach(ws)
    assert "56 ordered pairs" in steps and "All 65,280 pairs" in steps and "ms per image" in steps and len(one) == 2
    assert "aria-label='the pipeline'" in diagram and "256 channel maps" in diagram
    assert fmap.shape == (256, 256, 3) and len(top_rows) == 3 and heat is not None
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(gr.Error, match="not valid JSON"):
        results.apply_uploaded(ws, str(bad), None)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"model": "sam_vit_b", "pairs": []}))
    with pytest.raises(gr.Error, match="sam_vit_b"):
        results.apply_uploaded(ws, str(other), None)


@pytest.mark.slow
def test_compare_modes_reuses_the_exact_search_and_writes_its_table(ws):
    *_, (_, status, top, *_) = search.search(ws, 2, "miou", "every:64", "every:64", 0)
    assert "Search finished" in status
    *_, (status, table, note, button) = search.compare(ws, 2, "miou", "every:64", "every:64", 0, 4)
    assert button["interactive"]
    assert "Comparison finished" in status and ws.compared_with_search and "no second full scan" in note
    assert [r[0] for r in table] == ["exact", "taylor", "halving"] and table[0][1] == "2/2"
    combos = ws.result.combos
    assert table[0][4] == round(combos.best.score if combos.best else combos.baseline_score, 4)  # the search's best set
    assert table[1][3] == 4  # taylor rescored its 4 candidates exactly
    assert "finished search's scan" in table[0][8] and table[1][8] == "scored 4 of 12 pairs exactly"  # read in words
    assert all(isinstance(row[8], str) and row[8] for row in table)
    saved = json.loads((ws.dir / "modes" / "modes.json").read_text())
    assert [m["mode"] for m in saved["modes"]] == ["exact", "taylor", "halving"] and "random" in saved["weights_label"]
    *_, (status, table, note, _) = search.compare(ws, 2, "miou", "every:64", "0-3", 0, 4)  # another scope: fresh scan
    assert not ws.compared_with_search and "fresh exact scan" in note and table[0][3] == 4 * 4 - 1
    assert table[0][8] == "timed just now"
    # "How it works" still shows the finished search's heatmap, not the comparison's last (sparse) map
    heat = guide.teach(ws)[4]
    z = np.array(heat.data[0].z, dtype=float)
    gain = ws.result.scores.gain
    assert z.shape == (4, 4) and np.allclose(z[np.isfinite(z)], gain[::64, ::64][np.isfinite(gain[::64, ::64])])


def test_nothing_loaded_gives_a_message_not_a_traceback(capsys):
    with pytest.raises(gr.Error, match="Load"):
        channels.explore(None, 0, "index")
    # a search that cannot start warns once and changes nothing: the page keeps every finished output
    with pytest.warns(UserWarning, match="Load"):
        assert list(search.search(None, 3, "miou", "auto", "auto", 0)) == [[gr.update()] * 9]
    assert common.cancel(None) == gr.update()  # a finished job's status is not overwritten
    assert "Nothing is running" in capsys.readouterr().out


def test_a_search_images_box_out_of_range_or_empty_gets_one_line():
    # a number box a visitor can empty or type anything into: Load names the box and the range, the line under it
    # asks (Gradio's own range check would show a red error badge instead)
    for typed, shows in ((None, "it is empty"), (80, "it shows 80"), (0, "it shows 0")):
        with pytest.raises(gr.Error, match=f"Search-set images: type a whole number from 1 to 50 .{shows}."):
            load_app(n_search=typed)
        line = data.load_summary("sam_tiny", data.WEIGHTS[0], data.BUNDLED, typed)
        assert line.endswith("⚠ search images: type 1 to 50.")
    assert data.load_summary("sam_tiny", data.WEIGHTS[0], data.BUNDLED, 7).endswith(", 7 search images.")
    assert data.LoadForm(seed=None).config().seed == 0  # an emptied seed box: the default seed


def test_bad_search_scope_is_reported(ws):
    with pytest.warns(UserWarning, match="out of range"):
        assert list(search.search(ws, 3, "miou", "0-300", "auto", 0)) == [[gr.update()] * 9]
    assert "⚠" in search.search_estimate(ws, "every:x", "auto", 3)


@pytest.mark.slow
def test_sam2_runs_every_tab():
    ws = _load(3, "sam2_tiny")[0]
    try:
        assert ws.session.backend.name == "sam2_tiny"
        mosaic, *_ = channels.explore(ws, 0, "index")
        assert mosaic.shape[1] == 16 * channels.MOSAIC_TILE
        table, *_ = ablation.run_ablation(ws, "replace", "3:7", 0)
        assert table["data"][1][0] == "replace 3<-7"
        *_, (_, status, top, _, best, *_) = search.search(ws, 2, "miou", "every:64", "every:64", 0, "halving")
        assert "Search finished" in status and len(top) == 2 and "mode halving" in best
        summary, gallery, files = results.show_results(ws)
        assert "Best set" in summary and any(f.endswith("predictions.zip") for f in files)
    finally:
        ws.close()


@pytest.mark.slow
@pytest.mark.parametrize("source, metric", [(data.CLASSIFY_SAMPLE, "accuracy"), (data.DEPTH_SAMPLE, "rmse")])
def test_dinov2_runs_every_tab(source, metric):
    """DINOv2 on both samples: explorer (patch-token maps), ablation and sweep in the task's metric, search,
    results and downloads, figures, how it works."""
    ws, badge, info, gallery = _load(10, "dinov2_tiny", source)
    try:
        metric_update = search.task_metric(ws)  # the Search tab's own refresh after Load
        assert metric_update["value"] == metric and "head:" in badge and "Head split" in info
        assert gallery["value"][0][0].ndim == 3
        mosaic, order, _, first, big, _ = channels.explore(ws, 0, "index")
        assert sorted(order) == list(range(64)) and big.ndim == 3
        table, before, after, diff, note, _ = ablation.run_ablation(ws, "zero", "6,20", 0)
        label = ws.metric().label
        assert table["headers"][1] == label and len(table["data"]) == 3 and label in note and before.ndim == 3
        frames = list(ablation.sweep(ws))
        assert len(ws.sweep) == 64 and "64/64" in frames[-1][1]
        *_, (_, status, top, _, best, *_) = search.search(ws, 3, metric, "every:8", "every:8", 0)
        assert "Search finished" in status and len(top) == 3 and f"): {label} " in best
        summary, shown, files = results.show_results(ws)
        names = {f.rsplit("/", 1)[-1] for f in files}
        assert {"head.pt", "replacements.json", "predictions.zip"} <= names and len(shown) == 16
        previews, fig_zip, _ = figures.make_figures(ws, ["png"])
        assert any(p[1].startswith("Gain (") for p in previews)  # the heatmap's own caption
        steps, _, fmap, one, heat, top_rows, combo = guide.teach(ws)
        assert "head" in steps and len(one) == 2 and fmap.shape == (256, 256, 3)
    finally:
        ws.close()


@pytest.mark.slow
def test_a_channel_edited_live_follows_the_slider_with_the_images_own_score(ws):
    from redundancy.replace import Edit

    before, after, diff, note = channels.live_edit(ws, 0, 5, channels.SCALE, 1.0, 0)
    assert before.shape == after.shape and diff.ndim == 3 and "(+0.00)" in note  # scale 1 changes nothing
    base, zeroed = ws.image_scores(0, [None, Edit("zero", 5)])
    *_, note = channels.live_edit(ws, 0, 5, channels.SCALE, 0.0, 0)  # scale 0 is zeroing the channel
    assert f"mIoU {base:.2f} → **{zeroed:.2f}**" in note
    *_, note = channels.live_edit(ws, 0, 5, channels.REPLACE, 1.0, 9)
    assert "replace 5<-9" in note
    with pytest.raises(gr.Error, match="out of range"):
        channels.live_edit(ws, 0, 5, channels.REPLACE, 1.0, 999)


def test_your_own_image_with_a_click_prompt_and_the_found_set(ws, tmp_path):
    from redundancy.ui.tabs import yours

    image = np.zeros((90, 120, 3), np.uint8)
    image[20:60, 30:80] = 220
    src, clicks, *_, note = yours.opened(ws, image, yours.POINT)  # a new image: its own source, no clicks yet
    assert src is image and clicks == [] and "Click the image" in note  # a point prompt waits for its click
    clicks, shown, base, patched, diff, note = yours.click(
        ws, image, yours.POINT, [], gr.SelectData(None, {"index": [50, 40], "value": None})
    )
    assert clicks == [(50, 40)] and base.shape == patched.shape and diff.ndim == 3
    assert shown.shape == image.shape and (shown != image).any() and (shown[40, 50] == image[40, 50]).all()
    assert "latest search's set" in note or "No found set yet" in note
    clicks, shown, *_, note = yours.click(
        ws, image, yours.BOX, clicks, gr.SelectData(None, {"index": [90, 70], "value": None})
    )
    assert yours.prompt_of(yours.BOX, clicks).box == (50.0, 40.0, 90.0, 70.0)
    clicks, shown, *pictures, note = yours.undo(ws, image, yours.BOX, clicks)  # back to one corner
    assert clicks == [(50, 40)] and "second corner" in note and (shown != image).any()
    clicks, shown, *pictures, note = yours.clear(yours.BOX, image)  # point -> box (or Clear): no stale corner
    assert clicks == [] and pictures == [None] * 3 and "two corners" in note and (shown == image).all()
    clicks, *_, note = yours.click(ws, image, yours.BOX, clicks, gr.SelectData(None, {"index": [9, 9], "value": None}))
    assert clicks == [(9, 9)] and "second corner" in note  # one corner so far: it waits for the other
    assert yours.undo(ws, image, yours.BOX, clicks)[0] == []  # the last click taken back: nothing asked yet
    assert len(yours.EXAMPLES) == 3 and all(load_image(Path(p)).ndim == 3 for p in yours.EXAMPLES)
    with pytest.raises(gr.Error, match="upload an image"):
        yours.predict(ws, None, yours.POINT, [])


def test_a_cancelled_search_is_said_so_where_the_previous_result_shows(ws):
    from redundancy.ui.tabs.results import results_text

    *_, (_, status, *_) = search.search(ws, 2, "miou", "every:64", "every:64", 0)
    assert "Search finished" in status and ws.result is not None
    job = ws.start_search(search.settings_from(3, "miou", "all", "all"))
    job.cancel.set()
    job.thread.join(60)
    text = results_text(ws)
    assert "Your latest search" in text and "was cancelled" in text and "previous finished search" in text
    assert "Best set" in text  # the previous one is still there, said to be the previous one


def test_a_comparison_row_that_could_mislead_says_what_it_means():
    from types import SimpleNamespace as Row

    kept_one = search.mode_reading(Row(mode="halving", scored=1, top_n=6), 240, True)
    assert "kept 1 pair, fewer than top N = 6" in kept_one  # why its overlap can only be 0 or 1 of 6
    every = search.mode_reading(Row(mode="taylor", scored=240, top_n=6), 240, True)
    assert "scored all 240 pairs exactly" in every  # its time is exact's work, not screening's saving
