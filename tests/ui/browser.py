"""What the real-browser tests share: Chromium, and the few moves a visitor makes (tabs, fields, waits)."""

from __future__ import annotations

import os
import re
import time

import pytest

from ..conftest import SHOTS

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium at /usr/bin/chromium")
FORM = "Model and data: change what Load opens"  # the Data tab's form (closed on a first visit)
# Gradio's progress overlay over an output ("queue: 1/1 | 0.3/4.1s", "processing | 2.0s"): the answer is not in yet
BUSY = re.compile(r"^\s*(queue:|processing|[\d.]+(/[\d.]+)?s\b)")


def launch(playwright):
    """Chromium as the tests drive it."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)


def tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def text(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id}").inner_text()


def wait_text(page, elem_id: str, needle: str, timeout: float = 180) -> str:
    """The element's text once it shows `needle`."""
    end = time.time() + timeout
    while time.time() < end:
        shown = text(page, elem_id)
        if needle in shown:
            return shown
        time.sleep(0.1)
    raise AssertionError(f"#{elem_id} never showed {needle!r}; last text: {text(page, elem_id)!r}")


def wait_changed(page, elem_id: str, before: str, needle: str, timeout: float = 180) -> str:
    """The element's text once it differs from `before`, shows `needle` and no progress overlay (a new answer)."""
    end = time.time() + timeout
    while time.time() < end:
        shown = text(page, elem_id)
        if shown != before and needle in shown and not BUSY.match(shown):
            return shown
        time.sleep(0.2)
    raise AssertionError(f"#{elem_id} never showed a new {needle!r}; last text: {text(page, elem_id)!r}")


def fill(page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id} textarea, #{elem_id} input").first
    box.fill(value)
    box.press("Enter")


def number(page, elem_id: str, value: int):
    """Type `value` into a number box (or a slider's); the box, to read back what it shows."""
    box = page.locator(f"#{elem_id} input[type=number]").first
    box.fill(str(value))
    box.press("Enter")
    return box


def open_form(page) -> None:
    """The Data tab with its model-and-data form open."""
    tab(page, "Data")
    if not page.locator("#model").is_visible():
        page.get_by_text(FORM).click()
        page.locator("#model").wait_for()


def choose_model(page, model: str) -> None:
    """Type a model into the Data tab's Model box (its hint then switches data and weights to ones it can use)."""
    open_form(page)
    box = page.locator("#model input").first
    box.click()
    box.fill(model)
    box.press("Enter")


def load(page, timeout: float = 180) -> str:
    """Press Load and return the new load line."""
    tab(page, "Data")
    before = text(page, "load-info")
    page.locator("#load-btn").click()
    return wait_changed(page, "load-info", before, "Loaded", timeout)


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)
