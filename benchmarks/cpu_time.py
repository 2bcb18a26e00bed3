"""CPU time, not only wall time, of the same work quiet and on a loaded machine (issue 37's target: CPU time under
load within 1.5x of quiet). Each job is a fresh `python -m redundancy ...` process with its own empty feature
cache (encoding included, alike in both runs), timed by `os.wait4`: wall seconds, and the user and system CPU
seconds of that process alone, not of the busy processes that load the machine (`--load 2`: two of them).

    python -m benchmarks.cpu_time [--only search,compare,paper] [--load 2] [--repeat 1] [--json out.json] [--no-settle]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .load import cpu_load

ROOT = Path(__file__).resolve().parents[1]
# `redundancy.bundled.DOMAINS`, spelled out: importing redundancy here would choose the children's thread waiting
# for them (it sets OMP_WAIT_POLICY in this process's environment, which they inherit)
DATA = str(ROOT / "redundancy" / "assets" / "domains" / "gray")
SMALL = ["--data", DATA, "--search-images", "16", "--sources", "every:8", "--targets", "every:8", "--top-n", "4"]
JOBS = {  # the fixed work RESULTS.md times: a search, a comparison of modes on its pairs, the paper report's check
    "search": ["search", *SMALL, "--heldout-images", "4"],
    "compare": ["compare", *SMALL],
    "paper": ["paper", "--tiny"],
}


def timed(argv: list[str], folder: Path) -> dict:
    """Run `python -m redundancy argv --out <folder>/out` with a cache in `folder`: wall, user and system seconds."""
    env = {**os.environ, "REDUNDANCY_CACHE": str(folder / "cache")}
    run = (
        "from redundancy import threads; print(json.dumps(threads.CHOSEN), file=sys.stderr, flush=True); "
        "sys.argv[0] = 'redundancy'; runpy.run_module('redundancy', run_name='__main__')"
    )
    cmd = [sys.executable, "-c", f"import json, runpy, sys; {run}", *argv, "--out", str(folder / "out")]
    t0 = time.perf_counter()
    with open(folder / "stderr.txt", "w+") as err:  # a file, not a pipe: a full pipe would stall the job
        proc = subprocess.Popen(cmd, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        err.seek(0)
        said = err.read()
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{argv[0]} failed: {said[-2000:]}")
    chosen = json.loads(said.split("\n", 1)[0])  # how the tool chose to let its threads wait (`threads.choose`)
    return {"wall_s": round(wall, 1), "user_s": round(usage.ru_utime, 1), "sys_s": round(usage.ru_stime, 1),
            "wait": f"{chosen['wait_policy']} ({chosen['why']})"}  # fmt: skip


def settle(load: int) -> None:
    """Wait until the load average is that of the machine meant: below a quarter of the cores when quiet (a job just
    run leaves its load behind for a minute), at least 80% of the busy processes when loaded (a shared machine's
    load has been there a while). The tool reads it once, at start, to choose how its threads wait (`threads.py`)."""
    cores = os.cpu_count() or 1
    while (os.getloadavg()[0] >= cores / 4) if not load else (os.getloadavg()[0] < 0.8 * load):
        time.sleep(2)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default=",".join(JOBS), help="comma-separated jobs: " + ", ".join(JOBS))
    p.add_argument("--load", type=int, default=0, help="busy processes loading the CPU for the whole run")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--json", help="also write the rows here")
    p.add_argument("--no-settle", action="store_true", help="start each job at once, whatever the load average")
    args = p.parse_args(argv)
    rows = []
    print(f"{os.cpu_count()} cores, {args.load} busy processes")
    print("| job | wall (s) | user CPU (s) | system CPU (s) | threads wait |\n|---|---|---|---|---|")
    with cpu_load(args.load):
        for name in args.only.split(","):
            for _ in range(args.repeat):
                if not args.no_settle:
                    settle(args.load)
                with tempfile.TemporaryDirectory() as tmp:
                    row = {"job": name, "load": args.load, **timed(JOBS[name], Path(tmp))}
                rows.append(row)
                print(f"| {name} | {row['wall_s']} | {row['user_s']} | {row['sys_s']} | {row['wait']} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
