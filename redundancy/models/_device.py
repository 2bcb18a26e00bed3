"""Pick the compute device from a user's choice."""

from __future__ import annotations

import torch

from ..errors import DeviceError


def resolve_device(choice: str = "auto") -> torch.device:
    """'auto' -> cuda when available else cpu; 'cuda' without a GPU is a clear error."""
    choice = (choice or "auto").lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError("device cuda was requested but no CUDA GPU is visible; choose device cpu or auto.")
        return torch.device(choice)
    if choice == "cpu":
        return torch.device("cpu")
    raise DeviceError(f"unknown device '{choice}'; use auto, cpu or cuda.")
