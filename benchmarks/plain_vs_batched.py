"""Time the plain reference loop against the batched scorer on the same pairs and images.

Random-init decoder on cached features (the encoder is not part of the timing). Run from the
repository root:

    python -m benchmarks.plain_vs_batched --model sam_vit_b --images 2 --pairs 16
    python -m benchmarks.plain_vs_batched --model sam_tiny --images 8 --pairs 64 --device cuda

Prints one JSON line with both times, decoder calls per second and the speed-up ratio, and
checks the two paths agree (max |gain difference| in mIoU points).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from redundancy.data import open_dataset, split
from redundancy.engine.combinations import top_pairs
from redundancy.engine.evalset import EvalSet
from redundancy.engine.evaluator import Evaluator
from redundancy.engine.features import FeatureCache
from redundancy.engine.provenance import machine
from redundancy.engine.scorer import PairScorer, channel_pairs
from redundancy.models import build_backend

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="sam_vit_b")
    ap.add_argument("--data", default=str(ROOT / "assets" / "sample"))
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=16, help="number of (source, target) pairs to score")
    ap.add_argument("--rows", type=int, help="decoder rows per batched call (default per device)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)

    backend = build_backend(args.model, random_init=True, seed=0, device=args.device, progress=False)
    search, _ = split(open_dataset(args.data), args.images, seed=0)
    t = time.perf_counter()
    ev = Evaluator(backend, EvalSet.build(backend, search, FeatureCache(), "none", "perseg"), rows=args.rows)
    encode_s = time.perf_counter() - t
    all_pairs = channel_pairs(range(256), range(256), 256)
    pairs = all_pairs[torch.randperm(len(all_pairs), generator=torch.Generator().manual_seed(0))[: args.pairs]]
    scorer = PairScorer(ev)
    scorer.baseline()
    sync = torch.cuda.synchronize if backend.device.type == "cuda" else (lambda: None)

    def timed(plain: bool):
        sync()
        t0 = time.perf_counter()
        res = scorer.score(pairs, plain=plain)
        sync()
        return res, time.perf_counter() - t0

    scorer.score(pairs[:2])  # warm-up
    batched, batched_s = timed(False)
    plain, plain_s = timed(True)
    ij = pairs.numpy()
    diff = float(np.nanmax(np.abs(batched.score_gain[ij[:, 0], ij[:, 1]] - plain.score_gain[ij[:, 0], ij[:, 1]])))
    calls = len(pairs) * args.images
    n = min(10, len(pairs))
    same_top = [(p.source, p.target) for p in top_pairs(batched, n)[0]] == [
        (p.source, p.target) for p in top_pairs(plain, n)[0]
    ]
    result = {
                "model": args.model,
                "weights": backend.weights.label,
                "device": str(backend.device),
                "machine": machine(backend.device),
                "images": args.images,
                "pairs": len(pairs),
                "decoder_calls": calls,
                "rows": ev.rows,
                "encode_s": round(encode_s, 2),
                "plain_s": round(plain_s, 3),
                "batched_s": round(batched_s, 3),
                "plain_calls_per_s": round(calls / plain_s, 1),
                "batched_calls_per_s": round(calls / batched_s, 1),
                "speedup": round(plain_s / batched_s, 2),
                "max_abs_gain_diff": diff,
                "same_top_10_in_order": same_top,
                "full_search_estimate_h": round(65280 * 50 / (calls / batched_s) / 3600, 2),
    }  # fmt: skip
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
