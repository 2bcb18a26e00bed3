"""Mask quality: IoU of logits > 0 against GT at original resolution, Dice + CE loss, mIoU protocols.

mIoU is in percent (0-100) everywhere, as in the paper. Both protocols reduce per-image
intersection / union counts: `image` averages per-image IoU; `perseg` (PerSeg/PerSAM) pools
intersections and unions over each object's images, then averages over objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

PROTOCOLS = ("image", "perseg")
METRICS = ("miou", "loss")


@dataclass
class Stats:
    """Per (variant, image) counts and losses: each array is (V, B)."""

    inter: np.ndarray
    union: np.ndarray
    loss: np.ndarray

    @staticmethod
    def concat(parts: list[Stats], axis: int) -> Stats:
        """Join along variants (axis 0) or images (axis 1)."""
        return Stats(*(np.concatenate([getattr(p, k) for p in parts], axis) for k in ("inter", "union", "loss")))


def mask_stats(logits: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits (V, H, W) vs one GT mask (H, W) bool -> intersection, union, Dice + CE loss, each (V,)."""
    pred = logits > 0
    inter = (pred & gt).sum((1, 2))
    union = (pred | gt).sum((1, 2))
    target = gt.expand_as(logits).float()
    ce = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none").mean((1, 2))
    prob = logits.float().sigmoid()
    dice = 1 - (2 * (prob * target).sum((1, 2)) + 1) / (prob.sum((1, 2)) + target.sum((1, 2)) + 1)
    return inter, union, dice + ce


def group_ids(groups: list[str], protocol: str) -> np.ndarray:
    """Integer group per image: each image alone (`image`) or its object (`perseg`)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown mIoU protocol '{protocol}'; use one of {', '.join(PROTOCOLS)}.")
    if protocol == "image":
        return np.arange(len(groups))
    _, ids = np.unique(np.asarray(groups), return_inverse=True)
    return ids


def reduce(stats: Stats, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mIoU in percent, mean loss), each (V,), from per-image stats and group ids (B,)."""
    n = int(groups.max()) + 1
    onehot = np.zeros((len(groups), n))
    onehot[np.arange(len(groups)), groups] = 1.0
    inter = stats.inter.astype(np.float64) @ onehot  # (V, G) pooled per group
    union = stats.union.astype(np.float64) @ onehot
    miou = 100.0 * (inter / np.maximum(union, 1.0)).mean(axis=1)
    return miou, stats.loss.astype(np.float64).mean(axis=1)


def image_iou(stats: Stats) -> np.ndarray:
    """Per-image IoU in percent, (V, B)."""
    return 100.0 * stats.inter / np.maximum(stats.union, 1)
