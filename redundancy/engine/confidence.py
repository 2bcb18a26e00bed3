"""How sure a gain is: bootstrap intervals over images (or objects) and a paired sign-flip test.

Every score the engine reports is a mean over metric groups (images, or objects for the PerSeg
protocols; `Task.per_group`), so a gain is a mean of per-group differences between a variant and
the baseline on the same groups. Resampling those groups gives a confidence interval; flipping
their signs at random gives the null distribution of a paired test. Both reuse the per-image
statistics the search already computed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

LEVEL = 0.95
RESAMPLES = 2000  # bootstrap resamples of the groups
FLIPS = 10000  # random sign flips for the paired test
SEED = 0  # fixed: the same run gives the same intervals


@dataclass(frozen=True)
class Interval:
    """A gain (variant minus baseline, positive is better) with its bootstrap interval and paired p-value."""

    gain: float
    lo: float
    hi: float
    p: float  # two-sided sign-flip test of "no difference"
    groups: int  # images or objects the gain is a mean over

    @property
    def within_noise(self) -> bool:
        """The interval holds 0: the data cannot tell this gain from no gain."""
        return self.lo <= 0.0 <= self.hi

    def to_dict(self) -> dict:
        return {**asdict(self), "level": LEVEL, "within_noise": self.within_noise}


HELPS, NOISE, HURTS = "helps", "noise", "hurts"
MIN_GROUPS = 5  # fewer groups than this resample into too few distinct means for an interval to mean much


def verdict(conf: dict | None) -> str:
    """An interval record in one word: HELPS (its interval above 0), HURTS (below 0), else NOISE (it holds 0, or
    there are fewer than MIN_GROUPS groups to tell from)."""
    if not conf or conf.get("groups", 0) < MIN_GROUPS or not np.isfinite(conf["lo"]) or conf["within_noise"]:
        return NOISE
    return HELPS if conf["lo"] > 0 else HURTS


def paired(base: np.ndarray, variant: np.ndarray, seed: int = SEED) -> Interval:
    """Gain of `variant` over `base`, both per-group scores (G,) on the same groups, with its uncertainty."""
    d = np.asarray(variant, np.float64) - np.asarray(base, np.float64)
    g = len(d)
    if g == 0:
        return Interval(float("nan"), float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, g, (RESAMPLES, g))].mean(1)
    lo, hi = np.quantile(means, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    observed = abs(d.mean())
    flips = (rng.choice([-1.0, 1.0], (FLIPS, g)) * d).mean(1)
    p = (np.count_nonzero(np.abs(flips) >= observed - 1e-12) + 1) / (FLIPS + 1)
    return Interval(float(d.mean()), float(lo), float(hi), float(p), g)


def bootstrap_bounds(d: np.ndarray, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """The bootstrap interval of each row's mean for per-group differences d (V, G): (lo (V,), hi (V,)).

    Every row is resampled with the same draws `paired` makes, so row v's bounds are `paired`'s for d[v] (to
    float rounding) and do not depend on which rows are computed together.
    """
    d = np.asarray(d, np.float64)
    v, g = d.shape
    if g == 0:
        return np.full(v, np.nan), np.full(v, np.nan)
    draws = np.random.default_rng(seed).integers(0, g, (RESAMPLES, g))
    counts = np.zeros((RESAMPLES, g))
    np.add.at(counts, (np.arange(RESAMPLES)[:, None], draws), 1.0)  # how often each group is drawn
    means = d @ counts.T / g  # (V, RESAMPLES)
    lo, hi = np.quantile(means, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=1)
    return lo, hi
