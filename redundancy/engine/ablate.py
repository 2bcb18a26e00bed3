"""Table 1 of the paper: the baseline and single edits (zero, swap, replace, scale a channel) on the search set;
every channel zeroed alone is the zero sweep."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import Cancelled
from ..replace import Edit, edit_alpha, edit_map, identity_map, stack_alphas
from ..tasks import Stats
from .progress import Callbacks
from .session import Session


@dataclass
class AblationRow:
    """One Table 1 row: an edit and its effect on the search set."""

    edit: str
    miou: float
    loss: float
    delta_miou: float
    delta_loss: float


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
    alphas = stack_alphas([None] + [edit_alpha(e, c) for e in edits], c)  # scale edits are soft
    ev = session.evaluator("search", cb.encode, cancel, rows=rows)
    names = ["baseline"] + [str(e) for e in edits]
    done: list[AblationRow] = []

    def chunk(start: int, stats: Stats) -> None:
        miou, loss = ev.summarize(stats)
        for k, (m, lo) in enumerate(zip(miou, loss), start):
            base = done[0] if done else None
            delta = (float(m) - base.miou, float(lo) - base.loss) if base else (0.0, 0.0)
            row = AblationRow(names[k], float(m), float(lo), *delta)
            done.append(row)
            if on_row and k:
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
