"""The paper's mode: every ordered pair scored exactly on every search image."""

from __future__ import annotations

from .base import SearchMode, register


@register
class ExactMode(SearchMode):
    """Every pair, every image: C^2 - C decoder rows per image (a linear head's rank-one shortcut where it has one)."""

    name = "exact"
    summary = "every pair scored exactly (the paper)"
    exact = True

    def score(self, scorer, pairs, settings, on_progress=None, cancel=None, known=None):
        return scorer.score(pairs, on_progress=on_progress, cancel=cancel, known=known)

    def pair_rows(self, n_pairs, n_images, settings, task):
        return n_pairs * n_images
