"""What a decoder row costs inside the encoder (`--layer k`) against at its output, on one device.

For each layer (the encoder output, then encoder blocks), the same number of random pairs over that
layer's channels is scored on the same images through the engine's session and batched evaluator; a
row at block k runs blocks k+1.. and what follows them as well as the decoder (or head). Seeded random
weights (timing only: the architecture, not the weights, sets the cost). Use enough pairs to fill the
output's calls (its rows per call are larger). Run from the repository root:

    python -m benchmarks.layer_cost --model sam_tiny --layers out,1,0
    python -m benchmarks.layer_cost --model sam_vit_b --layers out,10,8,5,2 --pairs 256 --device cuda
    python -m benchmarks.layer_cost --model dinov2_vitl14 --layers out,20,12     # classify head

Prints one JSON line per layer: encode seconds per image, rows per second, seconds per row, the
row cost relative to the output's, and the hours a full scan of every pair on 50 images would take.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from redundancy.engine import Session, SessionConfig
from redundancy.engine.features import FeatureCache
from redundancy.engine.provenance import machine
from redundancy.engine.scorer import PairScorer, channel_pairs

ROOT = Path(__file__).resolve().parents[1]


def parse_layers(spec: str) -> list[int | None]:
    """ "out,10,2" -> [None, 10, 2] (None: the encoder output)."""
    return [None if s == "out" else int(s) for s in spec.split(",") if s]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="sam_tiny")
    ap.add_argument("--layers", default="out,1,0", help="'out' (encoder output) and/or encoder block indices")
    ap.add_argument("--data", help="default: assets/sample (SAM, SAM2), assets/classify_sample (DINOv2)")
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=32, help="pairs scored per layer (rows: pairs x images)")
    ap.add_argument("--rows", type=int, help="decoder rows per batched call (default per device)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    data = args.data or str(ROOT / "assets" / ("classify_sample" if args.model.startswith("dinov2") else "sample"))
    out_row_s = None
    for layer in parse_layers(args.layers):
        cfg = SessionConfig(
            model=args.model, data=data, random_init=True, search_images=args.images, heldout_images=0,
            head_images=4, device=args.device, rows=args.rows, layer=layer,
        )  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:  # a fresh cache: the encoder really runs
            session = Session.open(cfg, FeatureCache(tmp), progress=False)
            session.ensure_head()  # DINOv2: its head, fitted on the encoder output (not timed)
            sync = torch.cuda.synchronize if session.backend.device.type == "cuda" else (lambda: None)
            sync()
            t = time.perf_counter()
            ev = session.evaluator("search")
            sync()
            encode_s = (time.perf_counter() - t) / args.images
        c = session.backend.channels
        every = channel_pairs(range(c), range(c), c)
        pairs = every[torch.randperm(len(every), generator=torch.Generator().manual_seed(0))[: args.pairs]]
        scorer = PairScorer(ev)
        scorer.baseline()
        scorer.score(pairs[:2])  # warm-up (kernels, allocator, a smaller row size after running out of memory)
        sync()
        t = time.perf_counter()
        scorer.score(pairs)
        sync()
        seconds = time.perf_counter() - t
        rows = len(pairs) * args.images
        row_s = seconds / rows
        out_row_s = row_s if layer is None else out_row_s
        print(
            json.dumps(
                {
                    "model": args.model,
                    "weights": session.backend.weights.label,
                    "device": machine(session.backend.device),
                    "layer": "output" if layer is None else f"block {layer}",
                    "channels": c,
                    "images": args.images,
                    "pairs": len(pairs),
                    "rows_per_call": ev.rows,
                    "calls": -(-rows // ev.rows),
                    "encode_s_per_image": round(encode_s, 3),
                    "rows_per_s": round(rows / seconds, 1),
                    "ms_per_row": round(1000 * row_s, 3),
                    "vs_output": round(row_s / out_row_s, 2) if out_row_s else None,
                    "full_scan_50_images_h": round((c * c - c) * 50 * row_s / 3600, 2),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
