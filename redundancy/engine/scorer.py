"""The pair scorer: one verb, `score`: every ordered pair (i, j), channel i taking channel j's values, scored
on an evaluator against the unmodified features; `[i, j]` of its matrices is that pair's gain."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import Cancelled, ReplacementError
from ..replace import check_channel, identity_map, pair_alphas, pair_maps, pair_rows
from ..tasks import LOSS, Stats
from .evaluator import Evaluator
from .progress import ScoreProgress


@dataclass(frozen=True)
class GroupScores:
    """Every scored candidate's score per metric group, for cross-validated selection: `pairs` (P, 3) rows of
    (source, target, alpha) and `scores` (P, G), NaN where not scored."""

    pairs: np.ndarray
    scores: np.ndarray

    @staticmethod
    def concat(parts: list[GroupScores]) -> GroupScores:
        """One table of the candidates of several scans (the soft passes: each alpha's pairs are candidates)."""
        return GroupScores(np.concatenate([g.pairs for g in parts]), np.concatenate([g.scores for g in parts]))


@dataclass
class PairScores:
    """Pair gains. `gain[i, j]` is the gain when channel i takes channel j's values (NaN: not scored).

    score_gain = score(X') - score(X): the task's score (mIoU points for segmentation; accuracy points,
    or minus RMSE / AbsRel, elsewhere: always positive is better); loss_gain = loss(X) - loss(X').
    `gain` is the one the search ranks by (`metric`), the other breaks ties.
    """

    metric: str
    score_gain: np.ndarray
    loss_gain: np.ndarray
    baseline_score: float
    baseline_loss: float
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)
    alpha: np.ndarray | None = None  # soft scan: the alpha of each pair's best gain (1: the plain replacement)
    groups: GroupScores | None = None  # per-group scores of every pair scored (a scorer made with keep_groups)

    def alpha_of(self, i: int, j: int) -> float:
        """The alpha pair (i, j) is used with (1 unless a soft scan found a better one)."""
        return 1.0 if self.alpha is None else float(self.alpha[i, j])

    @property
    def gain(self) -> np.ndarray:
        return self.loss_gain if self.metric == LOSS else self.score_gain

    @property
    def tiebreak(self) -> np.ndarray:
        return self.score_gain if self.metric == LOSS else self.loss_gain


def channel_pairs(sources: Sequence[int], targets: Sequence[int], channels: int) -> torch.Tensor:
    """All ordered (i, j), i in sources, j in targets, i != j, sorted -> (P, 2) long."""
    src = sorted({check_channel(c, channels) for c in sources})
    tgt = sorted({check_channel(c, channels) for c in targets})
    if not src or not tgt:
        raise ReplacementError("no channels to score; give at least one source and one target channel.")
    grid = torch.cartesian_prod(torch.tensor(src), torch.tensor(tgt)).reshape(-1, 2)
    grid = grid[grid[:, 0] != grid[:, 1]]
    if len(grid) == 0:
        raise ReplacementError("every source equals its only target; add more channels.")
    return grid


class PairScorer:
    """Scores channel-replacement pairs on an evaluator; one verb: `score`."""

    def __init__(self, evaluator: Evaluator, metric: str | None = None, keep_groups: bool = False):
        task = evaluator.set.task
        self.metric = metric or task.metrics[0].name
        self.score_metric = task.metric(self.metric).name  # the score reported beside (or ranked by)
        self.evaluator = evaluator
        self._baseline: tuple[float, float] | None = None
        self.baseline_stats: Stats | None = None  # per image, once `baseline` has run
        self.keep_groups = keep_groups  # report every scored pair's per-group scores (cross-validated selection)

    def baseline(self, cancel: threading.Event | None = None) -> tuple[float, float]:
        """(score, loss) of the unmodified features in the scorer's metric, computed once."""
        if self._baseline is None:
            stats = self.evaluator.stats(identity_map(self.evaluator.channels)[None], cancel=cancel)
            score, loss = self.evaluator.summarize(stats, self.score_metric)
            self._baseline = (float(score[0]), float(loss[0]))
            self.baseline_stats = stats  # per image, for confidence intervals of every gain against it
        return self._baseline

    def score(
        self,
        pairs: torch.Tensor | None = None,
        on_progress: Callable[[ScoreProgress], None] | None = None,
        cancel: threading.Event | None = None,
        plain: bool = False,
        known: tuple[np.ndarray, np.ndarray] | None = None,
        alpha: float = 1.0,
    ) -> PairScores:
        """Score `pairs` (P, 2) (default: all C^2 - C) batched, or one call at a time if `plain`.

        `known` (score_gain, loss_gain) from an interrupted run: pairs already scored there are kept.
        `alpha` < 1 scores soft pairs (i, j, alpha) through the decoder (the linear heads' shortcut is exact
        for alpha 1 only).
        """
        c = self.evaluator.channels
        pairs = channel_pairs(range(c), range(c), c) if pairs is None else pairs
        base_score, base_loss = self.baseline(cancel)
        if known is None:
            score_gain = np.full((c, c), np.nan, np.float32)
            loss_gain = np.full((c, c), np.nan, np.float32)
        else:
            score_gain, loss_gain = known[0].copy(), known[1].copy()
        pending = np.isnan(score_gain[pairs[:, 0].numpy(), pairs[:, 1].numpy()])
        todo = pairs[torch.from_numpy(pending)]
        position = np.flatnonzero(pending)  # of each todo pair in `pairs`
        group_scores: np.ndarray | None = None  # (P, G) with keep_groups
        if self.keep_groups:
            assert self.baseline_stats is not None  # set by `baseline` above
            groups = self.evaluator.per_group(self.baseline_stats, self.score_metric).shape[1]
            group_scores = np.full((len(pairs), groups), np.nan, np.float32)
        t0 = time.perf_counter()
        done = len(pairs) - len(todo)

        def record(start: int, chunk: Stats) -> None:
            nonlocal done
            score, loss = self.evaluator.summarize(chunk, self.score_metric)
            if group_scores is not None:
                group_scores[position[start : start + len(score)]] = self.evaluator.per_group(chunk, self.score_metric)
            ij = todo[start : start + len(score)].numpy()
            score_gain[ij[:, 0], ij[:, 1]] = score - base_score
            loss_gain[ij[:, 0], ij[:, 1]] = base_loss - loss
            done += len(score)
            if on_progress:
                gains = (loss_gain if self.metric == LOSS else score_gain)[ij[:, 0], ij[:, 1]]
                on_progress(ScoreProgress(done, len(pairs), ij, gains, time.perf_counter() - t0, score_gain, loss_gain))

        soft = pair_alphas(todo, alpha, c) if alpha != 1.0 else None
        if plain:
            maps = pair_maps(todo, c)
            for k in range(len(maps)):
                if cancel is not None and cancel.is_set():
                    raise Cancelled("cancelled by the user.")
                record(k, self.evaluator.stats_plain(maps[k : k + 1], None if soft is None else soft[k : k + 1]))
        elif soft is not None or not self.evaluator.pair_stats(todo, on_chunk=record, cancel=cancel):
            self.evaluator.stats(pair_maps(todo, c), on_chunk=record, cancel=cancel, alphas=soft)
        kept = None if group_scores is None else GroupScores(pair_rows(pairs.numpy(), alpha), group_scores)
        seconds = time.perf_counter() - t0
        return PairScores(self.metric, score_gain, loss_gain, base_score, base_loss, seconds, groups=kept)
