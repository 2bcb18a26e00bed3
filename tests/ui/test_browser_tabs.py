"""Every tab readable at a desktop and a phone width (#37): with a search, an ablation and a sweep's worth of
results on screen, each tab's page height is measured and bounded (the Paper tab on a phone once rendered a letter
per line: 35,863 px), no table cell shows a number broken over two lines or past its edge, and each tab is
screenshotted at each width for a person to look at."""

from __future__ import annotations

import pytest

from .browser import (
    CUT_WORDS,
    WIDTHS,
    choose_model,
    error_badges,
    fill,
    load,
    needs_chromium,
    open_form,
    search,
    shot,
    tab,
    visitor,
    wait_text,
)

pytestmark = [needs_chromium, pytest.mark.browser]
TAB_NAMES = ("Data", "Channels", "Ablation", "Search", "Results", "Your image", "Figures", "Guide", "Paper")
SCREENS = 14  # the tallest tab may be this many screens high (the Paper tab's seven tables and their notes)
# what a visitor presses on a tab before reading it: (button, the element that then shows, what it shows)
PRESS = {
    "Channels": ("show-btn", "live-note", "on this image"),
    "Results": ("results-btn", "summary", "Best set"),
    "Figures": ("figures-btn", "figures-note", "figures of the latest search"),
    "Guide": ("teach-btn", "teach-steps", "ordered pairs"),
}


@pytest.fixture(scope="module", params=list(WIDTHS))
def filled(request, browser, app_url):
    """A visitor at one width with a search and a mixed Table 1 ablation done: every table has rows."""
    with visitor(browser, app_url, WIDTHS[request.param]) as page:
        page.width = request.param
        load(page, n_search=4)  # the zero sweep below decodes every channel x every search image
        for name in TAB_NAMES:  # a later job's outputs clear a badge that the first visit left (as Ablation's did)
            tab(page, name)
            assert not error_badges(page), f"after Load, {name} shows Gradio's error badge"
        search(page, "every:64", 2)
        tab(page, "Ablation")
        fill(page, "ablate-edits", "zero 6,216; swap 1:2; scale 6:0.5")
        page.locator("#ablate-btn").click()
        wait_text(page, "ablate-table", "scale 6x0.5")
        page.locator("#sweep-btn").click()  # the sweep's bars under Table 1
        wait_text(page, "sweep-status", "· done")
        yield page


# Titles over pictures: a pane's title that overlaps its picture (a block label covered the caption a picture prints
# at its top), and a plot title running past its plot's edge (cut on a phone)
COVERED = """() => {
  const bad = [];
  for (const title of document.querySelectorAll('.pane-title')) {
    const img = title.parentElement.querySelector('img');
    if (!title.checkVisibility() || !img || !img.checkVisibility()) continue;
    if (title.getBoundingClientRect().bottom > img.getBoundingClientRect().top + 1) bad.push(title.innerText);
  }
  for (const t of document.querySelectorAll('.js-plotly-plot .gtitle')) {
    const plot = t.closest('.js-plotly-plot').getBoundingClientRect(), r = t.getBoundingClientRect();
    if (t.checkVisibility() && (r.right > plot.right + 1 || r.left < plot.left - 1)) bad.push(t.textContent);
  }
  return bad;
}"""


@pytest.mark.parametrize("name", TAB_NAMES)
def test_each_tab_fits_and_no_number_is_cut(filled, name):
    page = filled
    tab(page, name)
    if name in PRESS:
        button, shows, needle = PRESS[name]
        page.locator(f"#{button}").click()
        wait_text(page, shows, needle)
    height = page.evaluate("document.documentElement.scrollHeight")
    shot(page, f"tab-{name.lower().replace(' ', '-')}-{page.width}")
    print(f"{name} at {page.width}: {height} px")
    assert height <= SCREENS * page.viewport_size["height"], f"{name}: {height} px high at {page.width} width"
    cut = page.evaluate(CUT_WORDS, "#tabs [role=tabpanel]:not([hidden])")
    assert not cut, f"{name}: cut or broken in a table cell at {page.width} width: {cut[:10]}"
    badges = error_badges(page)
    assert not badges, f"{name}: Gradio's error badge over {badges} at {page.width} width"
    covered = page.evaluate(COVERED)
    assert not covered, f"{name}: titles over their picture or past their plot at {page.width} width: {covered}"


def test_the_first_picture_shows_only_for_the_model_it_shows(filled):
    """The first screen's picture is sam_tiny_demo's result: another model chosen hides it, the default shows it."""
    page = filled
    tab(page, "Data")
    open_form(page)
    hero = page.locator("#hero-img")
    hero.wait_for(state="visible")
    choose_model(page, "dinov2_tiny_demo")
    hero.wait_for(state="hidden")
    choose_model(page, "sam_tiny_demo")
    hero.wait_for(state="visible")
