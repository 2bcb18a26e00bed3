"""The method on the trained demo model: baseline vs best set on the search and held-out images, per domain.

Run from the repository root (CPU; ~1-4 min per run with the default scope):

    python -m benchmarks.demo_domains
    python -m benchmarks.demo_domains --domains gray --search-images 50 --seeds 0,1,2,3,4 --sources all

Every run is the tool's own search (`redundancy.engine.run_search`) on assets/domains/<domain>
with the split seed varied: the search set and the held-out set change, the model does not. `--select`
compares how the set is chosen (the paper's rule, cross-validated, greedy; `+soft`: a rule over soft
pairs too, e.g. `cv+soft`; `soft` alone is the paper's rule over soft pairs). Prints a JSON line per run
and a markdown table per domain: mean and spread over seeds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from redundancy.engine import SearchSettings, Session, SessionConfig, run_search
from redundancy.engine.features import FeatureCache

ROOT = Path(__file__).resolve().parents[1]


def select_rule(name: str) -> tuple[str, bool]:
    """A --select entry as (rule, soft pairs?): "cv", "cv+soft" (cv over soft pairs), "soft" (search+soft)."""
    rule, _, soft = ("search+soft" if name == "soft" else name).partition("+")
    if soft not in ("", "soft"):
        raise SystemExit(f"--select entry '{name}': use a rule (search, cv, greedy), optionally with +soft.")
    return rule, soft == "soft"


def run(
    model: str, domain: str, n_search: int, seed: int, args: argparse.Namespace, cache: FeatureCache, select: str
) -> dict:
    """One search; the gains in mIoU points on the search set and on every image outside it."""
    cfg = SessionConfig(
        model=model,
        data=str(ROOT / "assets" / "domains" / domain),
        seed=seed,
        search_images=n_search,
        protocol=args.protocol,
        device=args.device,
        layer=args.layer,
    )
    rule, soft = select_rule(select)
    settings = SearchSettings(
        top_n=args.top_n, sources=args.sources, targets=args.targets, select=rule, alphas=args.alphas if soft else "",
        pool=args.pool,
    )  # fmt: skip
    r = run_search(Session.open(cfg, cache, progress=False), settings)
    c, held = r.combos, r.heldout
    best = c.best.score if c.best else c.baseline_score
    return {
        "model": model,
        "weights": r.header["weights_label"],
        "domain": domain,
        "search_images": n_search,
        "heldout_images": held["images"],
        "seed": seed,
        "select": select,
        "layer": args.layer,
        "pairs": r.pairs_in_scope,
        "best_set": [list(p) for p in r.best_pairs],  # soft pairs: [i, j, alpha]
        "search_baseline": round(c.baseline_score, 3),
        "search_gain": round(best - c.baseline_score, 3),
        "heldout_baseline": round(held["baseline_score"], 3),
        "heldout_gain": round(held["patched_score"] - held["baseline_score"], 3),
        "cv_estimate": round(r.selection["estimate"]["gain"], 3) if r.selection and r.selection["estimate"] else None,
        "chosen_n": r.selection["chosen_n"] if r.selection else len(r.top),
        "selection_rows": r.selection["rows"] if r.selection else 0,  # decoder rows the folds ran
        "seconds": round(sum(r.timings.values()), 1),
    }


def table(rows: list[dict]) -> str:
    """Markdown: one line per selection rule and search-set size, mean +- std over seeds, held-out losses counted."""
    out = [
        "| select | search images | seeds | baseline (search) | gain on search set | cv estimate | "
        "baseline (held-out) | held-out gain | held-out losses |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n in sorted({r["search_images"] for r in rows}):
        for select in dict.fromkeys(r["select"] for r in rows):
            sel = [r for r in rows if r["search_images"] == n and r["select"] == select]
            col = {k: np.array([r[k] for r in sel]) for k in sel[0] if isinstance(sel[0][k], (int, float))}
            held = col["heldout_gain"]
            cv = [r["cv_estimate"] or 0.0 for r in sel] if select_rule(select)[0] != "search" else None
            out.append(
                f"| {select} | {n} | {len(sel)} | {col['search_baseline'].mean():.2f} | "
                f"{col['search_gain'].mean():+.2f} ± {col['search_gain'].std():.2f} | "
                f"{f'{np.mean(cv):+.2f}' if cv else '-'} | "
                f"{col['heldout_baseline'].mean():.2f} | {held.mean():+.2f} ± {held.std():.2f} (min {held.min():+.2f}, "
                f"max {held.max():+.2f}) | {int((held < 0).sum())}/{len(sel)} |"
            )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="sam_tiny_demo")
    ap.add_argument("--domains", default="gray,camouflage,texture")
    ap.add_argument("--search-images", default="16,50", help="comma list of search-set sizes")
    ap.add_argument("--seeds", default="0,1,2", help="split seeds")
    ap.add_argument("--sources", default="every:4")
    ap.add_argument("--targets", default="every:4")
    ap.add_argument("--top-n", type=int, default=10)
    ap.add_argument("--protocol", default="image", help="image (per-image mean) or perseg (pooled per object)")
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--select",
        default="search,cv,greedy",
        help="rules: search (the paper), cv, greedy; '+soft' adds --alphas' soft pairs (cv+soft; soft = search+soft)",
    )
    ap.add_argument("--alphas", default="0.25,0.5,0.75", help="soft: the alphas scored besides 1")
    ap.add_argument("--layer", type=int, help="replace at this encoder block's output (default: the encoder output)")
    ap.add_argument("--pool", type=int, help="greedy: candidate pairs (default 4 x top N)")
    args = ap.parse_args()
    cache = FeatureCache()
    for domain in args.domains.split(","):
        rows = []
        for n in map(int, args.search_images.split(",")):
            for seed in map(int, args.seeds.split(",")):
                for select in args.select.split(","):
                    rows.append(run(args.model, domain, n, seed, args, cache, select))
                    print(json.dumps(rows[-1]), flush=True)
        print(f"\n{domain} ({rows[0]['weights']}, {rows[0]['pairs']:,} pairs, top {args.top_n}):\n{table(rows)}\n")


if __name__ == "__main__":
    main()
