"""How good the app's time estimates are: the figure it shows before a default search, comparison and zero sweep,
against the time each then takes, on this machine (issue 26's target: within 1.5x, on a quiet machine); and the
Quick search's time (issue 37's target: under a minute on a quiet 2-core CPU) with its held-out check.

The app's own path: a `Workspace` loaded with the Data tab's defaults (`LoadForm()`), the Search tab's default
settings (`settings_from` with the controls' initial values), the estimates the tabs show (`estimate_seconds`,
`compare_seconds`, `sweep_seconds`), then each job started as the buttons start it and timed to its end.

    python -m benchmarks.estimates [--search-images 50] [--only search,compare,sweep] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from redundancy.engine.features import FeatureCache
from redundancy.interactive.workspace import Workspace
from redundancy.report.summary import format_seconds
from redundancy.ui.tabs.data import LoadForm
from redundancy.ui.tabs.search import QUICK, settings_from

JOBS = ("search", "quick", "compare", "sweep")  # quick: the Search tab's Quick search (`QUICK`)
DEFAULTS = dict(top_n=10, metric=None, sources="auto", targets="auto")  # the Search tab's initial controls


def _wait(job) -> float:
    """Seconds from now until `job` ends; its error, if any, as an exception."""
    t0 = time.perf_counter()
    job.thread.join()
    if job.state.error:
        raise RuntimeError(job.state.error)
    return time.perf_counter() - t0


def measure(search_images: int, only: tuple[str, ...]) -> list[dict]:
    """(job, estimate s, measured s, ratio) for each job, in the order a user meets them."""
    with tempfile.TemporaryDirectory() as root:
        ws = Workspace(Path(root), FeatureCache(Path(root) / "cache"), remote=False)
        ws.load(LoadForm(n_search=search_images).config())  # encodes the search set: the rates are measured there
        settings = settings_from(**DEFAULTS)
        rows = []
        for kind in JOBS:
            if kind not in only:
                continue
            if kind in ("search", "quick"):
                chosen = QUICK if kind == "quick" else settings
                estimate = ws.estimate_seconds(chosen)
                took = _wait(ws.start_search(chosen))
            elif kind == "compare":
                estimate = ws.compare_seconds(settings)
                took = _wait(ws.start_compare(settings))
            else:
                estimate = ws.sweep_seconds()
                took = _wait(ws.start_sweep(list(range(ws.session.backend.channels))))
            row = {"job": kind, "estimate_s": round(estimate, 3), "measured_s": round(took, 3),
                   "ratio": round(took / estimate, 2)}  # fmt: skip
            if kind in ("search", "quick") and ws.result.heldout:  # what the user then reads: the held-out check
                h = ws.result.heldout
                row["heldout"] = [round(h["baseline_score"], 2), round(h["patched_score"], 2)]
            rows.append(row)
            print(f"{kind:8s} estimate {format_seconds(estimate):>9s}  measured {format_seconds(took):>9s}  "
                  f"measured / estimate {took / estimate:.2f}", flush=True)  # fmt: skip
        return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--search-images", type=int, default=LoadForm.n_search)
    p.add_argument("--only", default=",".join(JOBS), help="comma-separated: " + ", ".join(JOBS))
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args()
    only = tuple(args.only.split(","))
    print(f"defaults of the app: {LoadForm().model} on '{LoadForm().source}', {args.search_images} search images, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    rows = measure(args.search_images, only)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
