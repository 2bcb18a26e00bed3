"""Cheap heads over frozen backbone tokens (DINOv2, CLIP, MAE, any timm model): a linear classifier, a linear depth
head and a linear per-patch segmentation head, how to fit them, and how a head is recorded and read back.

All read the token layout the head-less backends produce, (B, C, 1, T): token 0 is the class token (a
convolutional map's spatial mean), tokens 1.. the patch grid row by row. All are linear in the tokens, so the
effect of "channel i takes channel j" on their output is exact and rank one (`pair_outputs`): the engine scores
every pair with one batched product per block instead of running the head once per pair.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import torch
import torch.nn.functional as F

from ..errors import ConfigError

CLS, CLS_MEAN = "cls", "cls+mean"  # classifier inputs: class token, or class token + mean patch token
CLASSIFIER_L2 = 1e-2  # weight decay of the fitted classifier (on standardised inputs; small head splits overfit)
DEPTH_RIDGE = 1e-3  # ridge of the fitted depth head, relative to the mean feature energy


def token_parts(feats: torch.Tensor, pooling: str) -> torch.Tensor:
    """Features (B, C, 1, T) -> the classifier's inputs per channel, (B, R, C): class token [and mean patch]."""
    cls = feats[:, :, 0, 0]
    if pooling == CLS:
        return cls[:, None]
    return torch.stack([cls, feats[:, :, 0, 1:].mean(-1)], 1)


def _stored(t: torch.Tensor) -> torch.Tensor:
    """A head tensor as it is saved (float32), held in float64 for the products: a fitted head then scores
    exactly as its head.pt does when a run is reused (`ablate --run`, `apply`, a ZeroGPU worker)."""
    return t.float().double()


class LinearClassifier(torch.nn.Module):
    """logits = W [cls, mean patch] + b over the last block's normed tokens (DINOv2's linear evaluation)."""

    weight: torch.Tensor  # (K, R * C), a buffer
    bias: torch.Tensor  # (K,), a buffer

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, channels: int, classes: list[str]):
        super().__init__()
        parts, rest = divmod(weight.shape[1], channels)
        if weight.dim() != 2 or rest or parts not in (1, 2) or bias.shape != weight.shape[:1]:
            raise ConfigError(
                f"a classification head must be weight (classes, {channels} or {2 * channels}) and bias (classes,) "
                f"for this model's {channels} channels; got weight {tuple(weight.shape)}, bias {tuple(bias.shape)}."
            )
        if weight.shape[0] != len(classes):
            raise ConfigError(
                f"the head has {weight.shape[0]} classes but the dataset has {len(classes)} ({', '.join(classes[:5])}"
                f"{', ...' if len(classes) > 5 else ''}); use a head trained on these classes, or drop the head "
                "file to fit one."
            )
        self.pooling = CLS if parts == 1 else CLS_MEAN
        self.kind = f"linear classifier ({self.pooling})"
        self.classes = list(classes)
        self.output_size = len(classes)  # numbers per (pair, image) from `pair_outputs`: one logit a class
        self.register_buffer("weight", _stored(weight))
        self.register_buffer("bias", _stored(bias))

    def at_size(self, out: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """Logits (V, K) at an image's size: a label has none, so unchanged."""
        return out

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Features (V, C, 1, T) -> logits (V, K)."""
        return token_parts(feats.double(), self.pooling).flatten(1) @ self.weight.T + self.bias

    def pair_outputs(self, feats: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """Logits (P, B, K) when channel i takes channel j: logits + sum_r W_r[:, i] (q_r[j] - q_r[i]), exactly."""
        q = token_parts(feats.double(), self.pooling)  # (B, R, C)
        w = self.weight.view(len(self.weight), q.shape[1], q.shape[2])  # (K, R, C)
        i, j = pairs[:, 0], pairs[:, 1]
        delta = torch.einsum("krp,brp->pbk", w[:, :, i], q[:, :, j] - q[:, :, i])
        return self(feats)[None] + delta

    def state(self) -> dict[str, torch.Tensor]:
        """The head as the state dict `--head` reads (weight, bias)."""
        return {"weight": self.weight.float(), "bias": self.bias.float()}


class PatchHead(torch.nn.Module):
    """What the per-patch heads share (depth, segmentation): weight and scalar bias held as saved, outputs on the
    patch grid, upsampled bilinearly to an image."""

    weight: torch.Tensor  # a buffer
    bias: torch.Tensor  # (), a buffer

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, grid: tuple[int, int], kind: str):
        super().__init__()
        self.grid = grid
        self.kind = kind
        self.output_size = grid[0] * grid[1]  # numbers per (pair, image) from `pair_outputs`: one a patch
        self.register_buffer("weight", _stored(weight))
        self.register_buffer("bias", _stored(bias).reshape(()))

    def at_size(self, out: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """Outputs (V, gh, gw) -> (V, H, W), bilinear at the image's size."""
        return F.interpolate(out[:, None], hw, mode="bilinear", align_corners=False)[:, 0]

    def state(self) -> dict[str, torch.Tensor]:
        return {"weight": self.weight.float(), "bias": self.bias.float().reshape(1)}


class LinearDepth(PatchHead):
    """depth(patch) = w_p . x_patch + w_c . x_cls + b, in metres, on the patch grid (upsampled bilinearly)."""

    weight: torch.Tensor  # (2 * C,): patch token, class token; a buffer

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, channels: int, grid: tuple[int, int]):
        if weight.shape != (2 * channels,) or bias.numel() != 1:
            raise ConfigError(
                f"a depth head must be weight ({2 * channels},) (patch token, class token) and a scalar bias for this "
                f"model's {channels} channels; got weight {tuple(weight.shape)}, bias {tuple(bias.shape)}."
            )
        super().__init__(weight, bias, grid, "linear depth head")

    def _split(self) -> tuple[torch.Tensor, torch.Tensor]:
        c = len(self.weight) // 2
        return self.weight[:c], self.weight[c:]

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Features (V, C, 1, T) -> depth (V, gh, gw)."""
        wp, wc = self._split()
        x = feats.double()[:, :, 0]
        out = torch.einsum("c,vct->vt", wp, x[:, :, 1:]) + (x[:, :, 0] @ wc)[:, None] + self.bias
        return out.view(len(out), *self.grid)

    def pair_outputs(self, feats: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """Depth (P, B, gh, gw) when channel i takes channel j: a rank-one change per pair, exactly."""
        wp, wc = self._split()
        x = feats.double()[:, :, 0]  # (B, C, T)
        i, j = pairs[:, 0], pairs[:, 1]
        dx = x[:, j] - x[:, i]  # (B, P, T)
        delta = wp[i][None, :, None] * dx[:, :, 1:] + (wc[i][None] * dx[:, :, 0])[:, :, None]
        return self(feats)[None] + delta.transpose(0, 1).unflatten(2, self.grid)


class LinearSegment(PatchHead):
    """logit(patch) = w . x_patch + b on the patch grid, upsampled bilinearly: DINOv2's linear segmentation probe,
    one foreground class (the class token is not read)."""

    weight: torch.Tensor  # (C,), a buffer

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, channels: int, grid: tuple[int, int]):
        if weight.shape != (channels,) or bias.numel() != 1:
            raise ConfigError(
                f"a segmentation head must be weight ({channels},) (a patch token) and a scalar bias for this model's "
                f"{channels} channels; got weight {tuple(weight.shape)}, bias {tuple(bias.shape)}."
            )
        super().__init__(weight, bias, grid, "linear per-patch segmentation head")

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Features (V, C, 1, T) -> mask logits (V, gh, gw)."""
        out = torch.einsum("c,vct->vt", self.weight, feats.double()[:, :, 0, 1:]) + self.bias
        return out.view(len(out), *self.grid)

    def pair_outputs(self, feats: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """Logits (P, B, gh, gw) when channel i takes channel j: w_i (x_j - x_i) added per patch, exactly."""
        x = feats.double()[:, :, 0, 1:]  # (B, C, N)
        i, j = pairs[:, 0], pairs[:, 1]
        delta = self.weight[i][None, :, None] * (x[:, j] - x[:, i])  # (B, P, N)
        return self(feats)[None] + delta.transpose(0, 1).unflatten(2, self.grid)


Head: TypeAlias = LinearClassifier | LinearDepth | LinearSegment  # what a session attaches to a head-less backend


def fit_classifier(
    feats: torch.Tensor, labels: torch.Tensor, classes: list[str], pooling: str = CLS_MEAN
) -> LinearClassifier:
    """Multinomial logistic regression on frozen features (B, C, 1, T): full-batch L-BFGS in float64.

    Deterministic (no sampling), a few seconds on cached features; L2 weight CLASSIFIER_L2.
    """
    x = token_parts(feats.double(), pooling).flatten(1)
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)  # fit on standardised inputs, fold back after
    z = (x - mean) / std
    w = torch.zeros(len(classes), x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(len(classes), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=300, tolerance_grad=1e-9, line_search_fn="strong_wolfe")
    y = labels.long()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(z @ w.T + b, y) + CLASSIFIER_L2 * (w**2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    weight = (w / std).detach()
    bias = (b - (w * mean / std).sum(1)).detach()
    return LinearClassifier(weight, bias, feats.shape[1], classes)


def patch_depth(depth: torch.Tensor, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """A depth map (H, W) (0: invalid) -> (mean valid depth, valid fraction) per patch cell, each (gh, gw)."""
    valid = (depth > 0).double()[None, None]
    total = F.adaptive_avg_pool2d(depth.double()[None, None] * valid, grid)[0, 0]
    frac = F.adaptive_avg_pool2d(valid, grid)[0, 0]
    return total / frac.clamp_min(1e-9), frac


def fit_depth(feats: torch.Tensor, depths: list[torch.Tensor], grid: tuple[int, int]) -> LinearDepth:
    """Ridge regression (closed form, float64) of patch-averaged valid depth on [patch token, class token]."""
    x = feats.double()[:, :, 0]  # (B, C, T)
    rows, targets, weights = [], [], []
    for b, d in enumerate(depths):
        mean, frac = patch_depth(d.to(x.device), grid)
        patches = x[b, :, 1:].T  # (N, C)
        rows.append(torch.cat([patches, x[b, :, 0].expand_as(patches), torch.ones(len(patches), 1).to(x)], 1))
        targets.append(mean.flatten())
        weights.append(frac.flatten())
    a, y, sw = torch.cat(rows), torch.cat(targets), torch.cat(weights)
    aw = a * sw[:, None]  # cells weighted by their valid fraction; empty cells drop out
    gram = aw.T @ a
    ridge = DEPTH_RIDGE * gram.diagonal()[:-1].mean()
    gram[:-1, :-1] += ridge * torch.eye(len(gram) - 1, dtype=gram.dtype, device=gram.device)
    sol = torch.linalg.solve(gram, aw.T @ y)
    return LinearDepth(sol[:-1], sol[-1:], feats.shape[1], grid)


def fit_segment(feats: torch.Tensor, masks: list[torch.Tensor], grid: tuple[int, int]) -> LinearSegment:
    """Logistic regression (full-batch L-BFGS, float64, L2 CLASSIFIER_L2) of each patch's foreground fraction on its
    token: the patch-level linear probe, whose logits the head upsamples to pixels."""
    x = feats.double()[:, :, 0, 1:].transpose(1, 2).flatten(0, 1)  # (B * N, C)
    y = torch.cat([F.adaptive_avg_pool2d(m.double()[None, None], grid).flatten() for m in masks]).to(x.device)
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / std
    w = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, device=x.device, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=300, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(z @ w + b, y) + CLASSIFIER_L2 * (w**2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    weight = (w / std).detach()
    return LinearSegment(weight, (b - (w * mean / std).sum()).detach().reshape(1), feats.shape[1], grid)


@dataclass(frozen=True)
class HeadInfo:
    """Which head a session scores with: what it is, where it came from, and the hash of its tensors."""

    kind: str  # "linear classifier (cls+mean)" | "linear depth"
    source: str  # "fitted" | "file"
    method: str  # how it was made: "L-BFGS logistic regression" / "ridge, closed form" / "loaded from PATH"
    sha256: str  # of its tensors (names, shapes, bytes)
    path: str | None = None
    images: list[str] = field(default_factory=list)  # the head split it was fitted on

    @property
    def label(self) -> str:
        how = (
            f"fitted here on {len(self.images)} head-split images ({self.method})"
            if self.source == "fitted"
            else self.method
        )
        return f"{self.kind}, {how}, sha256:{self.sha256[:12]}"

    def to_dict(self) -> dict:
        return {**vars(self), "label": self.label}


def head_sha256(module: Head) -> str:
    """sha256 over a head's state (names, shapes, float32 bytes), as saved."""
    h = hashlib.sha256()
    for name, t in sorted(module.state().items()):
        h.update(f"{name}|{tuple(t.shape)}|".encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def read_head_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A head file's tensors (`weight`, `bias`; safe loading: tensors only), as float32."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"head file {path} does not exist; check the path, or give no head file to fit a head here.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise ConfigError(
            f"{path.name} is not a readable head (a torch.save'd dict of tensors: {e.__class__.__name__}); "
            "save it with torch.save({'weight': W, 'bias': b}, path)."
        ) from e
    if not isinstance(state, dict) or not {"weight", "bias"} <= set(state):
        found = sorted(map(str, state))[:5] if isinstance(state, dict) else type(state).__name__
        raise ConfigError(f"{path.name} must hold 'weight' and 'bias' tensors (found {found}).")
    if not all(isinstance(state[k], torch.Tensor) and state[k].is_floating_point() for k in ("weight", "bias")):
        raise ConfigError(f"{path.name}: 'weight' and 'bias' must be floating-point tensors.")
    return {"weight": state["weight"].float(), "bias": state["bias"].float()}
