"""Real-browser tests: app.py on 127.0.0.1 driven through Debian's Chromium with Playwright.

Each test is its own visitor (its own browser context, so its own app session) starting from a first visit; what it
needs first (a loaded model, a finished search) it does in its own page, at a small size (`loaded`, `searched`).

Screenshots land in $REDUNDANCY_SHOTS (default: redundancy-screenshots/ under the system's temporary folder), for a
person to look at; never in the repository.
"""

from __future__ import annotations

import io
import json
import re
import urllib.request
import zipfile

import pytest

from ..conftest import SHOTS
from .browser import (
    choose_model,
    fill,
    load,
    needs_chromium,
    pairs,
    record,
    record_from_load,
    recorded,
    search,
    tab,
    text,
    visitor,
    wait_recorded,
    wait_text,
)

pytestmark = [needs_chromium, pytest.mark.browser]
DESKTOP = {"width": 1280, "height": 1000}
N_SEARCH = 8  # search images of the tests that need a loaded model but not the first visitor's defaults
SCOPE, TOP_N = "every:32", 3  # 8 channels: 56 ordered pairs, 7 subsets


@pytest.fixture
def page(browser, app_url):
    """A first visit at a desktop width."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    with visitor(browser, app_url, DESKTOP) as pg:
        yield pg


@pytest.fixture
def loaded(page):
    """A first visit that has loaded the demo model on a few search images."""
    load(page, n_search=N_SEARCH)
    return page


@pytest.fixture
def searched(loaded):
    """A loaded page with a finished search of `SCOPE`, top `TOP_N`."""
    search(loaded, SCOPE, TOP_N)
    return loaded


def download(href: str) -> bytes:
    return urllib.request.urlopen(href, timeout=30).read()


def test_1_load_opens_on_the_demo_model_and_a_demo_domain(page):
    assert not page.get_by_text("Dataset .zip").is_visible()  # upload boxes show only when chosen
    page.screenshot(path=SHOTS / "0-first-visit.png", full_page=True)
    info = load(page)  # the defaults a first visitor gets
    assert "120" in info and "search set 50" in info and "held-out 70" in info
    assert "DEMO MODEL" in page.content() and "not SAM" in page.content()
    page.screenshot(path=SHOTS / "1-model-data.png", full_page=True)


def test_2_explorer_grid_renders(loaded):
    page = loaded
    tab(page, "Channels")
    page.locator("#show-btn").click()
    img = page.locator("#mosaic img")
    img.wait_for()
    page.wait_for_function(
        "() => { const i = document.querySelector('#mosaic img'); return i && i.complete && i.naturalWidth > 500; }"
    )
    page.locator("#live-before img").wait_for()  # the live edit of the enlarged channel shows at once
    assert "on this image" in wait_text(page, "live-note", "on this image")
    # click the tile of channel 19 (row 1, column 3 of the 16-wide grid, index order) to enlarge it
    box = img.bounding_box()
    scale = img.evaluate("i => i.naturalWidth") / box["width"]
    x, y = (3 * 48 + 24) / scale, (1 * (48 + 14) + 14 + 24) / scale
    img.click(position={"x": x, "y": y})
    page.wait_for_function("() => document.querySelector('#channel input').value === '19'")
    page.screenshot(path=SHOTS / "2-explorer.png", full_page=True)


def test_3_ablation_table_shows_numbers(loaded):
    page = loaded
    tab(page, "Ablation")
    page.locator("#ablate-btn").click()
    table = wait_text(page, "ablate-table", "zero 216")
    rows = [r for r in table.splitlines() if r.strip()]
    numbers = [
        float(x)
        for r in rows
        for x in r.replace("\t", " ").split()
        if x.replace(".", "").replace("-", "").replace("+", "").isdigit()
    ]
    assert "baseline" in table and len(numbers) >= 13  # mIoU and loss x 3 rows, change and interval x 2
    assert "95% interval" in table and sum(v in table for v in ("useful", "redundant", "harmful")) >= 1
    for side in ("abl-before", "abl-after"):  # the whole picture shows, not a band of it
        page.wait_for_function(f"() => {{ const i = document.querySelector('#{side} img'); return i && i.complete; }}")
        img, box = page.locator(f"#{side} img").bounding_box(), page.locator(f"#{side}").bounding_box()
        assert img["height"] <= box["height"] + 1 and img["width"] <= box["width"] + 1
    label = page.locator("#mosaic [data-testid=block-label]")
    assert label.count() == 0 or not label.first.is_visible()  # no label over the first channels' numbers
    page.screenshot(path=SHOTS / "3-ablation.png", full_page=True)


def test_4_scoped_search_fills_the_heatmap_live(loaded):
    page = loaded
    # The app runs in lockstep: the pair scoring's first partial result waits until this page has shown it, so the
    # page sees the heatmap part-way however fast the machine scores the pairs
    search(page, SCOPE, TOP_N)  # records every status line the search showed
    n = pairs(SCOPE)
    shown = [s.replace(",", "") for s in recorded(page, "search-status")]
    partial = {s.split("·")[0] for s in shown if "pair scoring" in s and f"/{n}" in s and f"{n}/{n}" not in s}
    assert partial, recorded(page, "search-status")  # the heatmap was redrawn with partial results while it ran
    assert page.locator("#heatmap .js-plotly-plot").count() == 1
    page.screenshot(path=SHOTS / "4-search.png", full_page=True)


def test_4b_compare_modes_reuses_the_search(searched):
    page = searched
    from playwright.sync_api import expect

    expect(page.locator("#candidates")).to_be_hidden()  # a mode's options show while it is chosen
    page.get_by_label("taylor", exact=True).check()
    expect(page.locator("#halving_keep")).to_be_hidden()
    fill(page, "candidates", "24")
    page.get_by_text("Compare search modes on this scope").click()
    page.locator("#compare-btn").click()
    wait_text(page, "compare-status", "Comparison finished")
    table = text(page, "compare-table")
    assert all(mode in table for mode in ("exact", "taylor", "halving")) and "3/3" in table
    assert "no second full scan" in page.content()  # the finished exact search was reused
    page.locator("#compare-table").scroll_into_view_if_needed()
    page.screenshot(path=SHOTS / "4b-compare.png", full_page=True)


def test_5_downloads_are_valid_files(searched, tmp_path):
    page = searched
    tab(page, "Results")
    page.locator("#results-btn").click()
    wait_text(page, "summary", "Best set")
    page.locator("#downloads a").first.wait_for()
    links = page.locator("#downloads a").evaluate_all("els => els.map(e => e.href)")
    files = {href.rsplit("/", 1)[-1].split("?")[0]: download(href) for href in links}
    assert "not SAM" in json.loads(files["replacements.json"])["weights_label"]
    assert files["pair_scores.npy"][:6] == b"\x93NUMPY"
    assert files["combinations.csv"].decode().startswith("size,pairs,score,loss,delta_score")
    with zipfile.ZipFile(io.BytesIO(files["predictions.zip"])) as zf:
        masks = [n for n in zf.namelist() if n.startswith("masks/") and n.endswith(".png")]
    assert len(masks) == 120  # one mask PNG per image (search + held-out: the whole demo domain)
    assert not page.locator("#downloads button[aria-label='Remove this file']").first.is_visible()  # outputs only
    page.screenshot(path=SHOTS / "5-results.png", full_page=True)


def test_5b_figures_and_teaching_views(searched):
    page = searched
    tab(page, "Figures")
    page.locator("#figures-btn").click()
    note = wait_text(page, "figures-note", "figures of the latest search")
    n_png = int(note.split()[0])
    href = page.locator("#figures-zip a").first.evaluate("a => a.href")
    with zipfile.ZipFile(io.BytesIO(download(href))) as zf:
        pngs = [n for n in zf.namelist() if n.endswith(".png")]
        assert len(pngs) == n_png >= 2  # the zip holds every figure the note counts
        assert all(zf.read(n)[:8] == b"\x89PNG\r\n\x1a\n" for n in pngs)
        assert {n[: -len(".png")] + ".txt" for n in pngs} <= set(zf.namelist())  # each with its caption
    page.screenshot(path=SHOTS / "5b-figures.png", full_page=True)
    tab(page, "Guide")
    page.locator("#teach-btn").click()
    steps = wait_text(page, "teach-steps", "Score pairs")
    assert re.findall(r"^(\d)\. [A-Z][\w ]+\.", steps, re.M) == ["1", "2", "3", "4", "5", "6"], steps  # numbered
    per_image = float(re.search(r"once: (\d+\.\d\d) s per image here", steps)[1])  # times measured here
    per_row = float(re.search(r"runs: (\d+\.\d\d) ms per image here", steps)[1])
    assert per_image >= 0 and per_row > 0
    assert f"your latest search's scope, {pairs(SCOPE)} ordered pairs x {N_SEARCH} images" in steps  # its scope
    assert f"Keep the {TOP_N} best pairs" in steps and f"Try all {2**TOP_N - 1} subsets" in steps
    assert "All 65,280 pairs would take" in steps  # the full scan of 256 channels
    page.screenshot(path=SHOTS / "5c-how-it-works.png", full_page=True)


def test_6_cancel_stops_a_run(loaded):
    page = loaded
    search(page, "all", TOP_N, wait=False)
    wait_recorded(page, "search-status", "pair scoring", settled=False)
    page.locator("#cancel-btn").click()
    said = wait_text(page, "search-status", "Cancelled", timeout=60)
    assert "kept" in said
    page.screenshot(path=SHOTS / "6-cancelled.png", full_page=True)


def test_7_narrow_screen(browser, app_url):
    with visitor(browser, app_url, {"width": 400, "height": 900}) as page:
        tab(page, "Data")
        page.screenshot(path=SHOTS / "7-narrow.png", full_page=True)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 420  # no horizontal scrolling on a phone-sized screen
        bar = page.locator(".tab-wrapper [role=tablist] button, .tab-wrapper .overflow-dropdown button")  # not the
        shown = bar.evaluate_all(  # hidden copy Gradio measures with: what a user sees, at its real size, on screen
            "els => els.filter(e => { const r = e.getBoundingClientRect(); return r.width > 20 && r.height > 10"
            " && r.right <= window.innerWidth && e.checkVisibility(); }).map(e => e.innerText.trim())"
        )
        assert {"Data", "Channels", "Ablation", "Search", "Results", "Figures", "Guide"} <= set(shown), shown
        bar.filter(has_text="Search").first.click()  # a tap reaches any tab
        page.wait_for_function(
            "() => document.querySelector('#start-btn') && document.querySelector('#start-btn').offsetParent"
        )
        page.screenshot(path=SHOTS / "7-narrow-search.png", full_page=True)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 420
        page.get_by_role("tab", name="Paper").or_(bar.filter(has_text="Paper")).first.click()
        page.locator("#paper-report td").first.wait_for()
        tallest = page.evaluate(  # a cell of one line: the tables scroll sideways, no value breaks into letters
            "() => Math.max(...[...document.querySelectorAll('#paper-report td')]"
            ".map(c => c.getBoundingClientRect().height))"
        )
        assert tallest < 60, tallest
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 420
        page.screenshot(path=SHOTS / "7-narrow-paper.png", full_page=True)


def test_8_a_new_load_clears_the_previous_models_results(loaded):
    from playwright.sync_api import expect

    page = loaded
    search(page)  # any finished search of sam_tiny_demo's: the smallest
    assert page.locator("#heatmap .js-plotly-plot").count() == 1
    choose_model(page, "sam2_tiny_demo")
    page.wait_for_function("() => document.body.innerText.includes('sam2_tiny_narrow classes')")  # the hint follows
    load(page)
    page.wait_for_function("() => document.body.innerText.includes('sam2_tiny_demo on')")
    tab(page, "Search")
    expect(page.locator("#heatmap .js-plotly-plot")).to_have_count(0, timeout=30_000)
    assert "Search finished" not in text(page, "search-status") and "Cancelled" not in text(page, "search-status")
    page.screenshot(path=SHOTS / "8-new-model-clean.png", full_page=True)


def test_9_dinov2_classification_flow(page):
    """Pick a DINOv2 model: the data and weights follow; load, search, ablate, read the task's metric everywhere."""
    choose_model(page, "dinov2_tiny")
    page.wait_for_function("() => document.body.innerText.includes('DINOv2 classes at test size')")
    assert page.get_by_label("classification sample (DINOv2: 5 shape classes, 120 images)").is_checked()
    assert page.get_by_label("random weights (seeded, for trying the tool)").is_checked()
    info = load(page)
    assert "task classify" in info and "Head split 40" in info and "L-BFGS" in info
    assert "RANDOM WEIGHTS" in page.content() and "head: linear classifier" in page.content()
    page.screenshot(path=SHOTS / "9-dinov2-data.png", full_page=True)
    tab(page, "Search")
    assert page.get_by_label("accuracy").is_visible()  # the metric radio follows the task
    record(page, "search-status")
    page.locator("#start-btn").click()
    summary = wait_recorded(page, "search-status", "Search finished")
    assert "⚠" not in summary
    page.wait_for_function("() => document.body.innerText.includes('images): accuracy ')")  # the best-set summary
    page.screenshot(path=SHOTS / "9-dinov2-search.png", full_page=True)
    tab(page, "Ablation")
    fill(page, "ablate-edits", "6,20")  # this model has 64 channels
    page.locator("#ablate-btn").click()
    wait_text(page, "ablate-table", "accuracy")
    page.screenshot(path=SHOTS / "9-dinov2-ablation.png", full_page=True)


def test_10_a_reloaded_page_reconnects_to_its_running_search(browser, app_url):
    """Reload mid-search: the page comes back to its own session and follows the search, still running, to the end.

    The app runs in lockstep: the search waits at its next stage (or its first partial result) until a page has
    shown it, and once the old page has gone only the reloaded one follows it, so the reloaded page always finds the
    search running, however fast the machine."""
    with visitor(browser, app_url, DESKTOP, init_script=record_from_load("search-status")) as page:
        choose_model(page, "dinov2_tiny")
        page.get_by_label("depth sample (DINOv2: 120 synthetic rooms)").check()
        info = load(page, n_search=N_SEARCH)
        assert "task depth" in info
        search(page, "every:4", 4, wait=False, channels=64)  # 240 pairs
        wait_recorded(page, "search-status", "pair scoring", settled=False)
        page.reload(wait_until="domcontentloaded")
        wait_text(page, "load-info", "Reconnected to your session")
        assert "dinov2_tiny" in page.content() and "task <strong>depth</strong>" in page.content()
        tab(page, "Search")
        wait_text(page, "search-status", "Search finished")
        shown = recorded(page, "search-status")  # this page's own, since the reload
        assert any("left in all" in s for s in shown), shown  # a stage of the running search, before its end
        assert page.locator("#heatmap .js-plotly-plot").count() == 1
        page.screenshot(path=SHOTS / "10-reconnected.png", full_page=True)
