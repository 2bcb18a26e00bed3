"""Successive halving: every pair scored on a few images, the best fraction kept, the images doubled, again;
the survivors end with exact scores on all images."""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from ..evalset import subset
from ..evaluator import Evaluator
from ..scorer import PairScorer
from .base import Option, SearchMode, register


def halving_rounds(
    scorer: PairScorer, pairs: torch.Tensor, start_images: int, keep: float, cancel=None
) -> tuple[torch.Tensor, list[dict], np.ndarray]:
    """(the surviving pairs, each round's size, the latest-round estimate of every pair (C, C))."""
    ev = scorer.evaluator
    n = len(ev.set)
    order = list(range(n))  # images join in dataset order, so rounds are reproducible
    alive, m = pairs, max(1, min(start_images, n))
    rounds, estimate = [], np.full((ev.channels, ev.channels), np.nan, np.float32)
    while m < n and len(alive) > 1:
        part = Evaluator(ev.backend, subset(ev.set, order[:m]), ev.rows, ev.precision, ev.compile)
        s = PairScorer(part, scorer.metric).score(alive, cancel=cancel)
        ij = alive.numpy()
        gains = s.gain[ij[:, 0], ij[:, 1]]
        estimate[ij[:, 0], ij[:, 1]] = gains  # the latest-round estimate of every pair still in play
        tb = s.tiebreak[ij[:, 0], ij[:, 1]]
        rank = np.lexsort((ij[:, 1], ij[:, 0], -tb, -gains))
        survivors = max(1, int(np.ceil(len(alive) * keep)))
        rounds.append({"images": m, "pairs": int(len(alive)), "kept": survivors})
        alive = alive[torch.from_numpy(np.sort(rank[:survivors]))]
        m *= 2
    return alive, rounds, estimate


@register
class HalvingMode(SearchMode):
    """Successive halving over images (module doc)."""

    name = "halving"
    summary = "every pair on a few images, the best kept, the images doubled; survivors scored on all images"
    options = (
        Option(
            "halving_start",
            2,
            "halving: images in the first round",
            int,
            lambda v: v >= 1,
            "a whole number >= 1",
            "Halving: images in round 1",
        ),
        Option(
            "halving_keep",
            0.25,
            "halving: fraction kept per round",
            float,
            lambda v: 0 < v < 1,
            "in (0, 1)",
            "Halving: fraction kept per round",
        ),
    )

    def score(self, scorer, pairs, settings, on_progress=None, cancel=None, known=None):
        t0 = time.perf_counter()
        start, keep = settings.option("halving_start"), settings.option("halving_keep")
        alive, rounds, estimate = halving_rounds(scorer, pairs, start, keep, cancel)
        final = scorer.score(alive, on_progress=on_progress, cancel=cancel)
        final.seconds = time.perf_counter() - t0
        final.extra = {"mode": self.name, "rounds": rounds, "survivors": int(len(alive)), "estimate": estimate}
        return final

    def pair_rows(self, n_pairs, n_images, settings, task):
        return min(n_pairs * n_images, 2 * n_pairs * settings.option("halving_start"))  # rounds shrink geometrically

    def survivors(self, n_pairs, n_images, settings):
        alive, m, keep = n_pairs, max(1, settings.option("halving_start")), settings.option("halving_keep")
        while m < n_images and alive > 1:  # the rounds of `halving_rounds`, counted
            alive, m = max(1, math.ceil(alive * keep)), 2 * m
        return alive

    def rows_used(self, scores, n_images):
        return sum(r["pairs"] * r["images"] for r in scores.extra["rounds"]) + scores.extra["survivors"] * n_images

    def estimate(self, scores):
        return scores.extra["estimate"]
