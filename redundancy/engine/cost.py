"""The cost of a search, stage by stage, in decoder rows: the one place every estimate reads (the app's
estimate before a search and its live ETA, the ZeroGPU request, the Guide, the mode comparison).

A row is one (map, image) pass through the head; a linear head scores pairs through its rank-one shortcut
instead (`shortcut`: those rows have their own rate). Rates come from the evaluator's measurements
(`Evaluator.seconds_per_row`, `seconds_per_pair_row`), never from a constant.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .progress import Stage
from .screening import MODES
from .select import CV, GREEDY, POOL_PER_N

PREVIEW_IMAGES = 4  # preview.npz: the first search images' baseline and patched predictions


@dataclass(frozen=True)
class SearchCost:
    """Decoder rows of each stage of one search, before it runs, and the images it still has to encode."""

    pairs: int  # the mode's pair stage (an upper bound for screening modes)
    shortcut: bool  # pair rows run through the head's rank-one shortcut (their own rate)
    baseline: int
    soft: int  # every pair again at each soft alpha (decoded; no shortcut)
    combinations: int  # 2^N - 1 subsets of the top N
    selection: int  # cv / greedy: their folds' stages (an upper bound for greedy)
    heldout: int  # baseline and best set on the held-out images
    preview: int
    encode_images: int = 0  # images not in the feature cache yet

    @property
    def decoded(self) -> int:
        """Rows through the decoder (all but shortcut pair rows)."""
        return (
            self.baseline
            + self.soft
            + self.combinations
            + self.selection
            + self.heldout
            + self.preview
            + (0 if self.shortcut else self.pairs)
        )

    @property
    def rows(self) -> int:
        """Every row of the search."""
        return self.decoded + (self.pairs if self.shortcut else 0)

    def stages(self) -> list[tuple[Stage, int]]:
        """(stage, rows) in the order a search runs them (stages of no rows left out); the encoding stage's rows
        are images through the encoder."""
        named = [
            (Stage.PAIRS, self.pairs), (Stage.SOFT, self.soft), (Stage.COMBINATIONS, self.combinations),
            (Stage.SELECTION, self.selection), (Stage.ENCODE, self.encode_images),
            (Stage.HELDOUT, self.heldout + self.preview),
        ]  # fmt: skip
        return [(name, rows) for name, rows in named if rows]

    def seconds(self, row_s: float, pair_row_s: float, encode_s: float = 0.0) -> float:
        """Predicted time at these rates: seconds a decoded row, a shortcut pair row, an encoded image."""
        pair_rate = pair_row_s if self.shortcut else row_s
        return (
            (self.decoded - (0 if self.shortcut else self.pairs)) * row_s
            + self.pairs * pair_rate
            + (self.encode_images * encode_s)
        )

    def __add__(self, other: SearchCost) -> SearchCost:
        return SearchCost(
            self.pairs + other.pairs, self.shortcut and other.shortcut, self.baseline + other.baseline,
            self.soft + other.soft, self.combinations + other.combinations, self.selection + other.selection,
            self.heldout + other.heldout, self.preview + other.preview, self.encode_images + other.encode_images,
        )  # fmt: skip


def selection_rows(settings, top_n: int, images: int) -> int:
    """Decoder rows a selection rule adds (an upper bound for greedy): cv, a combination stage per fold;
    greedy, N steps over the pool per fold and once more on the whole search set."""
    folds = min(settings.folds, images)
    if settings.select == CV:
        return folds * (2**top_n - 1) * images
    if settings.select == GREEDY:
        return (folds + 1) * top_n * (settings.pool or POOL_PER_N * top_n) * images
    return 0


def search_cost(
    settings,
    n_pairs: int,
    images: int,
    heldout: int,
    task,
    shortcut: bool = False,
    encode_images: int = 0,
    top_n: int | None = None,
) -> SearchCost:
    """The cost of a search with `settings` over `n_pairs` pairs, `images` search and `heldout` held-out images.

    `top_n`: the combination stage's size when fewer usable pairs than the settings' top N exist.
    """
    mode = settings.search_mode
    top_n = min(settings.top_n, mode.survivors(n_pairs, images, settings)) if top_n is None else top_n
    return SearchCost(
        pairs=mode.pair_rows(n_pairs, images, settings, task),
        shortcut=shortcut and mode.exact,
        baseline=images,
        soft=len(settings.alpha_grid) * n_pairs * images,
        combinations=(2**top_n - 1) * images,
        selection=selection_rows(settings, top_n, images),
        heldout=2 * heldout,
        preview=2 * min(PREVIEW_IMAGES, images),
        encode_images=encode_images,
    )


def sweep_rows(channels: int, images: int) -> int:
    """Decoder rows of a zero sweep (Table 1: each channel zeroed alone) over `images` images."""
    return channels * images


def compare_cost(settings, n_pairs: int, images: int, task, shortcut: bool = False, exact_done: bool = False):
    """A comparison of every registered mode (`screening.compare_modes`): each mode's pair stage and combination
    stage (the exact scan's left out when a finished search's scores are reused)."""
    total = None
    for name, mode in MODES.items():
        cost = search_cost(replace(settings, mode=name, select="search", alphas=""), n_pairs, images, 0, task, shortcut)
        cost = replace(cost, preview=0, baseline=0 if total else images)
        if mode.exact and exact_done:
            cost = replace(cost, pairs=0, combinations=0)
        total = cost if total is None else total + cost
    return total
