"""How long work reports on itself: the callbacks a CLI, the app or ZeroGPU pass in, and a finished block of
pairs. One protocol for every front end (the CLI's progress bars, the app's live heatmap, ZeroGPU's events)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Callbacks:
    """Progress hooks for a UI or a progress bar; every one is optional."""

    encode: Callable[[int, int], None] | None = None
    pairs: Callable[[ScoreProgress], None] | None = None
    combos: Callable[[int, int], None] | None = None
    edits: Callable[[int, int], None] | None = None  # ablation edits done / total
    log: Callable[[str], None] | None = None


@dataclass
class ScoreProgress:
    """One finished block of pairs: `pairs` (P, 2) as (source, target) and their `gains` (P,).

    `gains` are in the scorer's metric. `miou_gain` / `loss_gain` are the scorer's live C x C
    matrices (read them, e.g. to checkpoint; do not write).
    """

    done: int
    total: int
    pairs: np.ndarray
    gains: np.ndarray
    elapsed: float
    miou_gain: np.ndarray | None = None
    loss_gain: np.ndarray | None = None
