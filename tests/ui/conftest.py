"""The browser tests' Chromium: one process per test module; each test opens its own context in it (`visitor`)."""

from __future__ import annotations

import pytest

from .browser import launch


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = launch(p)
        yield chromium
        chromium.close()
