"""Hugging Face ZeroGPU: a session's heavy steps as GPU tasks that take and return plain data.

On a ZeroGPU Space (the `spaces` package with SPACES_ZERO_GPU=true) a `@spaces.GPU` function runs
in a forked worker process that holds a GPU only for the call's requested duration; its arguments and
results cross the process boundary by pickle. So each task here takes a `GpuJob` (the session's
config, the feature cache folder, the head to score with) and plain settings, rebuilds its Session in
the worker (features come from the shared disk cache; the worker keeps the session for its next
call) and yields plain events: progress counts, finished pair blocks, ablation rows, and finally the
result. The workspace replays those events into the same callbacks a local run feeds, so the live
heatmap and Cancel work as they do elsewhere.

Outside ZeroGPU, `ON` is False, `spaces` is not even imported and the workspace calls the engine
directly: nothing here runs.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..engine import (
    Callbacks,
    SavedHead,
    ScoreProgress,
    SearchSettings,
    Session,
    SessionConfig,
    Stage,
    ablate,
    compare_search_modes,
    run_search,
)
from ..engine.features import FeatureCache
from ..errors import Cancelled, RedundancyError, RunError
from ..io import env_number
from ..replace import Edit
from ..runs.apply import ApplyOptions, apply_pairs

# ZeroGPU sets SPACES_ZERO_GPU (read as `spaces` reads it); only then is `spaces` imported: it imports gradio
# and, on ZeroGPU, patches torch, so this module must be imported before anything touches CUDA
ON = os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")
if ON:
    import spaces
else:
    spaces = None

MAX_S = env_number("REDUNDANCY_ZEROGPU_MAX_S", 300)  # ZeroGPU refuses longer requests (about 5 min, undocumented)
WORKER_DEVICE = os.environ.get("REDUNDANCY_ZEROGPU_DEVICE", "cuda")  # tests run the worker path on "cpu"
# Until a task has measured the GPU (each result reports its rates), estimates use these cautious priors:
# ZeroGPU charges the time used, not the time asked for, and aborts a task that outlives its request.
PRIOR_ROW_S = env_number("REDUNDANCY_ZEROGPU_ROW_S", 1e-3, float)  # seconds per decoder row
PRIOR_ENCODE_S = env_number("REDUNDANCY_ZEROGPU_ENCODE_S", 0.5, float)  # seconds per encoded image
START_S = env_number("REDUNDANCY_ZEROGPU_START_S", 20.0, float)  # fork, model to GPU, first CUDA calls
MARGIN = 1.5
_RATES: dict[str, dict[str, float]] = {}  # `GpuJob.rates_key` -> rates a worker measured: row_s, pair_row_s, encode_s


@dataclass(frozen=True)
class GpuJob:
    """What a GPU task needs to rebuild its session in another process: all of it plain, picklable data."""

    cfg: SessionConfig  # the session's, on the worker's device
    cache_root: str
    extract_to: str | None = None  # where the worker unpacks a zipped dataset (its own copy)
    head: str | None = None  # classify / depth: the head the app fitted and saved, so both sides score alike
    head_record: dict | None = field(default=None, compare=False, hash=False)
    seconds: float = 60.0  # the duration this call asks ZeroGPU for

    @property
    def rates_key(self) -> str:
        """Whose measured rates apply: the model, and the encoder block searched (a row there costs more)."""
        return self.cfg.model if self.cfg.layer is None else f"{self.cfg.model}@block{self.cfg.layer}"


@dataclass(frozen=True)
class Work:
    """The size of a GPU task: images to encode, decoder rows, and pair rows (a linear head's shortcut)."""

    images: int = 0
    rows: int = 0
    pair_rows: int = 0


def seconds_needed(key: str, work: Work) -> float:
    """The duration to request for `work` (rates of `GpuJob.rates_key`: measured by a worker, else the priors)."""
    r = _RATES.get(key, {})
    row_s = r.get("row_s", PRIOR_ROW_S)
    pair_row_s = r.get("pair_row_s", row_s)
    t = work.images * r.get("encode_s", PRIOR_ENCODE_S) + work.rows * row_s + work.pair_rows * pair_row_s
    return START_S + MARGIN * t


def parts(items: int, seconds_each: float, fixed: float = START_S) -> int:
    """How many calls split `items` so that each fits ZeroGPU's limit (encoding a large dataset)."""
    per_call = max(1, int((MAX_S - fixed) / max(seconds_each, 1e-9)))
    return -(-items // per_call)


def encode_seconds_each(key: str) -> float:
    """Requested seconds per image to encode (measured, else the prior), margin included."""
    return MARGIN * _RATES.get(key, {}).get("encode_s", PRIOR_ENCODE_S)


def check_fits(seconds: float, what: str, command: str) -> None:
    """Refuse a task longer than ZeroGPU grants, with the command that runs it on the user's own machine."""
    if seconds > MAX_S:
        raise RunError(
            f"{what} needs about {seconds / 60:.1f} min of GPU, more than ZeroGPU grants per call "
            f"({MAX_S / 60:.0f} min): narrow the sources / targets, use a screening mode or fewer images, "
            f"or run it on your machine: {command}"
        )


def gpu_task(fn: Callable) -> Callable:
    """`spaces.GPU` with the duration the job asks for (its `seconds`); the function itself elsewhere."""
    if spaces is None:
        return fn
    return spaces.GPU(duration=lambda job, *args, **kwargs: job.seconds)(fn)


# ---------- in the worker ----------

_WORKER: dict[tuple, Session] = {}  # the worker's session (one), kept across calls to the same worker


def _session(job: GpuJob) -> Session:
    key = (replace(job.cfg, rows=None), job.cache_root, job.extract_to, job.head)
    if key not in _WORKER:
        _WORKER.clear()  # one session per worker: its GPU memory goes before the next is built
        extract = Path(job.extract_to) if job.extract_to else None
        head = SavedHead(Path(job.head), job.head_record) if job.head else None
        _WORKER[key] = Session.open(job.cfg, FeatureCache(job.cache_root), extract, progress=False, head=head)
    return _WORKER[key]


def _rates(s: Session) -> dict[str, float]:
    """The worker's measured costs, for the next call's requested duration."""
    ev = s.evaluator("search")
    return {"row_s": ev.seconds_per_row(), "pair_row_s": ev.seconds_per_pair_row()}


def _stream(work: Callable[[Callbacks, threading.Event, Callable], Any]) -> Iterator[tuple[str, Any]]:
    """Run `work(callbacks, cancel, emit)` in a thread and yield its callbacks (and what it `emit`s) as plain
    (kind, payload) events.

    The last event is ("result", value), ("error", message) or ("cancelled", message). Closing the
    generator (the app cancelled; ZeroGPU stops its worker's stream) cancels the work between batches.
    """
    events: queue.Queue = queue.Queue()
    cancel = threading.Event()

    def emit(kind: str, payload: Any) -> None:
        events.put((kind, payload))

    def count(kind: str) -> Callable[[int, int], None]:
        return lambda done, total: emit(kind, (done, total))

    def pairs(ev: ScoreProgress) -> None:  # without the live C x C matrices: only the finished block travels
        emit("pairs", ScoreProgress(ev.done, ev.total, ev.pairs, ev.gains, ev.elapsed))

    cb = Callbacks(
        count("encode"),
        pairs,
        count("combos"),
        count("edits"),
        lambda message: emit("log", message),
        lambda stage, total: emit("stage", (stage.value, total)),  # plain data across the process boundary
    )

    def run() -> None:
        try:
            emit("result", work(cb, cancel, emit))
        except Cancelled as e:
            emit("cancelled", str(e))
        except RedundancyError as e:  # its message is the user's; the class need not cross the boundary
            emit("error", str(e))
        except Exception as e:
            emit("error", f"unexpected error on the GPU worker ({e.__class__.__name__}: {e})")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        while True:
            event = events.get()
            yield event
            if event[0] in ("result", "error", "cancelled"):
                return
    finally:
        cancel.set()
        thread.join()


@gpu_task
def encode_task(job: GpuJob, part: slice = slice(None)) -> Iterator[tuple[str, Any]]:
    """Encode the session's images (`part` of them: head split, search and held-out sets) into the disk cache."""

    def work(cb: Callbacks, cancel: threading.Event, emit: Callable) -> tuple[int, dict]:
        s = _session(job)
        t0 = time.perf_counter()
        encoded = s.encode_all(cb.encode, cancel, part)
        return encoded, {"encode_s": (time.perf_counter() - t0) / encoded} if encoded else {}

    yield from _stream(work)


@gpu_task
def search_task(job: GpuJob, settings: SearchSettings) -> Iterator[tuple[str, Any]]:
    """`run_search` on the worker's session; the result comes back with the worker's measured rates."""

    def work(cb: Callbacks, cancel: threading.Event, emit: Callable):
        s = _session(job)
        return run_search(s, settings, cb, cancel, rows=job.cfg.rows), _rates(s)

    yield from _stream(work)


@gpu_task
def sweep_task(job: GpuJob, edits: list[Edit]) -> Iterator[tuple[str, Any]]:
    """`ablate` (Table 1 rows) on the worker's session; each row is also streamed as it finishes."""

    def work(cb: Callbacks, cancel: threading.Event, emit: Callable):
        s = _session(job)
        rows = ablate(s, edits, callbacks=cb, cancel=cancel, on_row=lambda row: emit("row", row), rows=job.cfg.rows)
        return rows, _rates(s)

    yield from _stream(work)


@gpu_task
def compare_task(job: GpuJob, settings: SearchSettings, exact) -> Iterator[tuple[str, Any]]:
    """`compare_search_modes` on the worker's session (`exact`: a finished exact search to reuse)."""

    def work(cb: Callbacks, cancel: threading.Event, emit: Callable):
        s = _session(job)
        return compare_search_modes(s, settings, exact, cb, cancel, rows=job.cfg.rows), _rates(s)

    yield from _stream(work)


@gpu_task
def apply_task(job: GpuJob, replacements: dict, data: str, out: str, metric: str | None) -> Iterator[tuple[str, Any]]:
    """`apply_pairs` with the worker's model: predictions written to `out` (a folder both processes see)."""

    def work(cb: Callbacks, cancel: threading.Event, emit: Callable):
        s = _session(job)
        options = replace(ApplyOptions.of_session(s, metric, Path(data) == s.dataset.root), rows=job.cfg.rows)
        return apply_pairs(s.backend, replacements, Path(data), Path(out), options, s.cache, Path(out) / "_data"), {}

    yield from _stream(work)


# ---------- in the app's process ----------


def run(
    task: Callable[..., Iterator[tuple[str, Any]]],
    job: GpuJob,
    *args,
    callbacks: Callbacks | None = None,
    cancel: threading.Event | None = None,
    on_row: Callable[[Any], None] | None = None,
):
    """Call a GPU task and replay its events into `callbacks` / `on_row`; its result (and rates) come back.

    Cancel takes effect at the next event: the task's stream is closed, which stops the worker's work.
    """
    cb = callbacks or Callbacks()
    handlers = {
        "encode": lambda p: cb.encode and cb.encode(*p),
        "pairs": lambda p: cb.pairs and cb.pairs(p),
        "combos": lambda p: cb.combos and cb.combos(*p),
        "edits": lambda p: cb.edits and cb.edits(*p),
        "log": lambda p: cb.log and cb.log(p),
        "stage": lambda p: cb.enter(Stage(p[0]), p[1]),
        "row": lambda p: on_row and on_row(p),
    }
    stream = task(job, *args)
    try:
        for kind, payload in stream:
            if kind == "result":
                value, rates = payload
                _RATES.setdefault(job.rates_key, {}).update(rates)
                return value
            if kind == "error":
                raise RunError(payload)
            if kind == "cancelled":
                raise Cancelled(payload)
            handlers[kind](payload)
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled by the user; results finished before the cancel are kept.")
        raise RunError("the GPU task ended without a result; try again (ZeroGPU may have been busy).")
    finally:
        stream.close()
