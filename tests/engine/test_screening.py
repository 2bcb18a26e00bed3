"""Screening modes: the Taylor matrix is the true first derivative; halving keeps exact survivor scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from redundancy.cli import main
from redundancy.data import open_dataset, split
from redundancy.engine import SearchSettings
from redundancy.engine.evalset import EvalSet
from redundancy.engine.evaluator import Evaluator
from redundancy.engine.features import FeatureCache
from redundancy.engine.scorer import PairScorer, channel_pairs
from redundancy.engine.screening import MODES
from redundancy.engine.screening.compare import spearman
from redundancy.engine.screening.taylor import screening_objective, taylor_matrix

from ..conftest import SAMPLE, search_argv


@pytest.fixture(scope="module")
def ev(tiny, tmp_path_factory):
    search, _ = split(open_dataset(SAMPLE), 4, seed=0)
    return Evaluator(tiny, EvalSet.build(tiny, search, FeatureCache(tmp_path_factory.mktemp("f")), "none", "perseg"))


@pytest.mark.parametrize("metric", ["miou", "loss"])
def test_taylor_matrix_is_the_directional_derivative(ev, metric):
    pred, tau = taylor_matrix(ev, metric)
    assert (tau == 1.0) == (metric == "loss")
    x = ev.set.feats.double().float()
    eps = 1e-2
    for i, j in ((3, 7), (100, 5)):
        step = torch.zeros_like(x)
        step[:, i] = x[:, j] - x[:, i]
        with torch.no_grad():
            up, down = (screening_objective(ev, x + s * eps * step, metric, tau) for s in (1, -1))
        assert pred[i, j] == pytest.approx((up - down) / (2 * eps), rel=0.05, abs=1e-4)
    assert np.allclose(np.diag(pred), 0)


def test_taylor_ranks_miou_gains_through_the_soft_miou(ev):
    pairs = channel_pairs(range(0, 256, 16), range(0, 256, 16), 256)
    exact = PairScorer(ev).score(pairs).score_gain
    ij = pairs.numpy()
    truth = exact[ij[:, 0], ij[:, 1]]
    soft, _ = taylor_matrix(ev, "miou")
    loss, _ = taylor_matrix(ev, "loss")
    # the stand-in that follows the metric ranks exact mIoU gains well; the loss gradient does not
    assert spearman(soft[ij[:, 0], ij[:, 1]], truth) > 0.6 > spearman(loss[ij[:, 0], ij[:, 1]], truth)


def test_screens_rescore_their_survivors_exactly(ev):
    pairs = channel_pairs(range(0, 256, 32), range(0, 256, 32), 256)
    scorer = PairScorer(ev)
    exact = scorer.score(pairs)
    tay = MODES["taylor"].score(scorer, pairs, SearchSettings(mode="taylor", options={"candidates": 10}))
    halving = SearchSettings(mode="halving", options={"halving_start": 1, "halving_keep": 0.5})
    hal = MODES["halving"].score(scorer, pairs, halving)
    for s, n in ((tay, 10), (hal, hal.extra["survivors"])):
        alive = np.isfinite(s.score_gain)
        assert alive.sum() == n
        np.testing.assert_array_equal(s.score_gain[alive], exact.score_gain[alive])
    assert [r["images"] for r in hal.extra["rounds"]] == [1, 2] and hal.extra["survivors"] == 14


def test_cli_modes_write_runs(tmp_path, capsys):
    for mode in ("taylor", "halving"):
        out = tmp_path / mode
        assert (
            main(search_argv("--mode", mode, "--candidates", "8", "--out", str(out), "--json", heldout=0, top_n=2)) == 0
        )
        repl = json.loads(capsys.readouterr().out)
        assert json.loads((out / "config.json").read_text())["search"]["mode"] == mode
        assert repl["search"]["images"] == 4


@pytest.mark.parametrize("options", [{}, {"halving_start": 1, "halving_keep": 0.5}, {"candidates": 7}])
def test_each_mode_says_before_it_runs_how_many_pairs_survive(ev, options):
    """What the cost model reads (its top N, hence its 2^N - 1 subsets) is what the screen then keeps."""
    pairs = channel_pairs(range(0, 256, 32), range(0, 256, 32), 256)
    for name, mode in MODES.items():
        settings = SearchSettings(mode=name, options=options)
        kept = np.isfinite(mode.score(PairScorer(ev), pairs, settings).gain).sum()
        assert mode.survivors(len(pairs), len(ev.set), settings) == kept, name
