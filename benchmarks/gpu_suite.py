"""Everything issue 28 asks of a GPU, in one call that writes one JSON and one markdown file under --out.

    python -m benchmarks.gpu_suite --out $OUT/gpu              # on a lent H100 / H200
    python -m benchmarks.gpu_suite --out $OUT/gpu --skip pytest  # the benchmarks alone

Sized, not yet measured: from the 2026-11-26 H200 rate (6,318 fp32 rows/s) the reference step is ~4-6
minutes with its two compilations, the rest ~1, pytest up to --pytest-limit (200 s).
    python -m benchmarks.gpu_suite --out /tmp/suite --size test --skip pytest,torchrun   # its CPU test

Steps, each timed and recorded even when it fails (a failure never stops the others):
  environment   torch / CUDA versions, the card, matmul probes (fp32, tf32, bf16 TFLOP/s)
  reference     SAM ViT-B, 50 images, top 10, every 4th source and target (4,032 pairs; `--all-pairs`: all
                65,280) for fp32, tf32, bf16 and two compiled: time per stage, rows/s, peak memory, the
                full scan extrapolated, and top 10 / best set against fp32
  profile       a torch.profiler table of the batched decoder call's top kernels (fp32, bf16) and the
                achieved TFLOP/s of its counted FLOPs
  batched       the plain reference loop vs the batched scorer on the same pairs
  families      rows/s of SAM2 Hiera-T and Hiera-L and DINOv2 ViT-B (random weights, a small scope)
  torchrun      `torchrun --nproc_per_node=1` gives the single process's run files byte for byte
  pytest        the test suite with CUDA visible (last; its own time limit)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch

from benchmarks import full_search, plain_vs_batched, precision

ROOT = Path(__file__).resolve().parents[1]
PRECISION_RUNS = ("fp32", "tf32", "bf16", "fp32+compile", "bf16+compile")
SIZES = {  # what each step runs at each size
    "full": {"model": "sam_vit_b", "images": 50, "channels": "every:4", "top_n": 10, "families_images": 8,
             "families": ("sam2_hiera_t", "sam2_hiera_l", "dinov2_vitb14"), "family_channels": "every:16",
             "plain_images": 2, "plain_pairs": 64, "tiny": "sam_tiny"},
    "test": {"model": "sam_tiny", "images": 3, "channels": "every:64", "top_n": 2, "families_images": 2,
             "families": ("sam2_tiny", "dinov2_tiny"), "family_channels": "every:32", "plain_images": 2,
             "plain_pairs": 4, "tiny": "sam_tiny"},
}  # fmt: skip


def environment(device: torch.device) -> dict:
    """Versions, the card, and float32 / TF32 / bf16 matmul probes."""
    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": sys.version.split()[0]}
    if device.type == "cuda":
        info["device"] = torch.cuda.get_device_name()
        info["memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    probes = {"fp32": precision.matmul_probe(device)}
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        probes["tf32"] = precision.matmul_probe(device)
        torch.backends.cuda.matmul.allow_tf32 = False
    a = torch.randn(4096 if device.type == "cuda" else 1024, 4096 if device.type == "cuda" else 1024, device=device)
    b = a.bfloat16()
    torch.mm(b, b)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    for _ in range(10):
        torch.mm(b, b)
    sync()
    probes["bf16"] = 2 * b.shape[0] ** 3 * 10 / (time.perf_counter() - t) / 1e9
    info["matmul_probe_tflop_s"] = {k: round(v / 1e3, 2) for k, v in probes.items()}
    return info


def reference(size: dict, device: str, full: bool) -> list[dict]:
    """The reference work at each precision (compiled too), with its top 10 and best set against fp32."""
    runs, base = [], None
    channels = "all" if full else size["channels"]
    for option in PRECISION_RUNS:
        prec, _, compiled = option.partition("+")
        argv = ["--model", size["model"], "--images", str(size["images"]), "--channels", channels,
                "--top-n", str(size["top_n"]), "--precision", prec, "--device", device]  # fmt: skip
        r = full_search.main([*argv, *(["--compile"] if compiled else [])])
        base = base or r
        r["option"] = option
        r["same_top_set_as_fp32"] = sorted(map(tuple, r["top"])) == sorted(map(tuple, base["top"]))
        r["same_top_order_as_fp32"] = r["top"] == base["top"]
        r["same_best_set_as_fp32"] = sorted(map(tuple, r["best_set"])) == sorted(map(tuple, base["best_set"]))
        runs.append(r)
    return runs


def profile(size: dict, device: str) -> dict:
    """Top kernels of a few batched decoder calls (fp32 and bf16), with the achieved TFLOP/s."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from redundancy.data import open_dataset, split
    from redundancy.engine.evalset import EvalSet
    from redundancy.engine.evaluator import Evaluator
    from redundancy.engine.features import FeatureCache
    from redundancy.models import build_backend
    from redundancy.replace import pair_maps

    backend = build_backend(size["model"], random_init=True, device=device, progress=False)
    search, _ = split(open_dataset(ROOT / "assets" / "sample"), min(size["images"], 8), seed=0)
    evalset = EvalSet.build(backend, search, FeatureCache(), "none", "image")
    maps = pair_maps(torch.tensor([[i, (i * 7 + 3) % 256] for i in range(64)]), 256)
    cuda = backend.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    out = {}
    for prec in ("fp32", "bf16"):
        ev = Evaluator(backend, evalset, precision=prec)
        ev.stats(maps[:8])
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch_profile(activities=activities) as prof:
            ev.stats(maps)
            if cuda:
                torch.cuda.synchronize()
        seconds = time.perf_counter() - t
        rows = len(maps) * len(evalset)
        flops = precision.row_flops(ev) * rows
        key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
        out[prec] = {
            "rows": rows, "seconds_profiled": round(seconds, 3),
            "achieved_tflop_s": round(flops / seconds / 1e12, 3),
            "table": prof.key_averages().table(sort_by=key, row_limit=15),
        }  # fmt: skip
    return out


def batched(size: dict, device: str) -> dict:
    """The plain reference loop against the batched scorer on the same pairs."""
    return plain_vs_batched.main(["--model", size["model"], "--images", str(size["plain_images"]),
                                  "--pairs", str(size["plain_pairs"]), "--device", device])  # fmt: skip


def families(size: dict, device: str) -> list[dict]:
    """Rows/s of other families at a small scope (random weights)."""
    out = []
    for name in size["families"]:
        argv = ["--model", name, "--images", str(size["families_images"]), "--channels", size["family_channels"],
                "--top-n", "2", "--device", device]  # fmt: skip
        data = ROOT / "assets" / ("classify_sample" if "dinov2" in name else "sample")
        out.append(full_search.main([*argv, "--data", str(data)]))
    return out


def torchrun(size: dict, work: Path) -> dict:
    """One torchrun rank gives the single process's run files byte for byte."""
    argv = ["search", "--model", size["tiny"], "--random-init", "--data", str(ROOT / "assets" / "sample"),
            "--search-images", "4", "--heldout-images", "2", "--sources", "every:32", "--targets", "every:32",
            "--top-n", "3"]  # fmt: skip
    single, ranked = work / "single", work / "torchrun"
    for out in (single, ranked):
        shutil.rmtree(out, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "redundancy", *argv, "--out", str(single)], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", "-m", "redundancy",
         *argv, "--out", str(ranked)], cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    files = ("pair_scores.npy", "topn.json", "combinations.csv", "replacements.json")
    same = {f: (single / f).read_bytes() == (ranked / f).read_bytes() for f in files if (ranked / f).is_file()}
    identical = len(same) == len(files) and all(same.values())
    return {"returncode": proc.returncode, "identical": same, "all_identical": identical, "stderr": proc.stderr[-1500:]}


def pytest_step(limit_s: int) -> dict:
    """The test suite with CUDA visible, within `limit_s` seconds."""
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=ROOT,
                              capture_output=True, text=True, timeout=limit_s)  # fmt: skip
    except subprocess.TimeoutExpired as e:
        return {"returncode": None, "timed_out_s": limit_s, "tail": (e.stdout or b"")[-3000:].decode(errors="replace")}
    return {"returncode": proc.returncode, "tail": proc.stdout[-3000:]}


STEPS = ("environment", "reference", "profile", "batched", "families", "torchrun", "pytest")


def markdown(results: dict) -> str:
    """The results as a report: the reference work's table first."""
    lines = [f"# GPU suite ({results['started']})", "", "```", json.dumps(results.get("environment"), indent=1), "```"]
    ref = results.get("reference")
    if isinstance(ref, list):
        lines += ["", "| option | pairs | score s | rows/s | full scan s (extrapolated) | combinations s | peak GB | "
                  "same top 10 (set / order) | same best set |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in ref:
            lines.append(
                f"| {r['option']} | {r['pairs']:,} | {r['score_s']} | {r['score_rows_per_s']:,} | "
                f"{r['full_scan_estimate_s']} | {r['combinations_s']} | {r['peak_memory_gb']} | "
                f"{r['same_top_set_as_fp32']} / {r['same_top_order_as_fp32']} | {r['same_best_set_as_fp32']} |"
            )
    for name in STEPS[2:]:
        value = results.get(name)
        lines += ["", f"## {name}", "", "```", value if isinstance(value, str) else json.dumps(value, indent=1)[:8000],
                  "```"]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder for suite.json and suite.md")
    ap.add_argument("--size", default="full", choices=tuple(SIZES))
    ap.add_argument("--all-pairs", action="store_true", help="the reference work at all 65,280 pairs (longer)")
    ap.add_argument("--skip", default="", help="steps to leave out, e.g. pytest,torchrun")
    ap.add_argument("--pytest-limit", type=int, default=200, help="seconds the test suite may take")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    size, skip = SIZES[args.size], set(filter(None, args.skip.split(",")))
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    dev = torch.device("cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    os.environ.setdefault("REDUNDANCY_CACHE", str(args.out / "cache"))
    results: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "size": args.size, "timings_s": {}}
    work = {
        "environment": lambda: environment(dev),
        "reference": lambda: reference(size, device, args.all_pairs),
        "profile": lambda: profile(size, device),
        "batched": lambda: batched(size, device),
        "families": lambda: families(size, device),
        "torchrun": lambda: torchrun(size, args.out),
        "pytest": lambda: pytest_step(args.pytest_limit),
    }
    for name in STEPS:
        if name in skip:
            continue
        t = time.perf_counter()
        try:
            results[name] = work[name]()
        except Exception:  # recorded, and the next step runs: GPU time is too scarce to lose the rest
            results[name] = {"failed": traceback.format_exc()[-4000:]}
        results["timings_s"][name] = round(time.perf_counter() - t, 1)
        (args.out / "suite.json").write_text(json.dumps(results, indent=1, default=str))  # after every step
        (args.out / "suite.md").write_text(markdown(results))
    return results


if __name__ == "__main__":
    main()
