"""Screening modes against the exact search on the same data: top-N overlap, rank correlation, best-set mIoU, time.

Run from the repository root (CPU default: the trained demo model on its three target domains,
16 search images, every 8th channel = 992 pairs, top 10, Taylor with 48 candidates = 1/20 of the pairs):

    python -m benchmarks.screening
    python -m benchmarks.screening --domains gray --channels every:4 --candidates 190
    python -m benchmarks.screening --model sam_tiny --random-init --data assets/sample   # the random-weight figures

Prints one JSON line per (dataset, mode) (the same measurement as `python -m redundancy compare`
and the app's "Compare modes" panel: `redundancy.engine.screening.compare_modes`). `cost` counts decoder rows
relative to the exact scan (Taylor's backward passes are counted as 3 rows per image).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from redundancy.data import open_dataset, split
from redundancy.engine import SearchSettings, parse_channels
from redundancy.engine.evalset import EvalSet
from redundancy.engine.evaluator import Evaluator
from redundancy.engine.features import FeatureCache
from redundancy.engine.scorer import PairScorer, channel_pairs
from redundancy.engine.screening import compare_modes
from redundancy.models import build_backend

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="sam_tiny_demo")
    ap.add_argument("--random-init", action="store_true", help="seeded random weights instead of the model's own")
    ap.add_argument("--domains", default="gray,camouflage,texture", help="demo domains under assets/domains")
    ap.add_argument("--data", help="a dataset folder instead of --domains")
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--channels", default="every:8")
    ap.add_argument("--top-n", type=int, default=10)
    ap.add_argument("--candidates", type=int, default=48, help="taylor: 48 of 992 pairs is 1/20 of the exact cost")
    ap.add_argument("--metric", default="miou", choices=("miou", "loss"))
    ap.add_argument("--protocol", default="image")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)

    backend = build_backend(args.model, random_init=args.random_init, seed=0, device=args.device, progress=False)
    datasets = [Path(args.data)] if args.data else [ROOT / "assets" / "domains" / d for d in args.domains.split(",")]
    rows = []
    for path in datasets:
        search, _ = split(open_dataset(path), args.images, seed=0)
        ev = Evaluator(backend, EvalSet.build(backend, search, FeatureCache(), "none", args.protocol))
        chans = parse_channels(args.channels, backend.channels, backend.device)
        pairs = channel_pairs(chans, chans, backend.channels)
        settings = SearchSettings(metric=args.metric, top_n=args.top_n, options={"candidates": args.candidates})
        for r in compare_modes(PairScorer(ev, args.metric), pairs, settings):
            row = {k: round(v, 4) if isinstance(v, float) else v for k, v in r.row().items()}
            info = {"model": args.model, "weights": backend.weights.label, "data": path.name, "metric": args.metric}
            rows.append({**info, "pairs": len(pairs), "images": len(ev.set), **row})
            print(json.dumps(rows[-1]), flush=True)
    return rows


if __name__ == "__main__":
    main()
