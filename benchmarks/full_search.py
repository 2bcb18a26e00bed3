"""Full exact search cost: pair scoring and the 2^N - 1 combination stage, time and peak memory.

The reference work of issue 6 is sam_vit_b, all 65,280 ordered pairs, 50 search images, top 10
(targets: scoring <= 60 s and <= 4 GB on one H100-class GPU, combinations <= 5 s). Run from the
repository root:

    python -m benchmarks.full_search --device cuda                       # the reference work
    python -m benchmarks.full_search --model sam_tiny --images 4 --channels every:32   # CPU check

Random-init weights on the bundled sample (speed and memory do not depend on weight values; the
sample holds 32 images, so --images above 32 reuses them cyclically through the feature cache).
Prints one JSON line: seconds and decoder rows per second for each stage, peak memory (CUDA:
torch.cuda.max_memory_allocated; CPU: the process's peak resident set), and, when the scope is
smaller than all pairs, the full-scan time extrapolated at the measured rate.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch

from redundancy.data import Dataset, open_dataset
from redundancy.engine import Session, SessionConfig, parse_channels
from redundancy.engine.combinations import search_combinations, top_pairs
from redundancy.engine.evalset import EvalSet
from redundancy.engine.evaluator import PRECISIONS, Evaluator
from redundancy.engine.features import FeatureCache
from redundancy.engine.provenance import machine
from redundancy.engine.scorer import PairScorer, channel_pairs
from redundancy.models import build_backend

ROOT = Path(__file__).resolve().parents[1]


def search_set(path: str, n: int) -> Dataset:
    """The first n images of a dataset, cycling through it when it holds fewer."""
    data = open_dataset(path)
    return Dataset(data.root, data.layout, [data.samples[k % len(data)] for k in range(n)])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="sam_vit_b")
    ap.add_argument("--data", default=str(ROOT / "assets" / "sample"))
    ap.add_argument("--images", type=int, default=50)
    ap.add_argument("--channels", default="all", help="sources = targets: all | every:K | 0-31,...")
    ap.add_argument("--top-n", type=int, default=10)
    ap.add_argument("--rows", type=int, help="decoder rows per call (default per device)")
    ap.add_argument("--precision", default="fp32", choices=PRECISIONS)
    ap.add_argument("--compile", action="store_true", help="torch.compile the decoder call (CUDA graphs on a GPU)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)

    backend = build_backend(args.model, random_init=True, seed=0, device=args.device, progress=False)
    # the data's task; a head-fitting task (a ViT's linear head) fits it on a head split first, as a session does
    cfg = SessionConfig(model=args.model, data=args.data, random_init=True, search_images=1, heldout_images=0)
    session = Session(backend, open_dataset(args.data), cfg)
    session.ensure_head()
    task = session.task
    cuda = backend.device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    t = time.perf_counter()
    evalset = EvalSet.build(backend, search_set(args.data, args.images), FeatureCache(), "none", "image", task=task)
    ev = Evaluator(backend, evalset, rows=args.rows, precision=args.precision, compile=args.compile)
    encode_s = time.perf_counter() - t
    chans = parse_channels(args.channels, backend.channels, backend.device)
    pairs = channel_pairs(chans, chans, backend.channels)
    scorer = PairScorer(ev)
    scorer.baseline()  # warm-up call of the scoring shape, outside the timing
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    sync()
    t = time.perf_counter()
    scores = scorer.score(pairs)
    sync()
    score_s = time.perf_counter() - t
    top, _ = top_pairs(scores, args.top_n)
    sync()
    t = time.perf_counter()
    combos = search_combinations(ev, top, scorer.baseline(), scorer.metric)
    sync()
    combo_s = time.perf_counter() - t
    rows = len(pairs) * len(evalset)
    all_pairs = backend.channels * (backend.channels - 1)
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = {
        "model": args.model,
        "task": task.name,
        "weights": backend.weights.label,
        "device": machine(backend.device),
        "precision": args.precision,
        "compile": args.compile,
        "images": len(evalset),
        "pairs": len(pairs),
        "decoder_rows_per_call": ev.rows,
        "rows_backoff": ev.rows_backoff,
        "encode_s": round(encode_s, 2),
        "score_s": round(score_s, 3),
        "score_rows_per_s": round(rows / score_s, 1),
        "full_scan_estimate_s": round(all_pairs * len(evalset) * score_s / rows, 1),
        "combinations": len(combos.rows),
        "combinations_s": round(combo_s, 3),
        "peak_memory_gb": round(peak / 2**30, 3),
        "peak_memory_kind": "cuda max_memory_allocated" if cuda else "process peak RSS",
        "top": [[p.source, p.target] for p in top],
        "best_set": [list(p) for p in combos.best_pairs],
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
