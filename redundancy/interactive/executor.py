"""Where a workspace's heavy steps run, chosen once per workspace: in this process (`LocalExecutor`), or as
ZeroGPU tasks on a GPU worker (`ZeroGpuExecutor`, `zerogpu.py`). Both take the same arguments and feed the
same callbacks, so the workspace never asks which one it has."""

from __future__ import annotations

import uuid
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from ..data import IMAGE_EXTS
from ..engine import Callbacks, SearchResult, SearchSettings, Session, ablate, compare_search_modes, run_search
from ..engine.cost import SearchCost, compare_cost, search_cost
from ..replace import Edit
from ..runs.apply import ApplyOptions, ApplyResult, apply_pairs
from . import zerogpu
from .zerogpu import GpuJob, Work


def count_images(path: Path) -> int:
    """Image files in a folder or zip, masks included (an upper bound, to size a GPU task before it opens them)."""
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    else:
        names = [str(p) for p in path.rglob("*")]
    return sum(Path(n).suffix.lower() in IMAGE_EXTS for n in names)


class LocalExecutor:
    """The engine, called directly in this process."""

    remote = False

    def prepare(self, session: Session, extract: Path, on_progress: Callable[[int, int], None] | None) -> None:
        """Ready a freshly opened session: nothing to do here (its features encode on first use)."""

    def search(self, session, settings, rows, callbacks, cancel) -> SearchResult:
        return run_search(session, settings, callbacks, cancel, rows=rows)

    def sweep(self, session, edits, rows, callbacks, cancel, on_row):
        return ablate(session, edits, callbacks=callbacks, cancel=cancel, on_row=on_row, rows=rows)

    def compare(self, session, settings, exact, rows, callbacks, cancel):
        return compare_search_modes(session, settings, exact, callbacks, cancel, rows=rows)

    def apply(self, session, replacements, data, out, metric, rows) -> ApplyResult:
        options = replace(ApplyOptions.of_session(session, metric, data == session.dataset.root), rows=rows)
        return apply_pairs(session.backend, replacements, data, out, options, session.cache, out / "_data")

    def seconds(self, session, cost: SearchCost) -> float | None:
        """The GPU time this work would ask for (None: it runs here, on this process's own rates)."""
        return None


class ZeroGpuExecutor:
    """ZeroGPU: encode, search, sweep, compare and apply as GPU tasks in a worker process. This process keeps a
    CPU session over the same cached features for the cheap views; a task too long for ZeroGPU is refused with
    the command line that runs it locally (`command(verb, settings)`)."""

    remote = True

    def __init__(self, folder: Path, cache_root: Path, command: Callable[..., str]):
        self.folder, self.cache_root, self.command = folder, cache_root, command
        self.job: GpuJob | None = None

    def prepare(self, session: Session, extract: Path, on_progress) -> None:
        """Encode the session's images on the GPU worker into the shared cache (a large dataset in several calls);
        classify / depth: fit the head here and hand it to the worker, so both sides score alike."""
        cfg = replace(session.cfg, device=zerogpu.WORKER_DEVICE)
        job = GpuJob(cfg, str(self.cache_root), str(extract.with_name(extract.name + "-gpu")))
        images = len(session.image_paths())
        n = zerogpu.parts(images, zerogpu.encode_seconds_each(job.rates_key))
        size = -(-images // n)
        command = self.command("search", session.cfg)
        for k in range(n):
            part = slice(k * size, (k + 1) * size)
            done = (lambda d, _t, s0=k * size: on_progress(s0 + d, images)) if on_progress else None
            self._run(zerogpu.encode_task, job, Work(images=len(range(images)[part])), "encoding the dataset",
                      command, None, part, callbacks=Callbacks(encode=done))  # fmt: skip
        session.evaluator("search", on_progress)  # the CPU session reads what the worker encoded
        if session.head is not None:
            path = self.folder / f"head-{uuid.uuid4().hex[:8]}.pt"
            torch.save(session.head_state(), path)
            job = replace(job, head=str(path), head_record=session.head.to_dict())
        self.job = job

    def _run(self, task, job: GpuJob, work: Work, what: str, command: str, rows: int | None, *args, **kwargs):
        """A ZeroGPU task for `work`, asking for the duration it needs; refused, with the command that runs it
        locally, when that is more than ZeroGPU grants."""
        seconds = zerogpu.seconds_needed(job.rates_key, work)
        zerogpu.check_fits(seconds, what, command)
        return zerogpu.run(task, replace(job, cfg=replace(job.cfg, rows=rows), seconds=seconds), *args, **kwargs)

    @staticmethod
    def _work(cost: SearchCost) -> Work:
        return Work(images=cost.encode_images, rows=cost.rows - cost.pairs, pair_rows=cost.pairs)

    def _cost(self, session: Session, settings: SearchSettings) -> SearchCost:
        n_pairs = len(session.channel_pairs(settings))
        shortcut = session.backend.has_pair_outputs()
        return search_cost(settings, n_pairs, len(session.search_set), len(session.heldout_set), session.task, shortcut)

    def search(self, session, settings, rows, callbacks, cancel) -> SearchResult:
        work = self._work(self._cost(session, session.resolve(settings)))
        return self._run(zerogpu.search_task, self.job, work, "this search", self.command("search", settings=settings),
                         rows, settings, callbacks=callbacks, cancel=cancel)  # fmt: skip

    def sweep(self, session, edits: list[Edit], rows, callbacks, cancel, on_row):
        work = Work(rows=(len(edits) + 1) * len(session.search_set))
        return self._run(zerogpu.sweep_task, self.job, work, "this sweep", self.command("ablate"), rows, edits,
                         callbacks=callbacks, cancel=cancel, on_row=on_row)  # fmt: skip

    def compare(self, session, settings, exact, rows, callbacks, cancel):
        settings = session.resolve(settings)
        cost = compare_cost(settings, len(session.channel_pairs(settings)), len(session.search_set), session.task,
                            session.backend.has_pair_outputs(), exact is not None)  # fmt: skip
        return self._run(zerogpu.compare_task, self.job, self._work(cost), "this comparison",
                         self.command("compare", settings=settings), rows, settings, exact,
                         callbacks=callbacks, cancel=cancel)  # fmt: skip

    def apply(self, session, replacements, data, out, metric, rows) -> ApplyResult:
        n = len(session.dataset) if data == session.dataset.root else count_images(Path(data))
        command = f"python -m redundancy apply --replacements replacements.json --data {Path(data).name} --out out"
        return self._run(zerogpu.apply_task, self.job, Work(images=n, rows=2 * n), "applying the set", command,
                         rows, replacements, str(data), str(out), metric)  # fmt: skip

    def seconds(self, session, cost: SearchCost) -> float | None:
        return zerogpu.seconds_needed(self.job.rates_key, self._work(cost))
