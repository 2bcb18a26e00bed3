"""A toy search mode, one file: score a seeded random sample of the pairs exactly, the rest left unscored."""

from __future__ import annotations

import math
import time

import torch

from redundancy.engine.screening.base import Option, SearchMode, register


@register
class SampledMode(SearchMode):
    name = "sampled"
    summary = "a seeded random sample of the pairs scored exactly"
    options = (
        Option("sample_share", 0.5, "sampled: share of pairs scored", float, lambda v: 0 < v <= 1, "in (0, 1]",
               "Sampled: share of pairs scored"),
    )  # fmt: skip

    def kept(self, n_pairs: int, settings) -> int:
        return max(1, math.ceil(n_pairs * settings.option("sample_share")))

    def score(self, scorer, pairs, settings, on_progress=None, cancel=None, known=None):
        t0 = time.perf_counter()
        pick = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(0))[: self.kept(len(pairs), settings)]
        scores = scorer.score(pairs[pick.sort().values], on_progress=on_progress, cancel=cancel)
        scores.seconds = time.perf_counter() - t0
        scores.extra = {"mode": self.name, "kept": len(pick)}
        return scores

    def pair_rows(self, n_pairs, n_images, settings, task):
        return self.kept(n_pairs, settings) * n_images

    def survivors(self, n_pairs, n_images, settings):
        return self.kept(n_pairs, settings)
