"""What every backend scored by a fitted head shares (timm's ViTs, any timm model, a user's module): the whole image
resized to the encoder's input and normalised, features laid out as the heads read them, (B, C, 1, 1 + n), and the
head as its decoder. Only where the features come from differs (`vit.py`, `hooked.py`)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ModelError
from ..tasks.heads import Head
from .base import Backend, ImageMeta

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class HeadedBackend(Backend):
    """A frozen encoder whose features (B, C, 1, 1 + n) a head reads: token 0 pooled, tokens 1.. the `grid`."""

    input_hw: tuple[int, int]  # the encoder's input size (H, W)
    grid: tuple[int, int]  # the patch grid (or feature map) of tokens 1..
    mean: tuple[float, float, float] = IMAGENET_MEAN  # the normalisation the weights were trained with
    std: tuple[float, float, float] = IMAGENET_STD

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """RGB uint8 (H, W, 3) -> (3, S, S): resized whole (no crop, so every pixel has a patch), normalised."""
        x = torch.tensor(image, device=self.device).permute(2, 0, 1).float()[None] / 255.0
        x = F.interpolate(x, self.input_hw, mode="bicubic", antialias=True, align_corners=False)
        mean = torch.tensor(self.mean, device=self.device)[:, None, None]
        std = torch.tensor(self.std, device=self.device)[:, None, None]
        return ((x[0].clamp(0, 1) - mean) / std).float()

    def meta(self, original_hw: tuple[int, int]) -> ImageMeta:
        return ImageMeta(tuple(original_hw), self.input_hw)  # type: ignore[arg-type]

    def _head(self) -> Head:
        if self.head is None:
            raise ModelError(f"{self.name} has no head yet: open a session on a dataset of one of its tasks.")
        return self.head

    def decode(self, feats, context, reference=False) -> torch.Tensor:
        """Tokens (V, C, 1, T) -> head outputs: logits (V, K), depth or mask logits (V, gh, gw)."""
        return self._head()(feats)

    def upscale(self, out: torch.Tensor, meta: ImageMeta) -> torch.Tensor:
        """Head outputs at the image's size, as the head shapes them (maps bilinearly; logits unchanged)."""
        return self._head().at_size(out, meta.original_hw)

    def has_pair_outputs(self) -> bool:
        return hasattr(self.head, "pair_outputs")

    def pair_output_size(self) -> int:
        return self._head().output_size

    def pair_outputs(self, feats: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        return self._head().pair_outputs(feats, pairs)

    def channel_maps(self, feats: torch.Tensor) -> torch.Tensor:
        """Tokens (B, C, 1, T) -> grid maps (B, C, gh, gw) (token 0, pooled, is left out)."""
        return feats[:, :, 0, 1:].unflatten(2, self.grid)
