"""Replacement inside the encoder: the output of block k, with the blocks after it re-run per candidate.

`at_block(backend, k)` wraps a backend so that its features are block k's output and its decode runs
blocks k+1.., whatever follows them and the backend's own decoder or head. Each family says how its
encoder splits (`Family.blocks` and its `BlockBackend` subclass: SAM's ViT in sam.py, SAM2's Hiera trunk
in sam2.py, timm's ViTs in vit.py); here is what every split shares.

The engine is unchanged: the batched evaluator, pair scoring, screening, soft pairs, selection, resume,
sharding and apply all see an ordinary backend whose "decoder" is the rest of the encoder plus the
decoder. What is cached is everything up to block k.

Cost: each (pair, image) row runs the remaining blocks as well as the decoder (`benchmarks/layer_cost.py`
measures it); screening (taylor, halving) keeps the candidate count small.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError, ReplacementError
from ..replace import ReplacementPatch, apply_map
from ..tasks.heads import Head
from .base import Backend, DecodeContext, FamilyHooks, ImageMeta


def remap_channels_last(out: torch.Tensor, f) -> torch.Tensor:
    """A channels-last block output (B, H, W, D) (SAM's ViT, Hiera) under a channel map over D."""
    return apply_map(out.permute(0, 3, 1, 2), f).permute(0, 2, 3, 1)


def remap_tokens(out: torch.Tensor, f) -> torch.Tensor:
    """Tokens (B, T, C) (timm's ViTs) under a channel map over C."""
    return apply_map(out.transpose(1, 2)[..., None], f)[..., 0].transpose(1, 2)


def check_block(blocks: torch.nn.ModuleList, block: int | str, model: str) -> int:
    """`block` as an index of `blocks`, or a ConfigError naming the valid range."""
    n = len(blocks)
    if isinstance(block, bool) or not isinstance(block, int) or not 0 <= block < n:
        raise ConfigError(
            f"block {block!r} is not a block of {model}'s encoder (0..{n - 1}); leave the layer unset to search the "
            "encoder output, as the paper does."
        )
    return block


class BlockBackend(Backend):
    """A backend split after encoder block `block` instead of at the encoder output (see the module doc)."""

    family: FamilyHooks  # the base backend's, which knows its blocks (`at_block` splits no other)

    def __init__(self, base: Backend, block: int, blocks: torch.nn.ModuleList):
        assert base.family is not None, "at_block splits only a backend whose family has blocks"
        self.base, self.blocks, self.family = base, blocks, base.family
        self.block = check_block(blocks, block, base.name)
        self.name, self.weights, self.device, self.model = base.name, base.weights, base.device, base.model
        self.layer = block  # recorded in headers and the feature cache key
        self.channels = self.family.block_width(blocks, block)
        self.model_input_pixels, self.tasks, self.image_path = base.model_input_pixels, base.tasks, base.image_path
        self.fits_heads = base.fits_heads
        self.encode_batch = base.encode_batch

    @property
    def head(self) -> Head | None:  # a head lives on the wrapped backend, which decodes
        return self.base.head

    @head.setter
    def head(self, module: Head | None) -> None:
        self.base.head = module

    def attach_head(self, module: Head) -> None:
        self.base.attach_head(module)

    def preprocess(self, image):
        return self.base.preprocess(image)

    def meta(self, original_hw: tuple[int, int]) -> ImageMeta:
        return self.base.meta(original_hw)

    def context(self, encoded, prompts, metas, mask_choice="single") -> DecodeContext:
        return self.base.context(encoded, prompts, metas, mask_choice)  # the extras are this split's own outputs

    def batch_context(self, context: DecodeContext) -> DecodeContext:
        return self.base.batch_context(context)

    def upscale(self, logits: torch.Tensor, meta: ImageMeta) -> torch.Tensor:
        return self.base.upscale(logits, meta)

    def feature_module(self) -> torch.nn.Module:
        return self.blocks[self.block]

    def patch(self, pairs: list[tuple]) -> ReplacementPatch:
        return self.family.block_patch(self.model, pairs, self.block)

    def forward_features(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Blocks 0..k: {FEATURES: block k's output in (B, D, h, w) layout, extras the rest needs}."""
        raise NotImplementedError

    def rest(self, feats: torch.Tensor, extras: dict | None = None) -> torch.Tensor | dict[str, torch.Tensor]:
        """Blocks k+1.. and what follows them: block-k features (V, D, h, w) (and the extras cached with them)
        -> the base backend's features (SAM2: its features and high-res skips)."""
        raise NotImplementedError

    def decode(self, feats: torch.Tensor, context: DecodeContext, reference: bool = False) -> torch.Tensor:
        out = self.rest(feats, context.extras)
        assert isinstance(out, torch.Tensor), "a split whose rest returns extras decodes them itself (HieraBlocks)"
        return self.base.decode(out, context, reference)


def output_backend(backend: Backend) -> Backend:
    """The backend split at the encoder output: `backend` itself unless it was split after a block. Heads
    are fitted and loaded on it (they read the encoder output, wherever a search replaces)."""
    return backend.base if isinstance(backend, BlockBackend) else backend


def at_block(backend: Backend, block: int | str | None) -> Backend:
    """`backend` replacing at `block` (None: unchanged, the encoder output): after that encoder block, or where its
    family splits (`Family.split`: a timm model's stage or named module)."""
    if block is None:
        return backend
    family = getattr(backend, "family", None)
    if family is None:
        raise ConfigError(
            f"replacement inside the encoder (a layer) is not available for {backend.name}'s encoder; leave the "
            "layer unset."
        )
    return family.split(backend, block)


def patchable_blocks(family, model: torch.nn.Module, block: int | str) -> torch.nn.ModuleList:
    """`model`'s encoder blocks for a patch at `block`, or a ReplacementError saying what is wrong."""
    blocks = family.blocks(model) if family is not None else None
    if blocks is None:
        raise ReplacementError(
            f"a set found inside the encoder (layer {block}) patches models whose encoder this tool can split "
            f"(SAM, SAM2, timm ViTs), not {type(model).__name__}."
        )
    check_block(blocks, block, "this model")
    return blocks
