"""What SAM and SAM2 share as promptable mask decoders: prompt embeddings and a mask choice in their decode context.

The engine never reads these fields: it builds a context through `Backend.context` and hands its rows back to
`decode`, so families without prompts (the timm ViTs' heads) carry none of this.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, replace

import torch

from ..data.prompts import Prompt
from .base import Backend, DecodeContext, ImageMeta, extras_of

MASK_CHOICES = ("single", "best")
ALL_MASKS = "all"  # decode every mask token's output (V, M, h', w'): training, not a user choice


@dataclass
class PromptContext(DecodeContext):
    """A promptable decoder's inputs: sparse (B, T, C) and dense (B, C, h, w) prompt embeddings, which mask to
    return (`MASK_CHOICES`, or ALL_MASKS), and the encoder's extras (the base's)."""

    sparse: torch.Tensor
    dense: torch.Tensor
    choice: str = "single"


def channels_last(context: DecodeContext) -> DecodeContext:
    """Dense prompt embeddings channels-last: the token layout the re-associated decoder reads."""
    assert isinstance(context, PromptContext), "a promptable decoder reads a PromptContext"
    return replace(
        context, dense=context.dense.contiguous(memory_format=torch.channels_last), extras=dict(context.extras)
    )


class PromptedBackend(Backend):
    """A backend whose decoder is a promptable mask decoder (SAM's, SAM2's): prompts are embedded per image."""

    fits_heads = False  # its mask decoder scores it

    @abstractmethod
    def embed_prompts(self, prompts: list[Prompt], metas: list[ImageMeta]) -> PromptContext:
        """Prompt embeddings for B images (all prompts of one mode, so token counts agree)."""

    @abstractmethod
    def decoder_module(self) -> torch.nn.Module:
        """The model's own mask decoder (what decoder-only fine-tuning trains)."""

    def context(
        self,
        encoded: dict[str, torch.Tensor],
        prompts: list[Prompt],
        metas: list[ImageMeta],
        mask_choice: str = "single",
    ) -> PromptContext:
        """Prompt embeddings, the mask choice and the encoder's extra outputs for B encoded images."""
        return replace(self.embed_prompts(prompts, metas), choice=mask_choice, extras=extras_of(encoded))

    def batch_context(self, context: DecodeContext) -> DecodeContext:
        return channels_last(context)


def own_decoder(backend: Backend) -> torch.nn.Module | None:
    """`backend`'s own mask decoder, or None where a fitted head decodes instead."""
    return backend.decoder_module() if isinstance(backend, PromptedBackend) else None
