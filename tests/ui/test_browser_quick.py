"""The one-minute lesson: Quick search on the app's defaults (the demo model, its default domain, 50 search images)
sets its scope and finishes with a held-out check (at a desktop width: the Search tab's phone layout is checked by
test_browser_defects' top-N test; this search is the suite's cost, not its width)."""

from __future__ import annotations

import pytest

from .browser import load, needs_chromium, record, shot, tab, text, visitor, wait_recorded

DESKTOP = {"width": 1400, "height": 900}
pytestmark = [needs_chromium, pytest.mark.browser]


def test_quick_search_sets_its_scope_and_finishes_with_a_held_out_check(browser, app_url):
    with visitor(browser, app_url, DESKTOP) as page:
        load(page)  # the first visitor's defaults
        tab(page, "Search")
        record(page, "search-status")
        page.locator("#quick-btn").click()
        status = wait_recorded(page, "search-status", "Search finished")
        assert page.locator("#sources textarea, #sources input").first.input_value() == "every:16"
        assert page.locator("#targets textarea, #targets input").first.input_value() == "every:8"
        assert "496 pairs" in text(page, "estimate") and "Search finished in" in status  # its scope, its time
        assert "held-out" in text(page, "best")
        shot(page, "quick-search")
