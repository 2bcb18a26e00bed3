"""What a task is: how a head's output is measured against its target and pooled into a score, and what else a
task owns (its targets, its head, its predictions on disk, how the app pictures them, its smooth stand-in).

A task is the part of the method that is not the encoder: the engine turns channel-mapped features into
head outputs (`Backend.decode`: SAM's mask decoder, a linear classifier, a depth head), `Task.measure`
turns each (variant, image) output into a few numbers (the task's `columns`), and `Task.reduce` pools
those over images into (score, loss) per variant. Each task is one module of this folder that registers
itself (`register`); nothing outside this folder compares a task's name.

Scores are oriented so that higher is better everywhere in the engine: a lower-is-better metric (RMSE,
AbsRel) is negated, and `Metric.value` turns a score back into the number a user reads. Gains are
therefore always "positive is better".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from ..data import Dataset, Sample
from ..errors import ConfigError, DataError
from ..registry import Registry
from .heads import Head

LOSS = "loss"  # every task's second metric: its training-style loss, lower is better


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

    @property
    def digits(self) -> int:
        """Decimals its values are shown with: 2 for a percentage, 4 otherwise."""
        return 2 if self.percent else 4

    def show(self, score: float) -> str:
        """'mIoU 31.04', 'accuracy 80.41', 'RMSE 0.2250'."""
        return f"{self.label} {self.value(score):.{self.digits}f}"


@dataclass
class Stats:
    """Per (variant, image) statistics, (V, B, K): K columns named by the task (`Task.columns`)."""

    values: np.ndarray

    @staticmethod
    def concat(parts: list[Stats], axis: int) -> Stats:
        """Join along variants (axis 0) or images (axis 1)."""
        return Stats(np.concatenate([p.values for p in parts], axis))

    def column(self, k: int) -> np.ndarray:
        """Column k, (V, B)."""
        return self.values[..., k]


class SmoothScore(ABC):
    """A differentiable stand-in for a score, pooled the way the score is (taylor screening follows its gradient).

    Per image it gives additive terms (K,) from the head outputs; pooled per metric group they give the
    score (`value`) and its derivative with respect to each group's pooled terms (`weights`), so the
    gradient of the pooled score is the per-image gradient of sum_k weights[g, k] * terms[k].
    """

    @abstractmethod
    def terms(self, outputs: torch.Tensor, target: torch.Tensor, upscale, tau: float) -> tuple[torch.Tensor, ...]:
        """One image's additive terms, each a 0-d tensor; `outputs` (1, ...) are its head outputs."""

    @abstractmethod
    def value(self, pooled: np.ndarray) -> float:
        """The score from the terms pooled per group (G, K)."""

    @abstractmethod
    def weights(self, pooled: np.ndarray) -> np.ndarray:
        """d value / d pooled, (G, K)."""


class Task(ABC):
    """What a search optimises and everything about its targets (module doc)."""

    name: ClassVar[str]
    metrics: ClassVar[tuple[Metric, ...]]  # score choices; the first is the default
    columns: ClassVar[tuple[str, ...]]
    loss_label: ClassVar[str]
    protocols: ClassVar[tuple[str, ...]] = ("image",)
    layouts: ClassVar[tuple[str, ...]]  # dataset layouts whose targets serve this task (its module registers them)
    outputs: ClassVar[tuple[str, ...]]  # the files and folders its `prediction_files` writes (apply's overwrite check)
    data_hint: ClassVar[str]  # what its data looks like, for messages
    takes_prompts: ClassVar[bool] = False  # prompts derived from its targets (segmentation's box and point)
    picture_note: ClassVar[str] = ""  # how its prediction pictures read (the app's galleries)
    target_note: ClassVar[str] = ""  # how its ground-truth pictures (`target_view`) read
    order: ClassVar[int] = 0  # where it is listed among the tasks (choices, help)
    stackable: ClassVar[bool] = False  # `measure` takes one target per row (R, ...): rows of many images at once

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

    # ---- data ----

    def serves(self, dataset: Dataset) -> bool:
        """Whether a dataset's targets are this task's."""
        return dataset.layout in self.layouts

    def check_data(self, dataset: Dataset, classes: tuple[str, ...] = ()) -> None:
        """Unlabelled images suit any task; labelled data must be this task's (a run's own classes: see classify)."""
        if dataset.layout != UNLABELLED and not self.serves(dataset):
            raise DataError(
                f"this is a {self.name} run but the data is another task's ({dataset.layout} layout); give "
                f"{self.data_hint} data, or images without targets."
            )

    @abstractmethod
    def load_target(self, sample: Sample) -> np.ndarray | None:
        """The sample's ground truth (None: it has none): a mask, a class index, a depth map."""

    def prompt_mask(self, target: np.ndarray | None) -> np.ndarray | None:
        """The mask prompts are derived from (None: the task takes no prompts)."""
        return None

    # ---- measuring ----

    @abstractmethod
    def measure(self, outputs: torch.Tensor, target: torch.Tensor, upscale) -> torch.Tensor:
        """Head outputs (P, ...) of one image vs its target -> (P, K) float64 stats (K = len(columns)).

        `upscale(outputs)` maps head outputs to the target's resolution (the backend's, for this image). A
        `stackable` task also takes targets stacked per row (P, ...), for rows of images of one size.
        """

    @abstractmethod
    def row_loss(self, outputs: torch.Tensor, target: torch.Tensor, upscale) -> torch.Tensor:
        """Differentiable loss per output row, (P,): what gradient screening follows without a smooth score."""

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

    def smooth_score(self, metric: str | None) -> SmoothScore | None:
        """A smooth stand-in for `metric` (None: screening follows minus the loss instead)."""
        return None

    # ---- the head ----

    def fit_head(self, backend, feats: torch.Tensor, targets: list, classes: tuple[str, ...]) -> tuple[Head, str]:
        """(head module, how it was fitted) on a head split's encoder features and targets (a backend without a
        decoder of its own: `Backend.fits_heads`)."""
        raise ConfigError(f"the {self.name} task has no head to fit; pick a model whose own decoder does it.")

    def head_from_state(self, state: dict, backend, classes: tuple[str, ...]) -> Head:
        """A head module from a saved state dict (weight, bias), checked against the model and the data."""
        raise ConfigError(f"the {self.name} task has no head; pick a model whose own decoder does it.")

    # ---- outputs ----

    @abstractmethod
    def prediction_files(
        self, names: list[str], images: list[np.ndarray], patched: list, baseline: list, classes: tuple[str, ...]
    ) -> dict[str, bytes]:
        """The files `apply` writes (relative name -> bytes) from patched and baseline head outputs at image size."""

    def preview_arrays(self, target: np.ndarray | None, baseline: torch.Tensor, patched: torch.Tensor) -> dict:
        """What a run's preview.npz keeps of one search image beyond the picture (figures draw it): nothing, unless
        the task's predictions are pictures of their own (segmentation's masks)."""
        return {}

    @abstractmethod
    def target_view(self, image: np.ndarray, target: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
        """An image with its ground truth, as a picture (RGB uint8)."""

    @abstractmethod
    def prediction_view(
        self, image: np.ndarray, output: torch.Tensor, target: np.ndarray | None, classes: tuple[str, ...]
    ) -> np.ndarray:
        """An image's prediction (head output at image size) as a picture, its ground truth beside where it helps."""

    @abstractmethod
    def difference_view(
        self, image: np.ndarray, before: torch.Tensor, after: torch.Tensor, target, classes: tuple[str, ...]
    ) -> np.ndarray:
        """What changed between two predictions of one image (an edit's before and after), as a picture."""


UNLABELLED = "images"  # the layout of images without targets: predictions only, for any task
TASKS: Registry[Task] = Registry("task", order=lambda t: t.order)


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: make a task available by its name (listed by its `order`)."""
    TASKS.add(cls.name, cls())
    return cls


def get_task(name: str) -> Task:
    """The task called `name` (`UnknownName` lists the others)."""
    return TASKS[name]


def task_names() -> tuple[str, ...]:
    """Every registered task's name, in order."""
    return TASKS.names()


def task_for(dataset: Dataset) -> Task:
    """The task a dataset's targets serve (images without targets: the first task, segmentation)."""
    for task in TASKS.values():
        if task.serves(dataset):
            return task
    return next(iter(TASKS.values()))


def head_tasks(prompted: bool = False) -> tuple[str, ...]:
    """The registered tasks a fitted head scores, in order: those without prompts (classification, depth), then with
    `prompted` those a promptable decoder does natively (segmentation, by a per-patch head), so that a backbone's
    default stays classification."""
    names = sorted(TASKS, key=lambda n: TASKS[n].takes_prompts)
    return tuple(n for n in names if prompted or not TASKS[n].takes_prompts)


def all_metrics() -> tuple[str, ...]:
    """Every metric any task takes (the CLI's --metric choices)."""
    return tuple(dict.fromkeys(n for t in TASKS.values() for n in t.metric_names))
