"""Choosing the set by cross-validation (`--select cv`): folds, no leak from a held-out fold, the run's report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from redundancy.cli import main
from redundancy.engine.combinations import subsets
from redundancy.engine.select import assign_folds, best_per_size, fold_choice

from ..conftest import search_argv


def test_folds_cover_every_group_once_and_are_balanced():
    folds = assign_folds(23, 5)
    assert sorted(np.bincount(folds)) == [4, 4, 5, 5, 5]
    assert (assign_folds(23, 5) == folds).all()  # seeded: a rerun splits the same way


def test_a_folds_choice_never_reads_its_held_out_groups():
    """Whatever the held-out groups' numbers (pair scan and subset scores alike), the fold chooses the same."""
    rng = np.random.default_rng(0)
    pairs = np.array([(i, j, a) for i in range(8) for j in range(8) if i != j for a in (1.0, 0.5)])  # soft rows too
    g, top_n = 12, 4
    train = assign_folds(g, 4) != 0
    scan = rng.normal(size=(len(pairs), g))
    base = rng.normal(size=g)
    table = {}  # a pair set's per-group scores, fixed per set

    def evaluate(sets):
        return np.stack([table.setdefault(tuple(s), rng.normal(size=g)) for s in sets])

    picks, sets, _ = fold_choice(pairs, scan, base, train, top_n, subsets(top_n), evaluate)
    chosen = [sets[s] if s >= 0 else [] for s in picks]
    scan2, base2 = scan.copy(), base.copy()
    scan2[:, ~train] = rng.normal(size=(len(pairs), (~train).sum())) * 100  # the held-out fold, rewritten
    base2[~train] = -1e6
    for key in table:
        table[key] = np.where(train, table[key], rng.normal(size=g) * 100)
    picks2, sets2, _ = fold_choice(pairs, scan2, base2, train, top_n, subsets(top_n), evaluate)
    assert [sets2[s] if s >= 0 else [] for s in picks2] == chosen


def test_a_fold_picks_each_sources_alpha_on_its_training_groups():
    from redundancy.engine.select import rank_on

    rows = np.array([(0, 1, 1.0), (0, 1, 0.5), (2, 3, 1.0), (2, 3, 0.5)])
    train = np.array([True, True, False])
    scores = np.array([[1.0, 1, 9], [2, 2, -9], [3, 3, 0], [3, 3, 5]])  # held out says the opposite
    assert rank_on(rows, scores, train, 2) == [2, 1]  # (2, 3): a tie keeps the plain copy; (0, 1): alpha 0.5
    assert rank_on(rows, scores, ~train, 2) == [0, 3]


def test_best_per_size_uses_only_the_first_pairs_and_prefers_smaller_sets():
    members = subsets(3)  # (0,), (1,), (2,), (0,1), (0,2), (1,2), (0,1,2)
    scores = np.array([1.0, 3.0, 9.0, 3.0, 2.0, 0.0, 9.0])
    assert best_per_size(members, scores, 0.0, 3) == [0, 1, 2]  # N'=2: (1,) ties (0,1) and is smaller
    assert best_per_size(members, scores, 5.0, 3) == [-1, -1, 2]  # nothing beats the baseline until N'=3


def _selected(out, *flags: str) -> dict:
    """replacements.json of a small selection run (8 search images, every 32nd channel, top 3) with `flags`."""
    argv = search_argv(images=8, heldout=2, top_n=3, channels="every:32")
    assert main([*argv, *flags, "--out", str(out)]) == 0
    return json.loads((out / "replacements.json").read_text())


@pytest.mark.slow
def test_cv_search_writes_its_report_and_picks_from_the_first_n_pairs(tmp_path, capsys):
    out = tmp_path / "run"
    repl = _selected(out, "--select", "cv", "--folds", "4")
    printed = capsys.readouterr().out
    cv = repl["selection"]
    assert cv["select"] == "cv" and cv["folds"] == 4 and len(cv["curve"]) == 3 and cv["unit"] in ("image", "object")
    assert "cross-validation" in printed
    top = [(p["source"], p["target"]) for p in json.loads((out / "topn.json").read_text())["top"]]
    chosen = [(p["source"], p["target"]) for p in repl["pairs"]]
    assert set(chosen) <= set(top[: cv["chosen_n"]])  # N' = 0: the empty set
    assert cv["curve"][cv["best_n"] - 1] == max(cv["curve"]) == pytest.approx(cv["estimate"]["gain"])
    assert cv["chosen_n"] == (cv["best_n"] if cv["estimate"]["lo"] > 0 else 0)


@pytest.mark.slow
def test_soft_pairs_are_cross_validated_candidates(tmp_path):
    out = tmp_path / "run"
    repl = _selected(out, "--select", "cv", "--folds", "3", "--alphas", "0.5")
    cv = repl["selection"]
    assert len(cv["curve"]) == 3 and cv["chosen_n"] in (0, 1, 2, 3)
    top = json.loads((out / "topn.json").read_text())["top"]
    assert all(p.get("alpha", 1.0) in (0.5, 1.0) for p in top + repl["pairs"])
    chosen = [(p["source"], p["target"], p.get("alpha", 1.0)) for p in repl["pairs"]]
    assert set(chosen) <= {(p["source"], p["target"], p.get("alpha", 1.0)) for p in top[: cv["chosen_n"]]}
    for fold in cv["fold_sets"]:  # a fold's set may hold soft pairs (i, j, 0.5); one pair per source
        assert all(len(p) in (2, 3) and (len(p) == 2 or p[2] == 0.5) for p in fold)
        assert len({p[0] for p in fold}) == len(fold)


def test_cv_refuses_what_it_cannot_cross_validate(tmp_path, capsys):
    argv = search_argv(images=4, heldout=0, top_n=2, channels="every:64")
    assert main([*argv, "--select", "cv", "--mode", "taylor", "--out", str(tmp_path / "r")]) == 2
    assert "select cv needs mode exact" in capsys.readouterr().err


@pytest.mark.slow
def test_greedy_grows_from_a_pool_and_its_choice_is_a_path_prefix(tmp_path):
    out = tmp_path / "run"
    repl = _selected(out, "--select", "greedy", "--folds", "3", "--pool", "6")
    cv = repl["selection"]
    assert cv["select"] == "greedy" and cv["pool"] == 6 and len(cv["curve"]) == 3
    assert len(repl["pairs"]) == cv["chosen_n"]  # greedy adds one pair per step
    assert len({p["source"] for p in repl["pairs"]}) == len(repl["pairs"])  # one pair per source channel
    rows = (out / "combinations.csv").read_text().splitlines()[1:]
    assert len(rows) == 7 + cv["chosen_n"]  # the paper's 2^3 - 1 subsets, then each greedy step's set


def test_greedy_path_adds_the_best_training_candidate_each_step():
    from redundancy.engine.select import greedy_path

    gains = {(0, 1): 1.0, (2, 3): 2.0, (0, 3): 5.0}
    train = np.array([True, True, False])

    def evaluate(sets):  # additive scores; the held-out group says the opposite and must be ignored
        return np.array([[sum(gains[p] for p in s)] * 2 + [-sum(gains[p] for p in s)] for s in sets])

    path = greedy_path(list(gains), 3, evaluate, train)
    assert [p for p, _ in path] == [[(0, 3)], [(0, 3), (2, 3)]]  # (0, 1) reuses source 0: never a candidate again


def test_a_greedy_pool_may_hold_several_pairs_per_source_but_a_set_never_does():
    from redundancy.engine.select import greedy_path, rank_on
    from redundancy.replace import row_pair

    pairs = np.array([[0, 1, 1], [0, 2, 1], [0, 3, 1], [1, 2, 1], [2, 0, 1]])
    scores = np.array([[5.0, 5], [4, 4], [3, 3], [2, 2], [1, 1]])
    every = np.ones(2, bool)
    assert rank_on(pairs, scores, every, 3) == [0, 3, 4]  # a set's top N: one per source
    assert rank_on(pairs, scores, every, 3, distinct=False) == [0, 1, 2]  # a pool: the best pairs, any source
    pool = [row_pair(pairs[k]) for k in rank_on(pairs, scores, every, 4, distinct=False)]
    value = {row_pair(p): s[0] for p, s in zip(pairs, scores)}
    path = greedy_path(pool, 3, lambda sets: np.array([[sum(value[p] for p in s)] * 2 for s in sets]), every)
    assert [p for p, _ in path] == [[(0, 1)], [(0, 1), (1, 2)]]  # after (0, 1), source 0's other donors drop out
