"""Tasks: how a head's output is measured against its target and pooled into a score.

A task is the part of the method that is not the encoder: the engine turns channel-mapped
features into head outputs (`Backend.decode`: SAM's mask decoder, a linear classifier, a depth
head), `Task.measure` turns each (variant, image) output into a few numbers (the task's
`columns`), and `Task.reduce` pools those over images into (score, loss) per variant.

Scores are oriented so that higher is better everywhere in the engine: a lower-is-better
metric (RMSE, AbsRel) is negated, and `Metric.value` turns a score back into the number a
user reads. Gains are therefore always "positive is better".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ConfigError
from .metrics import PROTOCOLS, SEG_COLUMNS, Stats, mask_stats, reduce

SEGMENT, CLASSIFY, DEPTH = "segment", "classify", "depth"
TASKS = (SEGMENT, CLASSIFY, DEPTH)
LOSS = "loss"  # every task's second metric: its training-style loss, lower is better
MIN_DEPTH, MAX_DEPTH = 1e-3, 10.0  # metres: NYUv2's evaluation range, where predictions are clamped


@dataclass(frozen=True)
class Metric:
    """A search metric: its name in settings and files, how it reads, and its direction."""

    name: str
    label: str
    higher_is_better: bool = True
    percent: bool = False

    def value(self, score: float) -> float:
        """The number a user reads from an (oriented, higher-is-better) engine score."""
        return score if self.higher_is_better else -score

    def show(self, score: float) -> str:
        """'mIoU 31.04', 'accuracy 80.41', 'RMSE 0.2250'."""
        v = self.value(score)
        return f"{self.label} {v:.2f}" if self.percent else f"{self.label} {v:.4f}"


def clamp_depth(depth: torch.Tensor) -> torch.Tensor:
    """Predicted depth in metres within the evaluation range, as it is measured and written."""
    return depth.clamp(MIN_DEPTH, MAX_DEPTH)


class Task(ABC):
    """What a search optimises: targets, per-image statistics and their pooling."""

    name: str
    metrics: tuple[Metric, ...]  # score choices; the first is the default
    columns: tuple[str, ...]
    loss_label: str
    protocols: tuple[str, ...] = ("image",)

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Every value the search's `metric` setting may take for this task."""
        return tuple(m.name for m in self.metrics) + (LOSS,)

    def metric(self, name: str | None = None) -> Metric:
        """The score metric `name` ranks by (`loss` and None: the default score, reported beside the loss)."""
        if name in (None, LOSS):
            return self.metrics[0]
        for m in self.metrics:
            if m.name == name:
                return m
        raise ConfigError(
            f"unknown metric '{name}' for the {self.name} task; use one of {', '.join(self.metric_names)}."
        )

    @abstractmethod
    def measure(self, outputs: torch.Tensor, target: torch.Tensor, upscale) -> torch.Tensor:
        """Head outputs (P, ...) of one image vs its target -> (P, K) float64 stats (K = len(columns)).

        `upscale(outputs)` maps head outputs to the target's resolution (the backend's, for this image).
        """

    @abstractmethod
    def row_loss(self, outputs: torch.Tensor, target: torch.Tensor, upscale) -> torch.Tensor:
        """Differentiable loss per output row, (P,): what gradient screening follows."""

    @abstractmethod
    def reduce(
        self, stats: Stats, groups: np.ndarray, n_groups: int | None, metric: str | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(score, loss) per variant, each (V,), from per-image stats; groups (B,) (-1: not evaluated)."""

    @abstractmethod
    def per_group(
        self, stats: Stats, groups: np.ndarray, n_groups: int | None, metric: str | None = None
    ) -> np.ndarray:
        """The score per metric group (image or object), (V, G): its mean over groups is `reduce`'s score."""


class SegmentTask(Task):
    """Binary masks: IoU pooled by the protocol (mIoU in percent) and Dice + CE loss."""

    name = SEGMENT
    metrics = (Metric("miou", "mIoU", percent=True),)
    columns = SEG_COLUMNS
    loss_label = "Dice + CE loss"
    protocols = PROTOCOLS

    def measure(self, outputs, target, upscale):
        return torch.stack([t.double() for t in mask_stats(upscale(outputs), target)], 1)

    def row_loss(self, outputs, target, upscale):
        return mask_stats(upscale(outputs), target)[2]

    def reduce(self, stats, groups, n_groups, metric=None):
        return reduce(stats, groups, n_groups)

    def per_group(self, stats, groups, n_groups, metric=None):
        n = n_groups or int(groups.max()) + 1
        evaluated = np.flatnonzero(groups >= 0)
        onehot = np.zeros((len(groups), n))
        onehot[evaluated, groups[evaluated]] = 1.0
        inter = stats.column(0).astype(np.float64) @ onehot
        union = stats.column(1).astype(np.float64) @ onehot
        return 100.0 * inter / np.maximum(union, 1.0)


def _evaluated(stats: Stats, groups: np.ndarray) -> np.ndarray:
    """Stats values (V, B', K) of the evaluated images (group >= 0)."""
    return stats.values[:, groups >= 0] if (groups >= 0).any() else stats.values


class ClassifyTask(Task):
    """Image labels: top-1 accuracy in percent, cross-entropy as the loss and tie-break."""

    name = CLASSIFY
    metrics = (Metric("accuracy", "accuracy", percent=True),)
    columns = ("correct", "ce")
    loss_label = "cross-entropy"

    def measure(self, outputs, target, upscale):
        logits = outputs.double()
        correct = (logits.argmax(1) == target).double()
        ce = F.cross_entropy(logits, target.expand(len(logits)), reduction="none")
        return torch.stack([correct, ce], 1)

    def row_loss(self, outputs, target, upscale):
        return F.cross_entropy(outputs.float(), target.expand(len(outputs)), reduction="none")

    def reduce(self, stats, groups, n_groups, metric=None):
        v = _evaluated(stats, groups).astype(np.float64)
        return 100.0 * v[..., 0].mean(1), v[..., 1].mean(1)

    def per_group(self, stats, groups, n_groups, metric=None):
        return 100.0 * _evaluated(stats, groups).astype(np.float64)[..., 0]


class DepthTask(Task):
    """Metric depth in metres, NYUv2's evaluation: per-image RMSE / AbsRel / delta1 averaged over images.

    Ground truth 0 is invalid (not evaluated); predictions are clamped to [MIN_DEPTH, MAX_DEPTH].
    The loss is the mean squared error (m^2), the paper's "MSE" column.
    """

    name = DEPTH
    metrics = (
        Metric("rmse", "RMSE", higher_is_better=False),
        Metric("absrel", "AbsRel", higher_is_better=False),
        Metric("delta1", "delta1"),
    )
    columns = ("mse", "absrel", "delta1")
    loss_label = "MSE"

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
        v = _evaluated(stats, groups).astype(np.float64)
        mse, absrel, delta1 = v[..., 0], v[..., 1], v[..., 2]
        name = self.metric(metric).name
        score = {"rmse": -np.sqrt(mse).mean(1), "absrel": -absrel.mean(1), "delta1": delta1.mean(1)}[name]
        return score, mse.mean(1)

    def per_group(self, stats, groups, n_groups, metric=None):
        v = _evaluated(stats, groups).astype(np.float64)
        name = self.metric(metric).name
        return {"rmse": lambda: -np.sqrt(v[..., 0]), "absrel": lambda: -v[..., 1], "delta1": lambda: v[..., 2]}[name]()


TASK_TYPES: dict[str, type[Task]] = {SEGMENT: SegmentTask, CLASSIFY: ClassifyTask, DEPTH: DepthTask}


def get_task(name: str) -> Task:
    """The task called `name`."""
    if name not in TASK_TYPES:
        raise ConfigError(f"unknown task '{name}'; use one of {', '.join(TASKS)}.")
    return TASK_TYPES[name]()


ALL_METRICS = tuple(dict.fromkeys(n for t in TASK_TYPES.values() for n in t().metric_names))
