"""The paper's search on a session, end to end: score pairs (the settings' mode), keep the top N, try every
subset, choose the set (the paper's rule, or cross-validated), check it on held-out images. The result carries
everything its run directory records (`SearchResult`), so writing one never goes back to the session.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..data import load_image
from ..errors import ConfigError
from ..replace import identity_map, set_map
from ..tasks import Stats
from .combinations import CombinationResult, RankedPair, best_of_first, search_combinations, subsets, top_pairs
from .confidence import paired
from .cost import PREVIEW_IMAGES
from .distributed import Dist
from .evaluator import Evaluator
from .progress import Callbacks, ScoreProgress, Stage
from .provenance import record, search_key
from .scorer import PairScorer, PairScores
from .screening import ModeReport, compare_modes
from .select import CV, POOL_PER_N, SEARCH, cross_validate, greedy_choice
from .session import Session
from .settings import SearchSettings, SessionConfig
from .soft import gather_groups, soft_passes

CV_MAX_BYTES = 2**30  # select cv / greedy: every scored pair's per-image scores are kept in memory


@dataclass
class SearchResult:
    """What a finished search found, with everything its run directory records."""

    config: SessionConfig  # the session it ran on
    settings: SearchSettings  # how it ran (the task's metric filled in)
    header: dict
    scores: PairScores
    top: list[RankedPair]
    skipped: list[RankedPair]
    combos: CombinationResult
    heldout: dict | None
    search_images: int
    timings: dict = field(default_factory=dict)
    pairs_in_scope: int = 0
    confidence: dict | None = None  # search-set intervals of the top pairs' and best set's gains
    selection: dict | None = None  # select cv / greedy: the cross-validation report (`select.CvReport`)
    provenance: dict = field(default_factory=dict)  # config.json's content (`provenance.record`)
    key: str = ""  # the search's fingerprint (`provenance.search_key`): resume and the manifest compare it
    preview: dict = field(default_factory=dict)  # preview.npz's arrays: a few search images and predictions
    head_state: dict | None = None  # head.pt's tensors (classify / depth): the head the search scored with

    @property
    def best_pairs(self) -> list[tuple]:
        return self.combos.best_pairs


def search_confidence(ev: Evaluator, scorer: PairScorer, combos: CombinationResult) -> dict | None:
    """Bootstrap intervals (over search images, or objects) of each top pair's gain and of the best set's.

    Each top pair alone is a one-pair subset of the combination stage, whose per-image statistics
    are kept: nothing is decoded again. None where a subset's statistics are missing (a resumed
    run saved before they were kept).
    """
    per_image = combos.per_image
    if per_image is None or not np.isfinite(per_image).all() or scorer.baseline_stats is None:
        return None
    base = ev.per_group(scorer.baseline_stats, scorer.metric)[0]
    variants = ev.per_group(Stats(per_image), scorer.metric)  # (subsets, G)
    top = [paired(base, variants[k]).to_dict() for k, row in enumerate(combos.rows) if len(row.members) == 1]
    best = combos.rows.index(combos.best) if combos.best else None
    return {
        "unit": "object" if ev.set.n_groups and ev.set.n_groups < len(ev.set) else "image",
        "top": top,  # in the order of the top N
        "best": paired(base, variants[best]).to_dict() if best is not None else None,
    }


def _score_pairs(scorer, pairs, settings, cb, cancel, state, dist) -> PairScores:
    """The settings' mode on `pairs` (exact: sharded over torchrun ranks, resumed from `state`), then the soft
    passes; every rank ends with the full matrices."""
    mode, c = settings.search_mode, scorer.evaluator.channels
    known = state.pairs(c) if state and settings.select == SEARCH else None  # cv / greedy: per-image, not saved
    on_pairs = cb.pairs
    if state:

        def on_pairs(ev_: ScoreProgress) -> None:
            state.save_pairs(ev_.score_gain, ev_.loss_gain, force=ev_.done == ev_.total)
            if cb.pairs:
                cb.pairs(ev_)

    resumed = 0 if known is None else int(np.isfinite(known[0][pairs[:, 0].numpy(), pairs[:, 1].numpy()]).sum())
    say = cb.log or (lambda _m: None)
    say(
        f"scoring {len(pairs):,} pairs on {len(scorer.evaluator.set)} images "
        f"({scorer.evaluator.backend.weights.label})"
        + (f"; {resumed:,} already scored in an earlier, interrupted run" if resumed else "")
    )
    if (note := mode.describe(len(pairs), settings)) is not None:
        say(note)
    mine = dist.shard(pairs) if dist else pairs
    cb.enter(Stage.PAIRS, len(pairs))
    scores = mode.score(scorer, mine, settings, on_pairs, cancel, known=known)
    if dist:  # every rank gets the full matrices
        scores.score_gain, scores.loss_gain = dist.merge(scores.score_gain, scores.loss_gain)
        scores.groups = gather_groups(scores.groups, pairs, mine, dist, 1.0)
    if settings.alpha_grid:
        scores = soft_passes(scorer, scores, pairs, settings.alpha_grid, cb, cancel, dist)
    return scores


def _combinations(ev, scorer, top, cb, cancel, state, dist) -> CombinationResult:
    """Every subset of the top pairs, resumed from and saved to `state`."""
    top_ij = [p.pair for p in top]
    known = state.combos(2 ** len(top) - 1, top_ij) if state else None
    save = (lambda m, lo, pi: state.save_combos(top_ij, m, lo, pi)) if state else None
    combos = search_combinations(ev, top, scorer.baseline(cancel), scorer.metric, cb.combos, cancel, known, save, dist)
    if state:
        scores_, losses_ = np.array([r.score for r in combos.rows]), np.array([r.loss for r in combos.rows])
        state.save_combos(top_ij, scores_, losses_, combos.per_image, force=True)
    return combos


def _select(ev, scorer, groups, combos, top, settings, say, cancel) -> tuple[CombinationResult, dict]:
    """select cv / greedy: the set chosen by cross-validation on the search set (every candidate's per-group
    scores: `groups`), and its report."""
    assert groups is not None, "select cv / greedy scores with keep_groups"
    pool = settings.pool or POOL_PER_N * settings.top_n
    base_groups = ev.per_group(scorer.baseline_stats, scorer.metric)[0]
    report = cross_validate(
        ev, groups.pairs, groups.scores, base_groups, len(top), settings.folds, scorer.metric,
        subsets(len(top)), lambda f, k: say(f"cross-validation: fold {f + 1}/{k}"), cancel, settings.select, pool,
    )  # fmt: skip
    say(f"cross-validation chose N = {report.chosen_n} (held-out gain per N: "
        + ", ".join(f"{g:+.3g}" for g in report.curve) + ")")  # fmt: skip
    if settings.select == CV:
        combos = replace(combos, best=best_of_first(combos, report.chosen_n))
    else:
        combos = greedy_choice(ev, scorer, groups, combos, report.chosen_n, pool, cancel)
    return combos, report.to_dict()


def _heldout(hev: Evaluator, best: list[tuple], metric: str, cancel) -> dict:
    """Baseline vs the best set on the held-out images, with the paired interval of the gain."""
    held_stats = hev.set_stats([[], best], cancel=cancel)
    score, loss = hev.summarize(held_stats, metric)
    held_groups = hev.per_group(held_stats, metric)
    return {
        "images": len(hev.set),
        "baseline_score": float(score[0]),
        "patched_score": float(score[1]),
        "baseline_loss": float(loss[0]),
        "patched_loss": float(loss[1]),
        "confidence": paired(held_groups[0], held_groups[1]).to_dict(),  # over held-out images (objects)
    }


def preview(session: Session, ev: Evaluator, pairs: list[tuple], k: int = PREVIEW_IMAGES) -> dict[str, np.ndarray]:
    """A few search images with their channel maps, and what the task keeps of their baseline and patched
    predictions (segmentation: GT, baseline and patched masks), so figures need only the run directory:
    keys names, feats (k, C, h, w) float16, image_i and the task's arrays `<name>_i` (i < k)."""
    idx = list(range(min(k, len(ev.set))))
    c = session.backend.channels
    f, alpha = set_map(pairs, c)
    base, patched = ev.logits(identity_map(c), idx), ev.logits(f, idx, alpha)
    arrays = {
        "names": np.array([ev.set.names[i] for i in idx]),
        "feats": session.backend.channel_maps(ev.set.feats[idx]).cpu().numpy().astype(np.float16),
    }
    for i in idx:
        sample = session.search_set.samples[i]
        arrays[f"image_{i}"] = load_image(sample.image_path)
        target = session.task.load_target(sample)
        arrays.update(
            {f"{name}_{i}": a for name, a in session.task.preview_arrays(target, base[i], patched[i]).items()}
        )
    return arrays


def run_search(
    session: Session,
    settings: SearchSettings | None = None,
    callbacks: Callbacks | None = None,
    cancel: threading.Event | None = None,
    state=None,
    dist: Dist | None = None,
    rows: int | None = None,
) -> SearchResult:
    """Score pairs, keep the top N, try every subset, evaluate baseline and best set on both sets.

    With a `state` (`runs.resume.RunState`), progress is saved as it goes and a rerun continues from it;
    `rows`: decoder rows per call for this search (None: the session's).
    """
    cfg = session.resolve(settings or SearchSettings())
    cb = callbacks or Callbacks()
    say = cb.log or (lambda _m: None)
    ev = session.evaluator("search", cb.encode, cancel, rows=rows)
    timings = {"encode_search_s": session.encode_seconds["search"]}  # wherever it was first built
    pairs = session.channel_pairs(cfg)
    candidates = len(pairs) * (1 + len(cfg.alpha_grid))  # each pair at each alpha
    if cfg.select != SEARCH and candidates * len(ev.set) * 4 > CV_MAX_BYTES:
        raise ConfigError(
            f"select {cfg.select} keeps {candidates:,} candidates x {len(ev.set)} images of scores, over "
            f"{CV_MAX_BYTES / 2**30:.0f} GiB; narrow the sources / targets or use select search."
        )
    scorer = PairScorer(ev, cfg.metric, keep_groups=cfg.select != SEARCH)
    scores = _score_pairs(scorer, pairs, cfg, cb, cancel, state, dist)
    timings["score_s"] = scores.seconds
    top, skipped = top_pairs(scores, cfg.top_n)
    if len(top) < cfg.top_n:
        say(f"only {len(top)} usable pairs for top N = {cfg.top_n}")
    say(f"trying {2 ** len(top) - 1:,} combinations of the top {len(top)} pairs")
    cb.enter(Stage.COMBINATIONS, 2 ** len(top) - 1)
    combos = _combinations(ev, scorer, top, cb, cancel, state, dist)
    timings["combinations_s"] = combos.seconds
    selection = None
    if cfg.select != SEARCH:
        t = time.perf_counter()
        cb.enter(Stage.SELECTION, 1)
        combos, selection = _select(ev, scorer, scores.groups, combos, top, cfg, say, cancel)
        timings["cv_s"] = time.perf_counter() - t
    heldout, main = None, dist is None or dist.main  # other torchrun ranks return what they scored
    if len(session.heldout_set) and main:
        t = time.perf_counter()
        hev = session.evaluator("heldout", cb.encode, cancel, rows=rows)
        say(f"held-out check: baseline and best set on {len(hev.set)} held-out images")
        cb.enter(Stage.HELDOUT, 1)
        heldout = _heldout(hev, combos.best_pairs, scorer.metric, cancel)
        timings["heldout_s"] = time.perf_counter() - t
    return SearchResult(
        config=session.cfg,
        settings=cfg,
        header=session.header(),
        scores=scores,
        top=top,
        skipped=skipped,
        combos=combos,
        heldout=heldout,
        search_images=len(ev.set),
        timings=timings,
        pairs_in_scope=len(pairs),
        confidence=search_confidence(ev, scorer, combos),
        selection=selection,
        provenance=record(session, cfg, pairs, timings) if main else {},
        key=search_key(session, cfg, pairs),
        preview=preview(session, ev, combos.best_pairs) if main else {},
        head_state=session.head_state(),
    )


def compare_search_modes(
    session: Session,
    settings: SearchSettings | None = None,
    exact: SearchResult | None = None,
    callbacks: Callbacks | None = None,
    cancel: threading.Event | None = None,
    rows: int | None = None,
) -> list[ModeReport]:
    """Every registered mode on the settings' pairs, top N and options (`screening.compare_modes`).

    `exact` (an exact search just run on the same pairs, in the same metric) saves the full scan
    and, for the same top N, its combination stage.
    """
    cfg = session.resolve(settings or SearchSettings())
    cb = callbacks or Callbacks()
    ev = session.evaluator("search", cb.encode, cancel, rows=rows)
    pairs = session.channel_pairs(cfg)
    say = cb.log or (lambda _m: None)
    say(f"comparing search modes on {len(pairs):,} pairs x {len(ev.set)} images ({session.backend.weights.label})")
    return compare_modes(
        PairScorer(ev, cfg.metric), pairs, cfg,
        exact=exact.scores if exact else None, exact_combos=exact.combos if exact else None,
        on_stage=say, on_progress=cb.pairs, cancel=cancel, on_combos=cb.combos,
    )  # fmt: skip


def evaluate(
    evaluator: Evaluator,
    maps: torch.Tensor,
    plain: bool = False,
    cancel: threading.Event | None = None,
    metric: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(score, loss) per map (V, C), batched or through the plain reference path (score: mIoU % for segmentation)."""
    stats = evaluator.stats_plain(maps) if plain else evaluator.stats(maps, cancel=cancel)
    return evaluator.summarize(stats, metric)
