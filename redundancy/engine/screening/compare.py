"""The search modes measured against each other: every registered screening mode on the same pairs and images
as the exact scan (top-N overlap, rank correlation, the best set each mode's user gets, time and cost)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from ..combinations import CombinationResult, search_combinations, top_pairs
from ..progress import ScoreProgress
from ..scorer import PairScorer, PairScores
from .base import MODES, reference_mode


@dataclass
class ModeReport:
    """One search mode measured against the exact scan of the same pairs and images."""

    mode: str
    overlap: int  # pairs of the exact top N this mode's top N also holds
    top_n: int
    spearman: float  # rank correlation of the mode's screening estimate with exact gains, on its survivors
    scored: int  # pairs scored exactly
    best_score: float  # best-subset score of the mode's own top N (search set)
    baseline_score: float
    seconds: float
    cost: float  # decoder rows relative to the exact scan (a forward + backward pass counts as 3 rows)
    time_share: float = float("nan")  # measured seconds relative to the exact scan's (counted work vs clock)

    def row(self) -> dict:
        """A flat dict for tables, JSON and CSV."""
        return {**asdict(self), "overlap": f"{self.overlap}/{self.top_n}"}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two score vectors (NaN for fewer than 2 values)."""
    if len(a) < 2:
        return float("nan")
    ra, rb = np.argsort(np.argsort(a, kind="stable")), np.argsort(np.argsort(b, kind="stable"))
    return float(np.corrcoef(ra, rb)[0, 1])


def compare_modes(
    scorer: PairScorer,
    pairs: torch.Tensor,
    settings,
    exact: PairScores | None = None,
    exact_combos: CombinationResult | None = None,
    on_stage: Callable[[str], None] | None = None,
    on_progress: Callable[[ScoreProgress], None] | None = None,
    cancel: threading.Event | None = None,
    on_combos: Callable[[int, int], None] | None = None,
) -> list[ModeReport]:
    """Every registered mode on `pairs` with the settings' top N and options, each measured against the exact
    scan (pass `exact` to reuse one; `exact_combos`, that search's own combination stage, is reused when it
    covers the same top N).

    `on_stage(name)` announces each stage; `on_progress` gets pair-scoring blocks and `on_combos(done, total)`
    the combination stages' progress. Every mode's own top N goes through the combination stage, so
    `best_score` is what a user of that mode would get.
    """
    say = on_stage or (lambda _s: None)
    ev, top_n = scorer.evaluator, settings.top_n
    n_img = len(ev.set)
    full = len(pairs) * n_img
    reference = reference_mode()
    if exact is None:
        say(f"{reference.name} scan")
        exact = reference.score(scorer, pairs, settings, on_progress, cancel)
    ij = pairs.numpy()
    missing = int(np.isnan(exact.gain[ij[:, 0], ij[:, 1]]).sum())
    if missing:
        raise ValueError(f"the exact scores lack {missing} of the pairs to compare; score them all first.")
    exact_top = {(p.source, p.target) for p in top_pairs(exact, top_n)[0]}

    def report(mode, scores: PairScores, known: CombinationResult | None = None) -> ModeReport:
        top, _ = top_pairs(scores, top_n)
        found = {(p.source, p.target) for p in top}
        combos = known if known and {q for c in known.rows for q in c.pairs} == found else None
        if combos is None:
            say(f"{mode.name}: combinations of its top {top_n}")
            combos = search_combinations(ev, top, scorer.baseline(), scorer.metric, on_combos, cancel)
        alive = ij[np.isfinite(scores.gain[ij[:, 0], ij[:, 1]])]
        estimate = mode.estimate(scores)
        rho = (
            1.0
            if estimate is None
            else spearman(estimate[alive[:, 0], alive[:, 1]], exact.gain[alive[:, 0], alive[:, 1]])
        )
        return ModeReport(
            mode.name,
            len(found & exact_top),
            len(exact_top),
            rho,
            int(len(alive)),
            combos.best.score if combos.best else combos.baseline_score,
            combos.baseline_score,
            scores.seconds,
            mode.rows_used(scores, n_img) / full,
        )

    out = [report(reference, exact, exact_combos)]
    for mode in MODES.values():
        if mode is not reference:
            say(f"{mode.name} screening")
            out.append(report(mode, mode.score(scorer, pairs, settings, on_progress, cancel)))
    # Rows are counted work; seconds are this machine's clock (small screening batches run at another rate
    # than the full scan's): both are reported, side by side, so neither passes for the other.
    return [replace(r, time_share=r.seconds / out[0].seconds if out[0].seconds > 0 else float("nan")) for r in out]
