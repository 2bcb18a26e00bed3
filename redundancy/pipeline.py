"""The paper's pipeline end to end: a Session (model + data + features) and the search/ablate/apply steps.

CLI and app both call these; they hold no math of their own.
"""

from __future__ import annotations

import hashlib
import math
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .confidence import paired
from .data import Dataset, open_dataset, split
from .distributed import Dist
from .errors import Cancelled, ConfigError, DataError, ReplacementError, RunError
from .features import FeatureCache
from .metrics import PROTOCOLS, Stats
from .models import Backend, build_backend
from .models.base import MASK_CHOICES
from .models.heads import HeadInfo, fit_head, load_head
from .models.layers import at_block, output_backend
from .prompts import PROMPT_MODES
from .replace import Edit, edit_alpha, edit_map, identity_map, pair_rows, row_pair, stack_alphas
from .resume import RunState, fingerprint
from .score import (
    CALIBRATED_CALLS,
    PRECISIONS,
    EvalSet,
    Evaluator,
    PairScorer,
    PairScores,
    ScoreProgress,
    channel_pairs,
    check_rows,
)
from .screen import MODES, TEMPERATURE, ModeReport, compare_modes, halving_screen, taylor_screen
from .search import (
    Combination,
    CombinationResult,
    RankedPair,
    best_alpha,
    best_of_first,
    search_combinations,
    subsets,
    top_pairs,
)
from .select import CV, GREEDY, POOL_PER_N, SEARCH, SELECT_MODES, cross_validate, greedy_path, rank_on
from .tasks import ALL_METRICS, LOSS, SEGMENT, TASKS, Task, get_task

CPU_AUTO_STRIDE = 8  # on CPU, `auto` scores every 8th channel (32 of 256): minutes, not hours


def _choice(name: str, value: object, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"unknown {name} '{value}'; use one of {', '.join(map(str, allowed))}.")


@dataclass(frozen=True)
class SessionConfig:
    """What a session is: model and weights, data and its split, prompts, protocol, device, decoder batches.

    Given to `Session.open`; written to config.json ("config") so the session can be rebuilt exactly.
    """

    model: str
    data: str
    checkpoint: str | None = None
    finetuned: str | None = None  # full / decoder-only / LoRA fine-tune applied over the base weights
    random_init: bool = False
    seed: int = 0  # random weights and the search / held-out split
    search_images: int = 50
    heldout_images: int | None = None  # None: every image not in the search set
    prompt: str = "none"
    protocol: str | None = None  # None: the dataset's convention
    mask_choice: str = "single"
    device: str = "auto"
    rows: int | None = None  # decoder rows per call; None: the device default
    precision: str = "fp32"  # fp32 | bf16: decoder matrix products in bfloat16 (metrics stay fp32/fp64)
    task: str | None = None  # segment | classify | depth; None: the data's (and the model's) task
    head: str | None = None  # classify / depth: a head state dict (weight, bias); None: fit one on a head split
    head_images: int | None = None  # images of that head split; None: a third of the data
    layer: int | None = None  # replace at the output of this encoder block (None: the encoder output)

    def __post_init__(self) -> None:
        self.check()  # frozen and checked when made: an unusable session config never exists

    @classmethod
    def recorded(cls, record: dict, **override) -> SessionConfig:
        """The config a run recorded (config.json's "config"), with `override`; RunError if it is malformed."""
        known = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}
        try:
            return cls(**{**known, **override})
        except (TypeError, ValueError) as e:
            raise RunError(f"config.json's settings are malformed ({e}); rerun the search.") from None

    def check(self) -> None:
        """Raise a ConfigError naming the setting whose value no step could use."""
        _choice("prompt", self.prompt, PROMPT_MODES)
        _choice("mask choice", self.mask_choice, MASK_CHOICES)
        _choice("precision", self.precision, tuple(PRECISIONS))
        if self.protocol is not None:
            _choice("protocol", self.protocol, PROTOCOLS)
        if self.task is not None:
            _choice("task", self.task, TASKS)
        if self.layer is not None and (
            isinstance(self.layer, bool) or not isinstance(self.layer, int) or self.layer < 0
        ):
            raise ConfigError(f"layer must be an encoder block index (0, 1, ...), got {self.layer!r}.")
        if self.head_images is not None and self.head_images < 1:
            raise ConfigError(f"head images must be at least 1 (got {self.head_images}).")
        if self.search_images < 1:
            raise ConfigError(f"search images must be at least 1 (got {self.search_images}); the paper uses 50.")
        if self.heldout_images is not None and self.heldout_images < 0:
            raise ConfigError(
                f"held-out images must be 0 (none) or more (got {self.heldout_images}); leave it unset for all."
            )
        check_rows(self.rows)


@dataclass(frozen=True)
class SearchSettings:
    """How one search runs on a session: metric, top N, channel scope, mode and its parameters."""

    metric: str | None = None  # the task's score (None: its default, mIoU for segmentation) or "loss"
    top_n: int = 10
    sources: str = "auto"
    targets: str = "auto"
    mode: str = "exact"  # exact | taylor | halving (screening modes score only promising pairs exactly)
    candidates: int = 512  # taylor: pairs rescored exactly
    taylor_temperature: float = TEMPERATURE  # taylor, miou: soft-mIoU tau as a fraction of the logits' std
    halving_start: int = 2  # halving: images in the first round (doubles each round)
    halving_keep: float = 0.25  # halving: fraction of pairs kept per round
    select: str = "search"  # search: the paper's best subset | cv, greedy: chosen by k-fold cross-validation
    folds: int = 5  # select cv / greedy: folds of the search set's images (objects)
    pool: int | None = None  # select greedy: candidate pairs (None: 4 x top N)
    alphas: str = ""  # soft replacement: alphas in (0, 1) scored besides 1, "0.25,0.5" ("": the paper's copies)

    def __post_init__(self) -> None:
        self.check()  # frozen and checked when made: unusable settings never reach a search

    @property
    def alpha_grid(self) -> tuple[float, ...]:
        """The soft alphas to score besides 1 (the paper's copy), sorted; () for hard replacement only."""
        try:
            grid = sorted({float(a) for a in self.alphas.replace(" ", "").split(",") if a})
        except ValueError:
            raise ConfigError(f"alphas '{self.alphas}' must be numbers in (0, 1) like 0.25,0.5,0.75.") from None
        if any(not 0 < a < 1 for a in grid):
            raise ConfigError(f"alphas '{self.alphas}' must lie in (0, 1): 1 (the plain copy) is always scored.")
        return tuple(grid)

    def check(self) -> None:
        """Raise a ConfigError naming the setting whose value no search could use."""
        if self.metric is not None:
            _choice("metric", self.metric, ALL_METRICS)
        _choice("search mode", self.mode, MODES)
        if not 1 <= self.top_n <= 16:
            raise ConfigError(f"top N must be 1 to 16 (got {self.top_n}): it means 2^N - 1 combinations to evaluate.")
        if self.candidates < 1 or not 0 < self.halving_keep < 1 or self.halving_start < 1:
            raise ConfigError("candidates and halving start must be >= 1 and halving keep in (0, 1).")
        _choice("selection", self.select, SELECT_MODES)
        self.alpha_grid  # noqa: B018 (parsed here so a bad grid is refused when the settings are made)
        if self.pool is not None and self.pool < 1:
            raise ConfigError(f"the greedy pool must be at least 1 pair (got {self.pool}).")
        if self.select != SEARCH and (self.mode != "exact" or self.metric == LOSS or not 2 <= self.folds <= 20):
            raise ConfigError(
                f"select {self.select} needs mode exact (every pair's per-image scores), the task's score as the "
                f"metric (not loss) and 2 to 20 folds (got mode {self.mode}, metric {self.metric}, {self.folds} folds)."
            )
        if not 0 < self.taylor_temperature < math.inf:
            raise ConfigError(
                f"taylor temperature must be a finite number > 0 (got {self.taylor_temperature}); 0.1 is the default."
            )


def parse_channels(spec: str | list[int], channels: int, device: torch.device, name: str = "channels") -> list[int]:
    """Channel list from 'auto', 'all', 'every:K' or '0-31,40,...' (ranges inclusive); `name` is the setting."""
    if isinstance(spec, list):
        return spec
    spec = str(spec).strip().lower()
    if spec == "auto":
        spec = "all" if device.type == "cuda" else f"every:{CPU_AUTO_STRIDE}"
    if spec == "all":
        return list(range(channels))
    out: list[int] = []
    try:
        if spec.startswith("every:"):
            step = int(spec.split(":", 1)[1])
            if step < 1:
                raise ValueError
            return list(range(0, channels, step))
        for part in filter(None, (p.strip() for p in spec.split(","))):
            lo, _, hi = part.partition("-")
            out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    except ValueError:
        raise ReplacementError(
            f"{name} '{spec}': cannot read this channel list; use all, auto, every:K (K >= 1) or ranges like 0-31,40."
        ) from None
    bad = [c for c in out if not 0 <= c < channels]
    if bad:
        raise ReplacementError(
            f"{name} '{spec}': channel {bad[0]} is out of range; this model has channels 0..{channels - 1}."
        )
    return sorted(set(out))


def resolve_task(requested: str | None, backend: Backend, dataset: Dataset) -> Task:
    """The session's task: the requested one, else the data's; it must suit both the model's heads and the data."""
    name = requested or dataset.task
    if name not in backend.tasks:
        raise ConfigError(
            f"{backend.name} has no {name} head (it does {', '.join(backend.tasks)}); pick a "
            + ("DINOv2 model (dinov2_*)" if name != SEGMENT else "SAM or SAM2 model")
            + f" for {name}, or another task."
        )
    if dataset.task != name:
        raise DataError(
            f"the task is {name} but the data is a {dataset.task} dataset ({dataset.layout} layout); give "
            + {
                "segment": "images/ + masks/ (or PerSeg)",
                "classify": "class folders or a CSV of image,label",
                "depth": "images/ + depth/",
            }[name]  # fmt: skip
            + " data, or the matching task."
        )
    return get_task(name)


CV_MAX_BYTES = 2**30  # select cv / greedy: every scored pair's per-image scores are kept in memory
ENCODE_CHUNK = 16  # images per `FeatureCache.encode` call when a session encodes everything ahead


class Session:
    """A model, a dataset split into search / held-out sets, and their cached features."""

    def __init__(self, backend: Backend, dataset: Dataset, cfg: SessionConfig, cache: FeatureCache | None = None):
        self.backend = backend
        self.dataset = dataset
        self.cfg = cfg
        self.cache = cache or FeatureCache()
        self.task = resolve_task(cfg.task, backend, dataset)
        self.protocol = cfg.protocol or dataset.default_protocol
        if self.task.name != SEGMENT:
            if cfg.prompt != "none" or self.protocol not in self.task.protocols:
                raise ConfigError(
                    f"the {self.task.name} task takes prompt none and protocol image; drop those settings."
                )
            if cfg.head and cfg.head_images:
                raise ConfigError("head images split the data to fit a head, but a head file is given; drop one.")
        self.head_set: Dataset | None = None  # images the head is fitted on: never searched, never held out
        self.head: HeadInfo | None = None
        rest = dataset
        if self.task.name != SEGMENT and not cfg.head:
            self.head_set, rest = split(dataset, cfg.head_images or max(1, len(dataset) // 3), cfg.seed, "head")
        self.search_set, rest = split(rest, cfg.search_images, cfg.seed)
        n_held = len(rest) if cfg.heldout_images is None else min(cfg.heldout_images, len(rest))
        self.heldout_set = rest.subset(list(range(n_held)))
        self._evaluators: dict[str, Evaluator] = {}
        self.cache_hits = 0
        self.encode_seconds: dict[str, float] = {}  # per image set: encoding (or cache reads) when first built

    @classmethod
    def open(
        cls,
        cfg: SessionConfig,
        cache: FeatureCache | None = None,
        extract_to: Path | None = None,
        progress: bool = True,
    ) -> Session:
        """Build the backend and open the dataset named in `cfg`."""
        backend = build_backend(
            cfg.model, cfg.checkpoint, cfg.random_init, cfg.seed, cfg.device, progress, cfg.finetuned
        )
        backend = at_block(backend, cfg.layer)  # replacement inside the encoder: the blocks after it re-run
        return cls(backend, open_dataset(cfg.data, extract_to=extract_to), cfg, cache)

    def evaluator(
        self,
        which: str = "search",
        on_progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Evaluator:
        """Evaluator over the search or held-out set (features encoded once, through the cache)."""
        if which not in self._evaluators:
            t0 = time.perf_counter()
            self.ensure_head(on_progress, cancel)
            data = self.search_set if which == "search" else self.heldout_set
            evalset = EvalSet.build(
                self.backend, data, self.cache, self.cfg.prompt, self.protocol, on_progress, cancel, self.task
            )
            self.cache_hits += self.cache.hits
            cfg = self.cfg
            self._evaluators[which] = Evaluator(self.backend, evalset, cfg.mask_choice, cfg.rows, cfg.precision)
            self.encode_seconds[which] = time.perf_counter() - t0
        return self._evaluators[which]

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
            self.cache.encode(self.backend, paths[start : start + ENCODE_CHUNK], done, cancel)
            encoded += self.cache.misses
        return encoded

    def ensure_head(
        self, on_progress: Callable[[int, int], None] | None = None, cancel: threading.Event | None = None
    ) -> None:
        """Classify / depth: load the head file, or fit the head on the head split (encoded through the cache)."""
        if self.task.name == SEGMENT or self.head is not None:
            return
        encoder = output_backend(self.backend)  # the head reads the encoder output, wherever the search replaces
        if self.cfg.head:
            module, self.head = load_head(self.cfg.head, self.task.name, encoder, self.dataset.classes)
        else:
            evalset = EvalSet.build(encoder, self.head_set, self.cache, "none", "image", on_progress, cancel, self.task)
            module, self.head = fit_head(self.task.name, encoder, evalset.feats, evalset.targets, self.dataset.classes)
            self.head = replace(self.head, images=[s.name for s in self.head_set.samples])
        self.backend.head = module

    def use_head(self, path: Path, recorded: dict | None = None) -> None:
        """Score with a saved head (a run's head.pt); with the run's record, its tensors must hash the same."""
        module, info = load_head(path, self.task.name, output_backend(self.backend), self.dataset.classes)
        if recorded is not None:
            if recorded.get("sha256") != info.sha256:
                raise RunError(
                    f"{path} is not the head this run recorded (sha256 {info.sha256[:12]}..., recorded "
                    f"{str(recorded.get('sha256'))[:12]}...); rerun the search."
                )
            info = HeadInfo(**{k: v for k, v in recorded.items() if k in HeadInfo.__dataclass_fields__})
        self.head = info
        self.backend.head = module

    def set_rows(self, rows: int | None) -> None:
        """Decoder rows per call from now on (None: the device default); evaluators of another size rebuild."""
        self.cfg = replace(self.cfg, rows=rows)  # checked as the new config is made
        self._evaluators = {k: ev for k, ev in self._evaluators.items() if ev.rows == (rows or ev.auto_rows)}

    def resolve(self, settings: SearchSettings) -> SearchSettings:
        """The settings with this task's default metric filled in; a metric the task lacks is refused."""
        metric = settings.metric or self.task.metrics[0].name
        if metric not in self.task.metric_names:
            raise ConfigError(
                f"metric '{metric}' is not one of the {self.task.name} task's ({', '.join(self.task.metric_names)})."
            )
        return replace(settings, metric=metric)

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
        header = {
            "model": self.backend.name,
            "weights": self.backend.weights.to_dict(),
            "weights_label": self.backend.weights.label,
            "channels": self.backend.channels,
            "device": str(self.backend.device),
        }
        if self.cfg.layer is not None:  # channels are the encoder block's width; `patch` and `apply` read it
            header["layer"] = self.cfg.layer
        if self.task.name != SEGMENT:  # the *_miou fields then hold this task's score (README, Run directory)
            header.update(task=self.task.name, score_metric=metric.name, score_higher_is_better=metric.higher_is_better)
            header["head"] = self.head.to_dict() if self.head else None
            if self.dataset.classes:
                header["classes"] = list(self.dataset.classes)
        return header


def evaluate(
    evaluator: Evaluator,
    maps: torch.Tensor,
    plain: bool = False,
    cancel: threading.Event | None = None,
    metric: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(score, loss) per map (V, C), batched or through the plain reference path (score: mIoU % for segmentation)."""
    stats = evaluator.stats_plain(maps) if plain else evaluator.stats(maps, cancel=cancel)
    return evaluator.summarize(stats, metric)


def estimate_seconds(evaluator: Evaluator, n_pairs: int, top_n: int, settings: SearchSettings | None = None) -> float:
    """Predicted search time: pairs x images (at the pair-scoring rate: a linear head's shortcut where it has
    one) plus 2^N - 1 subsets x images (decoded) and the settings' extra passes, at rates measured here."""
    n = len(evaluator.set)
    rows = decoded_rows(settings, top_n, n_pairs, n) if settings else (2**top_n - 1) * n
    return n_pairs * n * evaluator.seconds_per_pair_row() + rows * evaluator.seconds_per_row()


def decoded_rows(settings: SearchSettings, top_n: int, n_pairs: int, images: int) -> int:
    """Decoder rows of a search beyond its pair scan: 2^N - 1 subsets, the selection rule's and the soft passes'."""
    return (2**top_n - 1) * images + selection_rows(settings, top_n, images) + soft_rows(settings, n_pairs, images)


def soft_rows(settings: SearchSettings, n_pairs: int, images: int) -> int:
    """Decoder rows of the soft passes: every pair again at each alpha (decoded; no linear-head shortcut)."""
    return len(settings.alpha_grid) * n_pairs * images


def selection_rows(settings: SearchSettings, top_n: int, images: int) -> int:
    """Decoder rows a selection rule adds to the search (an upper bound for greedy): cv, a combination stage per
    fold; greedy, N steps over the pool per fold and once more on the whole search set."""
    folds = min(settings.folds, images)
    if settings.select == CV:
        return folds * (2**top_n - 1) * images
    if settings.select == GREEDY:
        return (folds + 1) * top_n * (settings.pool or POOL_PER_N * top_n) * images
    return 0


def estimate_basis(evaluator: Evaluator) -> str:
    """What `estimate_seconds` rests on, in words a user can check."""
    rate = 1.0 / evaluator.seconds_per_row()
    if evaluator.observed_rows >= CALIBRATED_CALLS * evaluator.rows:
        basis = f"{rate:,.0f} decoder rows/s, the mean of {evaluator.observed_rows:,} rows run so far here"
    else:
        basis = f"{rate:,.0f} decoder rows/s from one timed call; refined as work runs"
    if evaluator.backend.has_pair_outputs():
        basis += (
            f"; pairs via the linear head's rank-one shortcut: {1.0 / evaluator.seconds_per_pair_row():,.0f} rows/s"
        )
    return basis


def format_seconds(seconds: float) -> str:
    """'4.2 s', '42 s', '7.5 min', '3.2 h' or '2.1 days'."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


@dataclass
class AblationRow:
    """One Table 1 row: an edit and its effect on the search set."""

    edit: str
    miou: float
    loss: float
    delta_miou: float
    delta_loss: float


def ablate(
    session: Session,
    edits: list[Edit],
    plain: bool = False,
    callbacks: Callbacks | None = None,
    cancel: threading.Event | None = None,
    on_row: Callable[[AblationRow], None] | None = None,
) -> tuple[AblationRow, list[AblationRow]]:
    """Baseline and each edit alone on the search set (the paper's Table 1; every channel zeroed: the sweep).

    Edits are batched in the search's fixed-shape decoder calls, so a row does not depend on its
    neighbours and `replace i:j` equals the pair score [i, j] exactly; `plain` uses the unbatched
    reference path instead. Edits are checked before anything is encoded; `callbacks.edits(done,
    total)` counts finished edits and `on_row` gets each edit's row as it finishes.
    """
    cb = callbacks or Callbacks()
    c = session.backend.channels
    maps = torch.stack([identity_map(c)] + [edit_map(e, c) for e in edits])
    alphas = stack_alphas([None] + [edit_alpha(e, c) for e in edits], c)  # scale edits are soft
    ev = session.evaluator("search", cb.encode, cancel)
    names = ["baseline"] + [str(e) for e in edits]
    rows: list[AblationRow] = []

    def chunk(start: int, stats: Stats) -> None:
        miou, loss = ev.summarize(stats)
        for k, (m, lo) in enumerate(zip(miou, loss), start):
            base = rows[0] if rows else None
            delta = (float(m) - base.miou, float(lo) - base.loss) if base else (0.0, 0.0)
            row = AblationRow(names[k], float(m), float(lo), *delta)
            rows.append(row)
            if on_row and k:
                on_row(row)
        if cb.edits:
            cb.edits(len(rows) - 1, len(edits))  # the baseline (map 0) is not an edit

    if plain:
        for k in range(len(maps)):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled by the user; finished results are kept.")
            chunk(k, ev.stats_plain(maps[k : k + 1], None if alphas is None else alphas[k : k + 1]))
    else:
        ev.stats(maps, on_chunk=chunk, cancel=cancel, alphas=alphas)
    return rows[0], rows[1:]


@dataclass
class SearchResult:
    """What a finished search found, with the numbers replacements.json reports."""

    config: SessionConfig  # the session it ran on
    settings: SearchSettings  # how it ran
    header: dict
    scores: PairScores
    top: list[RankedPair]
    skipped: list[RankedPair]
    combos: CombinationResult
    heldout: dict | None
    search_images: int
    timings: dict = field(default_factory=dict)
    pairs_in_scope: int = 0
    confidence: dict | None = None  # search-set intervals of the top pairs' and best set's gains
    selection: dict | None = None  # select cv / greedy: the cross-validation report (`select.CvReport`)

    @property
    def best_pairs(self) -> list[tuple]:
        return self.combos.best_pairs


def _soft_passes(
    scorer: PairScorer,
    hard: PairScores,
    pairs: torch.Tensor,
    grid: tuple[float, ...],
    cb: Callbacks,
    cancel: threading.Event | None,
    dist: Dist | None,
) -> PairScores:
    """Soft replacement: every pair the hard scan scored, again at each alpha of `grid` (decoded, batched); each
    pair keeps its best alpha (`search.best_alpha`). The live view shows the best gain so far."""
    pi, pj = pairs[:, 0].numpy(), pairs[:, 1].numpy()
    scored = pairs[torch.from_numpy(np.isfinite(hard.gain[pi, pj]))]
    mine = dist.shard(scored) if dist else scored
    soft: dict[float, PairScores] = {}
    groups = [(scorer.group_pairs, scorer.group_scores)] if scorer.keep_groups else []
    for a in grid:
        if cb.log:
            cb.log(f"soft replacement: rescoring {len(scored):,} pairs with alpha {a:g}")

        def shown(ev: ScoreProgress) -> None:  # never below what the pair already reached
            if cb.pairs:
                cb.pairs(replace(ev, gains=np.fmax(ev.gains, hard.gain[ev.pairs[:, 0], ev.pairs[:, 1]])))

        s = scorer.score(mine, on_progress=shown, cancel=cancel, alpha=a)
        if dist:
            s.miou_gain, s.loss_gain = dist.merge(s.miou_gain, s.loss_gain)
            if scorer.keep_groups:
                _gather_groups(scorer, scored, mine, dist, a)
        soft[a] = s
        if scorer.keep_groups:  # every (pair, alpha) is a candidate of the cross-validated selection
            groups.append((scorer.group_pairs, scorer.group_scores))
    if groups:
        scorer.group_pairs = np.concatenate([g for g, _ in groups])
        scorer.group_scores = np.concatenate([v for _, v in groups])
    return best_alpha(hard, soft)


def _gather_groups(scorer: PairScorer, pairs: torch.Tensor, mine: torch.Tensor, dist: Dist, alpha: float) -> None:
    """torchrun: this rank's per-group scores (for its shard `mine` of `pairs`) placed in the full pair list and
    merged across ranks like the gain matrices, so every rank holds every candidate's rows."""
    c = scorer.evaluator.channels
    full = np.full((len(pairs), scorer.group_scores.shape[1]), np.nan, np.float32)
    row_of = np.full(c * c, -1)
    row_of[pairs[:, 0].numpy() * c + pairs[:, 1].numpy()] = np.arange(len(pairs))
    full[row_of[mine[:, 0].numpy() * c + mine[:, 1].numpy()]] = scorer.group_scores
    scorer.group_scores, scorer.group_pairs = dist.merge(full)[0], pair_rows(pairs.numpy(), alpha)


def _greedy_choice(
    ev: Evaluator, scorer: PairScorer, combos: CombinationResult, steps: int, pool: int, cancel=None
) -> CombinationResult:
    """select greedy: `steps` greedy steps over the top `pool` pairs on the whole search set; each step's set
    joins the evaluated rows (outside the top-N subsets: no members) and the last one is the choice."""
    everyone = np.ones(scorer.group_scores.shape[1], bool)
    ranked = rank_on(scorer.group_pairs, scorer.group_scores, everyone, pool, distinct=False)
    candidates = [row_pair(scorer.group_pairs[k]) for k in ranked]

    seen: dict[tuple, np.ndarray] = {}  # every evaluated set's stats: the path's rows need no second decode

    def evaluate(sets: list[list[tuple]]) -> np.ndarray:
        stats = ev.set_stats(sets, cancel=cancel)
        seen.update((tuple(p), v) for p, v in zip(sets, stats.values))
        return ev.per_group(stats, scorer.metric)

    path = [p for p, _ in greedy_path(candidates, steps, evaluate, everyone)]
    if not path:
        return replace(combos, best=None)
    stats = Stats(np.stack([seen[tuple(p)] for p in path]))
    score, loss = ev.summarize(stats, scorer.metric)
    rows = [Combination((), p, float(m), float(lo)) for p, m, lo in zip(path, score, loss)]
    per_image = None if combos.per_image is None else np.concatenate([combos.per_image, stats.values])
    best = rows[-1] if rows[-1].miou > combos.baseline_miou else None  # it must gain on the search set too
    return replace(combos, rows=combos.rows + rows, best=best, per_image=per_image)


def search_confidence(ev: Evaluator, scorer: PairScorer, combos: CombinationResult) -> dict | None:
    """Bootstrap intervals (over search images, or objects) of each top pair's gain and of the best set's.

    Each top pair alone is a one-pair subset of the combination stage, whose per-image statistics
    are kept: nothing is decoded again. None where a subset's statistics are missing (a resumed
    run saved before they were kept).
    """
    per_image = combos.per_image
    if per_image is None or not np.isfinite(per_image).all() or scorer.baseline_stats is None:
        return None
    base = ev.per_group(scorer.baseline_stats, scorer.metric)[0]
    variants = ev.per_group(Stats(per_image), scorer.metric)  # (subsets, G)
    top = [paired(base, variants[k]).to_dict() for k, row in enumerate(combos.rows) if len(row.members) == 1]
    best = combos.rows.index(combos.best) if combos.best else None
    return {
        "unit": "object" if ev.set.n_groups and ev.set.n_groups < len(ev.set) else "image",
        "top": top,  # in the order of the top N
        "best": paired(base, variants[best]).to_dict() if best is not None else None,
    }


@dataclass
class Callbacks:
    """Progress hooks for a UI or a progress bar; every one is optional."""

    encode: Callable[[int, int], None] | None = None
    pairs: Callable[[ScoreProgress], None] | None = None
    combos: Callable[[int, int], None] | None = None
    edits: Callable[[int, int], None] | None = None  # ablation edits done / total
    log: Callable[[str], None] | None = None


def search_key(session: Session, settings: SearchSettings, pairs: torch.Tensor) -> str:
    """Fingerprint of everything that changes a search's numbers (for resuming safely)."""
    cfg, st = session.cfg, session.resolve(settings)
    ev = session.evaluator("search")
    return fingerprint(
        {
            "model": session.backend.name,
            **({"layer": cfg.layer} if cfg.layer is not None else {}),
            "weights": session.backend.weights.key,
            "data": session.dataset.content_hash(),
            "search_set": ev.set.names,
            "prompt": cfg.prompt,
            "protocol": session.protocol,
            "mask": cfg.mask_choice,
            "metric": st.metric,
            "top_n": st.top_n,
            "rows": ev.rows,
            "precision": cfg.precision,
            "device": session.backend.device.type,
            "pairs": hashlib.sha256(pairs.numpy().tobytes()).hexdigest(),
            "mode": [st.mode, st.candidates, st.halving_start, st.halving_keep, st.taylor_temperature],
            **({"select": [st.select, st.folds, st.pool]} if st.select != SEARCH else {}),  # older keys stay valid
            **({"alphas": list(st.alpha_grid)} if st.alpha_grid else {}),
        }
    )


def run_search(
    session: Session,
    settings: SearchSettings | None = None,
    callbacks: Callbacks | None = None,
    cancel: threading.Event | None = None,
    state: RunState | None = None,
    dist: Dist | None = None,
) -> SearchResult:
    """Score pairs, keep the top N, try every subset, evaluate baseline and best set on both sets.

    With a `state`, progress is saved as it goes and a rerun continues from it.
    """
    cfg = session.resolve(settings or SearchSettings())
    cb = callbacks or Callbacks()
    say = cb.log or (lambda _m: None)
    timings = {}
    ev = session.evaluator("search", cb.encode, cancel)
    timings["encode_search_s"] = session.encode_seconds["search"]  # wherever it was first built
    pairs = session.channel_pairs(cfg)
    c = session.backend.channels
    known = state.pairs(c) if state and cfg.select == SEARCH else None  # cv / greedy: per-image scores, not saved
    candidates = len(pairs) * (1 + len(cfg.alpha_grid))  # each pair at each alpha
    if cfg.select != SEARCH and candidates * len(ev.set) * 4 > CV_MAX_BYTES:
        raise ConfigError(
            f"select {cfg.select} keeps {candidates:,} candidates x {len(ev.set)} images of scores, over "
            f"{CV_MAX_BYTES / 2**30:.0f} GiB; narrow the sources / targets or use select search."
        )
    resumed = 0 if known is None else int(np.isfinite(known[0][pairs[:, 0].numpy(), pairs[:, 1].numpy()]).sum())
    say(
        f"scoring {len(pairs):,} pairs on {len(ev.set)} images ({session.backend.weights.label})"
        + (f"; {resumed:,} already scored in an earlier, interrupted run" if resumed else "")
    )
    on_pairs = cb.pairs
    if state:

        def on_pairs(ev_: ScoreProgress) -> None:
            state.save_pairs(ev_.miou_gain, ev_.loss_gain, force=ev_.done == ev_.total)
            if cb.pairs:
                cb.pairs(ev_)

    scorer = PairScorer(ev, cfg.metric)
    scorer.keep_groups = cfg.select != SEARCH
    if cfg.mode == "taylor":
        say(f"taylor screening: rescoring the {min(cfg.candidates, len(pairs)):,} most promising pairs exactly")
        scores = taylor_screen(scorer, pairs, cfg.candidates, on_pairs, cancel, cfg.taylor_temperature)
    elif cfg.mode == "halving":
        scores = halving_screen(scorer, pairs, cfg.halving_start, cfg.halving_keep, on_pairs, cancel)
    else:
        mine = dist.shard(pairs) if dist else pairs
        scores = scorer.score(mine, on_progress=on_pairs, cancel=cancel, known=known)
        if dist:  # every rank gets the full matrices
            scores.miou_gain, scores.loss_gain = dist.merge(scores.miou_gain, scores.loss_gain)
            if scorer.keep_groups:
                _gather_groups(scorer, pairs, mine, dist, 1.0)
    if cfg.alpha_grid:
        scores = _soft_passes(scorer, scores, pairs, cfg.alpha_grid, cb, cancel, dist)
    timings["score_s"] = scores.seconds
    top, skipped = top_pairs(scores, cfg.top_n)
    if len(top) < cfg.top_n:
        say(f"only {len(top)} usable pairs for top N = {cfg.top_n}")
    say(f"trying {2 ** len(top) - 1:,} combinations of the top {len(top)} pairs")
    top_ij = [p.pair for p in top]
    known_c = state.combos(2 ** len(top) - 1, top_ij) if state else None
    save_c = (lambda m, lo, pi: state.save_combos(top_ij, m, lo, pi)) if state else None
    combos = search_combinations(
        ev, top, scorer.baseline(cancel), scorer.metric, cb.combos, cancel, known_c, save_c, dist
    )
    if state:
        scores_, losses_ = np.array([r.miou for r in combos.rows]), np.array([r.loss for r in combos.rows])
        state.save_combos(top_ij, scores_, losses_, combos.per_image, force=True)
    timings["combinations_s"] = combos.seconds
    selection = None
    if cfg.select != SEARCH:
        t = time.perf_counter()
        pool = cfg.pool or POOL_PER_N * cfg.top_n
        base_groups = ev.per_group(scorer.baseline_stats, scorer.metric)[0]
        report = cross_validate(
            ev, scorer.group_pairs, scorer.group_scores, base_groups, len(top), cfg.folds, scorer.metric,
            subsets(len(top)), lambda f, k: say(f"cross-validation: fold {f + 1}/{k}"), cancel, cfg.select, pool,
        )  # fmt: skip
        say(f"cross-validation chose N = {report.chosen_n} (held-out gain per N: "
            + ", ".join(f"{g:+.3g}" for g in report.curve) + ")")  # fmt: skip
        if cfg.select == CV:
            combos = replace(combos, best=best_of_first(combos, report.chosen_n))
        else:
            combos = _greedy_choice(ev, scorer, combos, report.chosen_n, pool, cancel)
        selection = report.to_dict()
        timings["cv_s"] = time.perf_counter() - t
    heldout = None
    if len(session.heldout_set) and (dist is None or dist.main):
        t = time.perf_counter()
        hev = session.evaluator("heldout", cb.encode, cancel)
        held_stats = hev.set_stats([[], combos.best_pairs], cancel=cancel)
        miou, loss = hev.summarize(held_stats, scorer.metric)
        held_groups = hev.per_group(held_stats, scorer.metric)
        heldout = {
            "images": len(hev.set),
            "baseline_miou": float(miou[0]),
            "patched_miou": float(miou[1]),
            "baseline_loss": float(loss[0]),
            "patched_loss": float(loss[1]),
            "confidence": paired(held_groups[0], held_groups[1]).to_dict(),  # over held-out images (objects)
        }
        timings["heldout_s"] = time.perf_counter() - t
    return SearchResult(
        session.cfg,
        cfg,
        session.header(),
        scores,
        top,
        skipped,
        combos,
        heldout,
        len(ev.set),
        timings,
        len(pairs),
        search_confidence(ev, scorer, combos),
        selection,
    )


def compare_search_modes(
    session: Session,
    settings: SearchSettings | None = None,
    exact: SearchResult | None = None,
    callbacks: Callbacks | None = None,
    cancel: threading.Event | None = None,
) -> list[ModeReport]:
    """Exact vs taylor vs halving on the settings' pairs, top N and screening parameters.

    `exact` (an exact search just run on the same pairs, in the same metric) saves the full scan
    and, for the same top N, its combination stage.
    """
    cfg = session.resolve(settings or SearchSettings())
    cb = callbacks or Callbacks()
    ev = session.evaluator("search", cb.encode, cancel)
    pairs = session.channel_pairs(cfg)
    say = cb.log or (lambda _m: None)
    say(f"comparing search modes on {len(pairs):,} pairs x {len(ev.set)} images ({session.backend.weights.label})")
    scorer = PairScorer(ev, cfg.metric)
    return compare_modes(
        scorer,
        pairs,
        cfg.top_n,
        cfg.candidates,
        cfg.halving_start,
        cfg.halving_keep,
        cfg.taylor_temperature,
        exact.scores if exact else None,
        exact.combos if exact else None,
        say,
        cb.pairs,
        cancel,
        cb.combos,
    )


def environment() -> dict:
    """Versions that can change numbers, for config.json."""
    from importlib.metadata import version

    import segment_anything  # noqa: F401  (version lives in its metadata)

    return {
        "redundancy": __version__,
        "torch": torch.__version__,
        "segment_anything": version("segment-anything"),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _absolute_paths(cfg: SessionConfig) -> dict:
    """The config's file paths made absolute, so a run can be reused from any working directory."""
    paths = ("data", "checkpoint", "finetuned", "head")
    return {k: str(Path(v).resolve()) for k in paths if (v := getattr(cfg, k)) and not str(v).startswith("hf://")}


def config_dict(session: Session, result: SearchResult) -> dict:
    """config.json content: the session ("config") and search ("search") settings, what they resolved to, the data."""
    pairs = session.channel_pairs(result.settings)
    return {
        **session.header(),
        "config": {**asdict(result.config), **_absolute_paths(result.config)},
        "search": asdict(result.settings),
        "protocol": session.protocol,
        "data": {
            "path": str(session.dataset.root.resolve()),
            "layout": session.dataset.layout,
            "sha256": session.dataset.content_hash(),
            "images": len(session.dataset),
            "search_set": [s.name for s in session.search_set.samples],
            "heldout_images": len(session.heldout_set),
            "warnings": session.dataset.warnings,
        },
        "sources": sorted({int(i) for i in pairs[:, 0]}),
        "targets": sorted({int(j) for j in pairs[:, 1]}),
        "pairs_scored": len(pairs),
        "decoder_rows": session.evaluator("search").rows,  # per call, after any out-of-memory back-off
        "rows_backoff": session.evaluator("search").rows_backoff,
        "feature_cache_hits": session.cache_hits,
        "timings": result.timings,
        "environment": environment(),
    }
