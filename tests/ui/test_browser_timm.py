"""Any timm model by name, in real Chromium at a desktop and a phone width: a typed name that timm does not build
gets one line with the closest names; a typed timm:resnet18 on random weights loads on the default segmentation
domain, is scored by a fitted per-patch head, searches, and shows its convolutional map in the channel mosaic."""

from __future__ import annotations

import pytest

from redundancy.ui.tabs.data import WEIGHTS

from .browser import (
    WIDTHS,
    choose_model,
    load,
    needs_chromium,
    open_form,
    search,
    shot,
    tab,
    text,
    visitor,
    wait_text,
)

pytestmark = [needs_chromium, pytest.mark.browser]


@pytest.mark.parametrize("width", list(WIDTHS))
def test_a_timm_model_typed_by_name_loads_and_searches(browser, app_url, width):
    with visitor(browser, app_url, WIDTHS[width]) as page:
        open_form(page)
        box = page.locator("#model input").first
        box.click()
        box.fill("timm:resnet1x")
        box.press("Enter")
        assert "did you mean timm:resnet18" in wait_text(page, "model-notice", "did you mean")

        choose_model(page, "timm:resnet18")
        page.get_by_label(WEIGHTS[0]).check()  # offline here: timm's Hub weights cannot come
        wait_text(page, "load-what", "random weights")
        info = load(page, n_search=8)
        assert "linear per-patch segmentation head" in info and "task segment" in info
        assert "RANDOM WEIGHTS" in text(page, "badge")

        search(page, "every:128", top_n=2, channels=512)  # 4 of resnet18's 512 channels: 12 pairs
        assert "mIoU" in text(page, "best")
        tab(page, "Channels")
        page.locator("#show-btn").click()
        page.locator("#mosaic img").first.wait_for()  # 512 maps of 7 x 7, as a ViT's token grids are shown
        assert "on this image" in wait_text(page, "live-note", "on this image")
        live = page.locator("#live-before img")  # the channel's edit, live: the prediction before and after
        live.wait_for(state="attached")
        live.scroll_into_view_if_needed()  # a lazy image below a 512-map mosaic loads once it is in view
        shot(page, f"timm-resnet18-{width}")
