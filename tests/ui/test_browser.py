"""Real-browser tests: app.py on 127.0.0.1 driven through Debian's Chromium with Playwright.

Screenshots land in $REDUNDANCY_SHOTS (default: redundancy-screenshots/ under the system's temporary folder), for a
person to look at; never in the repository.
"""

from __future__ import annotations

import json
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from ..conftest import SHOTS
from .browser import choose_model, fill, launch, load, needs_chromium, open_form, tab, text, wait_text

ROOT = Path(__file__).resolve().parents[2]
pytestmark = needs_chromium


@pytest.fixture(scope="module")
def page(app_url):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        pg = browser.new_page(viewport={"width": 1280, "height": 1000})
        pg.set_default_timeout(60_000)
        pg.goto(app_url, wait_until="domcontentloaded")
        yield pg
        browser.close()


def test_1_load_opens_on_the_demo_model_and_a_demo_domain(page):
    page.locator("#load-btn").wait_for()  # the page has rendered
    assert not page.get_by_text("Dataset .zip").is_visible()  # upload boxes show only when chosen
    page.screenshot(path=SHOTS / "0-first-visit.png", full_page=True)
    page.locator("#load-btn").click()  # the defaults a first visitor gets
    info = wait_text(page, "load-info", "Loaded")
    assert "120" in info and "search set 50" in info and "held-out 70" in info
    assert "DEMO MODEL" in page.content() and "not SAM" in page.content()
    page.screenshot(path=SHOTS / "1-model-data.png", full_page=True)


def test_2_explorer_grid_renders(page):
    tab(page, "Channels")
    page.locator("#show-btn").click()
    img = page.locator("#mosaic img")
    img.wait_for()
    page.wait_for_function(
        "() => { const i = document.querySelector('#mosaic img'); return i && i.complete && i.naturalWidth > 500; }"
    )
    page.locator("#live-before img").wait_for()  # the live edit of the enlarged channel shows at once
    assert "on this image" in text(page, "live-note")
    # click the tile of channel 19 (row 1, column 3 of the 16-wide grid, index order) to enlarge it
    box = img.bounding_box()
    scale = img.evaluate("i => i.naturalWidth") / box["width"]
    x, y = (3 * 48 + 24) / scale, (1 * (48 + 14) + 14 + 24) / scale
    img.click(position={"x": x, "y": y})
    page.wait_for_function("() => document.querySelector('#channel input').value === '19'")
    page.screenshot(path=SHOTS / "2-explorer.png", full_page=True)


def test_3_ablation_table_shows_numbers(page):
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
    assert "baseline" in table and len(numbers) >= 9  # 3 rows x (mIoU, delta, loss)
    for side in ("abl-before", "abl-after"):  # the whole picture shows, not a band of it
        page.wait_for_function(f"() => {{ const i = document.querySelector('#{side} img'); return i && i.complete; }}")
        img, box = page.locator(f"#{side} img").bounding_box(), page.locator(f"#{side}").bounding_box()
        assert img["height"] <= box["height"] + 1 and img["width"] <= box["width"] + 1
    label = page.locator("#mosaic [data-testid=block-label]")
    assert label.count() == 0 or not label.first.is_visible()  # no label over the first channels' numbers
    page.screenshot(path=SHOTS / "3-ablation.png", full_page=True)


def test_4_scoped_search_fills_the_heatmap_live(page):
    tab(page, "Search")
    fill(page, "sources", "every:16")
    fill(page, "targets", "every:16")
    slider = page.locator("#top-n input[type=number]")
    slider.fill("3")
    slider.press("Enter")
    page.locator("#start-btn").click()
    partial, end = set(), time.time() + 180
    while time.time() < end:
        status = text(page, "search-status")
        if "pair scoring" in status and "/240" in status.replace(",", ""):
            partial.add(status.split("·")[0])
        if "Search finished" in status:
            break
        time.sleep(0.05)
    assert "Search finished" in text(page, "search-status")
    assert len(partial) >= 2, partial  # the heatmap was redrawn with partial results at least twice
    assert page.locator("#heatmap .js-plotly-plot").count() == 1
    page.screenshot(path=SHOTS / "4-search.png", full_page=True)


def test_4b_compare_modes_reuses_the_search(page):
    fill(page, "candidates", "24")
    page.get_by_text("Compare search modes on this scope").click()
    page.locator("#compare-btn").click()
    wait_text(page, "compare-status", "Comparison finished", timeout=180)
    table = text(page, "compare-table")
    assert all(mode in table for mode in ("exact", "taylor", "halving")) and "3/3" in table
    assert "no second full scan" in page.content()  # the finished exact search was reused
    page.locator("#compare-table").scroll_into_view_if_needed()
    page.screenshot(path=SHOTS / "4b-compare.png", full_page=True)


def test_5_downloads_are_valid_files(page, tmp_path):
    tab(page, "Results")
    page.locator("#results-btn").click()
    wait_text(page, "summary", "Best set")
    page.locator("#downloads a").first.wait_for()
    links = page.locator("#downloads a").evaluate_all("els => els.map(e => e.href)")
    files = {}
    for href in links:
        name = href.rsplit("/", 1)[-1].split("?")[0]
        files[name] = urllib.request.urlopen(href, timeout=30).read()
    assert "not SAM" in json.loads(files["replacements.json"])["weights_label"]
    assert files["pair_scores.npy"][:6] == b"\x93NUMPY"
    assert files["combinations.csv"].decode().startswith("size,pairs,miou")
    (tmp_path / "p.zip").write_bytes(files["predictions.zip"])
    with zipfile.ZipFile(tmp_path / "p.zip") as zf:
        masks = [n for n in zf.namelist() if n.startswith("masks/") and n.endswith(".png")]
    assert len(masks) == 120  # one mask PNG per image (50 search + 70 held-out)
    assert not page.locator("#downloads button[aria-label='Remove this file']").first.is_visible()  # outputs only
    page.screenshot(path=SHOTS / "5-results.png", full_page=True)


def test_5b_figures_and_teaching_views(page):
    tab(page, "Figures")
    page.locator("#figures-btn").click()
    page.locator("#figures-zip a").first.wait_for(timeout=120_000)
    page.screenshot(path=SHOTS / "5b-figures.png", full_page=True)
    tab(page, "Guide")
    page.locator("#teach-btn").click()
    wait_text(page, "teach-steps", "Score pairs")
    page.screenshot(path=SHOTS / "5c-how-it-works.png", full_page=True)


def test_6_cancel_stops_a_run(page):
    tab(page, "Search")
    fill(page, "sources", "all")
    fill(page, "targets", "all")
    page.locator("#start-btn").click()
    wait_text(page, "search-status", "pair scoring")
    page.locator("#cancel-btn").click()
    text = wait_text(page, "search-status", "Cancelled", timeout=60)
    assert "kept" in text
    page.screenshot(path=SHOTS / "6-cancelled.png", full_page=True)


def test_7_narrow_screen(page):
    page.set_viewport_size({"width": 400, "height": 900})
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


def test_8_a_new_load_clears_the_previous_models_results(page):
    page.set_viewport_size({"width": 1280, "height": 1000})
    tab(page, "Search")
    assert page.locator("#heatmap .js-plotly-plot").count() == 1  # the earlier sam_tiny_demo search
    choose_model(page, "sam2_tiny_demo")
    page.wait_for_function("() => document.body.innerText.includes('sam2_tiny_narrow classes')")  # the hint follows
    load(page)
    page.wait_for_function("() => document.body.innerText.includes('sam2_tiny_demo on')")
    tab(page, "Search")
    end = time.time() + 30
    while time.time() < end and page.locator("#heatmap .js-plotly-plot").count():
        time.sleep(0.2)
    assert page.locator("#heatmap .js-plotly-plot").count() == 0
    assert "Search finished" not in text(page, "search-status") and "Cancelled" not in text(page, "search-status")
    page.screenshot(path=SHOTS / "8-new-model-clean.png", full_page=True)


def test_9_dinov2_classification_flow(page):
    """Pick a DINOv2 model: the data and weights follow; load, search, ablate, read the task's metric everywhere."""
    page.set_viewport_size({"width": 1280, "height": 1000})
    choose_model(page, "dinov2_tiny")
    page.wait_for_function("() => document.body.innerText.includes('DINOv2 classes at test size')")
    assert page.get_by_label("classification sample (DINOv2: 5 shape classes, 120 images)").is_checked()
    assert page.get_by_label("random weights (seeded, for trying the tool)").is_checked()
    page.locator("#load-btn").click()
    info = wait_text(page, "load-info", "task classify")  # the earlier load's text says task segment
    assert "Head split 40" in info and "L-BFGS" in info
    assert "RANDOM WEIGHTS" in page.content() and "head: linear classifier" in page.content()
    page.screenshot(path=SHOTS / "9-dinov2-data.png", full_page=True)
    tab(page, "Search")
    assert page.get_by_label("accuracy").is_visible()  # the metric radio follows the task
    page.locator("#start-btn").click()
    summary = wait_text(page, "search-status", "Search finished", timeout=120)
    assert "⚠" not in summary
    page.wait_for_function("() => document.body.innerText.includes('images): accuracy ')")  # the best-set summary
    page.screenshot(path=SHOTS / "9-dinov2-search.png", full_page=True)
    tab(page, "Ablation")
    page.locator("#ablate-edits textarea, #ablate-edits input").first.fill("6,20")  # this model has 64 channels
    page.locator("#ablate-btn").click()
    page.wait_for_function("() => document.querySelector('#ablate-table').innerText.includes('accuracy')")
    page.screenshot(path=SHOTS / "9-dinov2-ablation.png", full_page=True)


def test_10_a_reloaded_page_reconnects_to_its_running_search(page):
    """Reload mid-search: the page comes back to its own session, follows the search to the end."""
    open_form(page)
    page.get_by_label("depth sample (DINOv2: 120 synthetic rooms)").check()
    page.locator("#load-btn").click()
    wait_text(page, "load-info", "task depth")
    tab(page, "Search")
    fill(page, "sources", "all")
    fill(page, "targets", "all")
    page.locator("#start-btn").click()
    wait_text(page, "search-status", "pair scoring")
    page.reload(wait_until="domcontentloaded")
    wait_text(page, "load-info", "Reconnected to your session")
    assert "dinov2_tiny" in page.content() and "task <strong>depth</strong>" in page.content()
    tab(page, "Search")
    wait_text(page, "search-status", "Search finished", timeout=180)
    assert page.locator("#heatmap .js-plotly-plot").count() == 1
    page.screenshot(path=SHOTS / "10-reconnected.png", full_page=True)
