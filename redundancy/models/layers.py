"""Replacement inside the encoder: the output of block k, with the blocks after it re-run per candidate.

`at_block(backend, k)` wraps a backend so that its features are block k's output and its decode runs
blocks k+1.., whatever follows them and the backend's own decoder or head. Three encoder families:

- SAM's ViT (segment_anything's ImageEncoderViT: SAM ViT-B/L/H, `sam_tiny`, the demo model): block k's
  output (B, D, h, w), D the ViT's width (768 for ViT-B, not the neck's 256); the rest is the later blocks
  and the neck.
- DINOv2 (timm's VisionTransformer): block k's tokens (B, D, 1, T), every token (class, registers,
  patches: the later blocks read them all); the rest is the later blocks, the final norm and the head,
  which is fitted on the encoder output exactly as without a layer (the same head).
- SAM2's Hiera trunk: block k's output (B, D_k, h_k, w_k), D_k its stage's width; the outputs of the
  stages that end before block k ride along as cached extras, and the rest is the later blocks, the
  FPN neck and SAM2's high-res projections before its mask decoder.

The engine is unchanged: the batched evaluator, pair scoring, screening, soft pairs, selection, resume,
sharding and apply all see an ordinary backend whose "decoder" is the rest of the encoder plus the
decoder. What is cached is everything up to block k.

Cost: each (pair, image) row runs the remaining blocks as well as the decoder (`benchmarks/layer_cost.py`
measures it); screening (taylor, halving) keeps the candidate count small.
"""

from __future__ import annotations

import torch
from segment_anything.modeling import ImageEncoderViT, Sam
from timm.models.vision_transformer import VisionTransformer

from ..errors import ConfigError, ReplacementError
from ..replace import ReplacementPatch, apply_map
from .base import FEATURES, Backend, DecodeContext, ImageMeta
from .dinov2 import remap_tokens
from .sam2 import backbone_from_trunk


def _remap_hwc(out: torch.Tensor, f) -> torch.Tensor:
    """A channels-last block output (B, H, W, D) (SAM's ViT, Hiera) under a channel map over D."""
    return apply_map(out.permute(0, 3, 1, 2), f).permute(0, 2, 3, 1)


def check_block(blocks: torch.nn.ModuleList, block: int, model: str) -> int:
    """`block` as an index of `blocks`, or a ConfigError naming the valid range."""
    n = len(blocks)
    if isinstance(block, bool) or not isinstance(block, int) or not 0 <= block < n:
        raise ConfigError(
            f"block {block!r} is not a block of {model}'s encoder (0..{n - 1}); leave the layer unset to search the "
            "encoder output, as the paper does."
        )
    return block


def encoder_blocks(model: torch.nn.Module) -> tuple[torch.nn.ModuleList, str] | None:
    """(the blocks a layer indexes, the family: "vit" | "dinov2" | "hiera") of a model, or None."""
    encoder = model.image_encoder if isinstance(model, Sam) else model
    if isinstance(encoder, ImageEncoderViT):
        return encoder.blocks, "vit"
    if isinstance(model, VisionTransformer):
        return model.blocks, "dinov2"
    trunk = getattr(getattr(model, "image_encoder", None), "trunk", None)  # SAM2Base's Hiera
    return (trunk.blocks, "hiera") if hasattr(trunk, "stage_ends") else None


def block_width(blocks: torch.nn.ModuleList, block: int, family: str) -> int:
    """Channels of block `block`'s output."""
    b = blocks[block]
    return b.dim_out if family == "hiera" else b.norm1.normalized_shape[0]


def _patchable(model: torch.nn.Module, block: int) -> tuple[torch.nn.ModuleList, str]:
    """`model`'s blocks and family for a patch at `block`, or a ReplacementError saying what is wrong."""
    found = encoder_blocks(model)
    if found is None:
        raise ReplacementError(
            f"a set found inside the encoder (layer {block}) patches SAM (Sam or its ImageEncoderViT), DINOv2 "
            f"(timm VisionTransformer) or SAM2 (SAM2Base) models, not {type(model).__name__}."
        )
    check_block(found[0], block, "this model")
    return found


def block_channels(model: torch.nn.Module, block: int) -> int:
    """Channels of encoder block `block`'s output in a user's model (what a set found there indexes)."""
    blocks, family = _patchable(model, block)
    return block_width(blocks, block, family)


def block_patch(model: torch.nn.Module, pairs: list[tuple], block: int) -> ReplacementPatch:
    """A live patch on the output of encoder block `block` of a SAM (or its ViT encoder), DINOv2 or SAM2 model."""
    blocks, family = _patchable(model, block)
    remap = remap_tokens if family == "dinov2" else _remap_hwc
    return ReplacementPatch(blocks[block], pairs, block_width(blocks, block, family), remap=remap)


class BlockBackend(Backend):
    """A backend split after encoder block `block` instead of at the encoder output (see the module doc)."""

    def __init__(self, base: Backend, block: int, blocks: torch.nn.ModuleList, family: str):
        self.base, self.blocks, self.family = base, blocks, family
        self.block = check_block(blocks, block, base.name)
        self.name, self.weights, self.device, self.model = base.name, base.weights, base.device, base.model
        self.layer = block  # recorded in headers and the feature cache key
        self.channels = block_width(blocks, block, family)
        self.model_input_pixels, self.tasks, self.image_path = base.model_input_pixels, base.tasks, base.image_path
        self.encode_batch = base.encode_batch

    @property
    def head(self):  # DINOv2: the head lives on the wrapped backend, which decodes
        return self.base.head

    @head.setter
    def head(self, module) -> None:
        self.base.head = module

    def preprocess(self, image):
        return self.base.preprocess(image)

    def meta(self, original_hw: tuple[int, int]) -> ImageMeta:
        return self.base.meta(original_hw)

    def embed_prompts(self, prompts, metas) -> DecodeContext:
        return self.base.embed_prompts(prompts, metas)

    def batch_context(self, context: DecodeContext) -> DecodeContext:
        return self.base.batch_context(context)

    def upscale(self, logits: torch.Tensor, meta: ImageMeta) -> torch.Tensor:
        return self.base.upscale(logits, meta)

    def feature_module(self) -> torch.nn.Module:
        return self.blocks[self.block]

    def patch(self, pairs: list[tuple]) -> ReplacementPatch:
        return block_patch(self.model, pairs, self.block)

    def forward_features(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Blocks 0..k: {FEATURES: block k's output in (B, D, h, w) layout, extras the rest needs}."""
        raise NotImplementedError

    def rest(self, feats: torch.Tensor, extras: dict | None = None) -> torch.Tensor | dict[str, torch.Tensor]:
        """Blocks k+1.. and what follows them: block-k features (V, D, h, w) (and the extras cached with them)
        -> the base backend's features (SAM2: its features and high-res skips)."""
        raise NotImplementedError

    def decode(
        self, feats: torch.Tensor, context: DecodeContext, mask_choice: str = "single", reference: bool = False
    ) -> torch.Tensor:
        return self.base.decode(self.rest(feats, context.extras), context, mask_choice, reference)


class VitBlocks(BlockBackend):
    """SAM's ViT encoder split after block k."""

    def forward_features(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        enc = self.model.image_encoder
        x = enc.patch_embed(batch)
        if enc.pos_embed is not None:
            x = x + enc.pos_embed
        for blk in self.blocks[: self.block + 1]:
            x = blk(x)
        return {FEATURES: x.permute(0, 3, 1, 2)}

    def rest(self, feats: torch.Tensor, extras: dict | None = None) -> torch.Tensor:
        x = feats.permute(0, 2, 3, 1)
        for blk in self.blocks[self.block + 1 :]:
            x = blk(x)
        return self.model.image_encoder.neck(x.permute(0, 3, 1, 2))


class DinoBlocks(BlockBackend):
    """timm's DINOv2 ViT split after block k: every token, laid out (B, D, 1, T)."""

    def forward_features(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        m = self.model  # timm's forward_features, stopped after block k
        x = m.norm_pre(m.patch_drop(m._pos_embed(m.patch_embed(batch))))
        for blk in self.blocks[: self.block + 1]:
            x = blk(x)
        return {FEATURES: x.transpose(1, 2)[:, :, None]}

    def rest(self, feats: torch.Tensor, extras: dict | None = None) -> torch.Tensor:
        x = feats[:, :, 0].transpose(1, 2)
        for blk in self.blocks[self.block + 1 :]:
            x = blk(x)
        return self.base._tokens(self.model.norm(x))

    def channel_maps(self, feats: torch.Tensor) -> torch.Tensor:
        """Tokens (B, D, 1, T) -> patch-token maps (B, D, gh, gw) (class and register tokens left out)."""
        return feats[:, :, 0, self.model.num_prefix_tokens :].unflatten(2, self.base.grid)


STAGE = "stage_"  # extras: the outputs of the stages that end before the split block


class HieraBlocks(BlockBackend):
    """SAM2's Hiera trunk split after block k; earlier stages' outputs are cached extras for the FPN neck."""

    def _emits(self, i: int) -> bool:
        trunk = self.model.image_encoder.trunk
        return i == trunk.stage_ends[-1] or (i in trunk.stage_ends and trunk.return_interm_layers)

    def forward_features(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        trunk = self.model.image_encoder.trunk  # Hiera.forward, stopped after block k
        x = trunk.patch_embed(batch)
        x = x + trunk._get_pos_embed(x.shape[1:3])
        out = {}
        for i, blk in enumerate(self.blocks[: self.block + 1]):
            x = blk(x)
            if i < self.block and self._emits(i):
                out[f"{STAGE}{len(out)}"] = x.permute(0, 3, 1, 2)
        return {**out, FEATURES: x.permute(0, 3, 1, 2)}

    def rest(self, feats: torch.Tensor, extras: dict | None = None) -> dict[str, torch.Tensor]:
        """Block-k features -> the SAM2 backend's features and high-res skips (plain layout)."""
        stages = sorted((k for k in (extras or {}) if k.startswith(STAGE)), key=lambda k: int(k[len(STAGE) :]))
        outputs = [extras[k] for k in stages]
        if self._emits(self.block):
            outputs.append(feats)
        x = feats.permute(0, 2, 3, 1)
        for i in range(self.block + 1, len(self.blocks)):
            x = self.blocks[i](x)
            if self._emits(i):
                outputs.append(x.permute(0, 3, 1, 2))
        return self.base.from_backbone(backbone_from_trunk(self.model, outputs))

    def batch_context(self, context: DecodeContext) -> DecodeContext:
        return Backend.batch_context(self, context)  # stage extras stay as they are: the skips are made per row

    def decode(
        self, feats: torch.Tensor, context: DecodeContext, mask_choice: str = "single", reference: bool = False
    ) -> torch.Tensor:
        out = self.rest(feats, context.extras)
        ctx = DecodeContext(context.sparse, context.dense, {k: v for k, v in out.items() if k != FEATURES})
        ctx = ctx if reference else self.base.batch_context(ctx)  # the batched decoder's skip layout
        return self.base.decode(out[FEATURES], ctx, mask_choice, reference)


FAMILIES = {"vit": VitBlocks, "dinov2": DinoBlocks, "hiera": HieraBlocks}


def output_backend(backend: Backend) -> Backend:
    """The backend split at the encoder output: `backend` itself unless it was split after a block. Heads
    are fitted and loaded on it (they read the encoder output, wherever a search replaces)."""
    return backend.base if isinstance(backend, BlockBackend) else backend


def at_block(backend: Backend, block: int | None) -> Backend:
    """`backend` split after encoder block `block` (None: unchanged, the encoder output)."""
    if block is None:
        return backend
    found = encoder_blocks(getattr(backend, "model", None))
    if found is None:
        raise ConfigError(
            f"replacement inside the encoder (a layer) is available for SAM's ViT, DINOv2 and SAM2 encoders; "
            f"{backend.name} is none of them. Leave the layer unset."
        )
    blocks, family = found
    return FAMILIES[family](backend, block, blocks, family)
