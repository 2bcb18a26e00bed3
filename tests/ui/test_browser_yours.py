"""The Your image tab as the SAM demo has it, in real Chromium at a desktop and a phone width: an example image
opens in one click, each click is drawn on the input, Undo takes one back, a new prompt kind starts afresh; and
the page's status region never announces Gradio's untranslated "common.complete"."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .browser import WIDTHS, load, needs_chromium, shot, tab, text, visitor, wait_text

# every text the page's live regions (what a screen reader announces) ever held, kept in window.heard
HEARD = """
window.heard = [];
new MutationObserver(() => document.querySelectorAll('[aria-live]').forEach(e => {
  const t = e.textContent.trim(); if (t && window.heard.at(-1) !== t) window.heard.push(t);
})).observe(document, {subtree: true, childList: true, characterData: true});
"""
pytestmark = [needs_chromium, pytest.mark.browser]


@pytest.fixture(params=list(WIDTHS))
def page(request, browser, app_url):
    with visitor(browser, app_url, WIDTHS[request.param], init_script=HEARD) as pg:
        pg.width = request.param
        yield pg


def shown(page) -> str:
    """The input picture's address: a new one each time the app redraws it."""
    img = page.locator("#your-img img").first
    img.wait_for()
    return img.get_attribute("src") or ""


def test_your_image_draws_clicks_undoes_them_and_opens_examples(page):
    load(page, n_search=4)
    tab(page, "Your image")
    page.locator("#your-examples img").first.click()  # an example: no file of the visitor's own needed
    wait_text(page, "your-note", "Click the image: one point")
    plain = shown(page)
    box = page.locator("#your-img img").first.bounding_box()
    page.locator("#your-img img").first.click(position={"x": box["width"] / 2, "y": box["height"] / 2})
    note = wait_text(page, "your-note", "set")  # predicted: with the found set, or none yet
    assert "found set" in note or "latest search's set" in note
    expect(page.locator("#your-base img")).to_have_count(1)
    marked = shown(page)
    assert marked != plain  # the click is drawn on the input
    page.locator("#your-undo").click()
    wait_text(page, "your-note", "Click the image: one point")
    expect(page.locator("#your-base img")).to_have_count(0)  # nothing predicted without a click
    assert shown(page) != marked  # the click is gone from the input too
    page.get_by_label("box (two clicks: corners)").check()
    wait_text(page, "your-note", "two corners")
    page.wait_for_function("() => window.heard.some(t => t !== 'Loading')")  # the finished events announced
    heard = page.evaluate("() => window.heard")
    assert heard and not [t for t in heard if "common." in t]  # announced in words, not as a translation key
    shot(page, f"your-image-{page.width}")
    assert "⚠" not in text(page, "your-note")
