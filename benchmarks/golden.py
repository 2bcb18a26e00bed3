"""Golden runs: a fixed set of searches and an apply whose numbers a refactor must leave unchanged.

    python -m benchmarks.golden record --out /tmp/golden-before   # before the change
    python -m benchmarks.golden record --out /tmp/golden-after    # after it
    python -m benchmarks.golden diff /tmp/golden-before /tmp/golden-after

`record` runs every case through the CLI into `<out>/<case>/` and writes `<out>/golden.json`: the
sha256 of `pair_scores.npy`, `topn.json` and `combinations.csv`, and the scores of
`replacements.json` (search and held-out, baseline and patched) per case, plus the hash of the
apply's masks (`summarize` recomputes that from runs already on disk). `diff` lists every value
that differs (exit 1 if any).
Numbers are bit-exact only on the same machine and library versions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

DEMO = ["--model", "sam_tiny_demo", "--data", "assets/domains/gray"]
DINO = ["--model", "dinov2_tiny", "--random-init"]
CASES: dict[str, list[str]] = {
    "gray": [*DEMO, "--search-images", "16", "--top-n", "6"],
    "sam2": ["--model", "sam2_tiny_demo", "--data", "assets/domains/gray", "--search-images", "8", "--top-n", "4",
             "--sources", "every:16", "--targets", "every:16"],
    "classify": [*DINO, "--data", "assets/classify_sample", "--search-images", "12", "--top-n", "4"],
    "depth": [*DINO, "--data", "assets/depth_sample", "--search-images", "8", "--top-n", "4"],
    "cv": [*DEMO, "--search-images", "16", "--top-n", "4", "--select", "cv", "--sources", "every:16",
           "--targets", "every:16"],
    "soft": [*DEMO, "--search-images", "8", "--top-n", "4", "--alphas", "0.5", "--sources", "every:16",
             "--targets", "every:16"],
    "taylor": [*DEMO, "--search-images", "8", "--top-n", "4", "--mode", "taylor", "--candidates", "32"],
    "layer": [*DINO, "--data", "assets/classify_sample", "--search-images", "8", "--top-n", "3", "--layer", "0",
              "--sources", "every:8", "--targets", "every:8"],
}  # fmt: skip
HASHED = ("pair_scores.npy", "topn.json", "combinations.csv")
SCORES = ("baseline_score", "patched_score", "baseline_loss", "patched_loss")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "redundancy", *args], check=True, stdout=subprocess.DEVNULL)


def _scores(block: dict | None) -> dict:
    return {k: block[k] for k in SCORES if block and k in block}


def record(out: Path) -> dict:
    """Run every case and the apply into `out`; the golden values."""
    for name, args in CASES.items():
        _cli("search", *args, "--out", str(out / name), "--overwrite", "--restart")
    _cli("apply", "--run", str(out / "gray"), "--data", "assets/domains/camouflage", "--out", str(out / "apply"))
    return summarize(out)


TOPN_FIELDS = ("top_n", "metric", "baseline_score", "baseline_loss", "top", "skipped_same_source")  # not the header


def summarize(out: Path) -> dict:
    """The golden values of the runs in `out` (written to `out/golden.json`): file hashes and scores; topn.json
    without its header, which names where the weights file lies."""
    golden: dict[str, dict] = {}
    for name in CASES:
        run = out / name
        repl = json.loads((run / "replacements.json").read_text())
        topn = json.loads((run / "topn.json").read_text())
        golden[name] = {
            **{f: _sha(run / f) for f in HASHED if f != "topn.json"},
            "topn": hashlib.sha256(json.dumps({k: topn.get(k) for k in TOPN_FIELDS}).encode()).hexdigest(),
            "pairs": repl.get("pairs"),
            "search": _scores(repl.get("search")),
            "heldout": _scores(repl.get("heldout")),
        }
    masks = sorted((out / "apply" / "masks").glob("*.png"))
    digest = hashlib.sha256(b"".join(_sha(p).encode() for p in masks)).hexdigest()
    golden["apply"] = {"masks": digest, "count": len(masks)}
    (out / "golden.json").write_text(json.dumps(golden, indent=1) + "\n")
    return golden


def diff(a: dict, b: dict, where: str = "") -> list[str]:
    """Every leaf that differs between two golden records."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [line for k in sorted(set(a) | set(b)) for line in diff(a.get(k), b.get(k), f"{where}/{k}")]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--out", type=Path, required=True)
    m = sub.add_parser("summarize", help="recompute golden.json from the runs already in a folder")
    m.add_argument("out", type=Path)
    d = sub.add_parser("diff")
    d.add_argument("before", type=Path)
    d.add_argument("after", type=Path)
    args = p.parse_args()
    if args.cmd in ("record", "summarize"):
        (record if args.cmd == "record" else summarize)(args.out)
        return 0
    read = lambda d: json.loads((d / "golden.json").read_text())  # noqa: E731
    lines = diff(read(args.before), read(args.after))
    print("\n".join(lines) or "identical")
    return 1 if lines else 0


if __name__ == "__main__":
    raise SystemExit(main())
