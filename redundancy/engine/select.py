"""Choosing the replacement set for unseen images: k-fold cross-validation on the search set (`select cv`,
`select greedy`).

The paper picks the best subset of the top N pairs on the same images it ranked them with, so the
reported gain is optimistic and N is fixed. Here the search set's groups (images, or objects for the
PerSeg protocols) are split into k folds. For each fold, pairs are ranked and subsets chosen on the
other folds only (every pair's per-group scores from the one exact scan: a pair's fold score is a
mean of them, so ranking needs no decoding), and the chosen set is measured on the fold held out. That
is done for every N' <= N at once (subsets of the top N' are among the top N's subsets), which gives a
cross-validated held-out gain for each N'. The N' with the best one is chosen if its bootstrap 95%
interval lies above zero, else none (the empty set: the model is left as it is, the honest answer when
the data cannot tell a gain from noise), and the final set is the best subset of the first N' pairs on
the whole search set. `greedy` grows sets one pair at a time from a larger pool instead (adaptive N).

Costs: cv, k more combination stages of 2^N - 1 subsets; greedy, up to (k + 1) x N x pool decoded sets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ..errors import ConfigError
from ..replace import row_pair
from ..tasks import Stats
from .combinations import Combination, CombinationResult, distinct_sources
from .confidence import paired
from .evaluator import Evaluator
from .scorer import GroupScores, PairScorer

SEARCH, CV, GREEDY = "search", "cv", "greedy"
SELECT_MODES = (SEARCH, CV, GREEDY)
POOL_PER_N = 4  # greedy: candidate pairs per allowed set size, by default
CV_SEED = 0  # the folds' split: fixed, so a rerun is identical


def check_folds(select: str, groups: int, unit: str = "image") -> None:
    """Refuse cross-validation over fewer than 2 groups (search images, or objects): one fold has no images to
    choose on, so its "cross-validated" choice would be measured on nothing it did not see."""
    if groups < 2:
        raise ConfigError(
            f"select {select} cross-validates over the search set's {unit}s and needs at least 2 (the search set has "
            f"{groups} {unit}{'s' if groups != 1 else ''}); use 2 or more search {unit}s, or the plain selection "
            "(select search)."
        )


def assign_folds(groups: int, k: int, seed: int = CV_SEED) -> np.ndarray:
    """Fold index (G,) of each group: a seeded permutation dealt round-robin, so fold sizes differ by at most 1."""
    folds = np.empty(groups, np.int64)
    folds[np.random.default_rng(seed).permutation(groups)] = np.arange(groups) % k
    return folds


def rank_on(pairs: np.ndarray, group_scores: np.ndarray, train: np.ndarray, n: int, distinct: bool = True) -> list[int]:
    """The top n candidates (rows of `pairs` (P, 3): source, target, alpha) by mean score over the `train`
    groups: one per source channel (a set's members: a soft pair's alpha is chosen here too), or any
    (`distinct=False`: a greedy pool, whose steps skip sources already taken). Ties: the plain copy first."""
    score = group_scores[:, train].mean(1)
    order = np.lexsort((-pairs[:, 2], pairs[:, 1], pairs[:, 0], -score))
    return distinct_sources(pairs[:, 0], order, n)[0] if distinct else [int(k) for k in order[:n]]


def best_per_size(members: list[tuple[int, ...]], subset_scores: np.ndarray, base: float, n_max: int) -> list[int]:
    """For each N' = 1..n_max: index of the best subset using only the first N' pairs (-1: none beats `base`).

    Ties go to the smaller subset, as in the paper's selection.
    """
    out = []
    for n in range(1, n_max + 1):
        ok = [s for s, m in enumerate(members) if max(m) < n]
        best = max(ok, key=lambda s: (subset_scores[s], -len(members[s])))
        out.append(best if subset_scores[best] > base else -1)
    return out


@dataclass
class CvReport:
    """What cross-validation found: the held-out gain per N' (set size), the N' chosen and its interval."""

    select: str  # cv: best subset of the top N' | greedy: N' pairs grown one at a time from a larger pool
    folds: int
    unit: str  # "image" | "object"
    curve: list[float]  # cross-validated held-out gain (score points) for N' = 1..N
    best_n: int  # the N' with the best cross-validated held-out gain
    chosen_n: int  # best_n if that gain's 95% interval is above 0; else 0: the empty set (no change) is chosen
    estimate: dict  # paired interval of best_n's held-out gain (every group held out once)
    fold_sets: list[list[tuple]]  # each fold's chosen set at chosen_n
    rows: int  # decoder rows the folds' combination stages (greedy: steps) ran
    pool: int | None = None  # greedy: candidate pairs (the top `pool`, any source) each step chooses from

    def to_dict(self) -> dict:
        return dict(vars(self))


def fold_choice(
    pairs: np.ndarray,
    group_scores: np.ndarray,
    base_groups: np.ndarray,
    train: np.ndarray,
    top_n: int,
    subsets: list[tuple[int, ...]],
    evaluate: Callable[[list[list[tuple]]], np.ndarray],
) -> tuple[list[int], list[list[tuple]], np.ndarray]:
    """One fold: rank pairs and choose a subset per N' on the `train` groups only.

    `evaluate(sets)` gives each pair set's per-group scores (S, G) on every group. Returns (the chosen
    subset's row per N' (-1: none beats the baseline on train), the evaluated sets, their scores).
    """
    top = rank_on(pairs, group_scores, train, top_n)
    top_ij = [row_pair(pairs[k]) for k in top]
    usable = [m for m in subsets if max(m) < len(top)]
    sets = [[top_ij[k] for k in m] for m in usable]
    per = evaluate(sets)
    picks = best_per_size(usable, per[:, train].mean(1), base_groups[train].mean(), len(top))
    picks += [picks[-1]] * (top_n - len(picks))  # fewer usable pairs than N: larger N' choose the same
    return picks, sets, per


def greedy_path(
    candidates: list[tuple],
    steps: int,
    evaluate: Callable[[list[list[tuple]]], np.ndarray],
    train: np.ndarray,
) -> list[tuple[list[tuple], np.ndarray]]:
    """Grow a set one pair at a time: each step adds the candidate (with a source not used yet) that gives the
    best mean score over the `train` groups. (set, its per-group scores) after each step; ties: the candidate
    ranked first."""
    current: list[tuple] = []
    path = []
    for _ in range(steps):
        taken = {p[0] for p in current}
        sets = [current + [p] for p in candidates if p[0] not in taken]
        if not sets:
            break
        per = evaluate(sets)
        k = int(np.argmax(per[:, train].mean(1)))
        current = sets[k]
        path.append((current, per[k]))
    return path


def cross_validate(
    ev: Evaluator,
    pairs: np.ndarray,
    group_scores: np.ndarray,
    base_groups: np.ndarray,
    top_n: int,
    folds: int,
    metric: str,
    subsets: list[tuple[int, ...]],
    on_fold: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    rule: str = CV,
    pool: int | None = None,
) -> CvReport:
    """k-fold cross-validation of a selection rule on the search set (module doc): "top N' pairs, then their
    best subset" (cv) or "N' greedy steps over the top `pool` pairs" (greedy), for every N' <= `top_n`.

    `pairs` (P, 3) and `group_scores` (P, G): every scored candidate (source, target, alpha) and its
    per-group scores; `base_groups` (G,): the baseline's. A fold's choice reads only its training groups'
    numbers (`fold_choice`, `greedy_path`).
    """
    g = len(base_groups)
    unit = "object" if ev.set.n_groups and ev.set.n_groups < len(ev.set) else "image"
    check_folds(rule, g, unit)
    folds = min(folds, g)
    fold = assign_folds(g, folds)
    held_gain = np.zeros((top_n, g))  # per N', per group: the gain of the set its fold chose
    fold_sets: list[list[list[tuple]]] = []  # per fold, per N'
    rows = 0

    def evaluate(sets: list[list[tuple]]) -> np.ndarray:
        nonlocal rows
        rows += len(sets) * len(ev.set)
        return ev.per_group(ev.set_stats(sets, cancel=cancel), metric)

    for f in range(folds):
        if on_fold:
            on_fold(f, folds)
        test = fold == f
        if rule == GREEDY:
            assert pool is not None, "select greedy ranks a pool of candidates"
            ranked = rank_on(pairs, group_scores, ~test, pool, distinct=False)
            candidates = [row_pair(pairs[k]) for k in ranked]
            path = greedy_path(candidates, top_n, evaluate, ~test)
            path += path[-1:] * (top_n - len(path))  # fewer candidates than steps: larger N' keep the last set
            for n, (_, per) in enumerate(path):
                held_gain[n, test] = per[test] - base_groups[test]
            fold_sets.append([p for p, _ in path])
            continue
        picks, sets, per = fold_choice(pairs, group_scores, base_groups, ~test, top_n, subsets, evaluate)
        for n, s in enumerate(picks):
            if s >= 0:
                held_gain[n, test] = per[s, test] - base_groups[test]
        fold_sets.append([sets[s] if s >= 0 else [] for s in picks])
    curve = held_gain.mean(1)
    best = int(np.argmax(curve))  # first maximum: the smaller N' on ties
    estimate = paired(np.zeros(g), held_gain[best]).to_dict()
    chosen = best + 1 if estimate["lo"] > 0 else 0  # a gain the data cannot tell from none: keep the model as is
    sets = [s[chosen - 1] if chosen else [] for s in fold_sets]
    return CvReport(rule, folds, unit, [float(x) for x in curve], best + 1, chosen, estimate, sets, rows, pool)


def greedy_choice(
    ev: Evaluator,
    scorer: PairScorer,
    groups: GroupScores,
    combos: CombinationResult,
    steps: int,
    pool: int,
    cancel=None,
) -> CombinationResult:
    """select greedy: `steps` greedy steps over the top `pool` pairs (of every scored candidate: `groups`) on the
    whole search set; each step's set joins the evaluated rows (outside the top-N subsets: no members) and the last
    one is the choice."""
    scored_pairs, group_scores = groups.pairs, groups.scores
    everyone = np.ones(group_scores.shape[1], np.bool_)
    ranked = rank_on(scored_pairs, group_scores, everyone, pool, distinct=False)
    candidates = [row_pair(scored_pairs[k]) for k in ranked]

    seen: dict[tuple, np.ndarray] = {}  # every evaluated set's stats: the path's rows need no second decode

    def evaluate(sets: list[list[tuple]]) -> np.ndarray:
        stats = ev.set_stats(sets, cancel=cancel)
        seen.update((tuple(p), v) for p, v in zip(sets, stats.values))
        return ev.per_group(stats, scorer.metric)

    path = [p for p, _ in greedy_path(candidates, steps, evaluate, everyone)]
    if not path:
        return replace(combos, best=None)
    stats = Stats(np.stack([seen[tuple(p)] for p in path]))
    score, loss = ev.summarize(stats, scorer.metric)
    rows = [Combination((), p, float(m), float(lo)) for p, m, lo in zip(path, score, loss)]
    per_image = None if combos.per_image is None else np.concatenate([combos.per_image, stats.values])
    best = rows[-1] if rows[-1].score > combos.baseline_score else None  # it must gain on the search set too
    return replace(combos, rows=combos.rows + rows, best=best, per_image=per_image)
