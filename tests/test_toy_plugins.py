"""The plug-in contract, end to end: a toy model family, a toy task and a toy search mode, each one file
(tests/plugins/), copied into a temporary folder and imported by a fresh interpreter before anything else. With no
other module edited, the CLI searches, ablates and applies with them and the app's Search tab offers the toy
mode's option and runs it. A fresh process, so that nothing registered here leaks into another test."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

PLUGINS = Path(__file__).parent / "plugins"
DRIVER = """
import contextlib, io, json, sys
import toy_family, toy_mode, toy_task  # each registers itself: nothing else names them

from redundancy.cli import main

data, runs = sys.argv[1], sys.argv[2]
common = ["--model", "toy_net", "--random-init", "--data", data, "--search-images", "6", "--heldout-images", "4"]
assert main(["search", *common, "--mode", "sampled", "--sample-share", "0.5", "--top-n", "2", "--sources", "all",
             "--targets", "all",
             "--out", runs + "/search"]) == 0
with contextlib.redirect_stdout(io.StringIO()) as printed:
    assert main(["ablate", *common, "--zero", "3,7", "--json"]) == 0
print("ABLATE " + json.dumps(json.loads(printed.getvalue())))
assert main(["apply", "--run", runs + "/search", "--data", data, "--out", runs + "/applied"]) == 0

from redundancy.engine import SessionConfig
from redundancy.interactive.workspace import Workspace
from redundancy.ui import build_demo
from redundancy.ui.tabs import search

demo = build_demo()  # the Search tab's controls, the toy mode's option among them
ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
options = [option.name for _, option in search.MODE_OPTIONS]
ws = Workspace()
ws.load(SessionConfig(model="toy_net", data=data, random_init=True, search_images=6, heldout_images=4))
values = [0.25 if name == "sample_share" else None for name in options]
estimate = search.search_estimate(ws, "all", "all", 2, "search", "", "sampled", *values)
*_, last = search.search(ws, 2, "abs_error", "all", "all", 0, "sampled", "search", "", *values)
print("APP " + json.dumps({"ids": "sample_share" in ids, "estimate": estimate, "status": last[1],
                           "scored": int(ws.result.scores.extra["kept"]), "task": ws.session.task.name}))
ws.close()
"""


@pytest.mark.slow
def test_a_toy_family_task_and_mode_run_everywhere_as_one_file_each(tmp_path):
    for name in ("toy_family.py", "toy_task.py", "toy_mode.py"):
        shutil.copy(PLUGINS / name, tmp_path / name)
    (tmp_path / "driver.py").write_text(DRIVER)
    data = tmp_path / "data" / "toy"
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(12):  # images of different brightness: the toy task's targets
        Image.fromarray(rng.integers(0, 25 * (k % 10 + 1), (40, 48, 3), dtype=np.uint8)).save(data / f"{k:02d}.png")
    runs = tmp_path / "runs"
    proc = subprocess.run(
        [sys.executable, "driver.py", str(data.parent), str(runs)], cwd=tmp_path, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads((runs / "search" / "config.json").read_text())
    assert config["model"] == "toy_net" and config["task"] == "brightness"
    assert config["search"]["mode"] == "sampled" and config["search"]["options"] == {"sample_share": 0.5}
    scores = (runs / "search" / "pair_scores.csv").read_text().splitlines()
    assert len(scores) - 1 == (16 * 16 - 16) // 2  # half of the pairs, scored exactly
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if line.startswith(("ABLATE ", "APP ")))
    ablation = json.loads(lines["ABLATE"])
    assert ablation["family_label"] == "Toy" and ablation["score_metric"] == "abs_error"
    assert [e["edit"] for e in ablation["edits"]] == ["zero 3", "zero 7"]
    rows = (runs / "applied" / "brightness.csv").read_text().splitlines()
    assert rows[0] == "image,patched,baseline" and len(rows) == 1 + 12
    app = json.loads(lines["APP"])
    assert app["ids"] and app["task"] == "brightness" and "Search finished" in app["status"]
    assert app["scored"] == 60 and "pairs" in app["estimate"]  # a quarter of 240 pairs, as the control said
