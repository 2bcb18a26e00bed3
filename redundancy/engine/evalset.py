"""An image set ready for decoding: encoded features (through the cache), prompts, targets and metric groups."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data import Dataset, image_size
from ..data.prompts import prompt_from_mask
from ..errors import DataError
from ..models import FEATURES, Backend, DecodeContext, ImageMeta
from ..tasks import SEGMENT, Task, get_task, group_ids
from .features import FeatureCache


@dataclass
class EvalSet:
    """An image set ready for decoding: features (B, C, h, w), prompts, targets, metric groups, its task."""

    names: list[str]
    feats: torch.Tensor
    context: DecodeContext  # per-image decoder inputs (a promptable decoder's prompts and mask choice)
    metas: list[ImageMeta]
    targets: list[torch.Tensor | None]  # GT mask / label / depth map per image; None: no GT (predictions only)
    groups: np.ndarray  # (B,) metric group per image; -1: not evaluated (the persam protocol's reference)
    n_groups: int | None = None  # groups in the protocol (None: groups.max() + 1)
    task: Task = field(default_factory=lambda: get_task(SEGMENT))
    cached: int = 0  # images `build` read from the feature cache
    encoded: int = 0  # images `build` ran the encoder on

    def __len__(self) -> int:
        return len(self.names)

    def target(self, b: int) -> torch.Tensor:
        """Image b's ground truth, for measuring (a set without it is only decoded: `apply` checks first)."""
        target = self.targets[b]
        assert target is not None, f"{self.names[b]} has no ground truth to measure against"
        return target

    @classmethod
    def build(
        cls,
        backend: Backend,
        dataset: Dataset,
        cache: FeatureCache,
        prompt: str = "none",
        protocol: str = "image",
        on_progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
        task: Task | None = None,
        mask_choice: str = "single",
    ) -> EvalSet:
        """Encode (through the cache) and load GT for every sample of `dataset` (GT optional for `none`); a
        promptable decoder returns its `mask_choice` mask."""
        task = task or get_task(SEGMENT)
        if prompt != "none" and not dataset.has_masks:
            raise DataError(f"'{prompt}' prompts come from GT masks, but some images have none; use prompt none.")
        found = cache.encode(backend, [s.image_path for s in dataset.samples], on_progress, cancel)
        encoded = found.tensors
        gts = [task.load_target(s) for s in dataset.samples]
        spatial = [g if g is not None and g.ndim == 2 else None for g in gts]
        sizes = [g.shape if g is not None else image_size(s.image_path) for g, s in zip(spatial, dataset.samples)]
        metas = [backend.meta(hw) for hw in sizes]
        prompts = [prompt_from_mask(task.prompt_mask(m), prompt) for m in gts]
        context = backend.context(encoded, prompts, metas, mask_choice)
        targets = [torch.from_numpy(np.asarray(g)).to(backend.device) if g is not None else None for g in gts]
        names = [s.name for s in dataset.samples]
        groups, n_groups = group_ids([s.group for s in dataset.samples], protocol, names)
        return cls(names, encoded[FEATURES], context, metas, targets, groups, n_groups, task, found.hits, found.misses)


def subset_groups(groups: np.ndarray, idx: list[int]) -> np.ndarray:
    """The metric groups (B,) of the images `idx`, renumbered 0.. in order (-1, not evaluated, kept)."""
    kept = groups[idx]
    _, renumbered = np.unique(kept[kept >= 0], return_inverse=True)
    out = np.full(len(idx), -1)
    out[kept >= 0] = renumbered
    return out


def subset(evalset: EvalSet, idx: list[int]) -> EvalSet:
    """The same images' features, context and GT restricted to `idx` (groups renumbered, -1 kept)."""
    groups = subset_groups(evalset.groups, idx)
    return EvalSet(
        [evalset.names[i] for i in idx],
        evalset.feats[idx],
        evalset.context.take(idx),
        [evalset.metas[i] for i in idx],
        [evalset.targets[i] for i in idx],
        groups,
        task=evalset.task,
    )
