"""The decoder's arithmetic options side by side: fp32, tf32, bf16, each eager and compiled, on the same pairs.

For each option: pair-scoring rows/s, the decoder's achieved GFLOP/s (FLOPs of one row counted by
`torch.utils.flop_counter` on the real decode call) against a float32 matmul probe run in the same process,
and whether it finds the same top N (in order) and the same best set as fp32 eager, with the largest
difference of any pair's gain. Run from the repository root:

    python -m benchmarks.precision --model sam_tiny_demo --data assets/domains/gray --images 16 --channels every:8
    python -m benchmarks.precision --model sam_vit_b --images 2 --channels every:64 --options fp32,bf16
    python -m benchmarks.precision --device cuda --options fp32,tf32,bf16,fp32+compile,bf16+compile

Prints one JSON line per option, then a markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from redundancy.data import open_dataset, split
from redundancy.engine import parse_channels
from redundancy.engine.combinations import search_combinations, top_pairs
from redundancy.engine.evalset import EvalSet
from redundancy.engine.evaluator import Evaluator
from redundancy.engine.features import FeatureCache
from redundancy.engine.provenance import machine
from redundancy.engine.scorer import PairScorer, channel_pairs
from redundancy.models import REGISTRY, build_backend
from redundancy.replace import identity_map

ROOT = Path(__file__).resolve().parents[1]


def matmul_probe(device: torch.device, n: int = 2048, reps: int = 5) -> float:
    """float32 GFLOP/s of an n x n matrix product on `device` (the machine's own yardstick)."""
    a = torch.randn(n, n, device=device)
    torch.mm(a, a)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, a)
    sync()
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def row_flops(ev: Evaluator) -> float:
    """FLOPs of one (map, image) row of the batched decoder call."""
    maps = identity_map(ev.channels, ev.device)[None].expand(ev.rows, -1)
    img = torch.zeros(ev.rows, dtype=torch.long, device=ev.device)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        ev._decode(maps, img)
    return counter.get_total_flops() / ev.rows


def run(ev: Evaluator, pairs: torch.Tensor, top_n: int, metric: str | None) -> tuple[float, object, object]:
    """(seconds, scores, combinations) of a pair scan and its combination stage."""
    scorer = PairScorer(ev, metric)
    scorer.baseline()  # warm-up (and, compiled, the compilation) outside the timing
    sync = torch.cuda.synchronize if ev.device.type == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    scores = scorer.score(pairs)
    sync()
    seconds = time.perf_counter() - t
    top, _ = top_pairs(scores, top_n)
    return seconds, scores, search_combinations(ev, top, scorer.baseline(), scorer.metric)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="sam_tiny_demo")
    ap.add_argument("--data", default=str(ROOT / "assets" / "domains" / "gray"))
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--channels", default="every:8", help="sources = targets: all | every:K | 0-31,...")
    ap.add_argument("--top-n", type=int, default=10)
    ap.add_argument("--rows", type=int, help="decoder rows per call (default per device)")
    ap.add_argument("--options", default="fp32,bf16,fp32+compile,bf16+compile", help="precision[+compile], ...")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)

    backend = _backend(args.model, args.device)
    search, _ = split(open_dataset(args.data), args.images, seed=0)
    evalset = EvalSet.build(backend, search, FeatureCache(), "none", "image")
    chans = parse_channels(args.channels, backend.channels, backend.device)
    pairs = channel_pairs(chans, chans, backend.channels)
    probe = matmul_probe(backend.device)
    device = machine(backend.device)
    rows, reference = [], None
    for option in args.options.split(","):
        precision, _, compiled = option.partition("+")
        ev = Evaluator(backend, evalset, rows=args.rows, precision=precision, compile=bool(compiled))
        seconds, scores, combos = run(ev, pairs, args.top_n, None)
        top = [(p.source, p.target) for p in top_pairs(scores, args.top_n)[0]]
        reference = reference or (scores, top, combos.best_pairs)
        gain_rate = len(pairs) * len(evalset) / seconds
        flops = row_flops(ev)
        rows.append(
            {
                "model": args.model, "weights": backend.weights.label, "device": device, "option": option,
                "pairs": len(pairs), "images": len(evalset), "rows_per_call": ev.rows,
                "rows_per_s": round(gain_rate, 1), "row_gflop": round(flops / 1e9, 4),
                "achieved_gflop_s": round(gain_rate * flops / 1e9, 1), "fp32_matmul_probe_gflop_s": round(probe, 1),
                "share_of_probe": round(gain_rate * flops / 1e9 / probe, 3),
                "same_top_n_in_order": top == reference[1], "top_n_overlap": len(set(top) & set(reference[1])),
                "same_best_set": combos.best_pairs == reference[2],
                "max_abs_gain_diff": float(np.nanmax(np.abs(scores.gain - reference[0].gain))),
            }
        )  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    print("\n| option | rows/s | GFLOP/s | of fp32 probe | same top N | same best set | max gain diff |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['option']} | {r['rows_per_s']:,} | {r['achieved_gflop_s']} | {r['share_of_probe']:.0%} | "
              f"{r['same_top_n_in_order']} | {r['same_best_set']} | {r['max_abs_gain_diff']:.2g} |")  # fmt: skip
    return rows


def _backend(name: str, device: str):
    """The model with its own weights where it ships them (the demo models), else seeded random weights."""
    spec = REGISTRY[name]
    return build_backend(name, random_init=spec.shipped is None, seed=0, device=device, progress=False)


if __name__ == "__main__":
    main()
