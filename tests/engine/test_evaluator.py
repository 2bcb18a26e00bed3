"""Scoring and search on sam_tiny with real features: batched == plain, progress, cancel, combinations."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from redundancy.data import load_image, open_dataset, split
from redundancy.engine.combinations import search_combinations, subsets, top_pairs
from redundancy.engine.evalset import EvalSet
from redundancy.engine.evaluator import Evaluator
from redundancy.engine.features import FeatureCache
from redundancy.engine.scorer import PairScorer, channel_pairs
from redundancy.errors import Cancelled
from redundancy.replace import identity_map, pairs_map


@pytest.fixture(scope="module")
def evaluator(tiny, sample, tmp_path_factory):
    search, _ = split(open_dataset(sample), 4, seed=0)
    cache = FeatureCache(tmp_path_factory.mktemp("feats"))
    return Evaluator(tiny, EvalSet.build(tiny, search, cache, "none", "perseg"), rows=6)


def test_feature_cache_reuses_and_reports_hits(tiny, sample, tmp_path):
    paths = [s.image_path for s in open_dataset(sample).samples[:3]]
    cache = FeatureCache(tmp_path)
    first = cache.encode(tiny, paths)
    assert (first.hits, first.misses) == (0, 3)
    second = cache.encode(tiny, paths[:2])  # each call counts its own images: no state left from the last one
    assert (second.hits, second.misses) == (2, 0)
    first, second = first.tensors["features"], cache.features(tiny, paths)
    assert torch.equal(first, second) and first.shape == (3, 256, 8, 8)
    fresh = tiny.encode([load_image(paths[0])])["features"]
    assert torch.allclose(first[0], fresh[0], atol=1e-2, rtol=1e-2)  # float16 storage


@pytest.mark.slow
def test_batched_scores_equal_the_plain_reference(evaluator):
    """Batched (fixed-shape calls) vs one call per (pair, image): same numbers up to float rounding.

    Different call shapes round differently (~1e-7 in the logits), which can flip a boundary pixel
    whose logit is within that of 0; so counts may differ by a pixel or two, never more.
    """
    pairs = channel_pairs([0, 5, 17], [3, 5, 200], 256)
    maps = __import__("redundancy.replace", fromlist=["pair_maps"]).pair_maps(pairs, 256)
    fast, slow = evaluator.stats(maps), evaluator.stats_plain(maps)
    assert fast.values.shape == slow.values.shape == (8, 4, 3)
    assert np.abs(fast.values[..., :2] - slow.values[..., :2]).max() <= 2
    np.testing.assert_allclose(fast.column(2), slow.column(2), atol=1e-5)
    scores = PairScorer(evaluator).score(pairs)
    ref = PairScorer(evaluator).score(pairs, plain=True)
    ij = pairs.numpy()
    np.testing.assert_allclose(scores.score_gain[ij[:, 0], ij[:, 1]], ref.score_gain[ij[:, 0], ij[:, 1]], atol=0.05)
    assert np.isnan(scores.score_gain[5, 5]) and np.isnan(scores.score_gain[1, 2])
    assert (~np.isnan(scores.score_gain)).sum() == len(pairs) == 8


def test_gain_means_source_takes_target(evaluator):
    scores = PairScorer(evaluator).score(channel_pairs([10], [20], 256))
    miou, _ = evaluator.summarize(evaluator.stats(torch.stack([identity_map(256), pairs_map([(10, 20)], 256)])))
    assert scores.score_gain[10, 20] == np.float32(miou[1] - miou[0])  # exact: same-shape calls
    assert scores.baseline_score == miou[0]


@pytest.mark.slow
def test_scores_do_not_depend_on_batch_composition(evaluator, tiny):
    pairs = channel_pairs(range(0, 256, 64), range(0, 256, 64), 256)
    a = PairScorer(evaluator).score(pairs).score_gain
    b = PairScorer(evaluator).score(pairs.flip(0)).score_gain  # every pair in another batch and position
    np.testing.assert_array_equal(a, b)
    other = PairScorer(Evaluator(tiny, evaluator.set, rows=1)).score(pairs)  # another call shape
    np.testing.assert_allclose(a, other.score_gain, atol=0.05)
    same = PairScorer(evaluator).score(pairs)
    assert [(p.source, p.target) for p in top_pairs(same, 4)[0]] == [
        (p.source, p.target) for p in top_pairs(other, 4)[0]
    ]


@pytest.mark.slow
def test_progress_blocks_cover_every_pair_and_cancel_stops(evaluator):
    pairs = channel_pairs(range(4), range(4), 256)
    events = []
    PairScorer(evaluator).score(pairs, on_progress=events.append)
    assert events[-1].done == events[-1].total == 12 and len(events) > 1
    seen = np.concatenate([e.pairs for e in events])
    assert sorted(map(tuple, seen)) == sorted(map(tuple, pairs.numpy()))
    cancel = threading.Event()
    calls = []

    def stop_after_first(ev):
        calls.append(ev)
        cancel.set()

    with pytest.raises(Cancelled):
        PairScorer(evaluator).score(pairs, on_progress=stop_after_first, cancel=cancel)
    assert len(calls) == 1


@pytest.mark.slow
def test_top_n_skips_taken_sources_and_combinations_pick_the_best(evaluator):
    pairs = channel_pairs(range(0, 256, 32), range(0, 256, 32), 256)
    scorer = PairScorer(evaluator)
    scores = scorer.score(pairs)
    top, skipped = top_pairs(scores, 4)
    assert len(top) == 4 and len({p.source for p in top}) == 4
    assert [p.gain for p in top] == sorted((p.gain for p in top), reverse=True)
    best_gain = np.nanmax(scores.score_gain)
    assert top[0].gain == pytest.approx(best_gain)
    assert all(s.source in {p.source for p in top} for s in skipped)
    result = search_combinations(evaluator, top, scorer.baseline(), scorer.metric)
    assert len(result.rows) == 15 == len(subsets(4))
    singles = {r.pairs[0]: r.score for r in result.rows if len(r.pairs) == 1}
    for p in top:  # a one-pair subset is the pair's own score
        assert singles[(p.source, p.target)] - result.baseline_score == pytest.approx(p.gain)
    best = max(r.score for r in result.rows)
    if best > result.baseline_score:
        assert result.best.score == best
    else:
        assert result.best is None and result.best_pairs == []


def test_nothing_better_than_baseline_returns_the_empty_set(evaluator):
    scorer = PairScorer(evaluator)
    scores = scorer.score(channel_pairs(range(0, 256, 32), range(0, 256, 32), 256))
    top, _ = top_pairs(scores, 3)
    every = search_combinations(evaluator, top, scorer.baseline(), scorer.metric)
    # A baseline above every subset's mIoU (and at the best loss): no subset can beat it.
    ceiling = (max(r.score for r in every.rows) + 1.0, min(r.loss for r in every.rows))
    result = search_combinations(evaluator, top, ceiling, scorer.metric)
    assert len(result.rows) == 7 and all(r.score < result.baseline_score for r in result.rows)
    assert result.best is None and result.best_pairs == []


def test_out_of_memory_halves_the_batch_and_finishes(evaluator, tiny, monkeypatch):
    ev = Evaluator(tiny, evaluator.set, rows=8)
    real = ev._decode

    def tight(maps, img, **kw):  # pretend a device that only fits 2 rows per call
        if len(img) > 2:
            raise torch.OutOfMemoryError("simulated")
        return real(maps, img, **kw)

    monkeypatch.setattr(ev, "_decode", tight)
    pairs = channel_pairs(range(0, 256, 64), range(0, 256, 64), 256)
    got = PairScorer(ev).score(pairs).score_gain
    assert ev.rows == 2 and ev.rows_backoff == [4, 2]
    want = PairScorer(Evaluator(tiny, evaluator.set, rows=2)).score(pairs).score_gain
    np.testing.assert_array_equal(got, want)  # the same numbers as a run that used 2 rows throughout


def test_bf16_autocast_stays_close_and_is_part_of_the_run_identity(evaluator, tiny):
    from redundancy.engine import SessionConfig
    from redundancy.errors import ConfigError

    fp32 = evaluator.logits(images=[0, 1])
    bf16 = Evaluator(tiny, evaluator.set, precision="bf16").logits(images=[0, 1])
    for a, b in zip(fp32, bf16):
        assert b.dtype == torch.float32 and a.shape == b.shape
        assert 0 < (a - b).abs().max() < 0.02  # bf16 rounding is visible, but small against the logits
    with pytest.raises(ConfigError, match="unknown precision 'fp8'"):
        SessionConfig("sam_tiny", "x", precision="fp8").check()


@pytest.mark.slow
def test_tf32_is_fp32_on_a_cpu_and_compile_agrees_with_eager(evaluator, tiny):
    pairs = channel_pairs(range(0, 256, 64), range(0, 256, 64), 256)
    eager = PairScorer(evaluator).score(pairs).score_gain
    tf32 = PairScorer(Evaluator(tiny, evaluator.set, rows=6, precision="tf32")).score(pairs).score_gain
    np.testing.assert_array_equal(tf32, eager)  # TF32 is a CUDA tensor-core mode; a CPU multiplies in fp32
    compiled = Evaluator(tiny, evaluator.set, rows=6, compile=True)
    got = PairScorer(compiled).score(pairs).score_gain
    assert compiled._decode_fn is not tiny.decode  # the compiled call ran, not the eager one
    np.testing.assert_allclose(got, eager, atol=1e-3)  # fused kernels round differently, nothing more


def test_batched_measuring_by_image_size_gives_the_image_by_image_numbers(evaluator, tiny):
    pairs = channel_pairs(range(0, 256, 64), range(0, 256, 64), 256)
    grouped = Evaluator(tiny, evaluator.set, rows=6)
    assert grouped._size_groups is not None  # segmentation targets of one size stack: one step for many images
    per_image = Evaluator(tiny, evaluator.set, rows=6)
    per_image.__dict__["_size_groups"] = None  # the image-by-image path
    a, b = PairScorer(grouped).score(pairs), PairScorer(per_image).score(pairs)
    np.testing.assert_array_equal(a.score_gain, b.score_gain)
