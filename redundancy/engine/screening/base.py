"""What a search mode is: one class, one verb (`score`), its own options, and the decoder rows it costs.

The exact mode scores every pair (the paper); a screening mode finds the promising pairs cheaply and scores
only those exactly. Each mode is one module of this folder that registers itself; the settings, the CLI's
flags, the cost model and the comparison of modes all read the registry.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from ...errors import ConfigError
from ...registry import Registry
from ..progress import ScoreProgress
from ..scorer import PairScorer, PairScores


@dataclass(frozen=True)
class Option:
    """A parameter a search mode owns: its name (a `SearchSettings` option and a CLI flag), default, meaning and
    the values it takes."""

    name: str
    default: Any
    help: str
    kind: type = int
    valid: Callable[[Any], bool] = lambda v: True
    rule: str = "a valid value"  # what `valid` asks, in words
    label: str = ""  # a control's short title in the app (default: its help)

    @property
    def title(self) -> str:
        """How the app's control for it reads."""
        return self.label or self.help

    def check(self, value: Any) -> None:
        """Refuse a value the mode cannot use, naming the option and the rule."""
        ok = (
            not isinstance(value, bool)
            and isinstance(value, (int, float))
            and (self.kind is float or float(value).is_integer())
        )
        if not ok or not self.valid(value):
            raise ConfigError(f"{self.name.replace('_', ' ')} must be {self.rule} (got {value!r}); {self.help}.")


class SearchMode(ABC):
    """One way to score the pairs of a search."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one line for help texts
    options: ClassVar[tuple[Option, ...]] = ()
    exact: ClassVar[bool] = False  # scores every pair exactly: resumable, shardable over torchrun, cross-validatable

    @abstractmethod
    def score(
        self,
        scorer: PairScorer,
        pairs: torch.Tensor,
        settings,
        on_progress: Callable[[ScoreProgress], None] | None = None,
        cancel: threading.Event | None = None,
        known: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> PairScores:
        """Scores of `pairs` (P, 2): NaN where a pair was screened out (never scored exactly). `known`: the
        (score_gain, loss_gain) an interrupted run saved (exact modes keep them; screening modes rescreen)."""

    @abstractmethod
    def pair_rows(self, n_pairs: int, n_images: int, settings, task) -> int:
        """Decoder rows its pair stage runs (an upper bound, known before it runs)."""

    def survivors(self, n_pairs: int, n_images: int, settings) -> int:
        """How many pairs end with exact scores (so at most that many reach the top N), known before it runs."""
        return n_pairs

    def rows_used(self, scores: PairScores, n_images: int) -> int:
        """Decoder rows its pair stage did run (after `score`)."""
        return int(np.isfinite(scores.gain).sum()) * n_images

    def describe(self, n_pairs: int, settings) -> str | None:
        """What it is about to do, for the search's log (None: nothing to add)."""
        return None

    def estimate(self, scores: PairScores) -> np.ndarray | None:
        """Its screening estimate of every pair's gain (C, C), to rank-correlate with exact gains (None: exact)."""
        return None


MODES: Registry[SearchMode] = Registry("search mode")
_OPTIONS: dict[str, Option] = {}


def register(cls: type[SearchMode]) -> type[SearchMode]:
    """Class decorator: make a search mode (and its options) known by name."""
    for option in cls.options:
        if option.name in _OPTIONS:
            raise ValueError(f"option '{option.name}' of mode {cls.name} is another mode's already")
        _OPTIONS[option.name] = option
    MODES.add(cls.name, cls())
    return cls


def reference_mode() -> SearchMode:
    """The mode that scores every pair exactly (the paper's): the one screening modes are measured against."""
    return next(m for m in MODES.values() if m.exact)


def option_spec(name: str) -> Option:
    """The option called `name`, of whichever mode owns it."""
    if name not in _OPTIONS:
        raise ConfigError(f"unknown search mode option '{name}'; the modes take {', '.join(_OPTIONS)}.")
    return _OPTIONS[name]


def mode_options() -> tuple[tuple[str, Option], ...]:
    """(mode name, option) for every registered mode's options, in registry order (the app's controls)."""
    return tuple((name, option) for name, mode in MODES.items() for option in mode.options)


def all_options() -> tuple[Option, ...]:
    """Every registered mode's options (the CLI adds a flag for each)."""
    return tuple(_OPTIONS.values())
