"""The batched evaluator: channel-mapped features of one image set -> head outputs -> per-(variant, image) stats.

Every batched decoder call has a fixed shape (padded), so a (map, image) row's numbers never depend on
its neighbours in a batch; the plain reference loop runs one row per call through the package's modules.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import time
from collections.abc import Callable

import numpy as np
import torch

from ..errors import Cancelled, DeviceError, ReplacementError
from ..io import env_number
from ..models import Backend
from ..replace import identity_map, set_maps
from ..tasks import Stats
from .evalset import EvalSet
from .pace import Pace

# Feature tokens x decoder rows per call, by device. On CPU big decoder batches are no faster per
# row (sam_vit_b 64x64 tokens: 2-16 rows per call are within noise), so batches stay small there;
# small grids (sam_tiny) gain ~5x from batching (benchmarks/). On CUDA the bound is memory: a
# 64x64-token row peaks at ~21 MB through decoder and metric (measured on CPU), so 2^19 tokens =
# 128 rows ~ 2.7 GB, inside issue 6's 4 GB budget with the cached features (untested on a GPU).
ROW_TOKENS = {"cpu": 1 << 14, "cuda": 1 << 19}
MAX_ROWS = {"cpu": 32, "cuda": 1024}
MAX_BATCH_ROWS = 1 << 16  # what a user may ask for: beyond it even a GPU's calls stop fitting (and out-of-memory
# back-off would start from a request that allocates for minutes)
# How the batched path's decoder multiplies: fp32; tf32 (float32 matmuls on CUDA's TF32 tensor cores: the same as
# fp32 on a CPU); bf16 (autocast: matrix products in bfloat16, norms and softmax in fp32; fast on GPUs and on CPUs
# with bf16 units). Logits leave in fp32 and the metrics accumulate in fp64 in every case.
PRECISIONS = ("fp32", "tf32", "bf16")
CALIBRATED_CALLS = 4  # batched calls of real work before their median replaces the timed-call estimate
TIMED_CALLS = 5  # calls timed (after a warm-up) for the first estimate, before any work has run
UPSCALE_BUDGET = 1 << 26  # floats per upscaling step, bounds peak memory at original resolution
PROBE_PAIRS = 256  # pairs first timed to estimate the pair shortcut's rate before real work has run
PROBE_SECONDS = 0.25  # a probe quicker than this is repeated 8x larger (per-call costs amortised as in real blocks)
PAIR_MEASURE_BUDGET = 1 << 20  # floats per measuring step there: cache-sized blocks, 4x faster than 1 << 26 (CPU)
PAIR_OUTPUT_BUDGET = env_number("REDUNDANCY_PAIR_OUTPUTS", 1 << 23)  # head outputs per rank-one block (float64)


def check_rows(rows: object) -> None:
    """Decoder rows per call: None (the device default) or a whole number from 1 to MAX_BATCH_ROWS."""
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= MAX_BATCH_ROWS):
        raise ReplacementError(
            f"decoder rows per call (batch rows) must be a whole number from 1 to {MAX_BATCH_ROWS:,}, got {rows!r}; "
            "leave it empty for the device default."
        )


_TF32_LOCK = threading.Lock()  # TF32 is a process-wide switch: held while a tf32 call runs


@contextlib.contextmanager
def precision_context(precision: str, device: torch.device):
    """The decoder's arithmetic for one call (`PRECISIONS`); logits leave in fp32, so upscaling and the metric
    sums are the same code in every precision."""
    if precision == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    elif precision == "tf32" and device.type == "cuda":
        with _TF32_LOCK:
            before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
            try:
                yield
            finally:
                torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
    else:
        yield


def _compiled(fn: Callable, device: torch.device) -> Callable:
    """`fn` through torch.compile for fixed shapes (CUDA: with CUDA graphs, "reduce-overhead")."""
    mode = "reduce-overhead" if device.type == "cuda" else None
    return torch.compile(fn, dynamic=False, mode=mode)


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
        rows: int | None = None,
        precision: str = "fp32",
        compile: bool = False,
    ):
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}.")
        self.compile = compile
        # the batched decoder call has one shape (padded), so it compiles once: `torch.compile` (CUDA graphs on GPU)
        self._decode_fn = _compiled(backend.decode, backend.device) if compile else backend.decode
        check_rows(rows)
        self.backend = backend
        self.set = evalset
        self.precision = precision
        self.auto_rows = default_rows(backend.device, evalset.feats.shape[2] * evalset.feats.shape[3])
        self.rows = rows or self.auto_rows
        self.rows_backoff: list[int] = []  # row sizes adopted after running out of memory
        self.observed_rows = 0  # batched work run so far
        self.pair_rows, self.pair_seconds = 0, 0.0  # the same for the head's pair shortcut (`pair_stats`)
        self.pace = Pace()  # the recent batched calls of real work: the rate estimates read once there are a few
        self._probe = Pace()  # calls timed before any work ran (`row_pace`)
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
        """Time of one (map, image) row, for honest estimates: the median of the recent batched calls run on this
        evaluator once there are a few, else of a few timed full-size calls (after a warm-up)."""
        return self.row_pace().seconds()

    def row_pace(self) -> Pace:
        """The timed calls `seconds_per_row` reads (their spread gives an estimate's range): the recent real work,
        else a few full-size calls timed now."""
        if len(self.pace) >= CALIBRATED_CALLS:
            return self.pace
        if not len(self._probe):
            maps = identity_map(self.channels)[None].to(self.device)
            idx = torch.zeros(self.rows, dtype=torch.long, device=self.device)
            # rows over many images, as real calls read them: rows of one image ran 1.34x faster than real work
            img = torch.arange(self.rows, device=self.device) % len(self.set)
            self._rows_stats(maps, idx, img, pad=True)  # warm-up
            for _ in range(TIMED_CALLS):  # one call alone misjudged a 2-minute search by up to 1.5x here
                with self._probe.timing(self.rows):
                    self._rows_stats(maps, idx, img, pad=True)
                    if self.device.type == "cuda":
                        torch.cuda.synchronize()
        return self._probe

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
        out = self.backend.decode(feats, self.set.context.take([b]))
        return self.set.task.row_loss(out, self.set.target(b), self.upscaler(b))

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
            return self.backend.decode(feats, self.set.context.take(img), reference=True)
        # The same values in channels-last memory, the layout the re-associated decoder reads.
        rows = self._ext_tokens[img]
        tokens = torch.gather(rows, 2, maps[:, None, :].expand(-1, rows.shape[1], -1))  # (R, h*w, C)
        if alphas is not None:
            a = alphas[:, None, :].to(tokens.dtype)
            tokens = (1 - a) * rows[:, :, : self.channels] + a * tokens  # alpha 1 reads the copy exactly
        feats = tokens.transpose(1, 2).unflatten(2, self.set.feats.shape[2:])
        with precision_context(self.precision, feats.device):
            out = self._decode_fn(feats, self._context_cl.take(img))
        return out if out.dtype == torch.float64 else out.float()  # linear heads compute in float64: kept

    def _measure(self, low: torch.Tensor, b: int, budget: int = UPSCALE_BUDGET, targets=None) -> torch.Tensor:
        """Head outputs (P, ...) of image b -> (P, K) task stats at the target's resolution, `budget` floats a step.

        `targets` (P, ...): one target per row, for rows of several images of b's size (`_measure_rows`).
        """
        h, w = self.set.metas[b].original_hw
        step = max(1, budget // (h * w + self.backend.model_input_pixels))
        up = self.upscaler(b)
        measure = self.set.task.measure
        if targets is None:
            return torch.cat([measure(low[s : s + step], self.set.target(b), up) for s in range(0, len(low), step)])
        return torch.cat([measure(low[s : s + step], targets[s : s + step], up) for s in range(0, len(low), step)])

    @functools.cached_property
    def _size_groups(self) -> tuple[torch.Tensor, list[int], list[torch.Tensor]] | None:
        """Images grouped by size (same original and input size: the same upscaling) with their targets stacked,
        so one measuring step covers the rows of many images: (group of each image (B,), an image of each
        group, each group's targets stacked in image order). None when the task measures image by image."""
        es = self.set
        if not es.task.stackable or any(t is None for t in es.targets):
            return None
        sizes = [(m.original_hw, m.input_hw) for m in es.metas]
        kinds = list(dict.fromkeys(sizes))
        group = torch.tensor([kinds.index(k) for k in sizes], device=self.device)
        first = [sizes.index(k) for k in kinds]
        stacked = [torch.stack([es.target(b) for b, k in enumerate(sizes) if k == kind]) for kind in kinds]
        return group, first, stacked

    def _measure_rows(self, low: torch.Tensor, imgs: torch.Tensor) -> torch.Tensor:
        """Stats (R, K) of one call's rows (head outputs `low` of images `imgs`): a measuring step per image size
        (the same numbers as image by image: each row's upscaling and sums do not depend on its neighbours)."""
        out = torch.empty(len(imgs), len(self.set.task.columns), dtype=torch.float64, device=self.device)
        groups = self._size_groups
        if groups is None:
            for b in imgs.unique().tolist():
                hit = (imgs == b).nonzero()[:, 0]
                out[hit] = self._measure(low[hit], b)
            return out
        group, first, stacked = groups
        position = self._group_position
        row_group = group[imgs]
        for g in row_group.unique().tolist():
            hit = (row_group == g).nonzero()[:, 0]
            out[hit] = self._measure(low[hit], first[g], targets=stacked[g][position[imgs[hit]]])
        return out

    @functools.cached_property
    def _group_position(self) -> torch.Tensor:
        """Each image's index among the images of its size group (B,)."""
        groups = self._size_groups
        assert groups is not None, "positions are read for sets measured by size group"
        group = groups[0]
        position = torch.empty_like(group)
        for g in group.unique().tolist():
            members = (group == g).nonzero()[:, 0]
            position[members] = torch.arange(len(members), device=self.device)
        return position

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
            out[sel] = self._measure_rows(low, img_idx[sel])
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
                with self.pace.timing(len(chunk_maps) * n_img):
                    rows = _rows(len(chunk_maps), n_img, maps.device)
                    block = self._rows_stats(chunk_maps, *rows, pad=True, alphas=chunk_alphas)
                    values = block.view(len(chunk_maps), n_img, -1).cpu().numpy()  # .cpu() waits for the device
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
            self.observed_rows += len(chunk_maps) * n_img
            chunk = Stats(values)
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
        n, block = PROBE_PAIRS, max(1, PAIR_OUTPUT_BUDGET // (len(self.set) * self.backend.pair_output_size()))
        while self.pair_rows < n * len(self.set):  # timeit's autorange: until a probe takes long enough to tell
            seconds = self.pair_seconds
            self.pair_stats(torch.tensor([[0, 1]], device=self.device).expand(n, 2), lambda *_: None)
            if self.pair_seconds - seconds >= PROBE_SECONDS or n >= block:
                break
            n = min(8 * n, block)
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
