"""Soft replacement (beyond the paper): channel i becomes (1 - a) X_i + a X_j. Every pair the hard scan scored is
scored again at each alpha of a grid (decoded, batched) and keeps its best alpha."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import torch

from ..replace import pair_rows
from .distributed import Dist
from .progress import Callbacks, ScoreProgress
from .scorer import PairScorer, PairScores


def best_alpha(hard: PairScores, soft: dict[float, PairScores]) -> PairScores:
    """Each pair at its best alpha: the hard scan's scores, replaced where a soft pass (alpha: its scores) ranks
    strictly higher (ties keep the plain replacement); `alpha` records the choice."""
    miou, loss = hard.miou_gain.copy(), hard.loss_gain.copy()
    best = hard.gain.copy()
    alpha = np.where(np.isnan(best), np.nan, 1.0)
    for a, s in sorted(soft.items(), reverse=True):
        better = np.nan_to_num(s.gain, nan=-np.inf) > np.nan_to_num(best, nan=np.inf)
        miou[better], loss[better], best[better], alpha[better] = (
            s.miou_gain[better],
            s.loss_gain[better],
            s.gain[better],
            a,
        )
    seconds = hard.seconds + sum(s.seconds for s in soft.values())
    return replace(hard, miou_gain=miou, loss_gain=loss, seconds=seconds, alpha=alpha)


def soft_passes(
    scorer: PairScorer,
    hard: PairScores,
    pairs: torch.Tensor,
    grid: tuple[float, ...],
    cb: Callbacks,
    cancel: threading.Event | None,
    dist: Dist | None,
) -> PairScores:
    """Soft replacement: every pair the hard scan scored, again at each alpha of `grid` (decoded, batched); each
    pair keeps its best alpha (`search.best_alpha`). The live view shows the best gain so far."""
    pi, pj = pairs[:, 0].numpy(), pairs[:, 1].numpy()
    scored = pairs[torch.from_numpy(np.isfinite(hard.gain[pi, pj]))]
    mine = dist.shard(scored) if dist else scored
    soft: dict[float, PairScores] = {}
    groups = [(scorer.group_pairs, scorer.group_scores)] if scorer.keep_groups else []
    for a in grid:
        if cb.log:
            cb.log(f"soft replacement: rescoring {len(scored):,} pairs with alpha {a:g}")

        def shown(ev: ScoreProgress) -> None:  # never below what the pair already reached
            if cb.pairs:
                cb.pairs(replace(ev, gains=np.fmax(ev.gains, hard.gain[ev.pairs[:, 0], ev.pairs[:, 1]])))

        s = scorer.score(mine, on_progress=shown, cancel=cancel, alpha=a)
        if dist:
            s.miou_gain, s.loss_gain = dist.merge(s.miou_gain, s.loss_gain)
            if scorer.keep_groups:
                gather_groups(scorer, scored, mine, dist, a)
        soft[a] = s
        if scorer.keep_groups:  # every (pair, alpha) is a candidate of the cross-validated selection
            groups.append((scorer.group_pairs, scorer.group_scores))
    if groups:
        scorer.group_pairs = np.concatenate([g for g, _ in groups])
        scorer.group_scores = np.concatenate([v for _, v in groups])
    return best_alpha(hard, soft)


def gather_groups(scorer: PairScorer, pairs: torch.Tensor, mine: torch.Tensor, dist: Dist, alpha: float) -> None:
    """torchrun: this rank's per-group scores (for its shard `mine` of `pairs`) placed in the full pair list and
    merged across ranks like the gain matrices, so every rank holds every candidate's rows."""
    c = scorer.evaluator.channels
    assert scorer.group_scores is not None, "a scorer that keeps groups has them after a score"
    full = np.full((len(pairs), scorer.group_scores.shape[1]), np.nan, np.float32)
    row_of = np.full(c * c, -1)
    row_of[pairs[:, 0].numpy() * c + pairs[:, 1].numpy()] = np.arange(len(pairs))
    full[row_of[mine[:, 0].numpy() * c + mine[:, 1].numpy()]] = scorer.group_scores
    scorer.group_scores, scorer.group_pairs = dist.merge(full)[0], pair_rows(pairs.numpy(), alpha)
