"""Per-user state for interactive front ends: a Session, its results, its own folder, background jobs.

The app keeps one Workspace per browser session (in gr.State); nothing here imports gradio. Heavy steps run
through the workspace's executor, chosen once (`executor.py`: this process, or ZeroGPU tasks).
"""

from __future__ import annotations

import secrets
import shutil
import statistics
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

from ..cli.commandline import command_line
from ..data import load_image
from ..engine import AblationRow, Callbacks, ScoreProgress, SearchResult, SearchSettings, Session, SessionConfig, Stage
from ..engine.cost import SearchCost, compare_cost, search_cost, sweep_rows
from ..engine.evaluator import check_rows
from ..engine.features import FeatureCache
from ..engine.screening import MODES, ModeReport, reference_mode
from ..errors import RunError
from ..io import env_number
from ..replace import Edit, identity_map, set_map
from ..runs.apply import ApplyResult
from ..runs.writers import save_ablation, write_comparison, write_files, write_run
from . import zerogpu  # on ZeroGPU, importing `spaces` patches torch: before anything touches CUDA
from .executor import LocalExecutor, ZeroGpuExecutor, count_images
from .jobs import Job, JobState, Plan, advance, end_job, enter_stage
from .redact import Redactor
from .views import Views

APP_ROOT = Path(tempfile.gettempdir()) / "redundancy-app"
SWEEP_STAGE = "zeroing channels"
APPLY_ROWS = 4  # decoder rows an apply runs per image: patched and baseline predictions, both scored again
WRITE_PROBE = 3  # images whose predictions are written to time an apply's writing, before one has run
RECONNECT_S = env_number("REDUNDANCY_RECONNECT_S", 900)  # a page that went away may come back this long
_LIVE: dict[str, Workspace] = {}  # every open workspace by reconnect key: what a reloaded page comes back to
_LIVE_LOCK = threading.Lock()


def live_workspaces() -> list[Workspace]:
    """Every open workspace (the janitor closes those nobody came back for)."""
    with _LIVE_LOCK:
        return list(_LIVE.values())


class Workspace(Views):
    """One user's session: model + data, ablation and sweep results, search runs, a private folder."""

    def __init__(self, root: Path | None = None, cache: FeatureCache | None = None, remote: bool | None = None):
        self.id = uuid.uuid4().hex  # names its folder (which messages and run files never show)
        self.key = secrets.token_urlsafe(32)  # the reconnect secret: kept by its browser only, never in a file
        self.dir = (root or APP_ROOT) / self.id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cache = cache or FeatureCache()
        remote = zerogpu.ON if remote is None else remote
        self.executor = ZeroGpuExecutor(self.dir, self.cache.root, self._command) if remote else LocalExecutor()
        self.session: Session | None = None
        self.showcase = 0  # the search image the teaching views open on (`showcase_index`, set at Load)
        self.result: SearchResult | None = None
        self.run_dir: Path | None = None
        self.sweep: dict[int, float] = {}  # the latest complete zero sweep: channel -> delta score
        self.sweep_live: dict[int, float] = {}  # the sweep running now (or the last one, as far as it got)
        self.sweep_rows: tuple[AblationRow, list[AblationRow]] | None = None  # the complete sweep's Table 1 rows
        self.job: Job | None = None
        self.gain: np.ndarray | None = None  # live pair-gain matrix while a search runs
        self.scope: tuple[list[int], list[int]] = ([], [])  # (sources, targets) of the current search
        self.comparison: list[ModeReport] = []  # the latest search-mode comparison
        self.settings = SearchSettings()  # of the latest search or comparison
        self.rows: int | None = None  # decoder rows per call of the latest job (None: the device default)
        self.compared_with_search = False  # whether it reused the finished exact search's scores
        self.detached_at: float | None = None  # when its page went away (None: a page holds it)
        self.page: dict = {}  # what its page's controls showed (the Load form, the open tab): a reload puts it back
        self.last_search: dict | None = None  # the latest search started: its settings, start and how it ended
        # seconds a row of a stage took where it ran at its own rate (combinations: whole subsets per call, no
        # per-pair bookkeeping, measured ~0.6x a pair-scan row on the demo model); estimates prefer these
        self.stage_rates: dict[str, float] = {}
        self._image_ev: tuple | None = None  # (search evaluator, image, an evaluator of that image alone)
        self.redactor = Redactor()  # what its visitor sees of server paths (messages, downloaded run files)
        for folder in (self.dir, root or APP_ROOT, Path.cwd()):
            self.redactor.add(folder, "")
        with _LIVE_LOCK:
            _LIVE[self.key] = self

    @property
    def remote(self) -> bool:
        """Whether its heavy steps run on a ZeroGPU worker."""
        return self.executor.remote

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
        """Its page went away (closed or reloading): keep everything for RECONNECT_S, then the janitor closes it."""
        self.detached_at = time.time()

    def close(self) -> None:
        """Cancel what runs, forget the workspace and delete the private folder."""
        with _LIVE_LOCK:
            _LIVE.pop(self.key, None)
        if self.job and self.job.running:
            self.job.cancel.set()
        shutil.rmtree(self.dir, ignore_errors=True)

    def metric(self, name: str | None = None):
        """The loaded task's score metric (`name`, else the latest search's, else the task's default)."""
        return self.require().task.metric(name or self.settings.metric)

    def combination_view(self, result: SearchResult) -> tuple[list[int], list[float], float, int | None]:
        """(subset sizes, scores, baseline, index of the best) of a search, in the metric's own units."""
        value = self.metric(result.settings.metric).value
        rows = result.combos.rows
        best = rows.index(result.combos.best) if result.combos.best else None
        return [len(x.pairs) for x in rows], [value(x.score) for x in rows], value(result.combos.baseline_score), best

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
            for folder in (extract, extract.with_name(extract.name + "-gpu")):
                self.redactor.add(folder, Path(cfg.data).name)
        if self.remote:
            cfg = replace(cfg, device="cpu")  # the GPU is the worker's; this process only reads the cache
        session = Session.open(cfg, self.cache, extract_to=extract, progress=True)  # tqdm: UI tracks it
        self.executor.prepare(session, extract, on_progress)
        session.evaluator("search", on_progress)
        self.session, self.result, self.run_dir, self.gain = session, None, None, None
        self.sweep, self.sweep_live, self.sweep_rows, self.comparison = {}, {}, None, []
        self.settings, self.rows, self.last_search, self.stage_rates = SearchSettings(), None, None, {}
        self.showcase = self.showcase_index()
        return session

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

    # ---------- background jobs ----------

    def start_sweep(self, channels: list[int]) -> Job:
        """Zero each channel alone on the search set (`engine.ablate`, batched) in the background.

        `sweep_live` fills as edits finish; `sweep` (what the explorer sorts by) is replaced only when
        the new sweep completes, so a cancelled re-run never replaces a complete sweep with part of one.
        """
        s = self.require()
        self.busy()
        self.sweep_live = {}

        ev = s.evaluator("search")
        plan = Plan(((SWEEP_STAGE, sweep_rows(len(channels), len(ev.set)), ev.seconds_per_row),))

        def work(state: JobState, cancel: threading.Event) -> dict[int, float]:
            state.plan = plan
            enter_stage(state, SWEEP_STAGE, len(channels))

            def on_row(row: AblationRow) -> None:
                self.sweep_live[int(row.edit.split()[1])] = row.delta_score

            def on_edits(done: int, total: int) -> None:
                advance(state, done)  # the live bars: a page in lockstep shows the sweep part-way

            edits = [Edit("zero", k) for k in channels]
            self.sweep_rows = self.executor.sweep(s, edits, self.rows, Callbacks(edits=on_edits), cancel, on_row)
            self.sweep = dict(self.sweep_live)
            return self.sweep

        self.job = Job(work, "sweep")
        return self.job

    def start_search(self, settings: SearchSettings, rows: int | None = None) -> Job:
        """Run the whole search in the background; the live gain matrix is `self.gain`."""
        s, pairs = self._prepare(settings, rows)
        run_dir = self.dir / f"run-{time.strftime('%H%M%S')}-{uuid.uuid4().hex[:4]}"
        plan = self.plan(self.search_cost(settings))
        record = {"settings": settings, "pairs": len(pairs), "started": time.strftime("%H:%M:%S"), "ended": None}
        self.last_search = record

        def work(state: JobState, cancel: threading.Event) -> SearchResult:
            state.plan = plan
            stage = partial(enter_stage, state)

            def on_stage(name: Stage, total: int) -> None:  # the search announces each stage (each soft alpha's too)
                stage(name, total)
                state.updates += 1

            def on_combos(done: int, total: int) -> None:
                state.done = done
                state.updates += 1
                self._measured_stage(state, len(s.search_set))

            def on_encode(done: int, total: int) -> None:  # the images are counted as the encoder reaches them
                if state.stage != Stage.ENCODE:
                    stage(Stage.ENCODE, total)
                state.done = done
                state.updates += 1

            stage(Stage.PAIRS, len(pairs))  # until the search announces its first stage
            cb = Callbacks(pairs=self._live_pairs(state), combos=on_combos, encode=on_encode, stage=on_stage)
            try:
                result = self.executor.search(s, settings, rows, cb, cancel)
            except BaseException:
                record["ended"] = "cancelled" if cancel.is_set() else "failed"
                record["at"] = f"{state.stage}, {state.done:,}/{state.total:,}"
                raise
            stage("writing run files", 1)
            write_run(run_dir, result, public=self.redactor.record)
            self.result, self.run_dir = result, run_dir
            record["ended"] = "finished"
            stage("search finished", 1)
            state.done = 1
            state.updates += 1
            return result

        self.job = Job(work, "search")
        return self.job

    def plan(self, cost: SearchCost) -> Plan:
        """A search's stages with the rates they run at here (measured on this session; read again as it runs)."""
        s = self.require()
        ev = s.evaluator("search")
        pair_s = ev.seconds_per_pair_row if cost.shortcut else ev.seconds_per_row
        rates = {Stage.PAIRS: pair_s, Stage.ENCODE: self.encode_seconds_per_image}
        stages = cost.stages()
        return Plan(tuple((name, rows, rates.get(name, partial(self._row_seconds, name, ev))) for name, rows in stages))

    def _row_seconds(self, stage: str, ev) -> float:
        """A decoded row's time in `stage`: as that stage last ran here where it has, else the evaluator's rate."""
        return self.stage_rates.get(stage) or ev.seconds_per_row()

    def _measured_stage(self, state: JobState, images: int) -> None:
        """Once a stage has run all its `state.total` items of `images` rows each: its seconds per row."""
        if state.total and state.done >= state.total:
            self.stage_rates[state.stage] = (time.perf_counter() - state.stage_started) / (state.total * images)

    def encode_seconds_per_image(self) -> float:
        """The encoder's time for one image here: as measured at Load, else (all read from the cache) timed once."""
        seconds = self.require().encode_seconds_per_image(time_one=True)
        assert seconds is not None, "time_one always gives a time"
        return seconds

    def _prepare(self, settings: SearchSettings, rows: int | None) -> tuple[Session, torch.Tensor]:
        """Check a new job's settings (and that nothing runs) and reset the live view; (session, pairs (P, 2))."""
        s = self.require()
        self.busy()
        pairs = s.channel_pairs(settings)  # validates the channel lists before anything starts
        check_rows(rows)  # a bad batch size is refused before anything starts
        self.settings, self.rows = settings, rows
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
            advance(state, ev.done)  # the live heatmap: a page in lockstep shows the pair scores part-way

        return on_pairs

    def search_cost(self, settings: SearchSettings):
        """The decoder rows of each stage of a search with `settings` on this session (`engine.cost`)."""
        s = self.require()
        settings = s.resolve(settings)
        n_pairs = len(s.channel_pairs(settings))
        shortcut = s.backend.has_pair_outputs()
        unencoded = len(s.heldout_set) if "heldout" not in s.encode_seconds else 0  # encoded by the first search
        return search_cost(settings, n_pairs, len(s.search_set), len(s.heldout_set), s.task, shortcut, unencoded)

    def estimate_seconds(self, settings: SearchSettings) -> float:
        """Predicted time of a search with `settings` here: every stage's rows at the rates measured on this
        session (`Evaluator.seconds_per_row`, `seconds_per_pair_row`, the encoder's time per image)."""
        return self.plan(self.search_cost(settings)).seconds()

    def compare_seconds(self, settings: SearchSettings) -> float:
        """Predicted time of a mode comparison on this scope here (a finished exact search's scan reused)."""
        s = self.require()
        settings = s.resolve(replace(settings, mode=reference_mode().name, select="search", alphas=""))
        pairs = s.channel_pairs(settings)
        done = self.exact_search(pairs, settings.metric) is not None
        cost = compare_cost(settings, len(pairs), len(s.search_set), s.task, s.backend.has_pair_outputs(), done)
        return self.plan(cost).seconds()

    def sweep_seconds(self) -> float:
        """Predicted time of the zero sweep (every channel zeroed alone) here."""
        ev = self.require().evaluator("search")
        return sweep_rows(ev.channels, len(ev.set)) * ev.seconds_per_row()

    def apply_images(self, images: Path | None = None) -> tuple[int, int]:
        """(images, of them not encoded yet) an apply to `images` (a folder or zip; default: the loaded dataset) reads;
        for an upload, its image files, masks included (an upper bound, known before the upload is opened)."""
        s = self.require()
        if images is not None:
            n = count_images(images)
            return n, n
        encoded = len(s.search_set) + (len(s.heldout_set) if "heldout" in s.encode_seconds else 0)
        return len(s.dataset), max(len(s.dataset) - encoded, 0)

    def apply_seconds(self, images: int, unencoded: int) -> float:
        """Predicted time of applying a set to `images` images (`apply_images`), `unencoded` of them not encoded yet:
        their encoding, 4 decoder rows an image (patched, baseline, and both scored), and writing each image's
        predictions (timed on a few images until an apply has run, then that apply's own rate)."""
        s = self.require()
        if "apply writes" not in self.stage_rates:
            self.stage_rates["apply writes"] = self._time_writes()
        encode = unencoded * (s.encode_seconds_per_image(time_one=True) or 0.0) if unencoded else 0.0
        return encode + self._apply_rows_seconds(images) + images * self.stage_rates["apply writes"]

    def _apply_rows_seconds(self, images: int) -> float:
        """The decoder's share of an apply to `images` images: `APPLY_ROWS` rows an image at this session's rate."""
        return images * APPLY_ROWS * self.require().evaluator("search").seconds_per_row()

    def _time_writes(self) -> float:
        """Seconds to read one image and write its predictions (the task's files, zipped), timed on a few search
        images after one unmeasured write (a first write also loads codecs). The decoding is left out: it is counted
        in rows, and one image's decoder call is a whole padded batch (34 ms for 32 rows of 1.3 ms here: timed in,
        it made the estimate 5-7x the apply's time)."""
        s = self.require()
        ev = s.evaluator("search")
        seconds = []
        for k in (0, *range(min(len(ev.set), WRITE_PROBE))):
            out = ev.logits(images=[k])
            t0 = time.perf_counter()
            image = load_image(s.search_set.samples[k].image_path)
            with tempfile.TemporaryDirectory(dir=self.dir) as tmp:
                names = ev.set.names[k : k + 1]
                write_files(Path(tmp), s.task.prediction_files(names, [image], out, out, s.dataset.classes))
            seconds.append(time.perf_counter() - t0)
        return statistics.median(seconds[1:])

    def gpu_seconds(self, settings: SearchSettings) -> float | None:
        """ZeroGPU: the GPU time a search with `settings` would ask for (None when this process computes itself)."""
        return self.executor.seconds(self.require(), self.search_cost(settings))

    def exact_search(self, pairs: torch.Tensor, metric: str) -> SearchResult | None:
        """The finished exact search if its scores cover `pairs` in `metric` (to reuse)."""
        r = self.result
        if r is None or not MODES[r.settings.mode].exact or r.settings.metric != metric:
            return None
        if r.settings.select != "search" or r.settings.alpha_grid:  # its set was chosen another way than the modes'
            return None
        ij = pairs.numpy()
        return r if np.isfinite(r.scores.gain[ij[:, 0], ij[:, 1]]).all() else None

    def start_compare(self, settings: SearchSettings, rows: int | None = None) -> Job:
        """Every search mode on the current scope in the background; reuses a finished exact search."""
        settings = replace(settings, mode=reference_mode().name, select="search", alphas="")
        s, pairs = self._prepare(settings, rows)
        exact = self.exact_search(pairs, s.resolve(settings).metric)
        self.comparison, self.compared_with_search = [], exact is not None
        expected = self.compare_seconds(settings)

        def work(state: JobState, cancel: threading.Event) -> list[ModeReport]:
            state.expected_s = expected

            def log(message: str) -> None:
                enter_stage(state, message, 0)
                state.updates += 1

            def on_combos(done: int, total: int) -> None:  # a count and an ETA for each mode's combination stage
                if state.total != total:
                    state.total, state.stage_started = total, time.perf_counter()
                state.done = done
                state.updates += 1

            cb = Callbacks(pairs=self._live_pairs(state), combos=on_combos, log=log)
            reports = self.executor.compare(s, settings, exact, rows, cb, cancel)
            write_comparison(self.dir / "modes", s, settings, reports)
            self.comparison = reports
            end_job(state, "comparison finished")
            return reports

        self.job = Job(work, "compare")
        return self.job

    # ---------- results ----------

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
        files = s.task.prediction_files(names, images, outs, base, s.dataset.classes)
        return write_files(self.run_dir / "predictions", files)

    def apply(self, replacements: dict, images: Path | None = None) -> ApplyResult:
        """Apply a replacement set to `images` (a folder or zip; default: this dataset) with this session's model;
        the predictions' zip is named apart from the Results tab's export."""
        s = self.require()
        self.busy()
        data = images or s.dataset.root
        out = self.dir / f"apply-{time.strftime('%H%M%S')}-{uuid.uuid4().hex[:4]}"
        n, unencoded = self.apply_images(images)
        t0 = time.perf_counter()
        res = self.executor.apply(s, replacements, data, out, self.settings.metric, self.rows)
        if not self.remote and not unencoded:  # this apply's own rate of writing, for the next estimate
            taken = time.perf_counter() - t0 - self._apply_rows_seconds(n)
            self.stage_rates["apply writes"] = max(taken, 0.0) / max(n, 1)
        return replace(res, zip_path=res.zip_path.replace(res.zip_path.with_name("applied_predictions.zip")))

    def push(self, repo: str, private: bool = True) -> str:
        """Upload the latest run (its figures included) to the Hub repository `repo` with the user's own token; its
        URL. Refused where no push is allowed (a Space visitor would push with the owner's token), whoever calls."""
        from ..report.share import check_repo_id, push, push_token

        push_token()  # refused first where there is no token of the user's own (a Space visitor's: the owner's)
        repo = check_repo_id(repo)  # before anything is drawn or uploaded
        if self.result is None or self.run_dir is None:
            raise RunError("no finished search yet; run one on the Search tab first.")
        return push(self.run_dir, repo, private, staging=self.dir / f"push-{uuid.uuid4().hex[:8]}")

    def render_figures(self, formats: tuple[str, ...] = ("png",)) -> tuple[list[Path], Path]:
        """Publication figures of the latest run (with the zero sweep, if one ran) and a zip of them."""
        from ..report.figures import render

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
