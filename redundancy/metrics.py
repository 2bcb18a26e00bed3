"""Mask quality: IoU of logits > 0 against GT at original resolution, Dice + CE loss, mIoU protocols.

mIoU is in percent (0-100) everywhere, as in the paper. The protocols reduce per-image
intersection / union counts: `image` averages per-image IoU; `perseg` pools intersections and
unions over each object's images, then averages over objects; `persam` is PerSAM's own
eval_miou.py: as `perseg`, but each object's reference image (a name containing "00") is not
evaluated, and an object left with no evaluated image counts as IoU 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

PROTOCOLS = ("image", "perseg", "persam")
PERSAM_REFERENCE = "00"  # PerSAM eval_miou.py's --ref-idx: an image whose path contains it is not evaluated
METRICS = ("miou", "loss")


SEG_COLUMNS = ("inter", "union", "loss")  # segmentation's per-(variant, image) stats


@dataclass
class Stats:
    """Per (variant, image) statistics, (V, B, K): K columns named by the task (segmentation: SEG_COLUMNS)."""

    values: np.ndarray

    @staticmethod
    def concat(parts: list[Stats], axis: int) -> Stats:
        """Join along variants (axis 0) or images (axis 1)."""
        return Stats(np.concatenate([p.values for p in parts], axis))

    def column(self, k: int) -> np.ndarray:
        """Column k, (V, B)."""
        return self.values[..., k]


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


def group_ids(groups: list[str], protocol: str, names: list[str] | None = None) -> tuple[np.ndarray, int]:
    """(integer group per image, number of groups): each image alone (`image`) or its object.

    Group -1 marks an image that is not evaluated (`persam`: names containing PERSAM_REFERENCE).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown mIoU protocol '{protocol}'; use one of {', '.join(PROTOCOLS)}.")
    if protocol == "image":
        return np.arange(len(groups)), len(groups)
    kinds, ids = np.unique(np.asarray(groups), return_inverse=True)
    if protocol == "persam":
        ids = np.where([PERSAM_REFERENCE in n for n in names or groups], -1, ids)
    return ids, len(kinds)


def reduce(stats: Stats, groups: np.ndarray, n_groups: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mIoU in percent, mean loss), each (V,), from per-image stats and group ids (B,) (-1: not evaluated).

    A group without pixels (no evaluated image) has IoU 0, as PerSAM's I / (U + 1e-10) gives.
    """
    n = n_groups or int(groups.max()) + 1
    evaluated = np.flatnonzero(groups >= 0)
    onehot = np.zeros((len(groups), n))
    onehot[evaluated, groups[evaluated]] = 1.0
    inter = stats.column(0).astype(np.float64) @ onehot  # (V, G) pooled per group
    union = stats.column(1).astype(np.float64) @ onehot
    miou = 100.0 * (inter / np.maximum(union, 1.0)).mean(axis=1)
    loss = stats.column(2).astype(np.float64)
    return miou, (loss[:, evaluated] if len(evaluated) else loss).mean(axis=1)
