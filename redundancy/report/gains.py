"""Pure functions on C x C pair-gain matrices ([i, j] = gain when channel i takes channel j's values).

No model code: plotting and the run reader use these without importing the model stack.
"""

from __future__ import annotations

import numpy as np


def best_gain_per_source(gain: np.ndarray) -> np.ndarray:
    """(C,) the best gain channel i reaches when replaced by any channel (NaN if never scored)."""
    scored = ~np.isnan(gain).all(axis=1)
    best = np.full(gain.shape[0], np.nan)
    best[scored] = np.nanmax(gain[scored], axis=1)
    return best


def scored_scope(gain: np.ndarray) -> tuple[list[int], list[int]]:
    """(sources, targets): the channels with at least one scored pair as source, and as target."""
    scored = np.isfinite(gain)
    return np.flatnonzero(scored.any(axis=1)).tolist(), np.flatnonzero(scored.any(axis=0)).tolist()
