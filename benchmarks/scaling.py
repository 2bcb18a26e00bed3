"""Multi-process scaling of the exact search: one process vs torchrun with N ranks, same pairs and images.

Run from the repository root (CPU: gloo; GPU node: NCCL, one rank per GPU):

    python -m benchmarks.scaling --nproc 2
    python -m benchmarks.scaling --nproc 8 --model sam_vit_b --channels all --images 50

Prints seconds for each, the speed-up and the parallel efficiency (speed-up / N), and checks the
merged pair scores equal the single-process ones.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--model", default="sam_tiny")
    ap.add_argument("--channels", default="every:8")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1, help="threads per process (CPU)")
    args = ap.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    search = [
        "search",
        "--model",
        args.model,
        "--random-init",
        "--data",
        str(ROOT / "assets" / "sample"),
        "--search-images",
        str(args.images),
        "--heldout-images",
        "0",
        "--top-n",
        "4",
        "--sources",
        args.channels,
        "--targets",
        args.channels,
    ]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "redundancy", *search, "--out", f"{tmp}/warm"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )  # fills the feature cache so neither run encodes
        one = timed([sys.executable, "-m", "redundancy", *search, "--out", f"{tmp}/one"], env)
        many = timed(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc_per_node",
                str(args.nproc),
                "-m",
                "redundancy",
                *search,
                "--out",
                f"{tmp}/many",
            ],
            env,
        )
        same = (Path(tmp) / "one" / "pair_scores.npy").read_bytes() == (
            Path(tmp) / "many" / "pair_scores.npy"
        ).read_bytes()
    print(
        json.dumps(
            {
                "model": args.model,
                "channels": args.channels,
                "images": args.images,
                "nproc": args.nproc,
                "threads_per_proc": args.threads,
                "single_s": round(one, 1),
                "sharded_s": round(many, 1),
                "speedup": round(one / many, 2),
                "efficiency": round(one / many / args.nproc, 2),
                "identical_scores": same,
            }
        )
    )


if __name__ == "__main__":
    main()
