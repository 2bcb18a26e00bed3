"""Pick the compute device from a user's choice."""

from __future__ import annotations

import torch

from ..devices import DEVICES, check_device  # noqa: F401  (re-exported: the models API)
from ..errors import DeviceError


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
