"""The backend interface the engine uses: encode images, embed prompts, decode features to logits."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from ..prompts import Prompt
from .weights import WeightsInfo

MASK_CHOICES = ("single", "best")


@dataclass(frozen=True)
class ImageMeta:
    """Sizes a backend needs to map low-res logits back to an image: (H, W) each."""

    original_hw: tuple[int, int]
    input_hw: tuple[int, int]


@dataclass
class PromptEmbedding:
    """Per-image prompt embeddings: sparse (B, T, C) and dense (B, C, h, w); `take` picks rows."""

    sparse: torch.Tensor
    dense: torch.Tensor

    def take(self, index: torch.Tensor) -> PromptEmbedding:
        """Rows for the given image indices (V,), so one decoder call can mix images."""
        return PromptEmbedding(self.sparse[index], self.dense[index])


class Backend(ABC):
    """A frozen segmentation model split at the encoder output.

    The engine only calls these methods; features are (B, C, h, w) with C = `channels`.
    """

    name: str
    channels: int
    weights: WeightsInfo
    device: torch.device
    model: torch.nn.Module
    model_input_pixels: int = 0  # pixels of any fixed-size map `upscale` passes through (memory bound)

    @abstractmethod
    def encode(self, images: list[np.ndarray]) -> torch.Tensor:
        """RGB uint8 images (H, W, 3) -> last-layer features (B, C, h, w), float32 on `device`."""

    @abstractmethod
    def meta(self, original_hw: tuple[int, int]) -> ImageMeta:
        """Sizes for an image of this original (H, W)."""

    @abstractmethod
    def embed_prompts(self, prompts: list[Prompt], metas: list[ImageMeta]) -> PromptEmbedding:
        """Prompt embeddings for B images (all prompts of one mode, so token counts agree)."""

    @abstractmethod
    def decode(self, feats: torch.Tensor, prompts: PromptEmbedding, mask_choice: str = "single") -> torch.Tensor:
        """Features (V, C, h, w) with their prompt rows (V) -> low-res mask logits (V, h', w')."""

    @abstractmethod
    def upscale(self, logits: torch.Tensor, meta: ImageMeta) -> torch.Tensor:
        """Low-res logits (V, h', w') of one image -> logits at its original size (V, H, W)."""

    @abstractmethod
    def feature_module(self) -> torch.nn.Module:
        """The module whose output is the features that replacement edits (for forward hooks)."""

    def predict(
        self, feats: torch.Tensor, prompts: PromptEmbedding, metas: list[ImageMeta], mask_choice: str = "single"
    ) -> list[torch.Tensor]:
        """Features (B, C, h, w) -> list of B logit maps (H_b, W_b) at original resolution."""
        low = self.decode(feats, prompts, mask_choice)
        return [self.upscale(low[b : b + 1], m)[0] for b, m in enumerate(metas)]
