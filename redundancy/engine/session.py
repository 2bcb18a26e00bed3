"""A session: a model, a dataset split into head / search / held-out sets, their cached features, the head.

What a session is stays fixed once it is opened: its config, its task, its splits and the head it scores
with (fitted on the head split, or loaded from a file, the first time features are needed). Decoder rows
per call may differ per call (`evaluator(rows=...)`); evaluators are cached per set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..data import Dataset, load_image, open_dataset, split
from ..errors import ConfigError, DataError, RunError
from ..models import Backend, build_backend, families_with
from ..models.layers import at_block, output_backend
from ..tasks import Task, get_task, group_ids, task_for
from ..tasks.heads import Head, HeadInfo, head_sha256, read_head_state
from .evalset import EvalSet
from .evaluator import Evaluator
from .features import FeatureCache
from .pace import note_pace, quiet_rate
from .scorer import channel_pairs
from .select import SEARCH, check_folds
from .settings import SearchSettings, SessionConfig, parse_channels

ENCODE_CHUNK = 16  # images per `FeatureCache.encode` call when a session encodes everything ahead


@dataclass(frozen=True)
class SavedHead:
    """A head to score with from a file (a run's head.pt, the app's saved head), with the record it must match."""

    path: Path
    record: dict | None = None  # the run's `head` record: the file's tensors must hash as it says


def load_saved_head(task: Task, saved: SavedHead, encoder: Backend, classes: tuple[str, ...]):
    """(head module, HeadInfo) from a head file, on the encoder's device; with a run's record, its tensors must
    hash as the record says (and the record describes it)."""
    path = saved.path
    module = task.head_from_state(read_head_state(path), encoder, classes).to(encoder.device)
    info = HeadInfo(module.kind, "file", f"loaded from {path.name}", head_sha256(module), str(path.resolve()))
    if saved.record is None:
        return module, info
    if saved.record.get("sha256") != info.sha256:
        raise RunError(
            f"{path.name} is not the head this run recorded (sha256 {info.sha256[:12]}..., recorded "
            f"{str(saved.record.get('sha256'))[:12]}...); rerun the search."
        )
    return module, HeadInfo(**{k: v for k, v in saved.record.items() if k in HeadInfo.__dataclass_fields__})


def resolve_task(requested: str | None, backend: Backend, dataset: Dataset) -> Task:
    """The session's task: the requested one, else the data's; it must suit both the model's heads and the data."""
    task = get_task(requested) if requested else task_for(dataset)
    if task.name not in backend.tasks and not requested:  # the data decided: say what the data looks like
        own = get_task(backend.tasks[0])
        raise DataError(
            f"{backend.name} does {' and '.join(backend.tasks)}, but the data reads as {task.name} data "
            f"({dataset.described}); for {own.name} give {own.data_hint} data, or for {task.name} pick a model "
            f"that does it ({' or '.join(families_with(task.name))})."
        )
    if task.name not in backend.tasks:
        raise ConfigError(
            f"{backend.name} has no {task.name} head (it does {', '.join(backend.tasks)}); pick a model with one "
            f"({' or '.join(families_with(task.name))}) for {task.name}, or another task."
        )
    if not task.serves(dataset):
        raise DataError(
            f"the task is {task.name} but the data is a {task_for(dataset).name} dataset ({dataset.layout} layout); "
            f"give {task.data_hint} data, or the matching task."
        )
    return task


class Session:
    """A model, a dataset split into search / held-out sets, and their cached features."""

    def __init__(
        self,
        backend: Backend,
        dataset: Dataset,
        cfg: SessionConfig,
        cache: FeatureCache | None = None,
        head: SavedHead | None = None,
    ):
        self.backend = backend
        self.dataset = dataset
        self.cfg = cfg
        self.cache = cache or FeatureCache()
        self.task = resolve_task(cfg.task, backend, dataset)
        self.protocol = cfg.protocol or dataset.default_protocol
        if not self.task.takes_prompts and (cfg.prompt != "none" or self.protocol not in self.task.protocols):
            raise ConfigError(f"the {self.task.name} task takes prompt none and protocol image; drop those settings.")
        if backend.fits_heads and cfg.prompt != "none":
            raise ConfigError(f"{backend.name} is scored by a fitted head, which takes no prompts; use prompt none.")
        if not self.needs_head and (cfg.head or head):
            raise ConfigError(f"{backend.name} scores {self.task.name} with its own decoder; drop the head file.")
        if cfg.head and cfg.head_images:
            raise ConfigError("head images split the data to fit a head, but a head file is given; drop one.")
        self._saved_head = head or (SavedHead(Path(cfg.head)) if cfg.head else None)
        self.head_set: Dataset | None = None  # images the head is fitted on: never searched, never held out
        self.head: HeadInfo | None = None  # set once, before anything decodes
        rest = dataset
        if self.needs_head and not cfg.head:  # a run's saved head (`head`) scores on the run's own split
            self.head_set, rest = split(dataset, cfg.head_images or max(1, len(dataset) // 3), cfg.seed, "head")
        self.search_set, rest = split(rest, cfg.search_images, cfg.seed)
        n_held = len(rest) if cfg.heldout_images is None else min(cfg.heldout_images, len(rest))
        self.heldout_set = rest.subset(list(range(n_held)))
        self._evaluators: dict[str, tuple[int | None, Evaluator]] = {}  # set -> (rows asked for, evaluator)
        self._head_lock = threading.Lock()
        self.set_cache_hits: dict[str, int] = {}  # images of each set (search, heldout) read from the cache
        self.encode_seconds: dict[str, float] = {}  # per image set: encoding (or cache reads) when first built
        self.encoded_images: dict[str, int] = {}  # per image set: images the encoder ran on (not in the cache)
        self._probe_encode_s: float | None = None  # one image timed through the encoder when none was encoded

    @property
    def needs_head(self) -> bool:
        """Whether a head is fitted or loaded on the encoder output (False: the model's own decoder scores)."""
        return self.backend.fits_heads

    @classmethod
    def open(
        cls,
        cfg: SessionConfig,
        cache: FeatureCache | None = None,
        extract_to: Path | None = None,
        progress: bool = True,
        head: SavedHead | None = None,
    ) -> Session:
        """Build the backend and open the dataset named in `cfg`."""
        backend = build_backend(
            cfg.model, cfg.checkpoint, cfg.random_init, cfg.seed, cfg.device, progress, cfg.finetuned
        )
        backend = at_block(backend, cfg.layer)  # replacement inside the encoder: the blocks after it re-run
        return cls(backend, open_dataset(cfg.data, extract_to=extract_to), cfg, cache, head)

    def evaluator(
        self,
        which: str = "search",
        on_progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
        rows: int | None = None,
    ) -> Evaluator:
        """Evaluator over the search or held-out set (features encoded once, through the cache).

        `rows`: decoder rows per call for this call's work (None: whatever the cached evaluator uses, the
        session's `rows` for a new one); another value rebuilds the evaluator over the same features.
        """
        cached = self._evaluators.get(which)
        if cached is not None and (rows is None or rows == cached[0]):
            return cached[1]
        requested = rows or self.cfg.rows
        t0 = time.perf_counter()
        self.ensure_head(on_progress, cancel)
        if cached is not None:  # another batch size: the set's features are already encoded
            evalset = cached[1].set
        else:
            data = self.search_set if which == "search" else self.heldout_set
            evalset = EvalSet.build(
                self.backend,
                data,
                self.cache,
                self.cfg.prompt,
                self.protocol,
                on_progress,
                cancel,
                self.task,
                self.cfg.mask_choice,
            )
            self.set_cache_hits[which] = evalset.cached
            self.encode_seconds[which] = time.perf_counter() - t0
            self.encoded_images[which] = evalset.encoded
        ev = Evaluator(self.backend, evalset, requested, self.cfg.precision, self.cfg.compile)
        self._evaluators[which] = (rows, ev)
        return ev

    def time_range(self, seconds: float) -> tuple[float, float]:
        """An estimate of `seconds` as a (low, high) range: the spread of the search evaluator's recent timed calls,
        reaching down to this machine's quiet rate while it is busy (`Pace.band`)."""
        ev = self.evaluator("search")
        quiet = quiet_rate(self._pace_key(ev))
        low, high = ev.row_pace().band(quiet["seconds"] if quiet else None)
        return seconds * low, seconds * high

    def busy_note(self) -> str | None:
        """A line naming a busy machine, with its slowdown against this machine's quiet rate (None: not busy, or
        unknown); a quiet measurement is recorded as that rate (`engine.pace`)."""
        ev = self.evaluator("search")
        return note_pace(self._pace_key(ev), ev.row_pace())

    def _pace_key(self, ev: Evaluator) -> str:
        """What a quiet rate is recorded for: the model, device, rows a call and threads."""
        return f"{self.cfg.model} on {ev.device}, {ev.rows} rows a call, {torch.get_num_threads()} threads"

    @property
    def cache_hits(self) -> int:
        """Images of the search and held-out sets read from the feature cache instead of encoded."""
        return sum(self.set_cache_hits.values())

    def encode_seconds_per_image(self, time_one: bool = False) -> float | None:
        """Encoder time of one image, as measured when a set was encoded; where every image came from the cache,
        None, or with `time_one` one image timed through the encoder (once per session)."""
        ran = {k: n for k, n in self.encoded_images.items() if n}
        if ran:
            return sum(self.encode_seconds[k] for k in ran) / sum(ran.values())
        if time_one and self._probe_encode_s is None:
            t0 = time.perf_counter()
            self.backend.encode([load_image(self.search_set.samples[0].image_path)])
            self._probe_encode_s = time.perf_counter() - t0
        return self._probe_encode_s if time_one else None

    def image_paths(self) -> list[Path]:
        """Every image this session uses (head split, search, held-out), each once, in that order."""
        sets = [d for d in (self.head_set, self.search_set, self.heldout_set) if d is not None]
        return list(dict.fromkeys(s.image_path for d in sets for s in d.samples))

    def encode_all(
        self,
        on_progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
        part: slice = slice(None),
    ) -> int:
        """Encode this session's images (`part` of `image_paths()`) into the feature cache; how many were not
        cached yet. Another process with the same config then reads them instead of encoding."""
        paths = self.image_paths()[part]
        encoded = 0
        for start in range(0, len(paths), ENCODE_CHUNK):  # in chunks: only the cache keeps every image's features
            done = (lambda d, _t, s0=start: on_progress(s0 + d, len(paths))) if on_progress else None
            encoded += self.cache.encode(self.backend, paths[start : start + ENCODE_CHUNK], done, cancel).misses
        return encoded

    def ensure_head(
        self, on_progress: Callable[[int, int], None] | None = None, cancel: threading.Event | None = None
    ) -> None:
        """Classify / depth: load the head file, or fit the head on the head split (encoded through the cache);
        attached to the backend once, before the first decode."""
        with self._head_lock:
            if not self.needs_head or self.head is not None:
                return
            encoder = output_backend(self.backend)  # the head reads the encoder output, wherever the search replaces
            saved = self._saved_head
            if saved is not None:
                module, info = load_saved_head(self.task, saved, encoder, self.dataset.classes)
            else:
                module, info = self._fit_head(encoder, on_progress, cancel)
            self.backend.attach_head(module)
            self.head = info

    def _fit_head(self, encoder: Backend, on_progress, cancel) -> tuple[Head, HeadInfo]:
        """The task's head fitted on the head split's encoder features (on the CPU in float64, wherever the
        features live: the same head on any device)."""
        head_set = self.head_set
        assert head_set is not None, "a session without a head file splits off head images"
        evalset = EvalSet.build(encoder, head_set, self.cache, "none", "image", on_progress, cancel, self.task)
        feats, targets = evalset.feats.cpu(), [evalset.target(b).cpu() for b in range(len(evalset))]
        module, method = self.task.fit_head(encoder, feats, targets, self.dataset.classes)
        module = module.to(encoder.device)
        images = [s.name for s in head_set.samples]
        return module, HeadInfo(module.kind, "fitted", method, head_sha256(module), images=images)

    def head_state(self) -> dict[str, torch.Tensor] | None:
        """The head's tensors as head.pt saves them (None: the task uses the model's own decoder)."""
        self.ensure_head()
        if not self.needs_head:
            return None
        assert self.backend.head is not None, "ensure_head attached it"
        return self.backend.head.state()

    def resolve(self, settings: SearchSettings) -> SearchSettings:
        """The settings with this task's default metric filled in; a metric the task lacks is refused."""
        metric = settings.metric or self.task.metrics[0].name
        if metric not in self.task.metric_names:
            raise ConfigError(
                f"metric '{metric}' is not one of the {self.task.name} task's ({', '.join(self.task.metric_names)})."
            )
        if settings.select != SEARCH:
            check_folds(settings.select, self.search_groups(), "image" if self.protocol == "image" else "object")
        return replace(settings, metric=metric)

    def search_groups(self) -> int:
        """The search set's groups under the session's protocol: its images, or its objects (PerSeg protocols)."""
        samples = self.search_set.samples
        return group_ids([s.group for s in samples], self.protocol, [s.name for s in samples])[1]

    def channel_pairs(self, settings: SearchSettings) -> torch.Tensor:
        """The (source, target) pairs the settings ask to score, (P, 2)."""
        c = self.backend.channels
        return channel_pairs(
            parse_channels(settings.sources, c, self.backend.device, "sources"),
            parse_channels(settings.targets, c, self.backend.device, "targets"),
            c,
        )

    def header(self) -> dict:
        """What identifies this session in every output (weights label included)."""
        metric = self.task.metrics[0]
        family = self.backend.family
        assert family is not None, "a session's backend is made by its family (build_backend)"
        header = {
            "model": self.backend.name,
            "family": family.name,
            "family_label": family.label,
            "weights": self.backend.weights.to_dict(),
            "weights_label": self.backend.weights.label,
            "channels": self.backend.channels,
            "device": str(self.backend.device),
            # every score field and column of the run is in this metric (docs/run-folder.md)
            "task": self.task.name,
            "score_metric": metric.name,
            "score_higher_is_better": metric.higher_is_better,
        }
        if self.cfg.layer is not None:  # channels are the encoder block's width; `patch` and `apply` read it
            header["layer"] = self.cfg.layer
        if self.needs_head:
            header["head"] = self.head.to_dict() if self.head else None
        if self.dataset.classes:
            header["classes"] = list(self.dataset.classes)
        return header
