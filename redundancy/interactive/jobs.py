"""Background jobs for interactive front ends: a thread per job, a state a UI polls, errors kept as text.

Nothing here knows the method: the workspace gives a job its work (`fn(state, cancel)`), the work
moves `state` through its stages (`enter_stage`), and a UI polls `state` and sets `cancel`.

In lockstep (`REDUNDANCY_JOBS=lockstep`, what the browser tests run the app with) a job entering a stage waits until
a page following it has shown that stage (`JobState.shown`), up to `LOCKSTEP_S`: every stage a job passes reaches the
page in order, however fast or slow the machine, so a test that waits for a stage's line never misses it because the
stage ended between two polls. A stage that reports its progress (`advance`) waits once more, at its first partial
result, so a page shows every such stage part-way too. Where no page follows the job (it went away), the job goes on
after `LOCKSTEP_S`.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import Cancelled, RedundancyError
from ..io import env_number
from ..logs import incident

log = logging.getLogger(__name__)
LOCKSTEP = os.environ.get("REDUNDANCY_JOBS", "") == "lockstep"
LOCKSTEP_S = env_number("REDUNDANCY_LOCKSTEP_S", 60.0, float)  # the longest a stage waits for a page to show it


@dataclass(frozen=True)
class Plan:
    """A job's work, known before it starts: (stage, rows, seconds a row takes) in the order it runs them. The
    seconds are read again at every call, so the time left follows the rates measured as the work runs."""

    stages: tuple[tuple[str, int, Callable[[], float]], ...]

    def seconds(self) -> float:
        """The whole job's predicted time."""
        return sum(rows * row_s() for _, rows, row_s in self.stages)

    def remaining_s(self, stage: str, fraction_done: float) -> float | None:
        """Seconds left when `stage` is `fraction_done` through: its rest and every later stage (None: the stage is
        not one of the plan's)."""
        names = [name for name, _, _ in self.stages]
        if stage not in names:
            return None
        k = names.index(stage)
        _, rows, row_s = self.stages[k]
        left = rows * (1.0 - min(max(fraction_done, 0.0), 1.0)) * row_s()
        return left + sum(r * f() for _, r, f in self.stages[k + 1 :])


@dataclass
class JobState:
    """A snapshot a UI can poll: what stage a background job is at and what it has produced so far."""

    stage: str = "idle"
    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.perf_counter)
    stage_started: float = field(default_factory=time.perf_counter)
    error: str | None = None
    finished: bool = False
    cancelled: bool = False
    updates: int = 0  # bumps on every new partial result, so a UI redraws only when something changed
    plan: Plan | None = None  # the job's stages ahead of time: the time left counts all of them
    expected_s: float | None = None  # a job of free-form stages: its predicted whole time instead of a plan
    _shown: int = -1  # the latest `updates` a page has shown (lockstep)
    _page: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def shown(self, updates: int) -> None:
        """A page has shown the state as of `updates` (what lockstep waits for)."""
        with self._page:
            self._shown = max(self._shown, updates)
            self._page.notify_all()

    def wait_shown(self, timeout: float) -> bool:
        """Wait until a page has shown the state as it is now (False: none did within `timeout`)."""
        want = self.updates
        with self._page:
            return self._page.wait_for(lambda: self._shown >= want, timeout)

    def rate(self) -> float:
        """Items per second in the current stage."""
        dt = time.perf_counter() - self.stage_started
        return self.done / dt if dt > 0 and self.done else 0.0

    def eta(self) -> float | None:
        """Seconds left in the whole job (every stage of its plan), else in the current stage at its rate."""
        if self.plan is not None:
            left = self.plan.remaining_s(self.stage, self.done / self.total if self.total else 0.0)
            if left is not None:
                return left
        r = self.rate()
        stage_left = (self.total - self.done) / r if r else None
        if self.expected_s is not None:  # the prediction's rest, never less than the running stage still needs
            return max(self.expected_s - (time.perf_counter() - self.started), stage_left or 0.0)
        return stage_left


class Job:
    """Runs `fn(state, cancel)` in a thread; errors become one readable line, a bug's traceback goes to the log."""

    def __init__(self, fn: Callable[[JobState, threading.Event], Any], kind: str = "job"):
        self.kind = kind  # what it is ("search", "sweep", "compare"): a reconnecting page shows it again
        self.state = JobState(stage="starting")
        self.cancel = threading.Event()
        self.result: Any = None
        # in the caller's context: a ZeroGPU task started from the job finds the request it serves there
        self.thread = threading.Thread(target=contextvars.copy_context().run, args=(self._run, fn), daemon=True)
        self.thread.start()

    def _run(self, fn) -> None:
        try:
            self.result = fn(self.state, self.cancel)
        except Cancelled:
            self.state.cancelled = True
            log.info("%s job cancelled at %s", self.kind, self.state.stage)
        except RedundancyError as e:
            self.state.error = str(e)
            log.info("%s job stopped: %s", self.kind, e)
        except Exception as e:  # a bug: one line for the user, the traceback in the log under a reference
            ref = incident(log, f"{self.kind} job failed in '{self.state.stage}'")
            self.state.error = (
                f"unexpected error ({e.__class__.__name__}: {e}); finished results are kept (log reference {ref})."
            )
        finally:
            self.state.finished = True

    @property
    def running(self) -> bool:
        return self.thread.is_alive()


def enter_stage(state: JobState, name: str, total: int) -> None:
    """Enter a new stage of a job: its name, size, and a fresh clock for its rate."""
    state.stage, state.total, state.done, state.stage_started = name, total, 0, time.perf_counter()
    state.updates += 1
    if LOCKSTEP and not state.wait_shown(LOCKSTEP_S):
        log.info("no page showed stage '%s' within %.0f s; going on", name, LOCKSTEP_S)


def advance(state: JobState, done: int) -> None:
    """`done` of the current stage's steps are finished: a new partial result for a page to show. In lockstep the
    stage's first partial result (some steps done, not all) waits until a page has shown it."""
    first = state.done == 0 and 0 < done < state.total
    state.done = done
    state.updates += 1
    if first and LOCKSTEP and not state.wait_shown(LOCKSTEP_S):
        log.info("no page showed stage '%s' part-way within %.0f s; going on", state.stage, LOCKSTEP_S)


def end_job(state: JobState, words: str) -> None:
    """The job's last stage, complete: what a finished job says (e.g. "search finished")."""
    enter_stage(state, words, 1)
    state.done = 1
    state.updates += 1
