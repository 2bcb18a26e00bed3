"""Per-user state for interactive front ends: a Session, its results, its own folder, background jobs.

The app keeps one Workspace per browser session (in gr.State); nothing here imports gradio.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from . import zerogpu  # on ZeroGPU, importing `spaces` patches torch: before anything touches CUDA
from .apply import ApplyResult, apply_pairs
from .commands import command_line
from .data import IMAGE_EXTS, load_depth, load_image, load_mask
from .errors import RunError
from .export import write_comparison, write_depths, write_labels, write_predictions, write_run
from .features import FeatureCache
from .imaging import captioned, depth_colour, mask_overlay, overlay
from .io import env_number
from .jobs import Job, JobState, enter_stage
from .pipeline import (
    AblationRow,
    Callbacks,
    SearchResult,
    SearchSettings,
    Session,
    SessionConfig,
    ablate,
    compare_search_modes,
    decoded_rows,
    run_search,
)
from .redact import Redactor
from .replace import Edit, edit_alpha, edit_map, identity_map, set_map
from .score import ScoreProgress
from .screen import ModeReport
from .tasks import MAX_DEPTH, MIN_DEPTH, clamp_depth
from .zerogpu import GpuJob, Work

APP_ROOT = Path(tempfile.gettempdir()) / "redundancy-app"
GRADIENT_ROWS = 4  # taylor screening: one gradient pass per image, counted as a few decoder rows
RECONNECT_S = env_number("REDUNDANCY_RECONNECT_S", 900)  # a page that went away may come back this long
_LIVE: dict[str, Workspace] = {}  # every open workspace by id: what a reloaded page reconnects to
_LIVE_LOCK = threading.Lock()


def _depth_range(depth: np.ndarray) -> tuple[float, float]:
    """The colour scale of a ground-truth depth map: its valid range (every view of one image shares it)."""
    valid = depth[depth > 0]
    return (float(valid.min()), float(valid.max())) if valid.size else (MIN_DEPTH, MAX_DEPTH)


def _count_images(path: Path) -> int:
    """Image files in a folder or zip, masks included (an upper bound, to size a GPU task before it opens them)."""
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    else:
        names = [str(p) for p in path.rglob("*")]
    return sum(Path(n).suffix.lower() in IMAGE_EXTS for n in names)


def start_janitor(root: Path = APP_ROOT, max_age_s: float = 6 * 3600, every_s: float = 600) -> threading.Event:
    """Run `remove_stale` now and then every `every_s` seconds in a daemon thread; set the returned event to stop.

    A client may leave without the server ever hearing of it (an API client, a closed laptop), so
    session folders are reclaimed on a timer, not only when a session ends.
    """
    stop = threading.Event()

    def loop() -> None:
        while True:
            close_detached()
            remove_stale(root, max_age_s)
            if stop.wait(every_s):
                return

    threading.Thread(target=loop, name="redundancy-janitor", daemon=True).start()
    return stop


def close_detached(max_age_s: float = RECONNECT_S) -> int:
    """Close workspaces whose page went away more than `max_age_s` ago and never came back."""
    now = time.time()
    with _LIVE_LOCK:
        gone = [w for w in _LIVE.values() if w.detached_at is not None and now - w.detached_at > max_age_s]
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


class Workspace:
    """One user's session: model + data, ablation and sweep results, search runs, a private folder."""

    def __init__(self, root: Path | None = None, cache: FeatureCache | None = None, remote: bool | None = None):
        self.id = uuid.uuid4().hex  # names its folder (which messages and run files never show)
        self.key = secrets.token_urlsafe(32)  # the reconnect secret: kept by its browser only, never in a file
        # ZeroGPU: encode, search, sweep, compare and apply run as GPU tasks in a worker process (`zerogpu`);
        # this process keeps a CPU session over the same cached features for the cheap views
        self.remote = zerogpu.ON if remote is None else remote
        self.gpu: GpuJob | None = None
        self.dir = (root or APP_ROOT) / self.id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cache = cache or FeatureCache()
        self.session: Session | None = None
        self.result: SearchResult | None = None
        self.run_dir: Path | None = None
        self.sweep: dict[int, float] = {}  # the latest complete zero sweep: channel -> delta mIoU
        self.sweep_live: dict[int, float] = {}  # the sweep running now (or the last one, as far as it got)
        self.sweep_rows: tuple[AblationRow, list[AblationRow]] | None = None  # the complete sweep's Table 1 rows
        self.job: Job | None = None
        self.gain: np.ndarray | None = None  # live pair-gain matrix while a search runs
        self.scope: tuple[list[int], list[int]] = ([], [])  # (sources, targets) of the current search
        self.comparison: list[ModeReport] = []  # the latest search-mode comparison
        self.settings = SearchSettings()  # of the latest search or comparison
        self.compared_with_search = False  # whether it reused the finished exact search's scores
        self.detached_at: float | None = None  # when its page went away (None: a page holds it)
        self.redactor = Redactor()  # what its visitor sees of server paths (messages, downloaded run files)
        for folder in (self.dir, root or APP_ROOT, Path.cwd()):
            self.redactor.add(folder, "")
        with _LIVE_LOCK:
            _LIVE[self.key] = self

    @classmethod
    def reconnect(cls, key: str | None) -> Workspace | None:
        """The open workspace with this reconnect key (a reloaded page's own, kept in its browser), or None.

        Keys are random 256-bit values a browser only learns for its own workspace and that appear in no
        file, message or folder name, so a page can only come back to what it created.
        """
        with _LIVE_LOCK:
            ws = _LIVE.get(key or "")
        if ws is not None:
            ws.detached_at = None
        return ws

    def detach(self) -> None:
        """Its page went away (closed or reloading): keep everything for RECONNECT_S, then `close_detached`."""
        self.detached_at = time.time()

    def metric(self, name: str | None = None):
        """The loaded task's score metric (`name`, else the latest search's, else the task's default)."""
        return self.require().task.metric(name or self.settings.metric)

    def combination_view(self, result: SearchResult) -> tuple[list[int], list[float], float, int | None]:
        """(subset sizes, scores, baseline, index of the best) of a search, in the metric's own units."""
        value = self.metric(result.settings.metric).value
        rows = result.combos.rows
        best = rows.index(result.combos.best) if result.combos.best else None
        return [len(x.pairs) for x in rows], [value(x.miou) for x in rows], value(result.combos.baseline_miou), best

    def close(self) -> None:
        """Cancel what runs, forget the workspace and delete the private folder."""
        with _LIVE_LOCK:
            _LIVE.pop(self.key, None)
        if self.job and self.job.running:
            self.job.cancel.set()
        shutil.rmtree(self.dir, ignore_errors=True)

    def require(self) -> Session:
        if self.session is None:
            raise RunError("no model and dataset loaded yet; open the Data tab and press Load.")
        return self.session

    def busy(self) -> None:
        if self.job and self.job.running:
            raise RunError("a long job is still running in this session; wait for it or press Cancel.")

    def load(self, cfg: SessionConfig, on_progress: Callable[[int, int], None] | None = None) -> Session:
        """Open model and dataset (a zip is extracted into this workspace) and encode the search set."""
        self.busy()
        extract = self.dir / f"data-{uuid.uuid4().hex[:8]}"
        if Path(cfg.data).is_file():  # an upload: messages and run files name the visitor's own file
            self.redactor.add(extract, Path(cfg.data).name)
        if self.remote:
            cfg = replace(cfg, device="cpu")  # the GPU is the worker's; this process only reads the cache
        session = Session.open(cfg, self.cache, extract_to=extract, progress=True)  # tqdm: UI tracks it
        if self.remote:
            self.gpu = self._encode_remote(session, extract, on_progress)
        session.evaluator("search", on_progress)
        if self.remote and session.head is not None:  # the worker scores with this process's head
            self.gpu = replace(self.gpu, head=str(self._save_head(session)), head_record=session.head.to_dict())
        self.session, self.result, self.run_dir, self.gain = session, None, None, None
        self.sweep, self.sweep_live, self.sweep_rows, self.comparison = {}, {}, None, []
        return session

    def _encode_remote(self, session: Session, extract: Path, on_progress: Callable[[int, int], None] | None) -> GpuJob:
        """ZeroGPU: encode the session's images on the GPU worker into the shared cache; the job for later tasks."""
        cfg = replace(session.cfg, device=zerogpu.WORKER_DEVICE)
        job = GpuJob(cfg, str(self.cache.root), str(extract.with_name(extract.name + "-gpu")))
        images = len(session.image_paths())
        n = zerogpu.parts(images, zerogpu.encode_seconds_each(job.rates_key))  # a large dataset: several calls
        size = -(-images // n)
        command = self._command("search", session.cfg)
        for k in range(n):
            part = slice(k * size, (k + 1) * size)
            done = (lambda d, _t, s0=k * size: on_progress(s0 + d, images)) if on_progress else None
            work = Work(images=len(range(images)[part]))
            self._gpu(zerogpu.encode_task, job, work, "encoding the dataset", command, part,
                      callbacks=Callbacks(encode=done))  # fmt: skip
        return job

    def _command(self, verb: str, cfg: SessionConfig | None = None, settings: SearchSettings | None = None) -> str:
        """The CLI line that runs this job on a user's own machine (for a job too long for ZeroGPU)."""
        cfg = cfg or self.require().cfg
        data = Path(cfg.data)
        if data.is_absolute() and Path.cwd() in data.parents:  # a bundled dataset: as the repository names it
            data = data.relative_to(Path.cwd())
        elif self.dir in data.parents or Path(tempfile.gettempdir()) in data.parents:  # an upload: the user's file
            data = Path(data.name)
        if verb == "compare" and settings is not None:
            settings = replace(settings, mode=SearchSettings.mode)  # compare runs every mode; it takes no --mode
        return command_line(verb, replace(cfg, data=str(data)), settings, out=None if verb == "compare" else "run")

    def _save_head(self, session: Session) -> Path:
        path = self.dir / f"head-{uuid.uuid4().hex[:8]}.pt"
        torch.save(session.backend.head.state(), path)
        return path

    def _gpu(self, task, job: GpuJob, work: Work, what: str, command: str, *args, **kwargs):
        """Run a ZeroGPU task for `work`, asking for the duration it needs; refused, with the command that runs
        it locally, when that is more than ZeroGPU grants."""
        seconds = zerogpu.seconds_needed(job.rates_key, work)
        zerogpu.check_fits(seconds, what, command)
        rows = self.session.cfg.rows if self.session is not None else job.cfg.rows
        return zerogpu.run(task, replace(job, cfg=replace(job.cfg, rows=rows), seconds=seconds), *args, **kwargs)

    def features(self, index: int) -> np.ndarray:
        """Search-set image `index`'s channel maps (C, h, w) as numpy (DINOv2: its patch tokens on the grid)."""
        s = self.require()
        return s.backend.channel_maps(s.evaluator("search").set.feats[index : index + 1])[0].cpu().numpy()

    def output(self, index: int, edit: Edit | None = None, pairs: list[tuple[int, int]] | None = None) -> torch.Tensor:
        """The head's output for search image `index` with no edit, one edit or a replacement set, at its size:
        mask logits (H, W), class logits (K,) or depth (H, W)."""
        s = self.require()
        c = s.backend.channels
        f, alpha = (edit_map(edit, c), edit_alpha(edit, c)) if edit else set_map(pairs or [], c)
        return s.evaluator("search").logits(f, [index], alpha)[0]

    def target_view(self, index: int) -> np.ndarray:
        """Search image `index` with its ground truth: mask tinted, class label above, or depth beside it."""
        s = self.require()
        sample = s.search_set.samples[index]
        image = load_image(sample.image_path)
        if s.task.name == "segment":
            return overlay(image, load_mask(sample.mask_path), (40, 200, 90))
        if s.task.name == "classify":
            return captioned(image, f"label: {s.dataset.classes[sample.label]}")
        depth = load_depth(sample.mask_path)
        return np.concatenate([image, depth_colour(depth, *_depth_range(depth))], 1)

    def prediction_view(
        self, index: int, edit: Edit | None = None, pairs: list[tuple[int, int]] | None = None
    ) -> np.ndarray:
        """Search image `index`'s prediction as a picture: mask over the image (GT outlined), predicted class
        with its confidence (and the label), or the depth map on the ground truth's colour scale."""
        s = self.require()
        sample = s.search_set.samples[index]
        out = self.output(index, edit, pairs)
        if s.task.name == "segment":
            image = load_image(sample.image_path)
            return mask_overlay(image, (out > 0).cpu().numpy(), load_mask(sample.mask_path))
        if s.task.name == "classify":
            prob = out.float().softmax(0)
            k, classes = int(prob.argmax()), s.dataset.classes
            text = f"{classes[k]} {float(prob[k]):.0%} (label {classes[sample.label]})"
            return captioned(load_image(sample.image_path), text)
        pred = clamp_depth(out).cpu().numpy()
        return depth_colour(pred, *_depth_range(load_depth(sample.mask_path)))

    def start_sweep(self, channels: list[int]) -> Job:
        """Zero each channel alone on the search set (`pipeline.ablate`, batched) in the background.

        `sweep_live` fills as edits finish; `sweep` (what the explorer sorts by) is replaced only when
        the new sweep completes, so a cancelled re-run never replaces a complete sweep with part of one.
        """
        s = self.require()
        self.busy()
        self.sweep_live = {}

        def work(state: JobState, cancel: threading.Event) -> dict[int, float]:
            enter_stage(state, "zeroing channels", len(channels))

            def on_row(row: AblationRow) -> None:
                self.sweep_live[int(row.edit.split()[1])] = row.delta_miou

            def on_edits(done: int, total: int) -> None:
                state.done = done
                state.updates += 1

            edits = [Edit("zero", k) for k in channels]
            cb = Callbacks(edits=on_edits)
            if self.remote:
                work = Work(rows=(len(edits) + 1) * len(s.search_set))
                self.sweep_rows = self._gpu(
                    zerogpu.sweep_task, self.gpu, work, "this sweep", self._command("ablate"), edits,
                    callbacks=cb, cancel=cancel, on_row=on_row,
                )  # fmt: skip
            else:
                self.sweep_rows = ablate(s, edits, callbacks=cb, cancel=cancel, on_row=on_row)
            self.sweep = dict(self.sweep_live)
            return self.sweep

        self.job = Job(work, "sweep")
        return self.job

    def start_search(
        self,
        top_n: int,
        metric: str,
        sources: str,
        targets: str,
        rows: int | None,
        mode: str = "exact",
        candidates: int = 512,
        select: str = "search",
        alphas: str = "",
    ) -> Job:
        """Run the whole search in the background; the live gain matrix is `self.gain`."""
        settings = SearchSettings(metric, top_n, sources, targets, mode, candidates, select=select, alphas=alphas)
        s, pairs = self._prepare(settings, rows)
        run_dir = self.dir / f"run-{time.strftime('%H%M%S')}-{uuid.uuid4().hex[:4]}"

        def work(state: JobState, cancel: threading.Event) -> SearchResult:
            stage = partial(enter_stage, state)
            on_pairs = self._live_pairs(state, "scoring pairs")

            def on_combos(done: int, total: int) -> None:
                if state.stage != "combinations":
                    stage("combinations", total)
                state.done = done
                state.updates += 1

            stage("scoring pairs", len(pairs))
            cb = Callbacks(pairs=on_pairs, combos=on_combos)
            if self.remote:
                work = self._search_work(settings, len(pairs))
                command = self._command("search", settings=settings)
                result = self._gpu(zerogpu.search_task, self.gpu, work, "this search", command, settings,
                                   callbacks=cb, cancel=cancel)  # fmt: skip
            else:
                result = run_search(s, settings, cb, cancel)
            stage("writing run files", 1)
            write_run(run_dir, s, result, public=self.redactor.record)
            self.result, self.run_dir = result, run_dir
            stage("search finished", 1)
            state.done = 1
            state.updates += 1
            return result

        self.job = Job(work, "search")
        return self.job

    def _prepare(self, settings: SearchSettings, rows: int | None) -> tuple[Session, torch.Tensor]:
        """Check a new job's settings (and that nothing runs) and reset the live view; (session, pairs (P, 2))."""
        s = self.require()
        self.busy()
        pairs = s.channel_pairs(settings)  # validates the channel lists before anything starts
        s.set_rows(rows)  # features stay cached; only evaluators of another batch size rebuild
        self.settings = settings
        self.scope = (sorted(set(pairs[:, 0].tolist())), sorted(set(pairs[:, 1].tolist())))
        c = s.backend.channels
        self.gain = np.full((c, c), np.nan, np.float32)
        return s, pairs

    def _live_pairs(self, state: JobState, name: str | None = None) -> Callable[[ScoreProgress], None]:
        """A pair-scoring callback filling `self.gain` and the job state (stage `name`, or the current one)."""

        def on_pairs(ev: ScoreProgress) -> None:
            if (name and state.stage != name) or state.total != ev.total or ev.done < state.done:
                enter_stage(state, name or state.stage, ev.total)
            self.gain[ev.pairs[:, 0], ev.pairs[:, 1]] = ev.gains
            state.done = ev.done
            state.updates += 1

        return on_pairs

    def gpu_seconds(self, settings: SearchSettings) -> float | None:
        """ZeroGPU: the GPU time a search with `settings` would ask for (None when this process computes itself)."""
        if not self.remote:
            return None
        return zerogpu.seconds_needed(
            self.gpu.rates_key, self._search_work(settings, len(self.require().channel_pairs(settings)))
        )

    def _search_work(self, settings: SearchSettings, n_pairs: int) -> Work:
        """Decoder work of a search of `n_pairs` pairs: its mode's pair scoring, 2^N - 1 subsets, the held-out check."""
        s = self.require()
        n, held = len(s.search_set), len(s.heldout_set)
        exact = n_pairs * n
        pair_rows = {
            "exact": exact,
            "taylor": min(exact, settings.candidates * n) + GRADIENT_ROWS * n,
            "halving": min(exact, 2 * n_pairs * settings.halving_start),  # rounds shrink geometrically
        }[settings.mode]
        # + the baseline and the held-out check; soft passes: an upper bound for screening modes (they rescore fewer)
        rows = decoded_rows(settings, settings.top_n, n_pairs, n) + n + 2 * held
        return Work(rows=rows, pair_rows=pair_rows)

    def _compare_work(self, settings: SearchSettings, n_pairs: int, exact_done: bool) -> Work:
        """A comparison: every mode's search (the exact one's pair scoring saved when it already ran)."""
        works = [self._search_work(replace(settings, mode=m), n_pairs) for m in ("exact", "taylor", "halving")]
        pair_rows = sum(w.pair_rows for w in works) - (works[0].pair_rows if exact_done else 0)
        return Work(rows=sum(w.rows for w in works), pair_rows=pair_rows)

    def exact_search(self, pairs: torch.Tensor, metric: str) -> SearchResult | None:
        """The finished exact search if its scores cover `pairs` in `metric` (to reuse)."""
        r = self.result
        if r is None or r.settings.mode != "exact" or r.settings.metric != metric:
            return None
        if r.settings.select != "search" or r.settings.alpha_grid:  # its set was chosen another way than the modes'
            return None
        ij = pairs.numpy()
        return r if np.isfinite(r.scores.gain[ij[:, 0], ij[:, 1]]).all() else None

    def start_compare(
        self, top_n: int, metric: str, sources: str, targets: str, rows: int | None, candidates: int
    ) -> Job:
        """Exact vs taylor vs halving on the current scope in the background; reuses a finished exact search."""
        settings = SearchSettings(metric, top_n, sources, targets, "exact", candidates)
        s, pairs = self._prepare(settings, rows)
        exact = self.exact_search(pairs, metric)
        self.comparison, self.compared_with_search = [], exact is not None

        def work(state: JobState, cancel: threading.Event) -> list[ModeReport]:
            def log(message: str) -> None:
                enter_stage(state, message, 0)
                state.updates += 1

            def on_combos(done: int, total: int) -> None:  # a count and an ETA for each mode's combination stage
                if state.total != total:
                    state.total, state.stage_started = total, time.perf_counter()
                state.done = done
                state.updates += 1

            cb = Callbacks(pairs=self._live_pairs(state), combos=on_combos, log=log)
            if self.remote:
                work = self._compare_work(settings, len(pairs), exact is not None)
                command = self._command("compare", settings=settings)
                reports = self._gpu(zerogpu.compare_task, self.gpu, work, "this comparison", command, settings,
                                    exact, callbacks=cb, cancel=cancel)  # fmt: skip
            else:
                reports = compare_search_modes(s, settings, exact, cb, cancel)
            write_comparison(self.dir / "modes", s, settings, reports)
            self.comparison = reports
            enter_stage(state, "comparison finished", 1)
            state.done = 1
            state.updates += 1
            return reports

        self.job = Job(work, "compare")
        return self.job

    def export_predictions(self) -> Path:
        """predictions.zip of the best set on the search and held-out images, in the run folder."""
        s = self.require()
        if self.result is None or self.run_dir is None:
            raise RunError("no finished search yet; run one on the Search tab first.")
        names, images, outs, base = [], [], [], []
        c = s.backend.channels
        f, alpha = set_map(self.result.best_pairs, c)
        for which, data in (("search", s.search_set), ("heldout", s.heldout_set)):
            if not len(data):
                continue
            ev = s.evaluator(which)
            outs += ev.logits(f, alpha=alpha)
            base += ev.logits(identity_map(c))
            names += ev.set.names
            images += [load_image(x.image_path) for x in data.samples]
        out = self.run_dir / "predictions"
        if s.task.name == "classify":
            return write_labels(out, names, outs, base, list(s.dataset.classes))
        if s.task.name == "depth":
            return write_depths(out, names, images, outs, base)
        masks = [[(z > 0).cpu().numpy() for z in zs] for zs in (outs, base)]
        return write_predictions(out, names, images, *masks)

    def apply(self, replacements: dict, images: Path | None = None) -> ApplyResult:
        """Apply a replacement set to `images` (a folder or zip; default: this dataset) with this session's model;
        the predictions' zip is named apart from the Results tab's export."""
        s = self.require()
        self.busy()
        data = images or s.dataset.root
        out = self.dir / f"apply-{time.strftime('%H%M%S')}-{uuid.uuid4().hex[:4]}"
        metric = self.settings.metric
        if self.remote:
            n = len(s.dataset) if images is None else _count_images(images)
            work = Work(images=n, rows=2 * n)
            command = f"python -m redundancy apply --replacements replacements.json --data {Path(data).name} --out out"
            res = self._gpu(zerogpu.apply_task, self.gpu, work, "applying the set", command, replacements,
                            str(data), str(out), metric)  # fmt: skip
        else:
            res = apply_pairs(
                s.backend, replacements, data, out, "none", s.cfg.mask_choice, None, self.cache, out / "_data",
                s.cfg.rows, s.task, s.dataset.classes, metric,
            )  # fmt: skip
        return replace(res, zip_path=res.zip_path.replace(res.zip_path.with_name("applied_predictions.zip")))

    def push(self, repo: str, private: bool = True) -> str:
        """Upload the latest run (its figures included) to the Hub repository `repo`; its URL."""
        from .share import check_repo_id, push

        repo = check_repo_id(repo)  # before anything is drawn or uploaded
        if self.result is None or self.run_dir is None:
            raise RunError("no finished search yet; run one on the Search tab first.")
        return push(self.run_dir, repo, private, staging=self.dir / f"push-{uuid.uuid4().hex[:8]}")

    def render_figures(self, formats: tuple[str, ...] = ("png",)) -> tuple[list[Path], Path]:
        """Publication figures of the latest run (with the zero sweep, if one ran) and a zip of them."""
        from .export import save_ablation
        from .figures import render

        if self.result is None or self.run_dir is None:
            raise RunError("no finished search yet; run one on the Search tab first.")
        if self.sweep_rows:
            save_ablation(self.run_dir, *self.sweep_rows)
        out = self.run_dir / "figures"
        written = render([self.run_dir], out, formats)
        zip_path = out / "figures.zip"
        with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in written:
                zf.write(path, path.name)
        return [p for p in written if p.suffix == ".png"], zip_path
