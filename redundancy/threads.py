"""How torch's CPU threads wait, chosen once per process before torch starts them (`redundancy/__init__.py`).

On a machine other work also loads (a free Space, a laptop, CI on 2 cores), OpenMP's default, spinning while it
waits for work, burns the cores the other work needs: a search here took 3.3x its quiet CPU time and 5x its wall
time under two busy processes; with passive waiting, 1.0x and 2.3x (`benchmarks/RESULTS.md`). On a quiet machine
spinning is 10-20 % faster. So: passive where the machine is shared (a Space, or a load average of half its cores
or more when the process starts), torch's default otherwise; an OMP_WAIT_POLICY set by the user always wins. The
choice is recorded in each run's config.json (`environment`). It takes effect only where torch is not imported yet.

The web app waits passively everywhere (`serve`): its torch work runs in several threads (the server's workers, a
thread per job), each with an OpenMP team of its own, and with more OpenMP threads than cores libgomp throttles
spinning to almost nothing anyway. A job thread ran at passive speed (1.45 ms a decoder row here) while the same
calls timed in the loading thread ran at spinning speed (0.9 ms), and the first estimate was 1.5x short; waiting
passively in every thread makes the timed calls and the job run alike.
"""

from __future__ import annotations

import os
import sys


def choose(server: bool = False) -> dict:
    """Set OMP_WAIT_POLICY for this process (unless the user did) and say what was chosen and why (`server`: a web
    app's process, passive)."""
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if os.environ.get("OMP_WAIT_POLICY"):
        policy, why = os.environ["OMP_WAIT_POLICY"].lower(), "set in the environment"
    elif server or os.environ.get("SPACE_ID") or load >= cores / 2:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        policy = "passive"
        if server:
            why = "a web app (torch works in several threads)"
        else:
            why = "a shared Space" if os.environ.get("SPACE_ID") else f"load {load:.1f} on {cores} cores at start"
    else:
        policy, why = "default", f"load {load:.1f} on {cores} cores at start"
    late = "torch" in sys.modules  # its OpenMP runtime has read the environment already
    return {"wait_policy": policy, "why": why + (" (torch was imported first: not in effect)" if late else "")}


CHOSEN = choose()


def serve() -> None:
    """Choose again for a web app's process, before torch loads (`app.py`): passive, unless the user set a policy."""
    global CHOSEN
    if CHOSEN["wait_policy"] == "default":  # the user's own policy, or passive chosen already, stays
        CHOSEN = choose(server=True)
