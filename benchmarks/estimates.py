"""How good the app's time estimates are: the range it shows before a default search, comparison, zero sweep and
apply of the found set to the loaded dataset, against the time each then takes, on this machine, quiet or under a
CPU load this script makes (`--load 2`: two busy processes for the whole run; issue 37's target: every measured time
inside its shown range); and the Quick search's time (issue 37's target: under a minute on a quiet 2-core CPU) with
its held-out check.

The app's own path: a process set up as `app.py` sets it (`threads.serve`), a `Workspace` loaded with the Data tab's
defaults (`LoadForm()`) in a worker thread as the web server calls it, the Search tab's default settings
(`settings_from` with the controls' initial values), the estimates the tabs show (`estimate_seconds`,
`compare_seconds`, `sweep_seconds`, `apply_seconds`) and their ranges, then each job started as the buttons start it
and timed to its end.

    python -m benchmarks.estimates [--search-images 50] [--only search,quick,apply] [--load 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from redundancy import threads

from .load import cpu_load

threads.serve()  # before torch loads, as app.py does

import torch  # noqa: E402

from redundancy.engine.features import FeatureCache  # noqa: E402
from redundancy.interactive.workspace import Workspace  # noqa: E402
from redundancy.report.summary import format_range, format_seconds  # noqa: E402
from redundancy.ui.tabs.data import LoadForm  # noqa: E402
from redundancy.ui.tabs.search import QUICK, settings_from  # noqa: E402

JOBS = ("search", "quick", "compare", "sweep", "apply")  # quick: the Search tab's Quick search (`QUICK`); apply: the
# latest search's set on the loaded dataset (Results -> Apply)
DEFAULTS = dict(top_n=10, metric=None, sources="auto", targets="auto")  # the Search tab's initial controls


def _wait(job) -> float:
    """Seconds from now until `job` ends; its error, if any, as an exception."""
    t0 = time.perf_counter()
    job.thread.join()
    if job.state.error:
        raise RuntimeError(job.state.error)
    return time.perf_counter() - t0


def shown(server: ThreadPoolExecutor, ws: Workspace, estimate: float) -> tuple[float, float, str | None]:
    """The range and the busy-machine line the tab shows beside `estimate`, before the job starts (in the server's
    thread, as the tab computes them)."""
    low, high = server.submit(ws.session.time_range, estimate).result()
    return low, high, server.submit(ws.session.busy_note).result()


def measure(search_images: int, only: tuple[str, ...]) -> list[dict]:
    """(job, estimate s and its shown range, measured s, ratio, inside) for each job, in the order a user meets
    them."""
    with tempfile.TemporaryDirectory() as root:
        ws = Workspace(Path(root), FeatureCache(Path(root) / "cache"), remote=False)
        server = ThreadPoolExecutor(1)  # the web server's worker thread: Load and the estimates run there
        server.submit(ws.load, LoadForm(n_search=search_images).config()).result()  # rates are measured there
        settings = settings_from(**DEFAULTS)
        rows = []
        for kind in JOBS:
            if kind not in only:
                continue
            if kind in ("search", "quick"):
                chosen = QUICK if kind == "quick" else settings
                estimate = server.submit(ws.estimate_seconds, chosen).result()
                low, high, busy = shown(server, ws, estimate)
                took = _wait(ws.start_search(chosen))
            elif kind == "compare":
                estimate = server.submit(ws.compare_seconds, settings).result()
                low, high, busy = shown(server, ws, estimate)
                took = _wait(ws.start_compare(settings))
            elif kind == "apply":  # the latest search's set on the loaded dataset, as Results -> Apply does it
                repl = json.loads((ws.run_dir / "replacements.json").read_text())
                estimate = server.submit(lambda: ws.apply_seconds(*ws.apply_images())).result()
                low, high, busy = shown(server, ws, estimate)
                t0 = time.perf_counter()
                server.submit(ws.apply, repl).result()  # a request, not a background job
                took = time.perf_counter() - t0
            else:
                estimate = server.submit(ws.sweep_seconds).result()
                low, high, busy = shown(server, ws, estimate)
                took = _wait(ws.start_sweep(list(range(ws.session.backend.channels))))
            row = {"job": kind, "estimate_s": round(estimate, 3), "range_s": [round(low, 3), round(high, 3)],
                   "measured_s": round(took, 3), "ratio": round(took / estimate, 2), "inside": low <= took <= high,
                   "busy": busy}  # fmt: skip
            if kind in ("search", "quick") and ws.result.heldout:  # what the user then reads: the held-out check
                h = ws.result.heldout
                row["heldout"] = [round(h["baseline_score"], 2), round(h["patched_score"], 2)]
            rows.append(row)
            print(f"{kind:8s} shown {format_range(low, high):>13s}  measured {format_seconds(took):>9s}  "
                  f"measured / estimate {took / estimate:.2f}  {'inside' if row['inside'] else 'OUTSIDE'}",
                  flush=True)  # fmt: skip
        return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--search-images", type=int, default=LoadForm.n_search)
    p.add_argument("--only", default=",".join(JOBS), help="comma-separated: " + ", ".join(JOBS))
    p.add_argument("--load", type=int, default=0, help="busy processes loading the CPU for the whole run")
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args()
    only = tuple(args.only.split(","))
    print(f"defaults of the app: {LoadForm().model} on '{LoadForm().source}', {args.search_images} search images, "
          f"{torch.get_num_threads()} threads, {args.load} busy processes")  # fmt: skip
    with cpu_load(args.load):
        rows = measure(args.search_images, only)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
