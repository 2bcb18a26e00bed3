"""Table 1 of the paper: the baseline and single edits (zero, swap, replace, scale a channel) on the search set;
every channel zeroed alone is the zero sweep."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import Cancelled
from ..replace import Edit, edit_alpha, edit_map, identity_map, stack_alphas
from ..tasks import Stats
from .confidence import LEVEL, MIN_GROUPS, bootstrap_bounds
from .progress import Callbacks
from .session import Session

# What a row's verdict says: its delta's 95% bootstrap interval over the search set's metric groups (images, or
# objects for the PerSeg protocols) is below 0, holds 0, or is above 0. A zeroed channel is then useful (removing
# it lowers the score), redundant (no change the search set can tell from noise) or harmful (removing it helps).
VERDICTS = {"zero": ("useful", "redundant", "harmful"), "other": ("hurts", "within noise", "helps")}
VERDICT_RULE = (
    f"the verdict reads the change's {LEVEL:.0%} bootstrap interval over the search set's images (objects for "
    "PerSeg): below 0 = useful (zeroing makes the score worse), holding 0 = redundant (no change beyond noise), above "
    "0 = harmful (zeroing makes it better); other edits: hurts, within noise, helps. With fewer than "
    f"{MIN_GROUPS} images (objects) the interval means little, so every edit reads as the middle word, as a "
    "search's verdict reads 'too few to tell'"
)


@dataclass
class AblationRow:
    """One Table 1 row: an edit and its effect on the search set.

    `delta_lo`, `delta_hi`: the 95% bootstrap interval of `delta_score` over the search set's metric groups;
    `verdict`: what that interval says (`VERDICTS`; "" for the baseline).
    """

    edit: str
    score: float
    loss: float
    delta_score: float
    delta_loss: float
    delta_lo: float = 0.0
    delta_hi: float = 0.0
    verdict: str = ""


def verdict(kind: str, lo: float, hi: float, groups: int = MIN_GROUPS) -> str:
    """An edit's verdict from its delta's interval over `groups` metric groups: (below 0, holds 0, above 0) worded
    for zeroing or any edit; fewer than MIN_GROUPS groups cannot tell, as for a search's pairs (`confidence`)."""
    below, holds, above = VERDICTS["zero" if kind == "zero" else "other"]
    if groups < MIN_GROUPS:
        return holds
    return below if hi < 0 else above if lo > 0 else holds


def ablate(
    session: Session,
    edits: list[Edit],
    plain: bool = False,
    callbacks: Callbacks | None = None,
    cancel: threading.Event | None = None,
    on_row: Callable[[AblationRow], None] | None = None,
    rows: int | None = None,
) -> tuple[AblationRow, list[AblationRow]]:
    """Baseline and each edit alone on the search set (the paper's Table 1; every channel zeroed: the sweep).

    Edits are batched in the search's fixed-shape decoder calls, so a row does not depend on its
    neighbours and `replace i:j` equals the pair score [i, j] exactly; `plain` uses the unbatched
    reference path instead. Edits are checked before anything is encoded; `callbacks.edits(done,
    total)` counts finished edits and `on_row` gets each edit's row as it finishes.
    """
    cb = callbacks or Callbacks()
    c = session.backend.channels
    maps = torch.stack([identity_map(c)] + [edit_map(e, c) for e in edits])
    alphas = stack_alphas([None, *(edit_alpha(e, c) for e in edits)], c)  # scale edits are soft
    ev = session.evaluator("search", cb.encode, cancel, rows=rows)
    names = ["baseline"] + [str(e) for e in edits]
    kinds = [""] + [e.kind for e in edits]
    done: list[AblationRow] = []
    base_groups = np.zeros(0)  # the baseline's score per metric group (G,)

    def chunk(start: int, stats: Stats) -> None:
        nonlocal base_groups
        scores, loss = ev.summarize(stats)
        groups = ev.per_group(stats)  # (V, G): each variant's score per metric group
        if not done:  # the first chunk starts with map 0, the baseline
            base_groups = groups[0]
            done.append(AblationRow(names[0], float(scores[0]), float(loss[0]), 0.0, 0.0))
        base = done[0]
        lows, highs = bootstrap_bounds(groups - base_groups)
        for v in range(len(scores)):
            k = start + v
            if k == 0:
                continue
            score, ls, low, high = float(scores[v]), float(loss[v]), float(lows[v]), float(highs[v])
            row = AblationRow(
                names[k],
                score,
                ls,
                score - base.score,
                ls - base.loss,
                low,
                high,
                verdict(kinds[k], low, high, groups.shape[1]),
            )
            done.append(row)
            if on_row:
                on_row(row)
        if cb.edits:
            cb.edits(len(done) - 1, len(edits))  # the baseline (map 0) is not an edit

    if plain:
        for k in range(len(maps)):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled by the user; finished results are kept.")
            chunk(k, ev.stats_plain(maps[k : k + 1], None if alphas is None else alphas[k : k + 1]))
    else:
        ev.stats(maps, on_chunk=chunk, cancel=cancel, alphas=alphas)
    return done[0], done[1:]
