"""The demo models: test-size architectures trained from scratch here on a synthetic source domain.

They are not SAM, SAM2 or DINOv2: they are small models this repository trains (seeded, on a CPU, in
minutes) so that the method has something real to act on offline. Each architecture has a `Recipe`
(its batches and loss, its held-out source score, what its record says); the loop, the schedule
(AdamW, warm-up, cosine decay, a new batch of source images every step), the float16 file and the
models.json record are shared. This module holds that machinery and the segmentation recipe (SAM,
SAM2): fresh seeded weights, no prompt (the paper's single-mask setting), Dice + BCE on every mask
token's output (so the single, best and SAM2's stability-fallback outputs all segment the object);
the held-out source mIoU is measured through the tool's own prediction path (`Backend.predict`, the
re-associated decoder) on a fixed regenerated test set. `vit_demo.py` holds the DINOv2 recipe.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data import synthetic
from ..data.prompts import Prompt
from ..errors import ConfigError, RunError
from ..io import atomic_write, ensure_folder
from ..models import Backend, build_backend
from ..models._registry import DEMO_DIR, DEMO_MANIFEST
from ..models._weights import DEMO_LABEL
from ..models.base import FEATURES
from ..models.prompted import ALL_MASKS
from ..registry import Registry

TEST_SEED = 20260  # the segmentation source test set: regenerated from this seed wherever it is needed
TEST_IMAGES = 100


@dataclass(frozen=True)
class TrainConfig:
    """One demo model's training run; written next to the checkpoint so it can be repeated."""

    base: str = "sam_tiny"  # registry name of the architecture
    steps: int = 3000  # the shipped models: plateaued by then (assets/README.md)
    batch: int = 16
    lr: float = 1e-3
    warmup: int = 30
    weight_decay: float = 0.01
    seed: int = 0
    eval_every: int = 150

    def __post_init__(self) -> None:
        """Refuse a run no step could make a model from, before any training (flags are named as train-demo's)."""
        for name in ("steps", "batch", "eval_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} {value}: give a whole number of at least 1.")
        if self.warmup < 0:
            raise ConfigError(f"warm-up {self.warmup}: give 0 or more steps.")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"--lr {self.lr}: give a positive learning rate, e.g. 1e-3.")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"weight decay {self.weight_decay}: give 0 or a positive number.")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"--seed {self.seed}: give a whole number from 0 to 2^32 - 1.")


class Recipe(ABC):
    """How one architecture becomes its demo model: its batches and loss, its held-out source score, its record."""

    name: str  # registry name of the demo model it makes
    defaults: TrainConfig  # its training run as shipped (`train-demo` flags override it)
    label: str = DEMO_LABEL  # what every output calls it

    def heads(self, backend: Backend) -> torch.nn.Module | None:
        """Modules trained beside the model and not shipped (a ViT's task heads); None: the model's own.

        Called once before training starts: where a recipe also sets up the fresh model."""
        return None

    @abstractmethod
    def loss(self, backend: Backend, heads: torch.nn.Module | None, rng: np.random.Generator, n: int) -> torch.Tensor:
        """The loss on a fresh batch of n source images drawn from `rng` (differentiable)."""

    @abstractmethod
    def score(self, backend: Backend) -> dict[str, float]:
        """Held-out source scores of the model as it is, {name: value}; the first is the one a curve plots."""

    @abstractmethod
    def record(self, scores: dict[str, float]) -> dict:
        """What models.json says of the final scores (and how they were measured)."""


class SegmentRecipe(Recipe):
    """SAM / SAM2 at test size: unprompted Dice + BCE on every mask token, held-out source mIoU."""

    def __init__(self, name: str, base: str):
        self.name, self.defaults = name, TrainConfig(base)

    def loss(self, backend, heads, rng, n):
        images, masks = synthetic.batch("source", n, rng)
        return dice_bce(mask_logits(backend, images), torch.from_numpy(masks).to(backend.device))

    def score(self, backend):
        return {"source_miou": source_miou(backend, *source_test_set())}

    def record(self, scores):
        return {
            "source_miou": round(scores["source_miou"], 3),
            "source_test": {"images": TEST_IMAGES, "seed": TEST_SEED, "protocol": "image"},
        }


RECIPES: Registry[Recipe] = Registry(
    "demo recipe"
)  # architecture (registry name) -> its demo model's recipe; `vit_demo` adds DINOv2's


def register_recipe(recipe: Recipe) -> None:
    """Make `train-demo --model <its architecture>` train `recipe`'s demo model."""
    RECIPES.add(recipe.defaults.base, recipe)


register_recipe(SegmentRecipe("sam_tiny_demo", "sam_tiny"))
register_recipe(SegmentRecipe("sam2_tiny_demo", "sam2_tiny_narrow"))


def source_test_set(n: int = TEST_IMAGES, seed: int = TEST_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The held-out source images (n, S, S, 3) uint8 and masks (n, S, S) bool; identical for a seed."""
    return synthetic.batch("source", n, np.random.default_rng(seed))


def mask_logits(backend: Backend, images: np.ndarray, encoded: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Every mask token's logits at image size (B, M, S, S) for square images, no prompt; differentiable.

    `encoded`: the images' encoder outputs where the encoder is frozen (`Backend.encode`); computed here otherwise."""
    if encoded is None:
        encoded = backend.forward_features(torch.stack([backend.preprocess(im) for im in images]))
    metas = [backend.meta(im.shape[:2]) for im in images]
    ctx = backend.context(encoded, [Prompt() for _ in images], metas, ALL_MASKS)
    low = backend.decode(encoded[FEATURES], ctx, reference=True)  # (B, M, h', w')
    # For a square image at the model's input size both families' postprocessing is one bilinear resize.
    return F.interpolate(low, images.shape[1:3], mode="bilinear", align_corners=False)


def dice_bce(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mean Dice + BCE of logits (B, M, H, W) against masks (B, H, W), every token the same target."""
    target = masks[:, None].float().expand_as(logits)
    bce = F.binary_cross_entropy_with_logits(logits, target)
    prob = logits.sigmoid()
    dice = 1 - (2 * (prob * target).sum((2, 3)) + 1) / (prob.sum((2, 3)) + target.sum((2, 3)) + 1)
    return bce + dice.mean()


@torch.no_grad()
def source_miou(backend: Backend, images: np.ndarray, masks: np.ndarray, batch: int = 25) -> float:
    """Mean per-image IoU (percent) of the unmodified single-mask prediction, through `Backend.predict`."""
    ious = []
    for s in range(0, len(images), batch):
        ims = list(images[s : s + batch])
        logits = backend.predict(ims, [Prompt() for _ in ims])
        for lg, gt in zip(logits, masks[s : s + batch]):
            pred, gt_t = (lg > 0).cpu(), torch.from_numpy(gt)
            ious.append(float((pred & gt_t).sum()) / max(float((pred | gt_t).sum()), 1.0))
    return 100.0 * float(np.mean(ious))


def cosine_lr(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up to `lr` over `warmup` steps, then cosine decay to 0 at `steps`."""
    if step < warmup:
        return lr * (step + 1) / warmup
    return 0.5 * lr * (1 + math.cos(math.pi * (step - warmup) / max(steps - warmup, 1)))


def fit(
    params: list[torch.nn.Parameter],
    loss_fn: Callable[[int], torch.Tensor],
    steps: int,
    lr: float,
    warmup: int,
    weight_decay: float,
    on_step: Callable[[int, float], None] | None = None,
) -> None:
    """AdamW on `params` for `steps` steps of `loss_fn(step)`, warm-up + cosine lr, gradients clipped at 1.

    `on_step(step, loss)` after each step (1-based): where a caller evaluates and logs."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, warmup)
        loss = loss_fn(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if on_step:
            on_step(step + 1, loss.item())


def train(backend: Backend, cfg: TrainConfig, log: Callable[[str], None] = print) -> list[dict]:
    """Train `backend.model` in place on the source domain (`cfg.base`'s recipe); the curve
    [{step, loss, <source scores>, s}]."""
    recipe = RECIPES[cfg.base]
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = backend.model.requires_grad_(True)
    heads = recipe.heads(backend)
    params = [p for m in (model, heads) if m is not None for p in m.parameters() if p.requires_grad]
    curve, losses, t0 = [], [], time.perf_counter()

    def on_step(step: int, loss: float) -> None:
        losses.append(loss)
        if step % cfg.eval_every and step != cfg.steps:
            return
        model.requires_grad_(False)
        scores = recipe.score(backend)
        model.requires_grad_(True)
        point = {"step": step, "loss": float(np.mean(losses[-cfg.eval_every :])), **scores}
        point["s"] = round(time.perf_counter() - t0, 1)
        curve.append(point)
        shown = "  ".join(f"{k.replace('_', ' ')} {v:6.3f}" for k, v in scores.items())
        log(f"step {step:5d}  loss {point['loss']:.4f}  {shown}  ({point['s']:.0f} s)")

    fit(params, lambda _s: recipe.loss(backend, heads, rng, cfg.batch), cfg.steps, cfg.lr, cfg.warmup,
        cfg.weight_decay, on_step)  # fmt: skip
    model.requires_grad_(False)
    return curve


def fp16_state_bytes(backend: Backend) -> bytes:
    """The image path's state dict (`Backend.image_path`) in float16, serialised by torch.save (deterministic)."""
    state = {
        k: (v.half() if v.is_floating_point() else v).contiguous()
        for k, v in backend.model.state_dict().items()
        if k.startswith(backend.image_path)
    }
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def record(cfg: TrainConfig, curve: list[dict], blob: bytes, final: dict[str, float]) -> dict:
    """What models.json says about one shipped demo checkpoint."""
    recipe = RECIPES[cfg.base]
    own = recipe.record(final)
    label = {"label": recipe.label} if recipe.label != DEMO_LABEL else {}
    return {
        "base": cfg.base,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "bytes": len(blob),
        **label,
        **own,
        "train": asdict(cfg),
        "curve": curve,
        "torch": torch.__version__,
    }


def read_demo_manifest(out_dir: Path) -> dict[str, dict]:
    """`out_dir` checked as a folder to write a demo model into (created, writable) and its models.json (empty when
    there is none); RunError naming the problem, before any training, for a file, a read-only folder or a
    models.json that is not one this command writes (each entry an object with its file and sha256)."""
    ensure_folder(out_dir)
    path = out_dir / DEMO_MANIFEST
    if not path.exists():
        return {}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as e:
        raise RunError(f"{path} is not a readable demo models.json ({e.__class__.__name__}); move it away or choose "
                       "another --out.") from None  # fmt: skip
    entries = manifest.values() if isinstance(manifest, dict) else [None]
    if not all(isinstance(e, dict) and isinstance(e.get("file"), str) and "sha256" in e for e in entries):
        raise RunError(
            f"{path} is not a demo models.json (an object of models, each with its file and sha256); move it away or "
            "choose another --out."
        )
    return manifest


def score_file(recipe: Recipe, path: Path, cfg: TrainConfig) -> dict[str, float] | None:
    """The held-out source scores of the checkpoint at `path` (None when it does not load as `cfg.base`)."""
    backend = build_backend(cfg.base, random_init=True, seed=cfg.seed, device="cpu", progress=False)
    try:
        backend.model.load_state_dict(torch.load(path, weights_only=True), strict=False)
    except (OSError, RuntimeError, ValueError, pickle.UnpicklingError):
        return None
    return recipe.score(backend)


def train_and_save(
    cfg: TrainConfig,
    out_dir: str | Path = DEMO_DIR,
    log: Callable[[str], None] = print,
    keep_better: bool = False,
    force: bool = False,
) -> dict:
    """Train the demo model for `cfg.base` from seeded weights, write `<name>.pt` (fp16) and its models.json entry.

    `keep_better` (the shipped folder): the model there now is scored first; the new one replaces it only when it
    scores at least as well on the first source score (higher is better), or with `force`, and the old file and
    models.json stay beside as `.bak`."""
    out_dir = Path(out_dir)
    recipe = RECIPES[cfg.base]
    manifest = read_demo_manifest(out_dir)  # every check before the first step
    path = out_dir / f"{recipe.name}.pt"
    old = score_file(recipe, path, cfg) if keep_better and path.is_file() else None
    backend = build_backend(cfg.base, random_init=True, seed=cfg.seed, device="cpu", progress=False)
    log(
        f"training {recipe.name}: {cfg.base} classes from seeded random weights (seed {cfg.seed}), "
        f"{cfg.steps} steps x {cfg.batch} synthetic source images ({recipe.label})"
    )
    curve = train(backend, cfg, log)
    blob = fp16_state_bytes(backend)
    backend.model.load_state_dict(torch.load(io.BytesIO(blob), weights_only=True), strict=False)  # measure what ships
    final = recipe.score(backend)
    log("fp16 checkpoint: " + ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in final.items()))
    if old is not None:
        _keep_the_better(path, old, final, force, log)
    atomic_write(path, blob)
    manifest_path = out_dir / DEMO_MANIFEST
    manifest[recipe.name] = entry = {"file": path.name, **record(cfg, curve, blob, final)}
    atomic_write(manifest_path, json.dumps(manifest, indent=2) + "\n")
    log(f"wrote {path} ({len(blob) / 1e6:.1f} MB, sha256 {entry['sha256']}) and {manifest_path}")
    return entry


def _keep_the_better(path: Path, old: dict[str, float], new: dict[str, float], force: bool, log) -> None:
    """Say both source scores; refuse a worse new model (unless `force`); else keep the old files as `.bak`."""
    name = next(iter(new))
    label = name.replace("_", " ")
    log(f"{label}: {old[name]:.3f} for the model in {path.parent} now, {new[name]:.3f} for the new one")
    if new[name] < old[name] and not force:
        raise RunError(
            f"the new {path.stem} scores {label} {new[name]:.3f}, below the {old[name]:.3f} of the one in "
            f"{path.parent}: nothing replaced; train longer, or pass --force to replace it anyway."
        )
    for kept in (path, path.parent / DEMO_MANIFEST):
        shutil.copy2(kept, kept.with_name(kept.name + ".bak"))
        log(f"kept the old {kept.name} as {kept.name}.bak")
