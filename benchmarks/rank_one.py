"""Time a linear head's rank-one pair path against decoding every pair map (the generic path).

For a linear head, "channel i takes channel j" changes the output by W[:, i] (x_j - x_i): the
rank-one path scores a block of pairs with one batched product, the generic path gathers every
pair's full token map and runs the head on it. Both give the same stats (checked here). Random
weights, a head fitted on a head split; run from the repository root:

    python -m benchmarks.rank_one --model dinov2_tiny --data assets/classify_sample
    python -m benchmarks.rank_one --model dinov2_vits14 --data assets/classify_sample --sources every:6
    python -m benchmarks.rank_one --model dinov2_vits14 --data assets/depth_sample --sources every:12

Prints one JSON line: pairs, images, both times, pair rows per second and the speed-up.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from redundancy.engine import Session, SessionConfig, parse_channels
from redundancy.engine.features import FeatureCache
from redundancy.engine.provenance import machine
from redundancy.engine.scorer import channel_pairs
from redundancy.replace import pair_maps

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="dinov2_tiny")
    ap.add_argument("--data", default=str(ROOT / "assets" / "classify_sample"))
    ap.add_argument("--images", type=int, default=20, help="search images")
    ap.add_argument("--sources", default="all", help="replaced channels (all targets are scored for each)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    cfg = SessionConfig(args.model, args.data, random_init=True, search_images=args.images, device=args.device)
    session = Session.open(cfg, cache=FeatureCache(tempfile.mkdtemp()), progress=False)
    ev = session.evaluator("search")
    c = session.backend.channels
    pairs = channel_pairs(parse_channels(args.sources, c, ev.device), list(range(c)), c)

    def timed(fn) -> tuple[float, np.ndarray]:
        if ev.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        if ev.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0, out

    chunks: list[np.ndarray] = []
    fast_s, _ = timed(lambda: ev.pair_stats(pairs, lambda _s, st: chunks.append(st.values)))
    generic_s, generic = timed(lambda: ev.stats(pair_maps(pairs, c)).values)
    fast = np.concatenate(chunks)
    rows = len(pairs) * len(ev.set)
    result = {
        "model": args.model,
        "task": session.task.name,
        "weights": session.backend.weights.label,
        "head": session.head.label,
        "channels": c,
        "pairs": len(pairs),
        "images": len(ev.set),
        "rank_one_s": round(fast_s, 3),
        "generic_s": round(generic_s, 3),
        "rank_one_rows_per_s": round(rows / fast_s),
        "generic_rows_per_s": round(rows / generic_s),
        "speedup": round(generic_s / fast_s, 2),
        "max_abs_stat_diff": float(np.abs(fast - generic).max()),
        "device": str(ev.device),
        "torch": torch.__version__,
        "machine": machine(ev.device),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
