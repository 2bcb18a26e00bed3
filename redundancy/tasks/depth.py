"""Monocular depth in metres, NYUv2's evaluation: per-image RMSE / AbsRel / delta1 averaged over images.

Ground truth 0 is invalid (not evaluated); predictions are clamped to [MIN_DEPTH, MAX_DEPTH]. The loss is
the mean squared error (m^2), the paper's "MSE" column.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data import Sample, image_size, load_depth
from ..data.images import DEPTH_EXTS
from ..data.layouts import Layout, paired_folders
from ..data.layouts import register as register_layout
from ..data.pictures import captioned, depth_colour, depth_png, png_bytes
from ..errors import DataError
from .base import Metric, Task, register
from .heads import LinearDepth, fit_depth
from .protocols import evaluated

MIN_DEPTH, MAX_DEPTH = 1e-3, 10.0  # metres: NYUv2's evaluation range, where predictions are clamped


def clamp_depth(depth: torch.Tensor) -> torch.Tensor:
    """Predicted depth in metres within the evaluation range, as it is measured and written."""
    return depth.clamp(MIN_DEPTH, MAX_DEPTH)


def depth_range(depth: np.ndarray) -> tuple[float, float]:
    """The colour scale of a ground-truth depth map: its valid range (every view of one image shares it)."""
    valid = depth[depth > 0]
    return (float(valid.min()), float(valid.max())) if valid.size else (MIN_DEPTH, MAX_DEPTH)


def check_depth(samples: list[Sample], where: str) -> list[str]:
    """Check every depth map against its image: same size, at least one valid (non-zero) pixel."""
    for s in samples:
        assert s.mask_path is not None, "the depth layout pairs every image with a depth map"
        depth = load_depth(s.mask_path)
        h, w = image_size(s.image_path)
        if depth.shape != (h, w):
            raise DataError(
                f"{s.name}: depth map {s.mask_path.name} is {depth.shape[1]}x{depth.shape[0]} but the image is "
                f"{w}x{h}; depth maps must have the same size as their image."
            )
        if not (depth > 0).any():
            raise DataError(
                f"{s.name}: depth map {s.mask_path.name} has no valid pixel (all 0), so no error can be measured; "
                "remove this image or fix its depth map."
            )
    return []


DEPTH = register_layout(
    Layout(
        "depth",
        "images/ + depth/",
        paired_folders("depth", DEPTH_EXTS, "depth map"),
        check_depth,
        order=20,
        marks=("images", "depth"),
        expected="images/ + depth/ (depth)",
    )
)


@register
class DepthTask(Task):
    """Metric depth in metres (module doc)."""

    order = 2
    name = "depth"
    metrics = (
        Metric("rmse", "RMSE", higher_is_better=False),
        Metric("absrel", "AbsRel", higher_is_better=False),
        Metric("delta1", "delta1"),
    )
    columns = ("mse", "absrel", "delta1")
    loss_label = "MSE"
    layouts = (DEPTH.name,)
    outputs = ("depth", "baseline_depth", "previews")
    data_hint = "images/ + depth/"
    target_note = "each image beside its ground-truth depth: near red, far blue"
    picture_note = "near red, far blue; the image beside its ground truth"

    def load_target(self, sample: Sample) -> np.ndarray | None:
        return None if sample.mask_path is None else load_depth(sample.mask_path)

    @staticmethod
    def _valid(outputs: torch.Tensor, gt: torch.Tensor, upscale) -> tuple[torch.Tensor, torch.Tensor]:
        """(predictions (P, n), GT (n,)) at the n valid GT pixels, predictions clamped to the range."""
        valid = gt > 0
        return clamp_depth(upscale(outputs.float()))[:, valid], gt[valid].float()

    def measure(self, outputs, target, upscale):
        p, g = self._valid(outputs, target, upscale)
        err = p - g
        mse = err.square().mean(1, dtype=torch.float64)  # float32 per pixel, float64 sums
        absrel = (err.abs() / g).mean(1, dtype=torch.float64)
        delta1 = (torch.maximum(p / g, g / p) < 1.25).mean(1, dtype=torch.float64)
        return torch.stack([mse, absrel, delta1], 1)

    def row_loss(self, outputs, target, upscale):
        p, g = self._valid(outputs, target, upscale)
        return (p - g).square().mean(1)

    def reduce(self, stats, groups, n_groups, metric=None):
        v = evaluated(stats.values, groups).astype(np.float64)
        mse, absrel, delta1 = v[..., 0], v[..., 1], v[..., 2]
        name = self.metric(metric).name
        score = {"rmse": -np.sqrt(mse).mean(1), "absrel": -absrel.mean(1), "delta1": delta1.mean(1)}[name]
        return score, mse.mean(1)

    def per_group(self, stats, groups, n_groups, metric=None):
        v = evaluated(stats.values, groups).astype(np.float64)
        name = self.metric(metric).name
        return {"rmse": lambda: -np.sqrt(v[..., 0]), "absrel": lambda: -v[..., 1], "delta1": lambda: v[..., 2]}[name]()

    def fit_head(self, backend, feats, targets, classes):
        return fit_depth(feats, targets, backend.grid), "ridge regression, closed form, float64"

    def head_from_state(self, state, backend, classes):
        return LinearDepth(state["weight"].flatten(), state["bias"], backend.channels, backend.grid)

    def prediction_files(self, names, images, patched, baseline, classes):
        files = {}
        for name, image, z, b in zip(names, images, patched, baseline):
            d, base = clamp_depth(z).cpu().numpy(), clamp_depth(b).cpu().numpy()
            lo, hi = float(min(d.min(), base.min())), float(max(d.max(), base.max()))
            files[f"depth/{name}.png"] = depth_png(d)
            files[f"baseline_depth/{name}.png"] = depth_png(base)
            files[f"previews/{name}.png"] = png_bytes(
                np.concatenate([image, depth_colour(base, lo, hi), depth_colour(d, lo, hi)], 1)
            )
        return files

    def target_view(self, image, target, classes):
        return np.concatenate([image, depth_colour(target, *depth_range(target))], 1)

    def prediction_view(self, image, output, target, classes):
        scale = depth_range(target) if target is not None else (MIN_DEPTH, MAX_DEPTH)
        return depth_colour(clamp_depth(output).cpu().numpy(), *scale)

    def difference_view(self, image, before, after, target, classes):
        from matplotlib import colormaps

        diff = (clamp_depth(after) - clamp_depth(before)).abs().cpu().numpy()
        peak = float(diff.max())
        heat = (colormaps["magma"](diff / peak if peak > 0 else diff)[..., :3] * 255).astype(np.uint8)
        return captioned(heat, f"|change| mean {diff.mean():.3f} m, max {peak:.3f} m (bright: more)")
