"""The demo models: the test-size SAM / SAM2 classes trained from scratch on the synthetic source domain.

They are not SAM: they are small models this repository trains (seeded, on a CPU, in minutes) so
that the method has something real to act on offline. Training: fresh seeded weights, no prompt
(the paper's single-mask setting), Dice + BCE on every mask token's output (so the single, best and
SAM2's stability-fallback outputs all segment the object), AdamW with warm-up and cosine decay,
a new batch of source images every step. The held-out source mIoU is measured through the tool's
own prediction path (`Backend.predict`, the re-associated decoder) on a fixed regenerated test set.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data import synthetic
from ..data.prompts import Prompt
from ..models import Backend, build_backend
from ..models._registry import DEMO_DIR, DEMO_MANIFEST
from ..models.base import ALL_MASKS, FEATURES

DEMO_NAMES = {"sam_tiny": "sam_tiny_demo", "sam2_tiny_narrow": "sam2_tiny_demo"}  # architecture -> demo model
DEMO_BASES = tuple(DEMO_NAMES)
TEST_SEED = 20260  # the source test set: regenerated from this seed wherever it is needed
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


def source_test_set(n: int = TEST_IMAGES, seed: int = TEST_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The held-out source images (n, S, S, 3) uint8 and masks (n, S, S) bool; identical for a seed."""
    return synthetic.batch("source", n, np.random.default_rng(seed))


def mask_logits(backend: Backend, images: np.ndarray) -> torch.Tensor:
    """Every mask token's logits at image size (B, M, S, S) for square images, no prompt; differentiable."""
    x = torch.stack([backend.preprocess(im) for im in images])
    encoded = backend.forward_features(x)
    metas = [backend.meta(im.shape[:2]) for im in images]
    ctx = backend.context(encoded, [Prompt() for _ in images], metas)
    low = backend.decode(encoded[FEATURES], ctx, ALL_MASKS, reference=True)  # (B, M, h', w')
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


def _lr(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * (step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1)))


def train(backend: Backend, cfg: TrainConfig, log: Callable[[str], None] = print) -> list[dict]:
    """Train `backend.model` in place on the source domain; returns the curve [{step, loss, source_miou, s}]."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    test_images, test_masks = source_test_set()
    model = backend.model.requires_grad_(True)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    curve, losses, t0 = [], [], time.perf_counter()
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = _lr(step, cfg)
        images, masks = synthetic.batch("source", cfg.batch, rng)
        loss = dice_bce(mask_logits(backend, images), torch.from_numpy(masks).to(backend.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            model.requires_grad_(False)
            miou = source_miou(backend, test_images, test_masks)
            model.requires_grad_(True)
            point = {"step": step + 1, "loss": float(np.mean(losses[-cfg.eval_every :])), "source_miou": miou}
            point["s"] = round(time.perf_counter() - t0, 1)
            curve.append(point)
            log(f"step {point['step']:5d}  loss {point['loss']:.4f}  source mIoU {miou:6.2f}  ({point['s']:.0f} s)")
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


def record(cfg: TrainConfig, curve: list[dict], blob: bytes, final_miou: float) -> dict:
    """What models.json says about one shipped demo checkpoint."""
    return {
        "base": cfg.base,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "bytes": len(blob),
        "source_miou": round(final_miou, 3),
        "source_test": {"images": TEST_IMAGES, "seed": TEST_SEED, "protocol": "image"},
        "train": asdict(cfg),
        "curve": curve,
        "torch": torch.__version__,
    }


def demo_name(base: str) -> str:
    """Registry name of the demo model trained on architecture `base`."""
    return DEMO_NAMES[base]


def train_and_save(cfg: TrainConfig, out_dir: str | Path = DEMO_DIR, log: Callable[[str], None] = print) -> dict:
    """Train the demo model for `cfg.base` from seeded weights, write `<name>.pt` (fp16) and its models.json entry."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    backend = build_backend(cfg.base, random_init=True, seed=cfg.seed, device="cpu", progress=False)
    log(
        f"training {demo_name(cfg.base)}: {cfg.base} classes from seeded random weights (seed {cfg.seed}), "
        f"{cfg.steps} steps x {cfg.batch} synthetic source images"
    )
    curve = train(backend, cfg, log)
    blob = fp16_state_bytes(backend)
    backend.model.load_state_dict(torch.load(io.BytesIO(blob), weights_only=True), strict=False)  # measure what ships
    final = source_miou(backend, *source_test_set())
    log(f"fp16 checkpoint: source mIoU {final:.2f} on {TEST_IMAGES} held-out source images")
    path = out_dir / f"{demo_name(cfg.base)}.pt"
    path.write_bytes(blob)
    manifest_path = out_dir / DEMO_MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest[demo_name(cfg.base)] = entry = {"file": path.name, **record(cfg, curve, blob, final)}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    log(f"wrote {path} ({len(blob) / 1e6:.1f} MB, sha256 {entry['sha256']}) and {manifest_path}")
    return entry
