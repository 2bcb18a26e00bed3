"""ZeroGPU: the heavy steps as plain-data GPU tasks give the local numbers, through the real `spaces` wrapper too."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from redundancy.cli.commandline import command_line
from redundancy.cli.parser import build_parser, search_settings, session_config
from redundancy.engine import SearchSettings, SessionConfig
from redundancy.errors import RunError
from redundancy.interactive import zerogpu
from redundancy.interactive.workspace import Workspace

from ..conftest import ROOT, SAMPLE, running_app, stop_group

SCOPE = "every:16"


def _run(ws: Workspace, data=SAMPLE, model="sam_tiny") -> dict:
    """Load, sweep, search and apply in one workspace; the numbers each step produced."""
    ws.load(SessionConfig(model=model, data=str(data), random_init=True, search_images=6, heldout_images=4))
    job = ws.start_sweep([0, 8, 16])
    job.thread.join()
    job = ws.start_search(SearchSettings(top_n=3, sources=SCOPE, targets=SCOPE))
    job.thread.join()
    assert job.state.error is None, job.state.error
    repl = json.loads((ws.run_dir / "replacements.json").read_text())
    applied = ws.apply(repl)
    r = ws.result
    return {
        "sweep": ws.sweep,
        "best": r.best_pairs,
        "best_score": r.combos.best.score if r.combos.best else None,
        "heldout": r.heldout,
        "applied": [applied.baseline_score, applied.patched_score, applied.zip_path.name],
    }


@functools.cache
def _local(data=SAMPLE, model="sam_tiny") -> dict:
    """`_run`'s numbers in a local workspace: what each ZeroGPU path must give (computed once per model)."""
    return _run(Workspace(remote=False), data, model)


def _compare(ws: Workspace, data=None, model="sam_tiny") -> list[tuple]:
    """The mode comparison's rows (a fresh workspace is loaded first)."""
    if ws.session is None:
        ws.load(SessionConfig(model=model, data=str(data), random_init=True, search_images=6, heldout_images=4))
    job = ws.start_compare(SearchSettings(top_n=3, sources=SCOPE, targets=SCOPE, options={"candidates": 8}))
    job.thread.join()
    assert job.state.error is None, job.state.error
    return [(r.mode, r.overlap, r.scored, r.best_score) for r in ws.comparison]


@pytest.mark.slow
@pytest.mark.parametrize("model,data", [("sam_tiny", SAMPLE), ("dinov2_tiny", ROOT / "assets" / "classify_sample")])
def test_gpu_tasks_give_the_local_numbers(model, data, monkeypatch):
    monkeypatch.setattr(zerogpu, "WORKER_DEVICE", "cpu")
    local = _local(data, model)
    ws = Workspace(remote=True)
    remote = _run(ws, data, model)
    assert remote == local
    assert _compare(ws) == _compare(Workspace(remote=False), data, model)
    job = ws.executor.job
    assert job is not None and job.cfg.device == "cpu" and ws.session.backend.device.type == "cpu"
    assert (ws.executor.job.head is not None) == (model != "sam_tiny")  # the worker scores with the head fitted here


def test_a_task_longer_than_zerogpu_grants_is_refused_with_the_local_command(monkeypatch):
    monkeypatch.setattr(zerogpu, "WORKER_DEVICE", "cpu")
    ws = Workspace(remote=True)
    ws.load(SessionConfig(model="sam_tiny", data=str(SAMPLE), random_init=True, search_images=6))
    monkeypatch.setattr(zerogpu, "MAX_S", 1)
    job = ws.start_search(SearchSettings(top_n=3, sources="all", targets="all"))
    job.thread.join()
    assert "more than ZeroGPU grants" in job.state.error
    assert "python -m redundancy search --model sam_tiny --data assets/sample --random-init" in job.state.error
    assert job.state.error.count("\n") == 0 and ws.result is None


def test_requested_duration_grows_with_the_work_and_learns_the_gpu_rate(monkeypatch):
    monkeypatch.setattr(zerogpu, "_RATES", {})
    small, big = zerogpu.Work(rows=1_000), zerogpu.Work(rows=100_000)
    assert zerogpu.START_S < zerogpu.seconds_needed("m", small) < zerogpu.seconds_needed("m", big)
    zerogpu._RATES["m"] = {"row_s": 1e-5}  # a worker measured a faster GPU
    assert zerogpu.seconds_needed("m", big) == pytest.approx(zerogpu.START_S + zerogpu.MARGIN * 1.0)


def test_command_line_parses_back_to_the_same_session_and_settings():
    cfg = SessionConfig(
        model="sam_vit_b", data="my data.zip", random_init=True, seed=3, search_images=20, mask_choice="best",
        rows=64, prompt="box", device="cuda",
    )  # fmt: skip
    settings = SearchSettings("loss", 6, "0-31", "every:4", "taylor", {"candidates": 100})
    line = command_line("search", cfg, settings, out="run")
    args = build_parser().parse_args(__import__("shlex").split(line)[3:])
    assert session_config(args) == replace(cfg, device="auto") and search_settings(args) == settings
    assert args.out == "run"


ZERO_DEVICE_API = r"""
import spaces.zero.client as client
import spaces.zero.torch as ztorch
from spaces.zero.api import ScheduleResponse

asked = []
def schedule(task_id, request=None, duration=None, gpu_size=None, **kwargs):  # the device API, answered here
    asked.append(duration.total_seconds())
    print("SCHEDULE", duration.total_seconds(), request is not None, flush=True)
    return ScheduleResponse(idle=False, nvidiaIndex=0, nvidiaUUID="simulated", allowToken="simulated")
client.schedule, client.release, client.allow = schedule, lambda *a, **k: None, lambda *a, **k: None
client.startup_report = lambda *a, **k: None
ztorch.init = ztorch.move = ztorch.unpatch = lambda *a, **k: None  # no CUDA device to hand the worker
ztorch.size = lambda *a, **k: 0
"""
ZERO_ENV = {
    "SPACES_ZERO_GPU": "true",
    "SPACES_ZERO_DEVICE_API_URL": "http://127.0.0.1:9/",  # never reached: the API is answered in-process
    "REDUNDANCY_ZEROGPU_DEVICE": "cpu",
    "REDUNDANCY_ZEROGPU_MAX_S": "3600",  # this CPU "GPU" would need more than 5 min for the all-pairs search
    "PYTHONPATH": str(ROOT),
}
SIMULATED = (
    r"""
import json, os, sys, time
import numpy as np
from redundancy.interactive import zerogpu
"""
    + ZERO_DEVICE_API
    + r"""

from tests.interactive.test_zerogpu import _run
from redundancy.engine import SearchSettings
from redundancy.interactive.workspace import Workspace
tasks = [zerogpu.encode_task, zerogpu.search_task, zerogpu.sweep_task, zerogpu.compare_task, zerogpu.apply_task]
ws = Workspace()
out = {"on": zerogpu.ON, "remote": ws.remote, "decorated": [hasattr(t, "zerogpu") for t in tasks]}
out["numbers"] = _run(ws)
out["asked"] = list(asked)
job = ws.start_search(SearchSettings(top_n=3, sources="all", targets="all"))  # long enough to cancel part-way
while (job.state.stage != "pair scoring" or job.state.done == 0) and job.running:  # the worker may encode first
    time.sleep(0.05)
job.cancel.set()
job.thread.join(120)
scored = int((~np.isnan(ws.gain)).sum())  # the pair pass stopped part-way, not at its end
out["cancelled"] = [job.state.cancelled, 0 < scored < ws.last_search["pairs"], job.state.error]
print("RESULT " + json.dumps(out, default=str))
"""
)


@pytest.mark.slow
def test_real_spaces_wrapper_forks_a_worker_and_streams_plain_data(tmp_path):
    """ZeroGPU simulated as far as `spaces` allows: its device API is answered locally and the worker gets no
    CUDA device; everything else is the package's own code: the decorator, the forked worker, pickled
    arguments and streamed results, the stop on cancel."""
    env = {**os.environ, **ZERO_ENV}
    proc = subprocess.Popen(
        [sys.executable, "-c", SIMULATED],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the workers `spaces` forks are stopped with it
    )
    try:
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        stop_group(proc)
    line = [x for x in stdout.splitlines() if x.startswith("RESULT ")]
    assert line, stdout[-2000:] + stderr[-3000:]
    out = json.loads(line[0].removeprefix("RESULT "))
    assert out["on"] and out["remote"] and all(out["decorated"])
    local = json.loads(json.dumps(_local(), default=str))
    assert out["numbers"] == local
    # encode, sweep, search, apply: each asked for the duration its work needs (first at the priors)
    assert len(out["asked"]) == 4 and all(zerogpu.START_S < s <= 300 for s in out["asked"])
    assert out["cancelled"] == [True, True, None]


def test_outside_zerogpu_nothing_is_decorated_and_spaces_is_not_imported():
    assert not zerogpu.ON and zerogpu.spaces is None and "spaces" not in sys.modules
    assert not hasattr(zerogpu.search_task, "zerogpu") and Workspace().remote is False
    with pytest.raises(RunError, match="narrow the sources"):
        zerogpu.check_fits(zerogpu.MAX_S + 1, "this search", "python -m redundancy search ...")


@pytest.mark.slow
def test_the_app_served_on_simulated_zerogpu_runs_load_and_search_as_gpu_tasks(tmp_path):
    """Through Gradio itself: each GPU task is scheduled with the visitor's request (ZeroGPU's quota needs it),
    the background search included, and the page gets the same results as on a plain server."""
    from gradio_client import Client

    launcher = tmp_path / "launch.py"
    launcher.write_text(ZERO_DEVICE_API + "import runpy\nrunpy.run_path('app.py', run_name='__main__')\n")
    with running_app(tmp_path, [sys.executable, str(launcher)], ZERO_ENV) as url:
        client = Client(url, verbose=False)
        badge = client.predict(
            "sam_tiny", "random weights (seeded, for trying the tool)", None, None, 0,
            "bundled sample (random shapes, 32 images)", None, 8, "none", api_name="/load",
        )[0]  # fmt: skip
        status = client.predict(3, "miou", "every:32", "every:32", 0, api_name="/search")[1]
        summary = client.predict(api_name="/show_results")[0]
    scheduled = [
        line.split() for line in (tmp_path / "app.log").read_text().splitlines() if line.startswith("SCHEDULE")
    ]
    assert "on ZeroGPU" in badge and "Search finished" in status and "Best set" in summary
    assert len(scheduled) == 2 and all(request == "True" for _, _, request in scheduled)  # encode, search


def test_a_large_dataset_is_encoded_in_calls_that_each_fit(monkeypatch):
    monkeypatch.setattr(zerogpu, "WORKER_DEVICE", "cpu")
    monkeypatch.setattr(zerogpu, "_RATES", {})  # at the prior encoding rate
    monkeypatch.setattr(zerogpu, "MAX_S", zerogpu.START_S + 10 * zerogpu.MARGIN * zerogpu.PRIOR_ENCODE_S)  # 10/call
    calls = []
    task = zerogpu.encode_task
    monkeypatch.setattr(zerogpu, "encode_task", lambda job, part: calls.append((job.seconds, part)) or task(job, part))
    ws = Workspace(remote=True)
    ws.load(SessionConfig(model="sam_tiny", data=str(SAMPLE), random_init=True, search_images=6))
    assert len(calls) == 4 and all(seconds <= zerogpu.MAX_S for seconds, _ in calls)  # 32 images, 10 a call
    assert [p.start for _, p in calls] == [0, 8, 16, 24]
    assert ws.session.cache_hits == 6  # the search set came from the worker's cache entries


@pytest.mark.slow
def test_pair_scoring_is_named_so_after_a_worker_encodes_first(monkeypatch):
    """A ZeroGPU worker encodes its images before it scores pairs: the pairs it scores then are shown under
    'pair scoring' (with that stage's ETA), not under the encoding stage they followed."""
    ws = Workspace(remote=False)
    ws.load(SessionConfig(model="sam_tiny", data=str(SAMPLE), random_init=True, search_images=4))
    search, seen = ws.executor.search, []

    def worker_like(s, settings, rows, cb, cancel):
        cb.encode(4, 4)  # as the worker's cold cache does
        pairs = cb.pairs
        cb = replace(cb, pairs=lambda ev: (pairs(ev), seen.append(ws.job.state.stage)))
        return search(s, settings, rows, cb, cancel)

    monkeypatch.setattr(ws.executor, "search", worker_like)
    job = ws.start_search(SearchSettings(top_n=2, sources=SCOPE, targets=SCOPE))
    job.thread.join()
    assert job.state.error is None and seen and set(seen) == {"pair scoring"}
