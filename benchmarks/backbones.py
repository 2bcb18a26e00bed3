"""Any backbone by name, measured: per timm architecture at its default input size and the CPU's default scope
(`auto`: every 8th channel as source and target), on the bundled classification sample (or a segmentation domain).

    python -m benchmarks.backbones                       # the contract test's architectures, classification
    python -m benchmarks.backbones --task segment resnet18 convnext_atto

Each architecture runs in its own process (peak memory is that process's): seeded random weights (the numbers
are costs, not gains), a head fitted on the head split, then the default search. Columns: the encoder's time
per image, decoder rows per second of the pair scoring (pairs x search images / its seconds), the estimate of a
full scan (every ordered pair) from the tool's own cost model, and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHS = [
    "resnet18", "resnet50", "vit_tiny_patch16_224", "deit_tiny_patch16_224", "eva02_tiny_patch14_224",
    "convnext_atto", "efficientnet_b0", "mobilenetv3_small_100", "swin_tiny_patch4_window7_224", "regnety_002",
    "fastvit_t8", "levit_128s", "mobilevitv2_050",
]  # fmt: skip
DATA = {"classify": ROOT / "assets" / "classify_sample", "segment": ROOT / "assets" / "domains" / "gray"}


def measure(arch: str, task: str, images: int) -> dict:
    """One architecture's row (run in a fresh process: `--one`)."""
    from redundancy.cli.estimate import search_seconds
    from redundancy.engine import SearchSettings, Session, SessionConfig, run_search
    from redundancy.engine.features import FeatureCache

    with tempfile.TemporaryDirectory() as cache:
        cfg = SessionConfig(
            model=f"timm:{arch}", data=str(DATA[task]), random_init=True, device="cpu", search_images=images,
            heldout_images=0,
        )  # fmt: skip
        session = Session.open(cfg, cache=FeatureCache(cache), progress=False)
        session.evaluator("search")  # the head split and the search set encoded, the head fitted
        encode_s = session.encode_seconds_per_image() or 0.0
        t = time.perf_counter()
        result = run_search(session, SearchSettings())
        total_s = time.perf_counter() - t
        c = session.backend.channels
        full = search_seconds(session, SearchSettings(sources="all", targets="all"), c * (c - 1))
        full_s = full.seconds
    score_s = result.timings["score_s"]
    return {
        "arch": arch,
        "task": task,
        "channels": c,
        "grid": "x".join(map(str, session.backend.grid)),
        "input": "x".join(map(str, session.backend.input_hw)),
        "encode_ms_per_image": 1000 * encode_s,
        "pairs": result.pairs_in_scope,
        "score_s": score_s,
        "rows_per_s": result.pairs_in_scope * images / max(score_s, 1e-9),
        "search_s": total_s,
        "full_pairs": c * (c - 1),
        "full_estimate_s": full_s,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("archs", nargs="*", default=ARCHS)
    p.add_argument("--task", choices=list(DATA), default="classify")
    p.add_argument("--search-images", type=int, default=50)
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # this process measures one architecture
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args()
    if args.one:
        print(json.dumps(measure(args.archs[0], args.task, args.search_images)))
        return
    rows = []
    for arch in args.archs:
        cmd = [sys.executable, "-m", "benchmarks.backbones", arch, "--one", "--task", args.task,
               "--search-images", str(args.search_images)]  # fmt: skip
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        r = rows[-1]
        est = f"{r['full_estimate_s']:.0f} s" if r["full_estimate_s"] is not None else "short"
        print(
            f"| {arch} | {r['task']} | {r['channels']} | {r['input']} | {r['grid']} | {r['encode_ms_per_image']:.0f} | "
            f"{r['pairs']:,} | {r['rows_per_s']:,.0f} | {r['search_s']:.1f} | {r['full_pairs']:,} | {est} | "
            f"{r['peak_mb']:.0f} |",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
