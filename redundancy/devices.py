"""The device setting's words (auto, cpu, cuda, cuda:N), checked without torch: the CLI checks `--device` while it
parses, before any heavy import (`models._device` resolves the setting to a torch device)."""

from __future__ import annotations

import re

from .errors import DeviceError

DEVICES = ("auto", "cpu", "cuda", "cuda:N")  # what a device setting may say (N: a GPU's index)


def check_device(choice: str | None) -> str:
    """The device setting, lower-cased, if it is auto, cpu, cuda or cuda:N; else a DeviceError naming them."""
    text = (choice or "auto").strip().lower()
    if text in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", text):
        return text
    words = ", ".join(DEVICES[:-1]) + " or " + DEVICES[-1]
    raise DeviceError(f"unknown device '{choice}'; use {words} (N: a GPU's index, e.g. cuda:1).")
