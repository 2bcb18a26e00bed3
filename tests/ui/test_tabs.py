"""The tabs' handlers over a workspace, called in-process (no browser): what each tab shows for a session."""

from __future__ import annotations

import time

import pytest

from redundancy.data import open_dataset, split
from redundancy.engine import SearchSettings
from redundancy.engine.evalset import EvalSet
from redundancy.engine.evaluator import Evaluator
from redundancy.engine.features import FeatureCache
from redundancy.engine.scorer import PairScorer, channel_pairs

from ..conftest import load_app


@pytest.fixture(scope="module")
def evaluator(tiny, sample, tmp_path_factory):
    search, _ = split(open_dataset(sample), 4, seed=0)
    cache = FeatureCache(tmp_path_factory.mktemp("feats"))
    return Evaluator(tiny, EvalSet.build(tiny, search, cache, "none", "perseg"), rows=6)


@pytest.mark.slow
def test_the_app_reports_the_selection_and_its_cost():
    from redundancy.engine import SearchSettings, SessionConfig
    from redundancy.interactive.workspace import Workspace
    from redundancy.ui.tabs import results, search

    from ..conftest import SAMPLE

    ws = Workspace()
    ws.load(SessionConfig(model="sam_tiny", data=str(SAMPLE), random_init=True, search_images=6))
    plain, cv = (search.search_estimate(ws, "every:32", "every:32", 3, s) for s in ("search", "cv"))
    assert "folds" in cv and "folds" not in plain
    ws.start_search(SearchSettings(top_n=3, sources="every:32", targets="every:32", select="cv")).thread.join()
    text = results.results_text(ws)
    assert "cv selection" in text and "-fold cross-validated" in text and "each fold did not see" in text
    pngs, _ = ws.render_figures()  # the Figures tab
    assert "selection.png" in {p.name for p in pngs}


def test_heatmap_hover_gives_each_top_pairs_interval():
    from redundancy.engine import SearchSettings, SessionConfig
    from redundancy.interactive.workspace import Workspace
    from redundancy.ui.tabs import search

    from ..conftest import SAMPLE

    ws = Workspace()
    ws.load(SessionConfig(model="sam_tiny", data=str(SAMPLE), random_init=True, search_images=6))
    ws.start_search(SearchSettings(top_n=3, sources="every:32", targets="every:32")).thread.join()
    fig = search.search_view(ws, ws.result)[0]
    marks = fig.data[1]
    conf = ws.result.confidence["top"]
    assert len(marks.text) == 3 and all("95% interval" in t for t in marks.text)
    d = ws.metric(ws.settings.metric).digits + 1  # gains and bounds at one decimal more than a score
    assert f"[{conf[0]['lo']:+.{d}f}, {conf[0]['hi']:+.{d}f}]" in marks.text[0] and "%{text}" in marks.hovertemplate


@pytest.mark.slow
def test_the_app_loads_a_session_at_a_block():
    from redundancy.ui.tabs import data as app

    ws, badge, *_ = load_app(layer=" 0 ")
    assert "encoder block 0 (96 channels)" in badge and ws.features(0).shape == (96, 8, 8)
    job = ws.start_search(SearchSettings(top_n=2, sources="every:24", targets="every:24"))
    job.thread.join()
    assert job.state.error is None and ws.result.header["layer"] == 0
    assert app.parse_layer("") is None and app.parse_layer(None) is None
    with pytest.raises(Exception, match="not a block number"):
        app.parse_layer("-1")


def test_time_estimate_rests_on_the_rate_measured_while_working(evaluator):
    from dataclasses import replace

    from redundancy.engine import SearchSettings
    from redundancy.engine.cost import search_cost
    from redundancy.ui.tabs.search import estimate_basis

    ev = Evaluator(evaluator.backend, evaluator.set, rows=4)
    pairs = channel_pairs(range(0, 256, 32), range(0, 256, 32), 256)  # 56 pairs
    t0 = time.perf_counter()
    PairScorer(ev).score(pairs)
    took = time.perf_counter() - t0
    assert "batched calls run here" in estimate_basis(ev) and ev.observed_rows >= 56 * len(ev.set)
    cost = search_cost(SearchSettings(top_n=1), len(pairs), len(ev.set), 0, ev.set.task)
    scan = replace(cost, baseline=0, combinations=0, preview=0)  # the pair stage alone: the same work again
    ratio = scan.seconds(ev.seconds_per_row(), ev.seconds_per_pair_row()) / took
    assert 0.5 < ratio < 1.5


def test_the_app_shows_zerogpu_durations_not_cpu_times(monkeypatch):
    from redundancy.engine import SessionConfig
    from redundancy.interactive import zerogpu
    from redundancy.interactive.workspace import Workspace
    from redundancy.ui import common
    from redundancy.ui.tabs import search

    from ..conftest import SAMPLE

    monkeypatch.setattr(zerogpu, "WORKER_DEVICE", "cpu")
    ws = Workspace(remote=True)
    ws.load(SessionConfig(model="sam_tiny", data=str(SAMPLE), random_init=True, search_images=6))
    text = search.search_estimate(ws, "every:16", "every:16", 3)
    assert "asks ZeroGPU for" in text and "which fits" in text and "on cpu" not in text
    assert "more than ZeroGPU grants" in search.search_estimate(ws, "all", "all", 16)
    assert "ZeroGPU" in common.badge(ws)


@pytest.mark.slow
def test_app_push_uploads_the_sessions_run(monkeypatch):
    import gradio as gr
    import huggingface_hub

    from redundancy.engine import SearchSettings, SessionConfig
    from redundancy.interactive.workspace import Workspace
    from redundancy.ui.tabs import results

    from ..conftest import SAMPLE

    uploaded = []
    monkeypatch.setenv("HF_TOKEN", "hf_users_own")
    monkeypatch.delenv("SPACE_ID", raising=False)

    class FakeApi:
        def __init__(self, token=None):
            assert token == "hf_users_own"

        def create_repo(self, repo, private=False, exist_ok=False):
            pass

        def upload_folder(self, folder_path, repo_id, commit_message):
            names = {p.name for p in __import__("pathlib").Path(folder_path).rglob("*")}
            uploaded.append((repo_id, "replacements.json" in names and "README.md" in names))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    ws = Workspace()
    with pytest.raises(gr.Error, match="no model and dataset"):
        results.share_run(None, "me/x", True)
    ws.load(SessionConfig(model="sam_tiny", data=str(SAMPLE), random_init=True, search_images=4))
    with pytest.raises(gr.Error, match="no finished search"):
        results.share_run(ws, "me/x", True)
    ws.start_search(SearchSettings(top_n=2, sources="every:64", targets="every:64")).thread.join()
    with pytest.raises(gr.Error, match="OWNER/NAME"):
        results.share_run(ws, "not a repo", True)
    assert "https://huggingface.co/me/found" in results.share_run(ws, " me/found ", True)
    assert uploaded == [("me/found", True)]


def test_a_space_visitors_push_is_refused_whoever_calls_it(monkeypatch, tmp_path):
    """Defence in depth: with the push endpoint not registered on a Space, the workspace and `push` still refuse,
    and no Hub client is ever made with the owner's token."""
    import huggingface_hub

    from redundancy.errors import RunError
    from redundancy.interactive.workspace import Workspace
    from redundancy.report.share import push

    monkeypatch.setenv("HF_TOKEN", "hf_ownersSECRET")
    monkeypatch.setenv("SPACE_ID", "owner/redundancy")
    monkeypatch.delenv("REDUNDANCY_ALLOW_PUSH", raising=False)
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda *a, **k: pytest.fail("a Hub client was made"))
    ws = Workspace(root=tmp_path)
    with pytest.raises(RunError, match="visitors cannot push"):
        ws.push("me/x")
    with pytest.raises(RunError, match="visitors cannot push"):
        push(tmp_path, "me/x")
    ws.close()


def test_the_default_model_is_the_shipped_demo_model_the_app_opens_with():
    from redundancy.cli.parser import build_parser
    from redundancy.models import DEFAULT_MODEL, get_spec
    from redundancy.ui.tabs.data import DEFAULT_MODEL as APP_DEFAULT

    args = build_parser().parse_args(["search", "--data", "d", "--out", "o"])
    assert args.model == DEFAULT_MODEL == APP_DEFAULT == "sam_tiny_demo"
    assert get_spec(DEFAULT_MODEL).shipped.is_file()  # its weights are in the repository: nothing to download


@pytest.mark.parametrize("space", [False, True], ids=["no token", "a Space's visitor"])
def test_where_no_push_is_offered_the_results_tab_says_why_and_the_way_to_one(monkeypatch, tmp_path, space):
    import gradio as gr

    from redundancy.ui.tabs import results

    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("REDUNDANCY_ALLOW_PUSH", raising=False)
    if space:
        monkeypatch.setenv("HF_TOKEN", "hf_owners")
        monkeypatch.setenv("SPACE_ID", "owner/redundancy")
    else:
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.delenv("SPACE_ID", raising=False)
    with gr.Blocks():
        ui = results.build()
    assert not hasattr(ui, "share_btn")
    hint = ui.share_off.value
    assert ("the token is the owner's" if space else "no hub token") in hint.lower() and "redundancy push RUN" in hint


def test_every_mode_option_has_a_control_and_reaches_the_settings():
    """The Search tab builds one control per registered mode option (elem_id: its name), as the CLI adds a flag
    for each; a search reads only its own mode's, an emptied box falls back to the default."""
    from redundancy.engine.screening import MODES, mode_options
    from redundancy.ui import build_demo
    from redundancy.ui.tabs import search

    demo = build_demo()
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    names = [option.name for _, option in mode_options()]
    assert names and set(names) <= ids
    assert {mode for mode, _ in mode_options()} == {m for m in MODES if MODES[m].options}
    given = {"candidates": 24, "taylor_temperature": 0.5, "halving_start": None, "halving_keep": 0.5}  # one emptied
    values = [given[name] for name in names]
    assert search.option_values(values, ("taylor",)) == {"candidates": 24, "taylor_temperature": 0.5}
    assert search.option_values(values, ("halving",)) == {"halving_keep": 0.5}
    st = search.settings_from(3, None, "auto", "auto", "halving", options=search.option_values(values, ("halving",)))
    assert st.option("halving_keep") == 0.5 and st.option("halving_start") == 2  # its default
    shown = [u["visible"] for u in search.shown_options("taylor")]
    assert shown == [mode == "taylor" for mode, _ in mode_options()]  # a mode's own controls, the others hidden


def test_a_tab_cannot_take_a_name_another_tab_has():
    from types import SimpleNamespace

    from redundancy.ui.common import join

    ui = SimpleNamespace(ws=1, status=2)
    join(ui, SimpleNamespace(mosaic=3), "channels")
    with pytest.raises(ValueError, match="tab search names status, which the page already has"):
        join(ui, SimpleNamespace(status=4, heatmap=5), "search")
    assert ui.status == 2 and not hasattr(ui, "heatmap")


def test_a_live_figure_redraws_at_most_every_few_seconds_and_always_at_a_jobs_end(monkeypatch):
    from redundancy.ui import common

    now = [100.0]
    monkeypatch.setattr(common.time, "monotonic", lambda: now[0])
    due = common.redraws(2.0)
    assert due(False)  # the first frame draws
    now[0] += 1.5
    assert not due(False)  # the status line moves on, the figure stays as it is
    now[0] += 0.5
    assert due(False)
    now[0] += 0.1
    assert due(True)  # the job's last frame draws whatever the clock says
