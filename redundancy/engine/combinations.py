"""From pair scores to a replacement set: the top-N pairs, then every subset of them evaluated at once, and the
best one (or none: the empty set, when nothing beats the unmodified model)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import ReplacementError
from ..tasks import LOSS
from .distributed import Dist
from .evaluator import Evaluator
from .scorer import PairScores


def distinct_sources(ii: np.ndarray, order: np.ndarray, n: int) -> tuple[list[int], list[int]]:
    """Walk `order` (indices into the pair arrays) keeping pairs whose source `ii` is not taken yet, up to n.

    (kept, skipped): skipped are the pairs passed over for reusing a source before n were kept.
    """
    kept, skipped, taken = [], [], set()
    for k in order:
        if ii[k] in taken:
            skipped.append(int(k))
            continue
        kept.append(int(k))
        taken.add(ii[k])
        if len(kept) == n:
            break
    return kept, skipped


@dataclass(frozen=True)
class RankedPair:
    """A scored pair: channel `source` takes channel `target`'s values."""

    source: int
    target: int
    gain: float
    tiebreak: float
    alpha: float = 1.0  # soft: the share of the target mixed in (1: a copy, the paper's replacement)

    @property
    def pair(self) -> tuple:
        """(source, target), or (source, target, alpha) when soft: what a replacement set lists."""
        return (self.source, self.target) if self.alpha == 1.0 else (self.source, self.target, self.alpha)

    def to_dict(self) -> dict:
        out = {"source": self.source, "target": self.target, "gain": self.gain, "tiebreak": self.tiebreak}
        return out if self.alpha == 1.0 else {**out, "alpha": self.alpha}


def top_pairs(scores: PairScores, n: int) -> tuple[list[RankedPair], list[RankedPair]]:
    """Best n pairs by gain (tie-break: the other metric); pairs reusing a taken source are skipped.

    Returns (chosen, skipped). Fewer than n come back only when fewer usable pairs were scored.
    """
    if n < 1:
        raise ReplacementError(f"top N must be at least 1 (got {n}).")
    gain, tb = scores.gain, scores.tiebreak
    ii, jj = np.nonzero(~np.isnan(gain))
    if len(ii) == 0:
        raise ReplacementError("no pair has been scored yet; run the pair scoring first.")
    order = np.lexsort((jj, ii, -np.nan_to_num(tb[ii, jj], nan=-np.inf), -gain[ii, jj]))
    kept, skipped = distinct_sources(ii, order, n)

    def ranked(k: int) -> RankedPair:
        i, j = int(ii[k]), int(jj[k])
        return RankedPair(i, j, float(gain[i, j]), float(tb[i, j]), scores.alpha_of(i, j))

    return [ranked(k) for k in kept], [ranked(k) for k in skipped]


def subsets(n: int) -> list[tuple[int, ...]]:
    """All 2^n - 1 non-empty subsets of range(n), by size then lexicographically."""
    return [s for k in range(1, n + 1) for s in itertools.combinations(range(n), k)]


@dataclass
class Combination:
    """One evaluated subset of the top pairs."""

    members: tuple[int, ...]  # indices into the top-N list
    pairs: list[tuple]  # (source, target[, alpha])
    score: float
    loss: float


@dataclass
class CombinationResult:
    """Every subset's score, the baseline, and the best set (empty when nothing beats the baseline)."""

    rows: list[Combination]
    baseline_score: float
    baseline_loss: float
    best: Combination | None
    metric: str
    seconds: float
    per_image: np.ndarray | None = None  # (subsets, images, K) task stats of every subset, for confidence

    @property
    def best_pairs(self) -> list[tuple]:
        return self.best.pairs if self.best else []


def _better(a: Combination, b: Combination, metric: str) -> bool:
    ka = (-a.loss, a.score) if metric == LOSS else (a.score, -a.loss)
    kb = (-b.loss, b.score) if metric == LOSS else (b.score, -b.loss)
    return ka > kb or (ka == kb and len(a.pairs) < len(b.pairs))


def search_combinations(
    evaluator: Evaluator,
    top: list[RankedPair],
    baseline: tuple[float, float],
    metric: str,
    on_progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    known: tuple[np.ndarray, ...] | None = None,
    on_rows: Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None = None,
    dist: Dist | None = None,
) -> CombinationResult:
    """Evaluate all 2^N - 1 subsets of `top` applied at once (batched) and pick the best.

    `known` (score, loss, per-image stats) per subset from an interrupted run skips those subsets;
    `on_rows` gets the arrays so far after each chunk (NaN where not evaluated), to save them.
    """
    t0 = time.perf_counter()
    members = subsets(len(top))
    pair_lists = [[top[k].pair for k in m] for m in members]
    shape = (len(members), len(evaluator.set), len(evaluator.set.task.columns))
    score = np.full(len(members), np.nan) if known is None else known[0].copy()
    loss = np.full(len(members), np.nan) if known is None else known[1].copy()
    per_image = known[2].copy() if known is not None and known[2].shape == shape else np.full(shape, np.nan)
    todo = np.nonzero(np.isnan(score))[0]
    if dist:
        todo = dist.shard(todo)  # this rank's share; merged below
    done = len(members) - len(todo)

    def chunk(start: int, stats) -> None:
        nonlocal done
        m, lo = evaluator.summarize(stats, metric)
        rows = todo[start : start + len(m)]
        score[rows], loss[rows], per_image[rows] = m, lo, stats.values
        done += len(m)
        if on_rows:
            on_rows(score, loss, per_image)
        if on_progress:
            on_progress(done, len(members))

    if len(todo):
        evaluator.set_stats([pair_lists[k] for k in todo], on_chunk=chunk, cancel=cancel)
    if dist:
        score, loss, per_image = dist.merge(score, loss, per_image)
    rows = [Combination(m, p, float(a), float(b)) for m, p, a, b in zip(members, pair_lists, score, loss)]
    best = _best(rows, baseline, metric)
    return CombinationResult(rows, baseline[0], baseline[1], best, metric, time.perf_counter() - t0, per_image)


def _best(rows: list[Combination], baseline: tuple[float, float], metric: str) -> Combination | None:
    """The best of `rows` (ties: the smaller set), or None when it does not beat the unmodified model: the
    honest answer is then the empty set."""
    best = None
    for row in rows:
        if best is None or _better(row, best, metric):
            best = row
    return best if best is not None and _better(best, Combination((), [], *baseline), metric) else None


def best_of_first(combos: CombinationResult, n: int) -> Combination | None:
    """The best evaluated subset using only the first n top pairs (None: n = 0, or none beats the baseline)."""
    rows = [r for r in combos.rows if r.members and max(r.members) < n]
    return _best(rows, (combos.baseline_score, combos.baseline_loss), combos.metric)
