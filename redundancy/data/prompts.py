"""Prompts derived from ground truth: none (the paper's single-mask setting), GT box, or interior point."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError

PROMPT_MODES = ("none", "box", "point")


@dataclass(frozen=True)
class Prompt:
    """Prompt in original-image pixel coordinates: box (x0, y0, x1, y1) or point (x, y), or neither."""

    box: tuple[float, float, float, float] | None = None
    point: tuple[float, float] | None = None

    def to_dict(self) -> dict:
        return {"box": self.box, "point": self.point}


def interior_point(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of the GT pixel farthest from the background (chessboard distance), ties to the first."""
    m = torch.from_numpy(np.ascontiguousarray(mask)).float()[None, None]
    m = F.pad(m, (1, 1, 1, 1))  # the image border counts as background
    last = m
    while m.any():
        last = m
        m = -F.max_pool2d(-m, 3, stride=1, padding=1)  # erosion by one pixel
    ys, xs = torch.nonzero(last[0, 0], as_tuple=True)
    return float(xs[0] - 1), float(ys[0] - 1)


def prompt_from_mask(mask: np.ndarray | None, mode: str) -> Prompt:
    """Prompt of the given mode for one GT mask (H, W) bool (None allowed for `none`)."""
    if mode not in PROMPT_MODES:
        raise DataError(f"unknown prompt mode '{mode}'; use one of {', '.join(PROMPT_MODES)}.")
    if mode == "none":
        return Prompt()
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise DataError("cannot derive a prompt from an empty mask.")
    if mode == "box":
        return Prompt(box=(float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())))
    return Prompt(point=interior_point(mask))
