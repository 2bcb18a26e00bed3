"""Tasks: one module per task (segmentation, classification, depth), each registering itself.

A task owns what is particular to it: its targets, measuring and pooling a head's outputs, its head,
the files `apply` writes, how the app pictures an image's target and prediction, and the smooth
stand-in gradient screening follows (`base.Task`). Adding a task is adding a module here.
"""

from . import classify, depth, segment  # noqa: F401  (each registers itself, in this order)
from .base import LOSS, UNLABELLED, Metric, SmoothScore, Stats, Task, all_metrics, get_task, task_for, task_names
from .protocols import PROTOCOLS, group_ids

SEGMENT = segment.SegmentTask.name  # the default task (data without targets, SAM-style models)

__all__ = [
    "LOSS",
    "PROTOCOLS",
    "SEGMENT",
    "UNLABELLED",
    "Metric",
    "SmoothScore",
    "Stats",
    "Task",
    "all_metrics",
    "get_task",
    "group_ids",
    "task_for",
    "task_names",
]
