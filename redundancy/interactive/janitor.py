"""Reclaiming what clients left behind: workspaces whose page never came back, and session folders on a timer
(a client may leave without the server ever hearing of it: an API client, a closed laptop)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from .workspace import APP_ROOT, RECONNECT_S, live_workspaces


def close_detached(max_age_s: float = RECONNECT_S) -> int:
    """Close workspaces whose page went away more than `max_age_s` ago and never came back."""
    now = time.time()
    gone = [w for w in live_workspaces() if w.detached_at is not None and now - w.detached_at > max_age_s]
    for w in gone:
        w.close()
    return len(gone)


def remove_stale(root: Path = APP_ROOT, max_age_s: float = 6 * 3600) -> int:
    """Delete workspace folders untouched for `max_age_s` (left by a crash or a killed server)."""
    removed = 0
    if root.is_dir():
        for d in root.iterdir():
            if d.is_dir() and time.time() - d.stat().st_mtime > max_age_s:
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
    return removed


def start_janitor(root: Path = APP_ROOT, max_age_s: float = 6 * 3600, every_s: float = 600) -> threading.Event:
    """Run `close_detached` and `remove_stale` now and then every `every_s` seconds in a daemon thread; set the
    returned event to stop it."""
    stop = threading.Event()

    def loop() -> None:
        while True:
            close_detached()
            remove_stale(root, max_age_s)
            if stop.wait(every_s):
                return

    threading.Thread(target=loop, name="redundancy-janitor", daemon=True).start()
    return stop
