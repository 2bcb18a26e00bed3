"""Screening modes against the exact search on the same data: top-N overlap, rank correlation, best-set mIoU, time.

Run from the repository root (CPU default: sam_tiny, 64 channels = 4,032 pairs, 8 images):

    python -m benchmarks.screening
    python -m benchmarks.screening --model sam_vit_b --channels all --images 50 --device cuda

Prints one JSON line per mode. `cost` counts decoder rows relative to the exact scan (Taylor's
backward passes are counted as 3 rows per image).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from redundancy.data import open_dataset, split
from redundancy.features import FeatureCache
from redundancy.models import build_backend
from redundancy.pipeline import parse_channels
from redundancy.score import EvalSet, Evaluator, PairScorer, channel_pairs
from redundancy.screen import halving_screen, taylor_screen
from redundancy.search import search_combinations, top_pairs

ROOT = Path(__file__).resolve().parents[1]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (no ties handling needed for continuous scores)."""
    if len(a) < 2:
        return float("nan")
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="sam_tiny")
    ap.add_argument("--data", default=str(ROOT / "assets" / "sample"))
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--channels", default="every:4")
    ap.add_argument("--top-n", type=int, default=10)
    ap.add_argument("--candidates", type=int, default=200)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    backend = build_backend(args.model, random_init=True, seed=0, device=args.device, progress=False)
    search, _ = split(open_dataset(args.data), args.images, seed=0)
    ev = Evaluator(backend, EvalSet.build(backend, search, FeatureCache(), "none", "perseg"))
    chans = parse_channels(args.channels, backend.channels, backend.device)
    pairs = channel_pairs(chans, chans, backend.channels)
    scorer = PairScorer(ev)
    base = scorer.baseline()
    full_rows = len(pairs) * len(ev.set)

    t = time.perf_counter()
    exact = scorer.score(pairs)
    exact_s = time.perf_counter() - t
    ij = pairs.numpy()
    exact_top = [(p.source, p.target) for p in top_pairs(exact, args.top_n)[0]]

    def report(mode: str, scores, seconds: float, rows: float, predicted: np.ndarray | None) -> None:
        top, _ = top_pairs(scores, args.top_n)
        found = [(p.source, p.target) for p in top]
        survivors = ij[np.isfinite(scores.gain[ij[:, 0], ij[:, 1]])]
        rho = (
            spearman(predicted[survivors[:, 0], survivors[:, 1]], exact.gain[survivors[:, 0], survivors[:, 1]])
            if predicted is not None
            else 1.0
        )
        combos = search_combinations(ev, top, base)
        print(
            json.dumps(
                {
                    "mode": mode,
                    "model": args.model,
                    "weights": backend.weights.label,
                    "device": str(backend.device),
                    "pairs": len(pairs),
                    "images": len(ev.set),
                    "top_n_overlap": f"{len(set(found) & set(exact_top))}/{len(exact_top)}",
                    "spearman_survivors": round(rho, 3),
                    "survivors": int(len(survivors)),
                    "best_set_miou": round(combos.best.miou if combos.best else base[0], 3),
                    "baseline_miou": round(base[0], 3),
                    "seconds": round(seconds, 1),
                    "cost_vs_exact": round(rows / full_rows, 4),
                }
            )
        )

    report("exact", exact, exact_s, full_rows, None)
    t = time.perf_counter()
    tay = taylor_screen(scorer, pairs, args.candidates)
    pred = tay.extra["predicted"]
    report("taylor", tay, time.perf_counter() - t, args.candidates * len(ev.set) + 3 * len(ev.set), pred)
    t = time.perf_counter()
    hal = halving_screen(scorer, pairs)
    rows = sum(r["pairs"] * r["images"] for r in hal.extra["rounds"]) + hal.extra["survivors"] * len(ev.set)
    report("halving", hal, time.perf_counter() - t, rows, hal.extra["estimate"])


if __name__ == "__main__":
    main()
