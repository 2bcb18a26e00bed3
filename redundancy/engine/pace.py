"""How fast work runs here, measured robustly: the recent timed calls' median per row, their spread (an estimate is
shown as a range), and how much of the machine other processes took while they ran (a busy machine is named, with
its slowdown against this machine's quiet rate, recorded once per model and batch size in the cache folder).

One noisy call misjudged a search by 1.5x; a rate measured while the machine was quiet misjudged it by 13x once other
work started. So every rate keeps its last few calls, and the range an estimate shows is their spread, never narrower
than `BAND`, and wider on a busy machine, whose load can ease or grow while the work runs (`Pace.band`).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..io import atomic_write, cache_dir

RECENT = 12  # calls a rate keeps: enough for a median that one slow call does not move, recent enough to follow load
BAND = (0.8, 1.35)  # the narrowest range an estimate shows, as factors of its point: a median of a few calls
TRIM_FROM = 5  # with this many calls, the range leaves out the fastest and the slowest one
BUSY_SHARE = 0.25  # other processes used at least this share of the machine's CPU: the machine is busy
QUIET_SHARE = 0.1  # at most this: a quiet measurement, worth recording as this machine's quiet rate
QUIET_FILE = "quiet_rates.json"


def machine_cpu_seconds() -> float | None:
    """CPU seconds every process on this machine has used since boot (Linux /proc/stat), None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    """One timed call: seconds per row, and the share of the machine's CPU other processes used meanwhile."""

    seconds: float
    others: float | None


class Pace:
    """The recent timed calls of one kind of work (decoder rows, pair rows)."""

    def __init__(self) -> None:
        self._samples: deque[Sample] = deque(maxlen=RECENT)
        # a job's thread adds calls while a page's thread reads the rate: reading a deque as it changes raises
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, sample: Sample) -> None:
        """Keep one timed call (the oldest of `RECENT` goes)."""
        with self._lock:
            self._samples.append(sample)

    @property
    def samples(self) -> tuple[Sample, ...]:
        """The recent calls, oldest first, as they are now."""
        with self._lock:
            return tuple(self._samples)

    @contextlib.contextmanager
    def timing(self, rows: int) -> Iterator[None]:
        """Time the call inside as `rows` rows of work (a call that raises is not kept)."""
        wall0, own0, all0 = time.perf_counter(), time.process_time(), machine_cpu_seconds()
        yield
        wall, own, total = time.perf_counter() - wall0, time.process_time() - own0, machine_cpu_seconds()
        others = None
        if all0 is not None and total is not None and wall > 0:
            others = min(max((total - all0 - own) / (wall * (os.cpu_count() or 1)), 0.0), 1.0)
        self.add(Sample(wall / max(rows, 1), others))

    def seconds(self) -> float:
        """Seconds per row: the median of the recent calls."""
        return _seconds(self.samples)

    def band(self, quiet: float | None = None) -> tuple[float, float]:
        """(low, high) factors of an estimate at `seconds()`: the fastest and slowest recent calls (from 5 calls on,
        the second fastest and second slowest), at least `BAND`.
        On a busy machine the load may ease or grow while the work runs: the low end reaches down to this machine's
        `quiet` seconds per row where known (else to the share of the CPU the others left), and the high end up to
        1 + twice the others' share (under two busy processes, with the others at 50-57 %, one job ran at 0.54x its
        estimate and the next at 1.53x)."""
        samples = self.samples
        mid = _seconds(samples)
        times = sorted(s.seconds for s in samples)
        if len(times) >= TRIM_FROM:  # a job's first call also starts its thread's pool: one outlier each end goes
            times = times[1:-1]
        low = min(times[0] / mid, BAND[0])
        high = max(times[-1] / mid, BAND[1])
        others = _others(samples)
        if others is not None and others >= BUSY_SHARE:  # the others' share moves the work's speed either way
            low = min(low, quiet / mid if quiet else 1.0 - others)
            high = max(high, 1.0 + 2.0 * others)
        return low, high

    def others(self) -> float | None:
        """The median share of the machine's CPU other processes used during the recent calls (None: unknown)."""
        return _others(self.samples)


def _seconds(samples: tuple[Sample, ...]) -> float:
    return statistics.median(s.seconds for s in samples)


def _others(samples: tuple[Sample, ...]) -> float | None:
    shares = [s.others for s in samples if s.others is not None]
    return statistics.median(shares) if shares else None


def _quiet_path() -> Path:
    return cache_dir() / QUIET_FILE


def quiet_rate(key: str) -> dict | None:
    """This machine's quiet rate for `key` (model, device, batch size, threads) as recorded: seconds and date."""
    try:
        return json.loads(_quiet_path().read_text()).get(key)
    except (OSError, ValueError):
        return None


def note_pace(key: str, pace: Pace) -> str | None:
    """Record `pace` as the quiet rate of `key` when it was measured quiet and none is recorded; a line naming a busy
    machine and its slowdown against the quiet rate (None: not busy, or unknown)."""
    if not len(pace):
        return None
    others, seconds, quiet = pace.others(), pace.seconds(), quiet_rate(key)
    if others is not None and others <= QUIET_SHARE and (quiet is None or seconds < quiet["seconds"]):
        with contextlib.suppress(OSError, ValueError):  # a read-only cache: the note still works, unrecorded
            path = _quiet_path()
            rates = json.loads(path.read_text()) if path.exists() else {}
            rates[key] = {"seconds": seconds, "date": time.strftime("%Y-%m-%d")}
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, json.dumps(rates, indent=1) + "\n")
        return None
    if others is None or others < BUSY_SHARE:
        return None
    line = f"This machine is busy: other processes used {others:.0%} of its CPU while the rates were measured"
    if quiet is not None and seconds > quiet["seconds"]:
        line += f"; work runs {seconds / quiet['seconds']:.1f}x slower than here when quiet ({quiet['date']})"
    return line + ". Times can change as that load does."
