"""Replacement inside the encoder: the output of block k, with the blocks after it re-run per candidate.

`at_block(backend, k)` wraps a SAM-family backend (segment_anything's ViT encoder: SAM ViT-B/L/H, the
test-size `sam_tiny` and the demo model) so that its features are block k's output laid out (B, D, h, w),
D being the ViT's width (768 for ViT-B, not the neck's 256), and its decode runs blocks k+1.. and the
neck before SAM's own mask decoder. The engine is unchanged: the batched evaluator, pair scoring,
screening, combinations, resume, sharding and apply all see an ordinary backend with D channels whose
"decoder" is the rest of the encoder plus the mask decoder. What is cached is everything up to block k.

Cost: each (pair, image) row runs the remaining blocks as well as the decoder, so a row costs about
(blocks after k) / (all blocks) of an encoder pass more than at the last layer; screening (taylor,
halving) keeps the candidate count small.
"""

from __future__ import annotations

import torch
from segment_anything.modeling import ImageEncoderViT

from ..errors import ConfigError
from ..replace import ReplacementPatch, apply_map
from .base import FEATURES, Backend, DecodeContext, ImageMeta


def _remap_hwc(out: torch.Tensor, f) -> torch.Tensor:
    """A ViT block's output (B, H, W, D) under a channel map over D."""
    return apply_map(out.permute(0, 3, 1, 2), f).permute(0, 2, 3, 1)


def check_block(encoder: ImageEncoderViT, block: int, model: str) -> int:
    """`block` as an index of `encoder.blocks`, or a ConfigError naming the valid range."""
    n = len(encoder.blocks)
    if isinstance(block, bool) or not isinstance(block, int) or not 0 <= block < n:
        raise ConfigError(
            f"block {block!r} is not a block of {model}'s encoder (0..{n - 1}); leave the layer unset to search the "
            "encoder output, as the paper does."
        )
    return block


class BlockBackend(Backend):
    """A SAM backend split after encoder block `block` instead of at the encoder output."""

    def __init__(self, base: Backend, block: int):
        encoder = getattr(getattr(base, "model", None), "image_encoder", None)
        if not isinstance(encoder, ImageEncoderViT):
            raise ConfigError(
                f"replacement inside the encoder (a layer) is available for SAM's ViT encoders (sam_vit_*, sam_tiny, "
                f"the demo model); {base.name} is not one. Leave the layer unset."
            )
        self.base, self.encoder, self.block = base, encoder, check_block(encoder, block, base.name)
        self.name, self.weights, self.device, self.model = base.name, base.weights, base.device, base.model
        self.layer = block  # recorded in headers and the feature cache key
        self.channels = encoder.patch_embed.proj.out_channels
        self.model_input_pixels, self.tasks, self.image_path = base.model_input_pixels, base.tasks, base.image_path
        self.encode_batch = base.encode_batch

    def preprocess(self, image):
        return self.base.preprocess(image)

    def forward_features(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Blocks 0..k: (B, D, h, w), what replacement edits here."""
        enc = self.encoder
        x = enc.patch_embed(batch)
        if enc.pos_embed is not None:
            x = x + enc.pos_embed
        for blk in enc.blocks[: self.block + 1]:
            x = blk(x)
        return {FEATURES: x.permute(0, 3, 1, 2)}

    def rest(self, feats: torch.Tensor) -> torch.Tensor:
        """Blocks k+1.. and the neck: block-k features (V, D, h, w) -> the encoder output (V, 256, h, w)."""
        x = feats.permute(0, 2, 3, 1)
        for blk in self.encoder.blocks[self.block + 1 :]:
            x = blk(x)
        return self.encoder.neck(x.permute(0, 3, 1, 2))

    def meta(self, original_hw: tuple[int, int]) -> ImageMeta:
        return self.base.meta(original_hw)

    def embed_prompts(self, prompts, metas) -> DecodeContext:
        return self.base.embed_prompts(prompts, metas)

    def batch_context(self, context: DecodeContext) -> DecodeContext:
        return self.base.batch_context(context)

    def decode(
        self, feats: torch.Tensor, context: DecodeContext, mask_choice: str = "single", reference: bool = False
    ) -> torch.Tensor:
        return self.base.decode(self.rest(feats), context, mask_choice, reference)

    def upscale(self, logits: torch.Tensor, meta: ImageMeta) -> torch.Tensor:
        return self.base.upscale(logits, meta)

    def feature_module(self) -> torch.nn.Module:
        return self.encoder.blocks[self.block]

    def patch(self, pairs: list[tuple]) -> ReplacementPatch:
        return block_patch(self.encoder, pairs, self.block)


def block_patch(encoder: ImageEncoderViT, pairs: list[tuple], block: int) -> ReplacementPatch:
    """A live patch on the output of `encoder.blocks[block]` (channels: the ViT's width)."""
    check_block(encoder, block, "this model")
    width = encoder.patch_embed.proj.out_channels
    return ReplacementPatch(encoder.blocks[block], pairs, width, remap=_remap_hwc)


def at_block(backend: Backend, block: int | None) -> Backend:
    """`backend` split after encoder block `block` (None: unchanged, the encoder output)."""
    return backend if block is None else BlockBackend(backend, block)
