"""Segmentation: binary masks, IoU pooled by the protocol (mIoU in percent, as in the paper) and Dice + CE.

A mask is predicted where the logits are > 0, at the image's original resolution. The smooth stand-in for
mIoU (taylor screening) is the soft IoU: sigmoid(logit / tau) in place of logit > 0, pooled the same way.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..data import Sample, load_mask
from ..data.images import IMAGE_EXTS, MASK_EXTS, mask_of, open_header, open_image, upright_size
from ..data.layouts import UNLABELLED, Folder, Layout, Read, files, pair, paired_folders
from ..data.layouts import register as register_layout
from ..data.pictures import captioned, mask_overlay, overlay, png_bytes
from ..errors import DataError
from .base import Metric, SmoothScore, Stats, Task, register
from .heads import LinearSegment, fit_segment
from .protocols import PROTOCOLS, group_onehot

SEG_COLUMNS = ("inter", "union", "loss")  # segmentation's per-(variant, image) stats
GT_COLOUR = (40, 200, 90)  # ground truth tinted green; predictions orange (`overlay`'s default)
GAINED, LOST = (60, 220, 90), (230, 60, 200)  # an edit's difference: mask pixels it adds / removes


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


def pooled_counts(stats: Stats, groups: np.ndarray, n_groups: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(intersections, unions) pooled per variant and group, each (V, G), and the evaluated images. A group
    without pixels (no evaluated image) has IoU 0, as PerSAM's I / (U + 1e-10) gives."""
    onehot, evaluated = group_onehot(groups, n_groups)
    inter = stats.column(0).astype(np.float64) @ onehot
    union = stats.column(1).astype(np.float64) @ onehot
    return inter, np.maximum(union, 1.0), evaluated


def read_perseg(folder: Folder) -> Read | None:
    """PerSeg: Images/<object>/*.jpg beside Annotations/<object>/*.png, one group per object."""
    images, annotations = folder.child("images"), folder.child("annotations")
    if images is None or annotations is None or not any(p.is_dir() for p in images.iterdir()):
        return None
    samples = []
    for obj_dir in sorted(p for p in images.iterdir() if p.is_dir()):
        ann_dir = annotations / obj_dir.name
        if not ann_dir.is_dir():
            raise DataError(
                f"PerSeg layout: Images/{obj_dir.name}/ has no Annotations/{obj_dir.name}/ folder; "
                "add the masks for this object or remove it."
            )
        pairs = pair(files(obj_dir, IMAGE_EXTS), files(ann_dir, MASK_EXTS), f"object '{obj_dir.name}'")
        samples += [Sample(f"{obj_dir.name}/{s}", i, m, obj_dir.name) for s, i, m in pairs]
    return samples, ()


def check_masks(samples: list[Sample], where: str) -> list[str]:
    """Check every mask against its image; return warnings for masks that look multi-class."""
    warnings = []
    for s in samples:
        assert s.mask_path is not None, "a mask layout pairs every image with a mask"
        with open_header(s.image_path) as im:
            size = upright_size(im)
            turned = size != im.size
        mask_img = open_image(s.mask_path, image=False)
        if mask_img.size != size:
            raise DataError(
                f"{s.name}: mask {s.mask_path.name} is {mask_img.size[0]}x{mask_img.size[1]} but the "
                f"image is {size[0]}x{size[1]}"
                + (" once its EXIF orientation tag is applied (masks go on the upright image)" if turned else "")
                + "; masks must have the same size as their image."
            )
        mask, values = mask_of(s.mask_path, mask_img)
        if values > 1:
            warnings.append(
                f"{s.name}: mask has {values} different foreground values (multi-class?); every non-zero pixel "
                "counts as foreground (docs/data.md). Give one object per mask if that is not meant."
            )
        if not mask.any():
            raise DataError(
                f"{s.name}: mask {s.mask_path.name} is empty (no foreground pixel), so IoU is undefined; "
                "remove this image or fix its mask."
            )
    return warnings


PERSEG = register_layout(
    Layout(
        "perseg",
        "PerSeg folders Images/ + Annotations/",
        read_perseg,
        check_masks,
        order=10,
        protocol="perseg",
        marks=("images", "annotations"),
        expected="the PerSeg layout Images/<object>/*.jpg + Annotations/<object>/*.png",
    )
)
FOLDER = register_layout(
    Layout(
        "folder",
        "images/ + masks/",
        paired_folders("masks", MASK_EXTS, "mask"),
        check_masks,
        order=11,
        marks=("images", "masks"),
        expected="images/ + masks/ folders (matched by file name)",
    )
)


class SoftIoU(SmoothScore):
    """mIoU with sigmoid(logits / tau) for the hard mask: terms (soft intersection, soft union) per image."""

    def terms(self, outputs, target, upscale, tau):
        p, g = torch.sigmoid(upscale(outputs)[0].float() / tau), target.float()
        return (p * g).sum(), (p + g - p * g).sum()

    def value(self, pooled):
        return float(100.0 * (pooled[:, 0] / pooled[:, 1]).mean())

    def weights(self, pooled):
        inter, union, g = pooled[:, 0], pooled[:, 1], len(pooled)
        return np.stack([100.0 / g / union, -100.0 / g * inter / union**2], 1)


@register
class SegmentTask(Task):
    """Binary masks: IoU pooled by the protocol (mIoU in percent) and Dice + CE loss."""

    order = 0
    name = "segment"
    metrics = (Metric("miou", "mIoU", percent=True),)
    columns = SEG_COLUMNS
    loss_label = "Dice + CE loss"
    protocols = PROTOCOLS
    stackable = True
    layouts = (FOLDER.name, PERSEG.name, UNLABELLED.name)
    outputs = ("masks", "overlays", "baseline_masks")
    data_hint = "images/ + masks/ (or PerSeg)"
    takes_prompts = True
    target_note = "ground truth tinted green"
    picture_note = "prediction in orange, ground truth outlined in white (the target view tints it green)"

    def load_target(self, sample: Sample) -> np.ndarray | None:
        return None if sample.mask_path is None else load_mask(sample.mask_path)

    def prompt_mask(self, target):
        return target

    def measure(self, outputs, target, upscale):
        return torch.stack([t.double() for t in mask_stats(upscale(outputs), target)], 1)

    def row_loss(self, outputs, target, upscale):
        return mask_stats(upscale(outputs), target)[2]

    def reduce(self, stats, groups, n_groups, metric=None):
        inter, union, evaluated = pooled_counts(stats, groups, n_groups)
        loss = stats.column(2).astype(np.float64)
        return 100.0 * (inter / union).mean(axis=1), (loss[:, evaluated] if len(evaluated) else loss).mean(axis=1)

    def per_group(self, stats, groups, n_groups, metric=None):
        inter, union, _ = pooled_counts(stats, groups, n_groups)
        return 100.0 * inter / union

    def smooth_score(self, metric):
        return SoftIoU() if metric == "miou" else None

    def fit_head(self, backend, feats, targets, classes):
        return fit_segment(feats, targets, backend.grid), "logistic regression per patch, L-BFGS, float64"

    def head_from_state(self, state, backend, classes):
        return LinearSegment(state["weight"].flatten(), state["bias"], backend.channels, backend.grid)

    def prediction_files(self, names, images, patched, baseline, classes):
        files = {}
        for name, image, z, b in zip(names, images, patched, baseline):
            mask = (z > 0).cpu().numpy()
            files[f"masks/{name}.png"] = png_bytes(mask.astype(np.uint8) * 255)
            files[f"overlays/{name}.png"] = png_bytes(overlay(image, mask))
            files[f"baseline_masks/{name}.png"] = png_bytes((b > 0).cpu().numpy().astype(np.uint8) * 255)
        return files

    def preview_arrays(self, target, baseline, patched):
        return {"gt": target, "base": (baseline > 0).cpu().numpy(), "patched": (patched > 0).cpu().numpy()}

    def target_view(self, image, target, classes):
        return overlay(image, target, GT_COLOUR)

    def prediction_view(self, image, output, target, classes):
        return mask_overlay(image, (output > 0).cpu().numpy(), target)

    def difference_view(self, image, before, after, target, classes):
        was, now = (before > 0).cpu().numpy(), (after > 0).cpu().numpy()
        gained, lost = now & ~was, was & ~now
        out = (image.astype(np.float32) * 0.45).astype(np.uint8)  # dimmed: the changed pixels stand out
        out[gained], out[lost] = GAINED, LOST
        if not (gained.any() or lost.any()):
            return captioned(out, "no pixel of the mask changed")
        return captioned(out, f"+{int(gained.sum()):,} px (green), -{int(lost.sum()):,} px (magenta)")
