"""Every long stage honours Cancel within one batch, and invalid batch sizes are refused (they looped forever)."""

from __future__ import annotations

import threading

import pytest
import torch

from redundancy.engine import Callbacks, SearchSettings, Session, SessionConfig, run_search
from redundancy.engine.combinations import search_combinations, top_pairs
from redundancy.engine.evaluator import Evaluator
from redundancy.engine.features import FeatureCache
from redundancy.engine.scorer import PairScorer
from redundancy.errors import Cancelled, RedundancyError
from redundancy.interactive.workspace import Workspace

from ..conftest import SAMPLE


def _session(tmp_path, **kw) -> Session:
    cfg = SessionConfig(model="sam_tiny", data=str(SAMPLE), random_init=True, search_images=6, **kw)
    return Session.open(cfg, FeatureCache(tmp_path / "cache"), progress=False)


@pytest.mark.parametrize("rows", [-4, 0, 2.5, 10**9])
def test_invalid_batch_rows_are_refused(tmp_path, rows):
    with pytest.raises(RedundancyError, match="whole number from 1 to 65,536"):
        SessionConfig(model="sam_tiny", data="x", rows=rows).check()
    session = _session(tmp_path)
    with pytest.raises(RedundancyError, match="whole number from 1 to 65,536"):
        Evaluator(session.backend, session.evaluator("search").set, rows=rows)


def test_cancel_during_encoding(tmp_path):
    session = _session(tmp_path)
    cancel, seen = threading.Event(), []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        cancel.set()

    with pytest.raises(Cancelled):
        session.evaluator("search", progress, cancel)
    assert seen == [1]  # stopped after the first image, not after all six


@pytest.mark.slow
def test_cancel_during_baseline_pairs_and_combinations(tmp_path):
    session = _session(tmp_path, rows=6)  # one call per map: cancel can act between maps
    ev = session.evaluator("search")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        PairScorer(ev).baseline(cancel)
    cancel.clear()
    scorer = PairScorer(ev)
    pairs, calls = torch.tensor([[s, s + 1] for s in range(0, 96, 8)]), []  # 12 pairs, 12 sources

    def on_pairs(p) -> None:
        calls.append(p.done)
        cancel.set()

    with pytest.raises(Cancelled):
        scorer.score(pairs, on_progress=on_pairs, cancel=cancel)
    assert calls == [calls[0]] and calls[0] < len(pairs)
    cancel.clear()
    top, _ = top_pairs(scorer.score(pairs), 4)
    done = []
    with pytest.raises(Cancelled):
        search_combinations(
            ev, top, scorer.baseline(), scorer.metric, lambda d, t: (done.append(d), cancel.set()), cancel=cancel
        )
    assert done == [done[0]] and done[0] < 15


def test_cancel_during_the_held_out_evaluation(tmp_path):
    """Set as the combination stage ends: the held-out encoding that follows stops at once."""
    session = _session(tmp_path)
    settings = SearchSettings(sources="every:64", targets="every:64", top_n=2)
    cancel = threading.Event()
    with pytest.raises(Cancelled):
        run_search(session, settings, Callbacks(combos=lambda d, t: d == t and cancel.set()), cancel)
    assert "heldout" not in session._evaluators


def test_cancel_a_zero_sweep_keeps_the_last_complete_one(tmp_path):
    ws = Workspace(root=tmp_path / "ws", cache=FeatureCache(tmp_path / "cache"))
    ws.session = _session(tmp_path, rows=1)
    done = ws.start_sweep([1, 2, 3])
    done.thread.join(timeout=60)
    assert done.state.finished and sorted(ws.sweep) == [1, 2, 3]
    job = ws.start_sweep(list(range(256)))  # a re-run, cancelled at once
    job.cancel.set()
    job.thread.join(timeout=60)
    assert job.state.finished and job.state.cancelled and len(ws.sweep_live) < 256
    assert sorted(ws.sweep) == [1, 2, 3]  # the complete sweep was not replaced by part of one
