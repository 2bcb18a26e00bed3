"""Soft replacement (i, j, a): X'_i = (1 - a) X_i + a X_j, scored, chosen, written, patched and applied."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import redundancy
from redundancy.cli import main
from redundancy.engine import SearchSettings, Session, SessionConfig
from redundancy.engine.scorer import PairScorer, PairScores, channel_pairs
from redundancy.engine.soft import best_alpha
from redundancy.errors import ConfigError, ReplacementError
from redundancy.models import build_backend
from redundancy.replace import channel_map, pairs_map, parse_replacements, set_maps

from ..conftest import SAMPLE, search_argv


@pytest.fixture(scope="module")
def session():
    cfg = SessionConfig(model="sam_tiny", data=str(SAMPLE), random_init=True, search_images=4, device="cpu")
    return Session.open(cfg, progress=False)


@pytest.mark.parametrize("name", ["sam_tiny", "sam2_tiny"])
def test_patch_blends_the_source_with_the_target(name):
    backend = build_backend(name, random_init=True, seed=0, device="cpu", progress=False)
    image = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    x = backend.encode([image])["features"]
    with redundancy.patch(backend.model, [(3, 7, 0.25), (5, 9)]):
        y = backend.encode([image])["features"]
    assert torch.allclose(y[:, 3], 0.75 * x[:, 3] + 0.25 * x[:, 7], atol=1e-5)
    assert torch.allclose(y[:, 5], x[:, 9], atol=1e-5) and torch.allclose(y[:, 10:], x[:, 10:], atol=1e-5)


@pytest.mark.slow
def test_batched_soft_rows_equal_the_reference_and_the_patched_encoder(session):
    ev = session.evaluator("search")
    sets = [[(3, 7, 0.25)], [(3, 7, 0.25), (40, 2)], [(3, 7)]]
    maps, alphas = set_maps(sets, ev.channels)
    batched = ev.stats(maps, alphas=alphas).values
    assert np.allclose(batched, ev.stats_plain(maps, alphas).values, rtol=1e-4, atol=1e-3)
    hard = ev.stats(pairs_map([(3, 7)], ev.channels)[None]).values  # alpha 1 is the plain copy, bit for bit
    assert np.array_equal(batched[2], hard[0])
    backend = session.backend  # the patched model's own features give the same logits as the soft row
    with redundancy.patch(backend.model, sets[1]):
        from redundancy.data import load_image

        feats = backend.encode([load_image(session.search_set.samples[0].image_path)])["features"]
    f = channel_map(sets[1], ev.channels)
    expected = redundancy.replace.apply_map(ev.set.feats[:1], f)  # cached features are float16
    assert torch.allclose(feats, expected, rtol=1e-3, atol=3e-3)


def test_each_pair_keeps_its_best_alpha():
    c = 3
    nan = np.full((c, c), np.nan)

    def scores(gain: float) -> PairScores:
        g = nan.copy()
        g[0, 1], g[1, 2] = gain, -gain
        return PairScores("miou", g, g.copy(), 50.0, 0.5)

    best = best_alpha(scores(1.0), {0.5: scores(2.0), 0.25: scores(2.0)})
    assert best.alpha[0, 1] == 0.5 and best.gain[0, 1] == 2.0  # ties between soft passes: the larger alpha
    assert best.alpha[1, 2] == 1.0 and best.gain[1, 2] == -1.0  # the plain copy wins; ties keep it
    assert np.isnan(best.alpha[0, 2])


@pytest.mark.slow
def test_soft_search_scores_every_pair_at_every_alpha(tmp_path, session):
    out = tmp_path / "run"
    argv = search_argv(images=4, heldout=2, top_n=2, channels="every:64")
    assert main([*argv, "--alphas", "0.5", "--out", str(out)]) == 0
    gain = np.load(out / "pair_scores.npy")
    ev = session.evaluator("search")
    pairs = channel_pairs(range(0, 256, 64), range(0, 256, 64), 256)
    scorer = PairScorer(ev)
    hard, half = scorer.score(pairs).score_gain, scorer.score(pairs, alpha=0.5).score_gain
    assert np.allclose(gain, np.fmax(hard, half), equal_nan=True, atol=1e-6)
    topn = json.loads((out / "topn.json").read_text())["top"]
    for p in topn:  # each top pair carries the alpha its gain was measured at
        i, j = p["source"], p["target"]
        want = half[i, j] if half[i, j] > hard[i, j] else hard[i, j]
        assert p["gain"] == pytest.approx(want) and p.get("alpha", 1.0) == (0.5 if half[i, j] > hard[i, j] else 1.0)


@pytest.mark.slow
def test_a_soft_set_applies_from_its_json(tmp_path, session):
    from redundancy.runs.apply import apply_pairs

    repl = {"model": "sam_tiny", "channels": 256, "pairs": [{"source": 3, "target": 7, "alpha": 0.25}]}
    assert parse_replacements(repl, "soft.json") == [(3, 7, 0.25)]
    hard = apply_pairs(session.backend, {**repl, "pairs": [{"source": 3, "target": 7}]}, SAMPLE, tmp_path / "h")
    soft = apply_pairs(session.backend, repl, SAMPLE, tmp_path / "s")
    assert json.loads((tmp_path / "s" / "apply.json").read_text())["pairs"] == [[3, 7, 0.25]]
    assert soft.baseline_score == hard.baseline_score and soft.patched_score != hard.patched_score


@pytest.mark.parametrize(
    "pairs,message",
    [([(3, 7, 0.0)], "in \\(0, 1\\]"), ([(3, 7, 1.5)], "in \\(0, 1\\]"), ([(3, 7, "half")], "in \\(0, 1\\]")],
)
def test_bad_alphas_are_refused(pairs, message):
    with pytest.raises(ReplacementError, match=message):
        pairs_map(pairs, 16)


def test_alpha_grid_is_checked():
    assert SearchSettings(alphas="0.5, 0.25").alpha_grid == (0.25, 0.5)
    for bad in ("1", "0", "x"):
        with pytest.raises(ConfigError, match="alphas"):
            SearchSettings(alphas=bad)
    assert SearchSettings(alphas="0.5", select="cv").alpha_grid == (0.5,)  # alphas are cross-validated too


def test_scale_edits_span_zeroing_and_no_change(session):
    from redundancy.engine import ablate
    from redundancy.replace import Edit, parse_edits

    edits = [Edit("zero", 6), *parse_edits("scale", "6:0,6:1,6:0.5")]
    assert [str(e) for e in edits[1:]] == ["scale 6x0", "scale 6x1", "scale 6x0.5"]
    base, (zero, scale0, scale1, half) = ablate(session, edits)
    assert (scale0.score, scale0.loss) == (zero.score, zero.loss)  # s = 0 is Table 1's zeroing, exactly
    assert (scale1.score, scale1.loss) == (base.score, base.loss)  # s = 1 changes nothing
    plain = ablate(session, edits[-1:], plain=True)[1][0]
    assert plain.loss == pytest.approx(half.loss, rel=1e-4)  # batched and reference paths agree
    with pytest.raises(ReplacementError, match="scale factor"):
        parse_edits("scale", "6:-1")
    with pytest.raises(ReplacementError, match="channel:factor"):
        parse_edits("scale", "6")
