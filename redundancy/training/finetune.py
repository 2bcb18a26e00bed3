"""Fine-tuning a segmentation model on a target domain's training images: the paper's baselines, seeded.

Three modes, each training one part of the model with the demo models' loss (unprompted Dice + BCE on every
mask token, `demo.dice_bce`) and loop (`demo.fit`: AdamW, warm-up, cosine decay):

- `decoder`: the mask decoder only (the paper's "decoder-only"); the file holds its tensors, a partial fine-tune.
- `lora`: rank-r adapters on every Linear layer of the image encoder, W + (alpha / r) B A, with A (r, in)
  seeded and B (out, r) zero at the start; the file holds `<module>.lora_A`, `.lora_B`, `.lora_alpha`.
- `encoder`: every image-encoder weight (the paper's "encoder fine-tuning"); a partial fine-tune.

The files are what `--finetuned` reads (`models.finetuned.apply_finetuned` merges them over the base), so a
search then runs on the fine-tuned model unchanged: the paper's plug-in setting.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils import parametrize

from ..data import load_image
from ..engine import Session
from ..errors import ConfigError
from ..io import atomic_write
from ..models import Backend
from ..models.prompted import own_decoder
from .demo import dice_bce, fit, mask_logits

FINETUNE_MODES = ("decoder", "lora", "encoder")


@dataclass(frozen=True)
class FinetuneConfig:
    """One fine-tuning run; recorded beside its results."""

    mode: str = "decoder"
    epochs: int = 25  # the paper's baselines: 25 epochs
    batch: int = 8
    lr: float = 1e-3
    warmup: int = 5
    weight_decay: float = 0.0
    rank: int = 4  # lora: adapter rank
    alpha: float = 4.0  # lora: scale alpha / rank
    seed: int = 0

    def __post_init__(self):
        if self.mode not in FINETUNE_MODES:
            raise ConfigError(f"fine-tuning mode '{self.mode}' is not one of {', '.join(FINETUNE_MODES)}.")
        if self.epochs < 1 or self.batch < 1 or self.rank < 1 or not self.lr > 0:
            raise ConfigError("fine-tuning needs epochs, batch and rank of at least 1 and a positive learning rate.")


@dataclass
class FinetuneResult:
    """What a run trained and wrote: the file's tensors, its trainable parameter count, the curve."""

    state: dict[str, torch.Tensor]  # in the plug-in loader's format
    trainable: int
    curve: list[dict]
    seconds: float
    config: FinetuneConfig

    def to_dict(self) -> dict:
        return {"trainable": self.trainable, "curve": self.curve, "seconds": round(self.seconds, 1),
                "config": asdict(self.config)}  # fmt: skip


class LoraDelta(torch.nn.Module):
    """A parametrization W -> W + (alpha / r) B A of a Linear weight (out, in); A (r, in), B (out, r)."""

    def __init__(self, weight: torch.Tensor, rank: int, alpha: float, generator: torch.Generator):
        super().__init__()
        out, inp = weight.shape
        a = torch.randn(rank, inp, generator=generator) / math.sqrt(inp)
        self.lora_A = torch.nn.Parameter(a.to(weight))
        self.lora_B = torch.nn.Parameter(torch.zeros(out, rank).to(weight))
        self.scale = alpha / rank

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.scale * self.lora_B @ self.lora_A


def _names(model: torch.nn.Module, part: torch.nn.Module) -> str:
    """The state-dict prefix of submodule `part` in `model` ("" for the model itself)."""
    for name, module in model.named_modules():
        if module is part:
            return f"{name}." if name else ""
    raise ConfigError("the part to fine-tune is not a module of the model.")


@contextmanager
def trainable(backend: Backend, cfg: FinetuneConfig):
    """The parameters `cfg.mode` trains (every other one frozen) and a function giving the file's tensors;
    LoRA adapters are removed again on exit, leaving the model as it was."""
    model = backend.model.requires_grad_(False)
    part = backend.feature_module() if cfg.mode in ("lora", "encoder") else own_decoder(backend)
    if part is None:
        raise ConfigError(f"{backend.name} has no mask decoder of its own to fine-tune; it uses a fitted head.")
    prefix = _names(model, part)
    adapters: dict[str, LoraDelta] = {}
    try:
        if cfg.mode == "lora":
            gen = torch.Generator().manual_seed(cfg.seed)
            for name, module in part.named_modules():
                if isinstance(module, torch.nn.Linear):
                    adapters[prefix + name] = delta = LoraDelta(module.weight, cfg.rank, cfg.alpha, gen)
                    parametrize.register_parametrization(module, "weight", delta)
            params = [p for d in adapters.values() for p in (d.lora_A, d.lora_B)]

            def state() -> dict[str, torch.Tensor]:
                out = {}
                for name, d in adapters.items():
                    out[f"{name}.lora_A"], out[f"{name}.lora_B"] = d.lora_A.detach().clone(), d.lora_B.detach().clone()
                    out[f"{name}.lora_alpha"] = torch.tensor(cfg.alpha)
                return out
        else:
            named = [(prefix + n, p) for n, p in part.named_parameters()]
            params = [p.requires_grad_(True) for _, p in named]

            def state() -> dict[str, torch.Tensor]:
                return {n: p.detach().clone() for n, p in named}

        yield params, state
    finally:
        for name in adapters:
            parametrize.remove_parametrizations(model.get_submodule(name), "weight", leave_parametrized=False)
        model.requires_grad_(False)


def square_batch(images: list[np.ndarray], masks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Training images (N, S, S, 3) uint8 and masks (N, S, S) bool from lists; one square size is required."""
    sizes = {im.shape[:2] for im in images} | {m.shape for m in masks}
    if len(sizes) != 1 or next(iter(sizes))[0] != next(iter(sizes))[1]:
        raise ConfigError(
            f"fine-tuning here takes square images and masks of one size (found {sorted(sizes)[:3]}); resize them."
        )
    return np.stack(images), np.stack(masks).astype(bool)


def search_split(session: Session) -> tuple[np.ndarray, np.ndarray]:
    """A segmentation session's search set as training data: images (N, S, S, 3) and masks (N, S, S). The search
    set is the split a user has labels for; the held-out images stay unseen, by fine-tuning and search alike."""
    samples = session.search_set.samples
    return square_batch([load_image(x.image_path) for x in samples], [session.task.load_target(x) for x in samples])


def finetune(
    backend: Backend,
    images: np.ndarray,
    masks: np.ndarray,
    cfg: FinetuneConfig,
    log: Callable[[str], None] | None = None,
) -> FinetuneResult:
    """Train `cfg.mode`'s part of `backend.model` on images (N, S, S, 3) / masks (N, S, S), seeded; the model
    keeps the trained weights (LoRA: merged views removed, the file holds them); returns the file's tensors."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    n = len(images)
    per_epoch = math.ceil(n / cfg.batch)
    steps = cfg.epochs * per_epoch
    order: list[int] = []
    curve, losses, t0 = [], [], time.perf_counter()
    target = torch.from_numpy(masks).to(backend.device)
    frozen = backend.encode(list(images)) if cfg.mode == "decoder" else None  # the encoder runs once

    def loss_fn(step: int) -> torch.Tensor:
        if step % per_epoch == 0:
            order[:] = rng.permutation(n).tolist()
        idx = order[(step % per_epoch) * cfg.batch :][: cfg.batch]
        encoded = {k: v[idx] for k, v in frozen.items()} if frozen else None
        return dice_bce(mask_logits(backend, images[idx], encoded), target[idx])

    def on_step(step: int, loss: float) -> None:
        losses.append(loss)
        if step % per_epoch == 0:
            point = {"epoch": step // per_epoch, "loss": float(np.mean(losses[-per_epoch:])),
                     "s": round(time.perf_counter() - t0, 1)}  # fmt: skip
            curve.append(point)
            if log:
                log(f"{cfg.mode} fine-tuning: epoch {point['epoch']}/{cfg.epochs}  loss {point['loss']:.4f}")

    with trainable(backend, cfg) as (params, state):
        fit(params, loss_fn, steps, cfg.lr, min(cfg.warmup, steps), cfg.weight_decay, on_step)
        result = FinetuneResult(state(), sum(p.numel() for p in params), curve, time.perf_counter() - t0, cfg)
    backend.model.eval()
    return result


def save_finetune(path: str | Path, result: FinetuneResult) -> Path:
    """Write a fine-tune's tensors where `--finetuned` reads them (torch.save of a plain state dict)."""
    buf = io.BytesIO()
    torch.save(result.state, buf)
    return atomic_write(Path(path), buf.getvalue())
