"""A search killed with SIGKILL mid-scoring and mid-combinations resumes to the identical result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from redundancy.cli import main
from redundancy.errors import RunError
from redundancy.runs.resume import RunState

from ..conftest import ROOT, search_argv

ARGS = search_argv(images=4, top_n=6, channels="every:16")
FILES = ("pair_scores.npy", "pair_scores.csv", "topn.json", "combinations.csv", "replacements.json")


def _partial(path: Path, key: str) -> bool:
    """True when a saved state file holds some results and some gaps (unscored pairs stay NaN)."""
    try:
        with np.load(path) as data:
            done = np.isfinite(data[key])
    except (OSError, ValueError, KeyError):
        return False
    return bool(done.any()) and not bool(done.all())


# The search in a child process that stops itself (SIGSTOP) right after it has saved a partial `state` file: the
# test then kills it with SIGKILL at a known point, whatever the machine's speed (no race with a running search).
CHILD = """
import os, signal, sys
from pathlib import Path
from redundancy.runs.resume import RunState
from tests.runs.test_resume import _partial

name, key, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
save = RunState._save

def stopping_save(self, stage, force, **arrays):
    save(self, stage, True, **arrays)  # every checkpoint written, not one a second: partial states exist at all
    if stage == name and _partial(self.dir / f"{stage}.r{self.rank}.npz", key):
        os.kill(os.getpid(), signal.SIGSTOP)

RunState._save = stopping_save
from redundancy.cli import main
sys.exit(main(argv))
"""


def _run_until(out: Path, stage: str, key: str) -> None:
    """Run the search until it has saved a partial `stage` state, then kill it (SIGKILL: nothing runs after)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, stage, key, *ARGS, "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _, status = os.waitpid(proc.pid, os.WUNTRACED)  # returns when the child stops itself (or exits)
        assert os.WIFSTOPPED(status), f"the search ended before it saved a partial {stage} state"
        assert _partial(out / "state" / f"{stage}.r0.npz", key)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_killed_search_resumes_identically(tmp_path):
    ref = tmp_path / "ref"
    assert main([*ARGS, "--out", str(ref)]) == 0
    out = tmp_path / "killed"
    _run_until(out, "pairs", "score_gain")  # killed while scoring pairs
    with np.load(out / "state" / "pairs.r0.npz") as data:
        scored_before = int(np.isfinite(data["score_gain"]).sum())
    assert 0 < scored_before < 240 and not (out / "replacements.json").exists()
    _run_until(out, "combos", "score")  # resumed, then killed again in the combination stage
    with np.load(out / "state" / "pairs.r0.npz") as data:
        assert int(np.isfinite(data["score_gain"]).sum()) == 240  # scoring had finished this time
    assert main([*ARGS, "--out", str(out)]) == 0  # the same command finishes the job
    for name in FILES:
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    assert not (out / "state").exists()


def test_other_settings_in_the_same_folder_are_refused(tmp_path):
    RunState(tmp_path, "a" * 64)
    with pytest.raises(RunError, match="--restart"):
        RunState(tmp_path, "b" * 64)
    RunState(tmp_path, "b" * 64, restart=True)  # discards the old state
    assert os.path.exists(tmp_path / "state" / "manifest.json")
