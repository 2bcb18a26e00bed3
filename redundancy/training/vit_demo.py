"""The DINOv2 demo model's recipe: timm's ViT at demo size (`dinov2_tiny_wide`: 6 blocks, 192 channels, 112 px)
trained here from seeded random weights on two synthetic source tasks at once. Not DINOv2: no self-distillation,
no natural images.

Each step draws a fresh batch, half single-object images of the source domain labelled by the object's kind
(`synthetic.render`, 5 classes) and half synthetic rooms with their depth (`synthetic.depth_scene`).
Training-only heads read the final normed tokens (the tensor the search edits): two of exactly the evaluation
heads' form, a linear classifier on [class token, mean patch token] (cross-entropy) and a linear depth head per
patch on [patch token, class token] (squared error against the patch's mean valid depth), and a dense aid, a
linear classifier per patch token (the kind of object covering the patch, or background). Without that aid
the image label alone taught nothing for hundreds of steps (measured: a linear probe at chance after 200 steps
of 64 images; a small CNN likewise after 600 steps of 32): the shape is a small part of a noisy image. Only
the encoder ships; the search fits its own heads on a head split, as for any ViT.

Why supervised and multi-task: the paper's DINOv2 heads are linear probes on that one tensor, so training
through heads of that form makes both tasks linearly readable from it, and two tasks with different needs
(a global shape class; local, geometric depth) make channels specialise instead of all serving one label. A
self-distillation objective (DINO / iBOT) would need far more steps, augmentations and batch than a CPU
budget allows at this size before a linear head could use its features.

The source score is measured as a session scores: heads fitted by the tool's own `fit_classifier` /
`fit_depth` on 100 regenerated source images each, top-1 accuracy and per-image RMSE on 100 more.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ..data import synthetic
from ..models import Backend
from ..models.base import FEATURES
from ..models.dinov2 import TINY_INPUT
from ..tasks import get_task
from ..tasks.heads import CLS_MEAN, fit_classifier, fit_depth, patch_depth, token_parts
from .demo import Recipe, TrainConfig, register_recipe

LABEL = "demo model trained by this repository on synthetic shapes and rooms: not DINOv2"
CLASSES = synthetic.KINDS
TEST_SEED = 20261  # the source probe sets: regenerated from this seed wherever they are needed
PROBE_IMAGES = 100  # per task: head-fitting images, and as many test images
LAYER_SCALE = 0.1  # the blocks' LayerScale at the start of training
DEPTH_WEIGHT = 0.5  # of the depth loss (m^2) beside the cross-entropies
COVERED = 0.3  # a patch this much covered by the object is labelled with its kind (else background)


class TaskHeads(torch.nn.Module):
    """Training-only heads: of the evaluation heads' form, logits = W [cls, mean patch] + b and per patch
    depth = w [patch, cls] + b (metres); and per patch, logits over the K kinds and background."""

    def __init__(self, channels: int, classes: int, grid: tuple[int, int]):
        super().__init__()
        self.grid = grid
        self.classify = torch.nn.Linear(2 * channels, classes)
        self.depth = torch.nn.Linear(2 * channels, 1)
        self.patches = torch.nn.Linear(channels, classes + 1)
        torch.nn.init.constant_(self.depth.bias, 3.0)  # about the rooms' mean depth: a sensible start

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tokens (B, C, 1, T) -> class logits (B, K), patch depth (B, gh, gw), patch logits (B, N, K + 1)."""
        logits = self.classify(token_parts(feats, CLS_MEAN).flatten(1))
        x = feats[:, :, 0]  # (B, C, T)
        patches = x[:, :, 1:].transpose(1, 2)  # (B, N, C)
        cls = x[:, :, :1].transpose(1, 2).expand_as(patches)
        depth = self.depth(torch.cat([patches, cls], -1))[..., 0].unflatten(1, self.grid)
        return logits, depth, self.patches(patches)


def shapes(n: int, rng: np.random.Generator, size: int = TINY_INPUT) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """n source images of one object (H, W, 3) uint8, kinds cycling; their class indices (n,) and masks (n, H, W)."""
    labels = np.arange(n) % len(CLASSES)
    pairs = [synthetic.render("source", CLASSES[k], rng, size) for k in labels]
    return [p[0] for p in pairs], labels, np.stack([p[1] for p in pairs])


def rooms(n: int, rng: np.random.Generator, size: int = TINY_INPUT) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """n source rooms (H, W, 3) uint8 and their depth maps (H, W) in metres (0: invalid)."""
    scenes = [synthetic.depth_scene(rng, size) for _ in range(n)]
    return [s[0] for s in scenes], [s[1] for s in scenes]


@lru_cache(maxsize=1)
def probe_sets(seed: int = TEST_SEED, n: int = PROBE_IMAGES) -> dict:
    """The source probe sets, identical for a seed: shapes and rooms, each n to fit a head on and n to test."""
    rng = np.random.default_rng(seed)
    return {"shapes": (shapes(n, rng), shapes(n, rng)), "rooms": (rooms(n, rng), rooms(n, rng))}


@torch.no_grad()
def probe_scores(backend: Backend, seed: int = TEST_SEED, n: int = PROBE_IMAGES) -> dict[str, float]:
    """Top-1 accuracy (%) and mean per-image RMSE (m) of heads fitted on the source probe sets' first halves
    (`fit_classifier`, `fit_depth`: as a session fits them), measured on the second halves."""
    sets = probe_sets(seed, n)
    (fit_x, fit_y, _), (test_x, test_y, _) = sets["shapes"]
    classifier = fit_classifier(backend.encode(fit_x)[FEATURES], torch.from_numpy(fit_y), list(CLASSES))
    predicted = classifier(backend.encode(test_x)[FEATURES]).argmax(1).cpu().numpy()
    (fit_x, fit_d), (test_x, test_d) = sets["rooms"]
    depths = [torch.from_numpy(d) for d in fit_d]
    head = fit_depth(backend.encode(fit_x)[FEATURES], depths, backend.grid).to(backend.device)
    out = head(backend.encode(test_x)[FEATURES])  # (n, gh, gw)
    task = get_task("depth")
    rmse = []
    for o, d in zip(out, test_d):
        mse = task.measure(o[None], torch.from_numpy(d), lambda z, hw=d.shape: head.at_size(z, hw))[0, 0]
        rmse.append(float(mse.sqrt()))
    return {"source_accuracy": 100.0 * float((predicted == test_y).mean()), "source_rmse": float(np.mean(rmse))}


class VitRecipe(Recipe):
    """A timm ViT's demo model: shape classes + room depth through training-only linear heads (module doc)."""

    name = "dinov2_tiny_demo"
    defaults = TrainConfig("dinov2_tiny_wide", steps=3000, batch=64, lr=5e-4, warmup=100, weight_decay=0.05,
                           eval_every=150)  # fmt: skip
    label = LABEL

    def heads(self, backend):
        # LayerScale starts at 0.1 instead of DINOv2's 1e-5: at 1e-5 every block's output is ~0, so the class
        # token carries no image for hundreds of steps (measured: shape accuracy at chance after 200 steps).
        for name, p in backend.model.named_parameters():
            if name.endswith(".gamma"):
                torch.nn.init.constant_(p, LAYER_SCALE)
        return TaskHeads(backend.channels, len(CLASSES), backend.grid).to(backend.device)

    def loss(self, backend, heads, rng, n):
        images, labels, masks = shapes(n // 2, rng)
        scenes, depths = rooms(n - n // 2, rng)
        x = torch.stack([backend.preprocess(im) for im in images + scenes])
        logits, depth, patch_logits = heads(backend.forward_features(x)[FEATURES])
        k, dev = len(images), backend.device
        y = torch.from_numpy(labels).to(dev)
        ce = F.cross_entropy(logits[:k], y)
        covered = F.adaptive_avg_pool2d(torch.from_numpy(masks).float()[:, None], backend.grid).flatten(1).to(dev)
        per_patch = torch.where(covered > COVERED, y[:, None], len(CLASSES))  # (k, N): the kind, or background
        dense = F.cross_entropy(patch_logits[:k].flatten(0, 1), per_patch.flatten())
        cells = [patch_depth(torch.from_numpy(d), backend.grid) for d in depths]
        target = torch.stack([c[0] for c in cells]).float().to(dev)
        frac = torch.stack([c[1] for c in cells]).float().to(dev)
        mse = (frac * (depth[k:] - target).square()).sum() / frac.sum()
        return ce + dense + DEPTH_WEIGHT * mse

    def score(self, backend):
        return probe_scores(backend)

    def record(self, scores):
        acc, rmse = scores["source_accuracy"], scores["source_rmse"]
        return {
            "source_score": {"label": "% shape accuracy (linear head)", "value": round(acc, 3)},
            "source_scores": {"accuracy": round(acc, 3), "rmse": round(rmse, 4)},
            "source_test": {
                "seed": TEST_SEED,
                "fit_images": PROBE_IMAGES,
                "test_images": PROBE_IMAGES,
                "heads": "fit_classifier / fit_depth on the fit images, as a session fits its head",
            },
        }


register_recipe(VitRecipe())
