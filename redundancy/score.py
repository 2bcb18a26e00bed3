"""Scoring edited features: an image set on the device, a batched evaluator and the pair scorer.

The evaluator turns channel maps (V, C) into per-(variant, image) stats; the pair scorer
runs it over every ordered pair and returns the C x C gain matrix.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from .data import Dataset, image_size, load_mask
from .errors import Cancelled, DataError, ReplacementError
from .features import FeatureCache
from .metrics import METRICS, Stats, group_ids, mask_stats, reduce
from .models import Backend, ImageMeta, PromptEmbedding
from .prompts import prompt_from_mask
from .replace import apply_maps, check_channel, identity_map, pair_maps

DEFAULT_ROWS = {"cpu": 32, "cuda": 512}  # decoder rows per call; measured, see benchmarks/
UPSCALE_BUDGET = 1 << 26  # floats per upscaling step, bounds peak memory at original resolution


@dataclass
class EvalSet:
    """An image set ready for decoding: features (B, C, h, w), prompts, GT masks, metric groups."""

    names: list[str]
    feats: torch.Tensor
    prompts: PromptEmbedding
    metas: list[ImageMeta]
    masks: list[torch.Tensor | None]  # None: no GT (predictions only)
    groups: np.ndarray

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
    ) -> EvalSet:
        """Encode (through the cache) and load GT for every sample of `dataset` (GT optional for `none`)."""
        if prompt != "none" and not dataset.has_masks:
            raise DataError(f"'{prompt}' prompts come from GT masks, but some images have none; use --prompt none.")
        feats = cache.features(backend, [s.image_path for s in dataset.samples], on_progress)
        masks = [load_mask(s.mask_path) if s.mask_path else None for s in dataset.samples]
        sizes = [m.shape if m is not None else image_size(s.image_path) for m, s in zip(masks, dataset.samples)]
        metas = [backend.meta(hw) for hw in sizes]
        prompts = backend.embed_prompts([prompt_from_mask(m, prompt) for m in masks], metas)
        gts = [torch.from_numpy(m).to(backend.device) if m is not None else None for m in masks]
        groups = group_ids([s.group for s in dataset.samples], protocol)
        return cls([s.name for s in dataset.samples], feats, prompts, metas, gts, groups)


class Evaluator:
    """Runs the decoder on channel-mapped features of one EvalSet and measures the masks."""

    def __init__(self, backend: Backend, evalset: EvalSet, mask_choice: str = "single", rows: int | None = None):
        self.backend = backend
        self.set = evalset
        self.mask_choice = mask_choice
        self.rows = rows or DEFAULT_ROWS.get(backend.device.type, 64)
        self.channels = evalset.feats.shape[1]

    def summarize(self, stats: Stats) -> tuple[np.ndarray, np.ndarray]:
        """(mIoU %, loss) per variant, each (V,)."""
        return reduce(stats, self.set.groups)

    def _measure(self, low: torch.Tensor, b: int) -> torch.Tensor:
        """Low-res logits (P, h', w') of image b -> (P, 3) [inter, union, loss] at original size."""
        h, w = self.set.metas[b].original_hw
        step = max(1, UPSCALE_BUDGET // (h * w + self.backend.model_input_pixels))
        parts = []
        for s in range(0, len(low), step):
            logits = self.backend.upscale(low[s : s + step], self.set.metas[b])
            parts.append(torch.stack([t.double() for t in mask_stats(logits, self.set.masks[b])], 1))
        return torch.cat(parts)

    @torch.inference_mode()
    def _block(self, maps: torch.Tensor, images: list[int]) -> np.ndarray:
        """Stats for maps (P, C) on the given images in one decoder call -> (P, K, 3)."""
        p = len(maps)
        feats = torch.cat([apply_maps(self.set.feats[b], maps) for b in images])  # (K*P, C, h, w)
        rows = torch.tensor(images, device=feats.device).repeat_interleave(p)
        low = self.backend.decode(feats, self.set.prompts.take(rows), self.mask_choice)
        return torch.stack([self._measure(low[k * p : (k + 1) * p], b) for k, b in enumerate(images)], 1).cpu().numpy()

    def stats(
        self,
        maps: torch.Tensor,
        on_chunk: Callable[[int, Stats], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Stats:
        """Batched: maps (V, C) -> Stats (V, B); `on_chunk(start, chunk_stats)` after each map chunk."""
        maps = maps.to(self.set.feats.device)
        n_img = len(self.set)
        per_call = min(n_img, self.rows)
        p = max(1, self.rows // per_call)
        chunks = []
        for start in range(0, len(maps), p):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled by the user; finished results are kept.")
            block = np.concatenate(
                [self._block(maps[start : start + p], list(range(i, min(i + per_call, n_img))))
                 for i in range(0, n_img, per_call)], axis=1)
            chunk = Stats(block[..., 0], block[..., 1], block[..., 2])
            chunks.append(chunk)
            if on_chunk:
                on_chunk(start, chunk)
        return Stats.concat(chunks, 0)

    def stats_plain(self, maps: torch.Tensor) -> Stats:
        """Reference path: one variant on one image per decoder call, no batching at all."""
        maps = maps.to(self.set.feats.device)
        rows = [[self._block(m[None], [b])[0, 0] for b in range(len(self.set))] for m in maps]
        block = np.array(rows)  # (V, B, 3)
        return Stats(block[..., 0], block[..., 1], block[..., 2])

    @torch.inference_mode()
    def logits(self, f: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Predicted logits (H, W) per image under map f (identity when None)."""
        f = identity_map(self.channels) if f is None else f
        f = f.to(self.set.feats.device)
        out = []
        for b in range(len(self.set)):
            low = self.backend.decode(apply_maps(self.set.feats[b], f[None]), self.set.prompts.take([b]),
                                      self.mask_choice)
            out.append(self.backend.upscale(low, self.set.metas[b])[0])
        return out


@dataclass
class ScoreProgress:
    """One finished block of pairs: `pairs` (P, 2) as (source, target) and their `gains` (P,)."""

    done: int
    total: int
    pairs: np.ndarray
    gains: np.ndarray
    elapsed: float


@dataclass
class PairScores:
    """Pair gains. `gain[i, j]` is the gain when channel i takes channel j's values (NaN: not scored).

    miou_gain = mIoU(X') - mIoU(X) in points; loss_gain = loss(X) - loss(X') (positive is better);
    `gain` is the one the search ranks by (`metric`), the other breaks ties.
    """

    metric: str
    miou_gain: np.ndarray
    loss_gain: np.ndarray
    baseline_miou: float
    baseline_loss: float
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def gain(self) -> np.ndarray:
        return self.miou_gain if self.metric == "miou" else self.loss_gain

    @property
    def tiebreak(self) -> np.ndarray:
        return self.loss_gain if self.metric == "miou" else self.miou_gain


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

    def __init__(self, evaluator: Evaluator, metric: str = "miou"):
        if metric not in METRICS:
            raise ValueError(f"unknown metric '{metric}'; use one of {', '.join(METRICS)}.")
        self.evaluator = evaluator
        self.metric = metric
        self._baseline: tuple[float, float] | None = None

    def baseline(self) -> tuple[float, float]:
        """(mIoU %, loss) of the unmodified features, computed once."""
        if self._baseline is None:
            stats = self.evaluator.stats(identity_map(self.evaluator.channels)[None])
            miou, loss = self.evaluator.summarize(stats)
            self._baseline = (float(miou[0]), float(loss[0]))
        return self._baseline

    def score(
        self,
        pairs: torch.Tensor | None = None,
        on_progress: Callable[[ScoreProgress], None] | None = None,
        cancel: threading.Event | None = None,
        plain: bool = False,
    ) -> PairScores:
        """Score `pairs` (P, 2) (default: all C^2 - C) batched, or one call at a time if `plain`."""
        c = self.evaluator.channels
        pairs = channel_pairs(range(c), range(c), c) if pairs is None else pairs
        base_miou, base_loss = self.baseline()
        miou_gain = np.full((c, c), np.nan, np.float32)
        loss_gain = np.full((c, c), np.nan, np.float32)
        t0 = time.perf_counter()
        done = 0

        def record(start: int, chunk: Stats) -> None:
            nonlocal done
            miou, loss = self.evaluator.summarize(chunk)
            ij = pairs[start : start + len(miou)].numpy()
            miou_gain[ij[:, 0], ij[:, 1]] = miou - base_miou
            loss_gain[ij[:, 0], ij[:, 1]] = base_loss - loss
            done += len(miou)
            if on_progress:
                gains = miou - base_miou if self.metric == "miou" else base_loss - loss
                on_progress(ScoreProgress(done, len(pairs), ij, gains, time.perf_counter() - t0))

        maps = pair_maps(pairs, c)
        if plain:
            for k in range(len(maps)):
                if cancel is not None and cancel.is_set():
                    raise Cancelled("cancelled by the user.")
                record(k, self.evaluator.stats_plain(maps[k : k + 1]))
        else:
            self.evaluator.stats(maps, on_chunk=record, cancel=cancel)
        return PairScores(self.metric, miou_gain, loss_gain, base_miou, base_loss, time.perf_counter() - t0)
