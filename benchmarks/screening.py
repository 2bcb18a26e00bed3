"""Screening modes against the exact search on the same data: top-N overlap, rank correlation, best-set mIoU, time.

Run from the repository root (CPU default: sam_tiny, 64 channels = 4,032 pairs, 8 images):

    python -m benchmarks.screening
    python -m benchmarks.screening --model sam_vit_b --channels all --images 50 --device cuda

Prints one JSON line per mode (the same measurement as `python -m redundancy compare` and the
app's "Compare modes" button: `redundancy.screen.compare_modes`). `cost` counts decoder rows
relative to the exact scan (Taylor's backward passes are counted as 3 rows per image).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from redundancy.data import open_dataset, split
from redundancy.features import FeatureCache
from redundancy.models import build_backend
from redundancy.pipeline import parse_channels
from redundancy.score import EvalSet, Evaluator, PairScorer, channel_pairs
from redundancy.screen import compare_modes

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="sam_tiny")
    ap.add_argument("--data", default=str(ROOT / "assets" / "sample"))
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--channels", default="every:4")
    ap.add_argument("--top-n", type=int, default=10)
    ap.add_argument("--candidates", type=int, default=190, help="taylor: 190 keeps it under 1/20 of the exact cost")
    ap.add_argument("--metric", default="miou", choices=("miou", "loss"))
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    backend = build_backend(args.model, random_init=True, seed=0, device=args.device, progress=False)
    search, _ = split(open_dataset(args.data), args.images, seed=0)
    ev = Evaluator(backend, EvalSet.build(backend, search, FeatureCache(), "none", "perseg"))
    chans = parse_channels(args.channels, backend.channels, backend.device)
    pairs = channel_pairs(chans, chans, backend.channels)
    for r in compare_modes(PairScorer(ev, args.metric), pairs, args.top_n, args.candidates):
        row = {k: round(v, 4) if isinstance(v, float) else v for k, v in r.row().items()}
        info = {
            "model": args.model,
            "weights": backend.weights.label,
            "device": str(backend.device),
            "metric": args.metric,
        }
        print(json.dumps({**info, "pairs": len(pairs), "images": len(ev.set), **row}))


if __name__ == "__main__":
    main()
