"""A search killed with SIGKILL mid-scoring and mid-combinations resumes to the identical result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from redundancy.cli import main
from redundancy.errors import RunError
from redundancy.runs.resume import RunState

from ..conftest import ROOT, search_argv

ARGS = search_argv(images=8, top_n=8, channels="every:16")
FILES = ("pair_scores.npy", "pair_scores.csv", "topn.json", "combinations.csv", "replacements.json")


def _partial(path: Path, key: str) -> bool:
    """True when a saved state file holds some results and some gaps (unscored pairs stay NaN)."""
    try:
        with np.load(path) as data:
            done = np.isfinite(data[key])
    except (OSError, ValueError, KeyError):
        return False
    return bool(done.any()) and not bool(done.all())


def _run_until(out: Path, state_file: str, key: str, timeout: float = 120) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "redundancy", *ARGS, "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    end = time.time() + timeout
    try:
        while time.time() < end and proc.poll() is None:
            if _partial(out / "state" / state_file, key):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the search finished before it could be killed"
        assert _partial(out / "state" / state_file, key), f"no partial {state_file} appeared"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_killed_search_resumes_identically(tmp_path):
    ref = tmp_path / "ref"
    assert main([*ARGS, "--out", str(ref)]) == 0
    out = tmp_path / "killed"
    _run_until(out, "pairs.r0.npz", "miou_gain")  # killed while scoring pairs
    with np.load(out / "state" / "pairs.r0.npz") as data:
        scored_before = int(np.isfinite(data["miou_gain"]).sum())
    assert 0 < scored_before < 240 and not (out / "replacements.json").exists()
    _run_until(out, "combos.r0.npz", "miou")  # resumed, then killed again in the combination stage
    with np.load(out / "state" / "pairs.r0.npz") as data:
        assert int(np.isfinite(data["miou_gain"]).sum()) == 240  # scoring had finished this time
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
