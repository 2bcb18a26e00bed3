"""Pick the compute device from a user's choice."""

from __future__ import annotations

import re

import torch

from ..errors import DeviceError

DEVICES = ("auto", "cpu", "cuda", "cuda:N")  # what a device setting may say (N: a GPU's index)


def check_device(choice: str | None) -> str:
    """The device setting, lower-cased, if it is one of DEVICES; else a DeviceError naming them."""
    text = (choice or "auto").strip().lower()
    if text in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", text):
        return text
    raise DeviceError(f"unknown device '{choice}'; use auto, cpu, cuda or cuda:N (N: a GPU's index, e.g. cuda:1).")


def resolve_device(choice: str = "auto") -> torch.device:
    """'auto' -> cuda when available else cpu; 'cuda' without a GPU is a clear error."""
    choice = check_device(choice)
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError("device cuda was requested but no CUDA GPU is visible; choose device cpu or auto.")
        device, count = torch.device(choice), torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceError(
                f"device {choice} was requested but {count} CUDA GPU(s) are visible: use cuda:0 to cuda:{count - 1}."
            )
        return device
    return torch.device("cpu")
