"""Sharded search over 2 torchrun processes (gloo, CPU): the merged run equals a single-process run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ..conftest import ROOT, search_argv

ARGS = search_argv()


def _env(tmp_path):
    # one thread per process in both runs, so both see the same float kernels
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra", [[], ["--select", "cv", "--folds", "3", "--alphas", "0.5"]], ids=["paper", "soft-cv"]
)  # soft-cv: the soft passes and every candidate's per-image scores merged across ranks
def test_two_gloo_ranks_merge_to_the_single_process_result(tmp_path, extra):
    env = _env(tmp_path)
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    subprocess.run(
        [sys.executable, "-m", "redundancy", *ARGS, *extra, "--out", str(single)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "redundancy",
            *ARGS,
            *extra,
            "--out",
            str(sharded),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 0 of 2" in proc.stdout
    for name in ("pair_scores.npy", "pair_scores.csv", "topn.json", "combinations.csv", "replacements.json"):
        assert (sharded / name).read_bytes() == (single / name).read_bytes(), name
    assert not (sharded / "state").exists()
