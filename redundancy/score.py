"""Scoring edited features: an image set on the device, a batched evaluator and the pair scorer.

The evaluator turns channel maps (V, C) into per-(variant, image) stats; the pair scorer
runs it over every ordered pair and returns the C x C gain matrix.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .data import Dataset, image_size, load_target
from .errors import Cancelled, DataError, DeviceError, ReplacementError
from .features import FeatureCache
from .io import env_number
from .metrics import Stats, group_ids
from .models import FEATURES, Backend, DecodeContext, ImageMeta
from .prompts import prompt_from_mask
from .replace import check_channel, identity_map, pair_alphas, pair_maps, pair_rows, set_maps
from .tasks import LOSS, SEGMENT, SegmentTask, Task

# Feature tokens x decoder rows per call, by device. On CPU big decoder batches are no faster per
# row (sam_vit_b 64x64 tokens: 2-16 rows per call are within noise), so batches stay small there;
# small grids (sam_tiny) gain ~5x from batching (benchmarks/). On CUDA the bound is memory: a
# 64x64-token row peaks at ~21 MB through decoder and metric (measured on CPU), so 2^19 tokens =
# 128 rows ~ 2.7 GB, inside issue 6's 4 GB budget with the cached features (untested on a GPU).
ROW_TOKENS = {"cpu": 1 << 14, "cuda": 1 << 19}
MAX_ROWS = {"cpu": 32, "cuda": 1024}
MAX_BATCH_ROWS = 1 << 16  # what a user may ask for: beyond it even a GPU's calls stop fitting (and out-of-memory
# back-off would start from a request that allocates for minutes)
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}  # decoder compute dtype of the batched path
CALIBRATED_CALLS = 4  # batched calls timed before their mean replaces the one-call estimate
UPSCALE_BUDGET = 1 << 26  # floats per upscaling step, bounds peak memory at original resolution
PROBE_PAIRS = 256  # pairs timed to estimate the pair shortcut's rate before real work has run
PAIR_MEASURE_BUDGET = 1 << 20  # floats per measuring step there: cache-sized blocks, 4x faster than 1 << 26 (CPU)
PAIR_OUTPUT_BUDGET = env_number("REDUNDANCY_PAIR_OUTPUTS", 1 << 23)  # head outputs per rank-one block (float64)


@dataclass
class EvalSet:
    """An image set ready for decoding: features (B, C, h, w), prompts, targets, metric groups, its task."""

    names: list[str]
    feats: torch.Tensor
    context: DecodeContext  # prompts and any extra per-image decoder inputs
    metas: list[ImageMeta]
    targets: list[torch.Tensor | None]  # GT mask / label / depth map per image; None: no GT (predictions only)
    groups: np.ndarray  # (B,) metric group per image; -1: not evaluated (the persam protocol's reference)
    n_groups: int | None = None  # groups in the protocol (None: groups.max() + 1)
    task: Task = field(default_factory=SegmentTask)

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def build(
        cls,
        backend: Backend,
        dataset: Dataset,
        cache: FeatureCache,
        prompt: str = "none",
        protocol: str = "image",
        on_progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
        task: Task | None = None,
    ) -> EvalSet:
        """Encode (through the cache) and load GT for every sample of `dataset` (GT optional for `none`)."""
        task = task or SegmentTask()
        if prompt != "none" and not dataset.has_masks:
            raise DataError(f"'{prompt}' prompts come from GT masks, but some images have none; use prompt none.")
        encoded = cache.encode(backend, [s.image_path for s in dataset.samples], on_progress, cancel)
        gts = [load_target(s, task.name) for s in dataset.samples]
        spatial = [g if g is not None and g.ndim == 2 else None for g in gts]
        sizes = [g.shape if g is not None else image_size(s.image_path) for g, s in zip(spatial, dataset.samples)]
        metas = [backend.meta(hw) for hw in sizes]
        prompts = [prompt_from_mask(m if task.name == SEGMENT else None, prompt) for m in gts]
        context = backend.context(encoded, prompts, metas)
        targets = [torch.from_numpy(np.asarray(g)).to(backend.device) if g is not None else None for g in gts]
        names = [s.name for s in dataset.samples]
        groups, n_groups = group_ids([s.group for s in dataset.samples], protocol, names)
        return cls(names, encoded[FEATURES], context, metas, targets, groups, n_groups, task)


def check_rows(rows: object) -> None:
    """Decoder rows per call: None (the device default) or a whole number from 1 to MAX_BATCH_ROWS."""
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= MAX_BATCH_ROWS):
        raise ReplacementError(
            f"decoder rows per call (batch rows) must be a whole number from 1 to {MAX_BATCH_ROWS:,}, got {rows!r}; "
            "leave it empty for the device default."
        )


def _out_of_memory(e: Exception) -> bool:
    """Whether an error is an allocation failure: CUDA's OutOfMemoryError, or the CPU allocator's RuntimeError."""
    return isinstance(e, torch.OutOfMemoryError) or "can't allocate memory" in str(e)


def default_rows(device: torch.device, tokens: int) -> int:
    """Decoder rows per call for a device and a feature grid of `tokens` positions."""
    kind = "cuda" if device.type == "cuda" else "cpu"
    return max(1, min(MAX_ROWS[kind], ROW_TOKENS[kind] // tokens))


def _rows(n_maps: int, n_img: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(map index, image index) of every (map, image) row, map-major: each (n_maps * n_img,)."""
    return (
        torch.arange(n_maps, device=device).repeat_interleave(n_img),
        torch.arange(n_img, device=device).repeat(n_maps),
    )


def _pad(idx: torch.Tensor, size: int) -> torch.Tensor:
    """`idx` filled up to `size` entries by repeating its last one (a padded, same-shape call)."""
    return torch.cat([idx, idx[-1:].expand(size - len(idx))])


class Evaluator:
    """Runs the decoder on channel-mapped features of one EvalSet and measures the masks.

    Every batched decoder call has exactly `rows` rows (the last one padded): same-shape calls
    give bit-identical logits for a (map, image) row wherever it sits in a batch, so scores do
    not depend on batch composition, and an ablation reproduces a pair score exactly.
    """

    def __init__(
        self,
        backend: Backend,
        evalset: EvalSet,
        mask_choice: str = "single",
        rows: int | None = None,
        precision: str = "fp32",
    ):
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}.")
        check_rows(rows)
        self.backend = backend
        self.set = evalset
        self.mask_choice = mask_choice
        self.precision = precision
        self.auto_rows = default_rows(backend.device, evalset.feats.shape[2] * evalset.feats.shape[3])
        self.rows = rows or self.auto_rows
        self.rows_backoff: list[int] = []  # row sizes adopted after running out of memory
        self.observed_rows, self.observed_seconds = 0, 0.0  # batched work timed so far (the estimate's basis)
        self.pair_rows, self.pair_seconds = 0, 0.0  # the same for the head's pair shortcut (`pair_stats`)
        self.channels = evalset.feats.shape[1]
        self.device = evalset.feats.device
        # Features plus a zero channel (index C: what a zeroed channel copies), channels-last for the
        # batched path: its gathers and the dense-prompt add then give the decoder's token layout
        # (R, h*w, C) without a transpose copy per call.
        tokens = evalset.feats.flatten(2).transpose(1, 2)
        self._ext_tokens = torch.cat([tokens, tokens.new_zeros(*tokens.shape[:2], 1)], 2).contiguous()  # (B, h*w, C+1)
        self._context_cl = backend.batch_context(evalset.context)

    @functools.cached_property
    def _ext(self) -> torch.Tensor:
        """(B, C+1, h, w): the same values in the layout the plain reference loop gathers from.

        Built on first use (only `stats_plain` reads it), so a search holds one copy of the features.
        """
        feats = self.set.feats
        return torch.cat([feats, feats.new_zeros(len(self.set), 1, *feats.shape[2:])], 1)

    def seconds_per_row(self) -> float:
        """Time of one (map, image) row, for honest estimates: the mean over every batched call run so far on
        this evaluator once there are a few, else one timed full-size call (after a warm-up)."""
        if self.observed_rows >= CALIBRATED_CALLS * self.rows:
            return self.observed_seconds / self.observed_rows
        if not hasattr(self, "_spr"):
            maps = identity_map(self.channels)[None].to(self.device)
            idx = torch.zeros(self.rows, dtype=torch.long, device=self.device)
            self._rows_stats(maps, idx, idx % len(self.set), pad=True)  # warm-up
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            self._rows_stats(maps, idx, idx % len(self.set), pad=True)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            self._spr = (time.perf_counter() - t0) / self.rows
        return self._spr

    def summarize(self, stats: Stats, metric: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(score, loss) per variant, each (V,): the task's `metric` score (default: its first; mIoU %)."""
        return self.set.task.reduce(stats, self.set.groups, self.set.n_groups, metric)

    def per_group(self, stats: Stats, metric: str | None = None) -> np.ndarray:
        """The score per metric group (image, or object for PerSeg protocols), (V, G); its mean is the score."""
        return self.set.task.per_group(stats, self.set.groups, self.set.n_groups, metric)

    def upscaler(self, b: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """Head outputs of image b -> the resolution of its target (the backend's upscaling)."""
        return functools.partial(self.backend.upscale, meta=self.set.metas[b])

    def row_loss(self, b: int, feats: torch.Tensor) -> torch.Tensor:
        """The task's differentiable loss of image b from its features (1, C, h, w), (1,)."""
        out = self.backend.decode(feats, self.set.context.take([b]), self.mask_choice)
        return self.set.task.row_loss(out, self.set.targets[b], self.upscaler(b))

    def _decode(
        self, maps: torch.Tensor, img: torch.Tensor, reference: bool = False, alphas: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Low-res logits (R, h', w') for rows (maps (R, C), image index (R,)), one decoder call.

        `alphas` (R, C) make the maps soft: channel c becomes (1 - alpha_c) X_c + alpha_c X_map[c] (None: 1, a copy).
        """
        if reference:
            feats = self._ext[img[:, None], maps]  # (R, C, h, w): row r is image img[r] under maps[r]
            if alphas is not None:
                a = alphas[:, :, None, None].to(feats.dtype)
                feats = (1 - a) * self.set.feats[img] + a * feats  # alpha 1 reads the copy exactly
            return self.backend.decode(feats, self.set.context.take(img), self.mask_choice, reference=True)
        # The same values in channels-last memory, the layout the re-associated decoder reads.
        rows = self._ext_tokens[img]
        tokens = torch.gather(rows, 2, maps[:, None, :].expand(-1, rows.shape[1], -1))  # (R, h*w, C)
        if alphas is not None:
            a = alphas[:, None, :].to(tokens.dtype)
            tokens = (1 - a) * rows[:, :, : self.channels] + a * tokens  # alpha 1 reads the copy exactly
        feats = tokens.transpose(1, 2).unflatten(2, self.set.feats.shape[2:])
        dtype = PRECISIONS[self.precision]
        # bf16 autocast: matrix products in bfloat16, softmax / norms in fp32; logits leave as fp32, so
        # upscaling and the metric sums are unchanged (metrics accumulate in fp64).
        with torch.autocast(feats.device.type, dtype=dtype) if dtype else contextlib.nullcontext():
            out = self.backend.decode(feats, self._context_cl.take(img), self.mask_choice)
        return out if out.dtype == torch.float64 else out.float()  # linear heads compute in float64: kept

    def _measure(self, low: torch.Tensor, b: int, budget: int = UPSCALE_BUDGET) -> torch.Tensor:
        """Head outputs (P, ...) of image b -> (P, K) task stats at the target's resolution, `budget` floats a step."""
        h, w = self.set.metas[b].original_hw
        step = max(1, budget // (h * w + self.backend.model_input_pixels))
        up = self.upscaler(b)
        return torch.cat(
            [self.set.task.measure(low[s : s + step], self.set.targets[b], up) for s in range(0, len(low), step)]
        )

    @torch.inference_mode()
    def _rows_stats(
        self,
        maps: torch.Tensor,
        map_idx: torch.Tensor,
        img_idx: torch.Tensor,
        pad: bool,
        alphas: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Stats (N, K) for N (map, image) rows: fixed-size calls (padded), or the plain reference loop.

        The plain loop (`pad=False`) is one row per call through the package's own decoder modules.
        """
        size = self.rows if pad else 1
        out = torch.empty(len(map_idx), len(self.set.task.columns), dtype=torch.float64, device=self.device)
        for start in range(0, len(map_idx), size):
            sel = torch.arange(start, min(start + size, len(map_idx)), device=map_idx.device)
            call = _pad(sel, size) if pad else sel
            soft = alphas[map_idx[call]] if alphas is not None else None
            low = self._decode(maps[map_idx[call]], img_idx[call], reference=not pad, alphas=soft)[: len(sel)]
            imgs = img_idx[sel]
            for b in imgs.unique().tolist():
                hit = (imgs == b).nonzero()[:, 0]
                out[sel[hit]] = self._measure(low[hit], b)
        return out

    def stats(
        self,
        maps: torch.Tensor,
        on_chunk: Callable[[int, Stats], None] | None = None,
        cancel: threading.Event | None = None,
        alphas: torch.Tensor | None = None,
    ) -> Stats:
        """Batched: maps (V, C) -> Stats (V, B); `on_chunk(start, chunk_stats)` after each map chunk.

        `alphas` (V, C): soft maps (`_decode`); None: every map copies fully (the paper's replacement).
        """
        maps = maps.to(self.device)
        alphas = alphas.to(self.device) if alphas is not None else None
        n_img = len(self.set)
        chunks: list[Stats] = []
        start = 0
        while start < len(maps):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled by the user; finished results are kept.")
            per_chunk = self.rows // math.gcd(self.rows, n_img)  # maps per chunk: a whole number of calls
            chunk_maps = maps[start : start + per_chunk]
            chunk_alphas = alphas[start : start + per_chunk] if alphas is not None else None
            try:
                t0 = time.perf_counter()
                rows = _rows(len(chunk_maps), n_img, maps.device)
                block = self._rows_stats(chunk_maps, *rows, pad=True, alphas=chunk_alphas)
            except (torch.OutOfMemoryError, RuntimeError) as e:
                if not _out_of_memory(e):
                    raise
                if self.rows == 1:
                    raise DeviceError(
                        f"out of memory on {self.device} even with one decoder row per call; use fewer or smaller "
                        "images, or a device with more memory."
                    ) from None
                # Back off: smaller calls from here on (the chunk restarts). Later rows round
                # differently from an unconstrained run; `rows_backoff` records it.
                self.rows //= 2
                self.rows_backoff.append(self.rows)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            block = block.view(len(chunk_maps), n_img, -1).cpu().numpy()  # .cpu() waits for the device
            self.observed_rows += len(chunk_maps) * n_img
            self.observed_seconds += time.perf_counter() - t0
            chunk = Stats(block)
            chunks.append(chunk)
            if on_chunk:
                on_chunk(start, chunk)
            start += len(chunk_maps)
        if not chunks:
            return Stats(np.zeros((0, n_img, len(self.set.task.columns))))
        return Stats.concat(chunks, 0)

    def set_stats(
        self,
        sets: list[list[tuple]],
        on_chunk: Callable[[int, Stats], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Stats:
        """Batched stats (V, B) of V replacement sets (lists of (i, j) or soft (i, j, a) pairs; [] is the baseline)."""
        maps, alphas = set_maps(sets, self.channels)
        return self.stats(maps, on_chunk=on_chunk, cancel=cancel, alphas=alphas)

    @torch.inference_mode()
    def pair_stats(
        self,
        pairs: torch.Tensor,
        on_chunk: Callable[[int, Stats], None],
        cancel: threading.Event | None = None,
    ) -> bool:
        """Pair rows through the head's own shortcut where it has one (a linear head's rank-one update).

        Stats of each block of pairs go to `on_chunk(start, stats)` as in `stats`; False (nothing run)
        when the backend's head has no shortcut, and the caller decodes the pair maps instead.
        """
        if not self.backend.has_pair_outputs():
            return False
        n_img, pairs = len(self.set), pairs.to(self.device)
        per_pair = n_img * self.backend.pair_output_size()
        block = max(1, PAIR_OUTPUT_BUDGET // per_pair)
        for start in range(0, len(pairs), block):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled by the user; finished results are kept.")
            t0 = time.perf_counter()
            out = self.backend.pair_outputs(self.set.feats, pairs[start : start + block])  # (P, B, ...)
            rows = [self._measure(out[:, b], b, PAIR_MEASURE_BUDGET) for b in range(n_img)]
            values = torch.stack(rows, 1).cpu().numpy()  # (P, B, K)
            self.pair_rows += values.shape[0] * n_img
            self.pair_seconds += time.perf_counter() - t0
            on_chunk(start, Stats(values))
        return True

    def seconds_per_pair_row(self) -> float:
        """Time of one (pair, image) row of pair scoring: the head's shortcut where it has one (measured on
        a probe block, then on the work run so far), else a decoder row (`seconds_per_row`)."""
        if not self.backend.has_pair_outputs():
            return self.seconds_per_row()
        if self.pair_rows < PROBE_PAIRS * len(self.set):
            probe = torch.tensor([[0, 1]], device=self.device).expand(PROBE_PAIRS, 2)
            self.pair_stats(probe, lambda *_: None)
        return self.pair_seconds / self.pair_rows

    def stats_plain(self, maps: torch.Tensor, alphas: torch.Tensor | None = None) -> Stats:
        """Reference path: one variant on one image per call of the package's decoder, no batching."""
        maps = maps.to(self.device)
        alphas = alphas.to(self.device) if alphas is not None else None
        n_img = len(self.set)
        block = self._rows_stats(maps, *_rows(len(maps), n_img, maps.device), pad=False, alphas=alphas)
        return Stats(block.view(len(maps), n_img, -1).cpu().numpy())

    @torch.inference_mode()
    def logits(
        self, f: torch.Tensor | None = None, images: list[int] | None = None, alpha: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Predicted logits (H, W) per image under map f (identity when None; `alpha` (C,): soft), same-shape calls."""
        f = (identity_map(self.channels) if f is None else f).to(self.device)[None]
        soft = alpha.to(self.device)[None].expand(self.rows, -1) if alpha is not None else None
        wanted = torch.tensor(list(range(len(self.set))) if images is None else images, device=f.device)
        out: list[torch.Tensor] = []
        for start in range(0, len(wanted), self.rows):
            img = wanted[start : start + self.rows]
            low = self._decode(f.expand(self.rows, -1), _pad(img, self.rows), alphas=soft)[: len(img)]
            out += [self.backend.upscale(low[k : k + 1], self.set.metas[b])[0] for k, b in enumerate(img.tolist())]
        return out


@dataclass
class ScoreProgress:
    """One finished block of pairs: `pairs` (P, 2) as (source, target) and their `gains` (P,).

    `gains` are in the scorer's metric. `miou_gain` / `loss_gain` are the scorer's live C x C
    matrices (read them, e.g. to checkpoint; do not write).
    """

    done: int
    total: int
    pairs: np.ndarray
    gains: np.ndarray
    elapsed: float
    miou_gain: np.ndarray | None = None
    loss_gain: np.ndarray | None = None


@dataclass
class PairScores:
    """Pair gains. `gain[i, j]` is the gain when channel i takes channel j's values (NaN: not scored).

    miou_gain = score(X') - score(X): the task's score (mIoU points for segmentation; accuracy points,
    or minus RMSE / AbsRel, elsewhere: always positive is better); loss_gain = loss(X) - loss(X').
    `gain` is the one the search ranks by (`metric`), the other breaks ties.
    """

    metric: str
    miou_gain: np.ndarray
    loss_gain: np.ndarray
    baseline_miou: float
    baseline_loss: float
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)
    alpha: np.ndarray | None = None  # soft scan: the alpha of each pair's best gain (1: the plain replacement)

    def alpha_of(self, i: int, j: int) -> float:
        """The alpha pair (i, j) is used with (1 unless a soft scan found a better one)."""
        return 1.0 if self.alpha is None else float(self.alpha[i, j])

    @property
    def gain(self) -> np.ndarray:
        return self.loss_gain if self.metric == LOSS else self.miou_gain

    @property
    def tiebreak(self) -> np.ndarray:
        return self.miou_gain if self.metric == LOSS else self.loss_gain


def channel_pairs(sources: list[int], targets: list[int], channels: int) -> torch.Tensor:
    """All ordered (i, j), i in sources, j in targets, i != j, sorted -> (P, 2) long."""
    src = sorted({check_channel(c, channels) for c in sources})
    tgt = sorted({check_channel(c, channels) for c in targets})
    if not src or not tgt:
        raise ReplacementError("no channels to score; give at least one source and one target channel.")
    grid = torch.cartesian_prod(torch.tensor(src), torch.tensor(tgt)).reshape(-1, 2)
    grid = grid[grid[:, 0] != grid[:, 1]]
    if len(grid) == 0:
        raise ReplacementError("every source equals its only target; add more channels.")
    return grid


class PairScorer:
    """Scores channel-replacement pairs on an evaluator; one verb: `score`."""

    def __init__(self, evaluator: Evaluator, metric: str | None = None):
        task = evaluator.set.task
        self.metric = metric or task.metrics[0].name
        self.score_metric = task.metric(self.metric).name  # the score reported beside (or ranked by)
        self.evaluator = evaluator
        self._baseline: tuple[float, float] | None = None
        self.baseline_stats: Stats | None = None  # per image, once `baseline` has run
        self.keep_groups = False  # keep every scored pair's per-group scores (cross-validated selection)
        self.group_pairs: np.ndarray | None = None  # (P, 3): the (source, target, alpha) rows of the latest `score`
        self.group_scores: np.ndarray | None = None  # (P, G): their per-group scores (NaN: not scored here)

    def baseline(self, cancel: threading.Event | None = None) -> tuple[float, float]:
        """(mIoU %, loss) of the unmodified features, computed once."""
        if self._baseline is None:
            stats = self.evaluator.stats(identity_map(self.evaluator.channels)[None], cancel=cancel)
            miou, loss = self.evaluator.summarize(stats, self.score_metric)
            self._baseline = (float(miou[0]), float(loss[0]))
            self.baseline_stats = stats  # per image, for confidence intervals of every gain against it
        return self._baseline

    def score(
        self,
        pairs: torch.Tensor | None = None,
        on_progress: Callable[[ScoreProgress], None] | None = None,
        cancel: threading.Event | None = None,
        plain: bool = False,
        known: tuple[np.ndarray, np.ndarray] | None = None,
        alpha: float = 1.0,
    ) -> PairScores:
        """Score `pairs` (P, 2) (default: all C^2 - C) batched, or one call at a time if `plain`.

        `known` (miou_gain, loss_gain) from an interrupted run: pairs already scored there are kept.
        `alpha` < 1 scores soft pairs (i, j, alpha) through the decoder (the linear heads' shortcut is exact
        for alpha 1 only).
        """
        c = self.evaluator.channels
        pairs = channel_pairs(range(c), range(c), c) if pairs is None else pairs
        base_miou, base_loss = self.baseline(cancel)
        if known is None:
            miou_gain = np.full((c, c), np.nan, np.float32)
            loss_gain = np.full((c, c), np.nan, np.float32)
        else:
            miou_gain, loss_gain = known[0].copy(), known[1].copy()
        pending = np.isnan(miou_gain[pairs[:, 0].numpy(), pairs[:, 1].numpy()])
        todo = pairs[torch.from_numpy(pending)]
        position = np.flatnonzero(pending)  # of each todo pair in `pairs`
        if self.keep_groups:
            groups = self.evaluator.per_group(self.baseline_stats, self.score_metric).shape[1]
            self.group_pairs = pair_rows(pairs.numpy(), alpha)
            self.group_scores = np.full((len(pairs), groups), np.nan, np.float32)
        t0 = time.perf_counter()
        done = len(pairs) - len(todo)

        def record(start: int, chunk: Stats) -> None:
            nonlocal done
            miou, loss = self.evaluator.summarize(chunk, self.score_metric)
            if self.keep_groups:
                self.group_scores[position[start : start + len(miou)]] = self.evaluator.per_group(
                    chunk, self.score_metric
                )
            ij = todo[start : start + len(miou)].numpy()
            miou_gain[ij[:, 0], ij[:, 1]] = miou - base_miou
            loss_gain[ij[:, 0], ij[:, 1]] = base_loss - loss
            done += len(miou)
            if on_progress:
                gains = (loss_gain if self.metric == LOSS else miou_gain)[ij[:, 0], ij[:, 1]]
                on_progress(ScoreProgress(done, len(pairs), ij, gains, time.perf_counter() - t0, miou_gain, loss_gain))

        soft = pair_alphas(todo, alpha, c) if alpha != 1.0 else None
        if plain:
            maps = pair_maps(todo, c)
            for k in range(len(maps)):
                if cancel is not None and cancel.is_set():
                    raise Cancelled("cancelled by the user.")
                record(k, self.evaluator.stats_plain(maps[k : k + 1], None if soft is None else soft[k : k + 1]))
        elif soft is not None or not self.evaluator.pair_stats(todo, on_chunk=record, cancel=cancel):
            self.evaluator.stats(pair_maps(todo, c), on_chunk=record, cancel=cancel, alphas=soft)
        return PairScores(self.metric, miou_gain, loss_gain, base_miou, base_loss, time.perf_counter() - t0)
