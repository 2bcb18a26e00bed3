"""The browser tests' Chromium: one process per test module; each test opens its own context in it (`visitor`)."""

from __future__ import annotations

import pytest

from .browser import launch

try:  # Playwright's `expect` waits for its state up to this long (its own 5 s is a bet on a busy machine's speed)
    from playwright.sync_api import expect

    expect.set_options(timeout=120_000)
except ImportError:  # without Playwright the browser tests are skipped; the other ui tests need nothing of it
    pass


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = launch(p)
        yield chromium
        chromium.close()
