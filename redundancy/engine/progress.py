"""How long work reports on itself: the callbacks a CLI, the app or ZeroGPU pass in, and a finished block of
pairs. One protocol for every front end (the CLI's progress bars, the app's live heatmap, ZeroGPU's events)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np


class Stage(str, Enum):
    """The stages of a search, in the order it runs them: the names the cost model plans and a search announces."""

    PAIRS = "pair scoring"
    SOFT = "soft alphas"  # every scored pair again at one soft alpha (a pass per alpha)
    COMBINATIONS = "combinations"
    SELECTION = "selection"  # select cv / greedy
    ENCODE = "encoding held-out images"  # its rows are images through the encoder
    HELDOUT = "held-out check"

    def __str__(self) -> str:  # what a status line shows: the words, on every Python version
        return self.value


@dataclass
class Callbacks:
    """Progress hooks for a UI or a progress bar; every one is optional."""

    encode: Callable[[int, int], None] | None = None
    pairs: Callable[[ScoreProgress], None] | None = None
    combos: Callable[[int, int], None] | None = None
    edits: Callable[[int, int], None] | None = None  # ablation edits done / total
    log: Callable[[str], None] | None = None
    stage: Callable[[Stage, int], None] | None = None  # a search stage starts, with its size (pairs, sets, ...)

    def enter(self, stage: Stage, total: int) -> None:
        """Announce that `stage` starts (its `total` units of work)."""
        if self.stage:
            self.stage(stage, total)


@dataclass
class ScoreProgress:
    """One finished block of pairs: `pairs` (P, 2) as (source, target) and their `gains` (P,).

    `gains` are in the scorer's metric. `score_gain` / `loss_gain` are the scorer's live C x C
    matrices (read them, e.g. to checkpoint; do not write).
    """

    done: int
    total: int
    pairs: np.ndarray
    gains: np.ndarray
    elapsed: float
    score_gain: np.ndarray | None = None
    loss_gain: np.ndarray | None = None
