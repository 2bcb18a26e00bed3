"""Soft replacement (beyond the paper): channel i becomes (1 - a) X_i + a X_j. Every pair the hard scan scored is
scored again at each alpha of a grid (decoded, batched) and keeps its best alpha."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import torch

from ..replace import pair_rows
from .distributed import Dist
from .progress import Callbacks, ScoreProgress, Stage
from .scorer import GroupScores, PairScorer, PairScores


def best_alpha(hard: PairScores, soft: dict[float, PairScores]) -> PairScores:
    """Each pair at its best alpha: the hard scan's scores, replaced where a soft pass (alpha: its scores) ranks
    strictly higher (ties keep the plain replacement); `alpha` records the choice."""
    score, loss = hard.score_gain.copy(), hard.loss_gain.copy()
    best = hard.gain.copy()
    alpha = np.where(np.isnan(best), np.nan, 1.0)
    for a, s in sorted(soft.items(), reverse=True):
        better = np.nan_to_num(s.gain, nan=-np.inf) > np.nan_to_num(best, nan=np.inf)
        score[better], loss[better], best[better], alpha[better] = (
            s.score_gain[better],
            s.loss_gain[better],
            s.gain[better],
            a,
        )
    seconds = hard.seconds + sum(s.seconds for s in soft.values())
    return replace(hard, score_gain=score, loss_gain=loss, seconds=seconds, alpha=alpha)


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
    groups = [hard.groups] if hard.groups is not None else []
    for a in grid:
        if cb.log:
            cb.log(f"soft replacement: rescoring {len(scored):,} pairs with alpha {a:g}")
        cb.enter(Stage.SOFT, len(scored))

        def shown(ev: ScoreProgress) -> None:  # never below what the pair already reached
            if cb.pairs:
                cb.pairs(replace(ev, gains=np.fmax(ev.gains, hard.gain[ev.pairs[:, 0], ev.pairs[:, 1]])))

        s = scorer.score(mine, on_progress=shown, cancel=cancel, alpha=a)
        if dist:
            s.score_gain, s.loss_gain = dist.merge(s.score_gain, s.loss_gain)
            s.groups = gather_groups(s.groups, scored, mine, dist, a)
        soft[a] = s
        if s.groups is not None:  # every (pair, alpha) is a candidate of the cross-validated selection
            groups.append(s.groups)
    return replace(best_alpha(hard, soft), groups=GroupScores.concat(groups) if groups else None)


def gather_groups(
    groups: GroupScores | None, pairs: torch.Tensor, mine: torch.Tensor, dist: Dist, alpha: float
) -> GroupScores | None:
    """torchrun: this rank's per-group scores (for its shard `mine` of `pairs`) placed in the full pair list and
    merged across ranks like the gain matrices, so every rank holds every candidate's rows."""
    if groups is None:
        return None
    c = int(pairs.max()) + 1  # an index space for (source, target): `mine` is a shard of `pairs`
    full = np.full((len(pairs), groups.scores.shape[1]), np.nan, np.float32)
    row_of = np.full(c * c, -1)
    row_of[pairs[:, 0].numpy() * c + pairs[:, 1].numpy()] = np.arange(len(pairs))
    full[row_of[mine[:, 0].numpy() * c + mine[:, 1].numpy()]] = groups.scores
    return GroupScores(pair_rows(pairs.numpy(), alpha), dist.merge(full)[0])
