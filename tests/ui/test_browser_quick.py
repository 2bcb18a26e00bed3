"""The one-minute lesson: Quick search on the demo model and its default domain sets its scope and finishes with a
held-out check (on 8 search images: the defaults' 50 cost the suite half a minute more and check nothing else; the
first visitor's defaults are test_browser's first test. At a desktop width: the Search tab's phone layout is checked
by test_browser_defects' top-N test)."""

from __future__ import annotations

import pytest

from .browser import load, needs_chromium, record, shot, tab, text, visitor, wait_recorded

DESKTOP = {"width": 1400, "height": 900}
pytestmark = [needs_chromium, pytest.mark.browser]


def test_quick_search_sets_its_scope_and_finishes_with_a_held_out_check(browser, app_url):
    with visitor(browser, app_url, DESKTOP) as page:
        load(page, n_search=8)
        tab(page, "Search")
        record(page, "search-status")
        page.locator("#quick-btn").click()
        status = wait_recorded(page, "search-status", "Search finished")
        assert page.locator("#sources textarea, #sources input").first.input_value() == "every:16"
        assert page.locator("#targets textarea, #targets input").first.input_value() == "every:8"
        assert "496 pairs" in text(page, "estimate") and "Search finished in" in status  # its scope, its time
        assert "held-out" in text(page, "best")
        shot(page, "quick-search")
