"""A search announces its stages as events (`Callbacks.stage`), named by the one `Stage` enum the cost model
plans with: no front end reads stages out of log text."""

from __future__ import annotations

import pytest

from redundancy.engine import Callbacks, SearchSettings, Session, SessionConfig, Stage, run_search
from redundancy.engine.cost import search_cost

from ..conftest import SAMPLE


@pytest.mark.slow
@pytest.mark.parametrize(
    "settings",
    [
        SearchSettings(sources="0-3", targets="0-3", top_n=2),
        SearchSettings(sources="0-3", targets="0-3", top_n=2, select="cv", folds=2, alphas="0.5"),
    ],
    ids=["paper", "soft-cv"],
)
def test_a_search_announces_the_stages_its_cost_plans(tmp_path, settings):
    cfg = SessionConfig(model="sam_tiny", data=str(SAMPLE), random_init=True, search_images=4, heldout_images=2)
    session = Session.open(cfg, progress=False)
    session.evaluator("heldout")  # encoded now: the search's stages are the decoder's only
    n_pairs = len(session.channel_pairs(session.resolve(settings)))
    cost = search_cost(session.resolve(settings), n_pairs, 4, 2, session.task)
    seen: list[tuple[Stage, int]] = []
    said: list[str] = []
    run_search(session, settings, Callbacks(stage=lambda s, n: seen.append((s, n)), log=said.append))
    assert [s for s, _ in seen] == [s for s, _ in cost.stages()]
    assert all(isinstance(s, Stage) for s, _ in seen) and seen[0] == (Stage.PAIRS, n_pairs)
    assert dict(seen)[Stage.COMBINATIONS] == 2**2 - 1
    assert str(Stage.HELDOUT) == f"{Stage.HELDOUT}" == "held-out check"  # the words a status line shows
    assert said  # the log still tells a reader what happens; nothing reads stages out of it
