"""Confidence in every gain: per-group scores that average to the reported score, bootstrap intervals, a paired
test, and the intervals a search writes (from statistics it already computed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from redundancy.cli import main
from redundancy.engine.confidence import bootstrap_bounds, paired
from redundancy.tasks import Stats, get_task

from ..conftest import search_argv


@pytest.mark.parametrize(
    "task, metric, cols",
    [("segment", None, 3), ("classify", None, 2), ("depth", "rmse", 3), ("depth", "absrel", 3), ("depth", "delta1", 3)],
)
@pytest.mark.parametrize("grouped", [False, True])
def test_per_group_scores_average_to_the_reported_score(task, metric, cols, grouped):
    rng = np.random.default_rng(0)
    values = rng.uniform(0.1, 5.0, (4, 9, cols))
    if task == "segment":
        values[..., 1] += values[..., 0]  # union >= intersection
    if task == "classify":
        values[..., 0] = rng.integers(0, 2, (4, 9))
    groups = np.array([0, 0, 1, 1, 1, 2, 3, 3, -1]) if grouped and task == "segment" else np.arange(9)
    n = int(groups.max()) + 1
    t = get_task(task)
    score, _ = t.reduce(Stats(values), groups, n, metric)
    np.testing.assert_allclose(t.per_group(Stats(values), groups, n, metric).mean(1), score)


def test_paired_interval_and_test():
    rng = np.random.default_rng(1)
    base = rng.normal(50, 10, 40)
    same = paired(base, base)
    assert same.gain == 0 and same.within_noise and same.p == 1.0
    better = paired(base, base + 2 + rng.normal(0, 0.5, 40))
    assert better.lo > 0 and not better.within_noise and better.p < 0.01 and better.groups == 40
    noisy = paired(base, base + rng.normal(0, 5, 40))
    assert noisy.lo < noisy.gain < noisy.hi
    assert paired(base, base + 1).to_dict()["level"] == 0.95


@pytest.mark.slow
def test_a_search_writes_intervals_for_top_pairs_best_set_and_held_out(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*search_argv(images=6, heldout=6, top_n=3, channels="every:32"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "held-out (6 images): mIoU" in printed and "95% interval" in printed and "sign-flip test p" in printed
    top = json.loads((out / "topn.json").read_text())["top"]
    assert len(top) == 3 and all(p["confidence"]["lo"] <= p["confidence"]["hi"] for p in top)
    for p in top:  # a top pair's interval is around its own single-pair gain
        assert p["confidence"]["gain"] == pytest.approx(p["gain"], abs=1e-4)
    repl = json.loads((out / "replacements.json").read_text())
    held = repl["heldout"]["confidence"]
    assert held["groups"] >= 1 and 0 < held["p"] <= 1
    assert held["gain"] == pytest.approx(repl["heldout"]["patched_score"] - repl["heldout"]["baseline_score"], abs=1e-6)
    if repl["pairs"]:
        best = repl["search"]["confidence"]
        assert best["gain"] == pytest.approx(
            repl["search"]["patched_score"] - repl["search"]["baseline_score"], abs=1e-6
        )


def test_bootstrap_bounds_of_many_rows_are_each_rows_paired_interval():
    d = np.random.default_rng(2).normal(0.3, 1.0, (7, 11))  # per-group differences of 7 variants
    lo, hi = bootstrap_bounds(d)
    for v in range(7):
        iv = paired(np.zeros(11), d[v])
        assert lo[v] == pytest.approx(iv.lo, abs=1e-12) and hi[v] == pytest.approx(iv.hi, abs=1e-12)
    alone = bootstrap_bounds(d[3:4])  # a row's bounds do not depend on its neighbours
    assert alone[0][0] == pytest.approx(lo[3], abs=1e-12) and alone[1][0] == pytest.approx(hi[3], abs=1e-12)


def test_an_ablation_rows_interval_and_verdict_come_from_its_per_group_scores(sample):
    import torch

    from redundancy.engine import Session, SessionConfig, ablate
    from redundancy.engine.ablate import verdict
    from redundancy.replace import Edit, edit_map, identity_map

    cfg = SessionConfig(model="sam_tiny", data=str(sample), random_init=True, search_images=6)
    session = Session.open(cfg, progress=False)
    edits = [Edit("zero", 6), Edit("zero", 200), Edit("replace", 3, 7)]
    base, rows = ablate(session, edits)
    ev = session.evaluator("search")
    groups = ev.per_group(ev.stats(torch.stack([identity_map(256)] + [edit_map(e, 256) for e in edits])))
    for k, (e, r) in enumerate(zip(edits, rows), 1):
        iv = paired(groups[0], groups[k])
        assert r.delta_score == pytest.approx(iv.gain, abs=1e-6)
        assert (r.delta_lo, r.delta_hi) == pytest.approx((iv.lo, iv.hi), abs=1e-9)
        assert r.verdict == verdict(e.kind, iv.lo, iv.hi, groups.shape[1])
    assert verdict("zero", -2, -1) == "useful" and verdict("zero", -1, 1) == "redundant"
    assert verdict("zero", 0.5, 1) == "harmful" and verdict("replace", 0.5, 1) == "helps"
    assert verdict("swap", -1, -0.5) == "hurts" and verdict("scale", -1, 1) == "within noise"
    assert base.verdict == "" and base.delta_lo == base.delta_hi == 0.0
    # too few groups to tell, as a search's verdict says for its pairs: the middle word, whatever the interval
    assert verdict("zero", 0.5, 1, groups=4) == "redundant" and verdict("swap", -2, -1, groups=4) == "within noise"
    assert verdict("zero", 0.5, 1, groups=5) == "harmful"
