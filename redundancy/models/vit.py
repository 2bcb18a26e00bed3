"""timm's VisionTransformer as a backend: what DINOv2, CLIP and MAE (one family file each) share.

The replaced tensor is the last block's normed output: `model.norm`'s tokens, the class token and every
patch token (register tokens, where a model has them, are not searched: no head reads them, so the patch
hook's edit of them changes nothing). Both heads read it, the classifier the class token (and the patch
mean), the depth head every patch token (and the class token), so one channel map on this one tensor is
the zero-parameter patch for either task. Features are laid out (B, C, 1, T), token 0 the class token,
tokens 1.. the patch grid row by row; `channel_maps` reshapes them for display.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn

from ..replace import ReplacementPatch
from ..tasks.base import head_tasks
from ..tasks.heads import Head
from ._registry import Family
from ._weights import WeightsInfo
from .base import FEATURES, FamilyHooks
from .headed import IMAGENET_MEAN, IMAGENET_STD, HeadedBackend
from .layers import BlockBackend, remap_tokens


class TimmVitBackend(HeadedBackend):
    """A frozen timm ViT encoder split at its last normed tokens, with a head chosen by the task."""

    tasks = head_tasks()  # every task a fitted head serves without prompts (classification and depth)
    model: VisionTransformer

    def __init__(
        self,
        name: str,
        model: VisionTransformer,
        weights: WeightsInfo,
        device: torch.device,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
        *,
        family: FamilyHooks | None = None,
    ):
        self.name, self.family = name, family
        self.model = model.to(device).eval()
        self.weights = weights
        self.device = device
        self.channels = model.embed_dim
        self.input_size = model.patch_embed.img_size[0]
        self.input_hw = (self.input_size, self.input_size)
        self.grid = tuple(model.patch_embed.grid_size)
        self.mean, self.std = mean, std
        self.head: Head | None = None  # attached by the session: a classifier or a depth head
        self.image_path = ("",)

    def tokens(self, normed: torch.Tensor) -> torch.Tensor:
        """The normed tokens (B, prefix + N, C) without register tokens -> (B, C, 1, 1 + N)."""
        keep = torch.cat([normed[:, :1], normed[:, self.model.num_prefix_tokens :]], 1)
        return keep.transpose(1, 2)[:, :, None]

    def forward_features(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return {FEATURES: self.tokens(self.model.forward_features(batch))}

    def feature_module(self) -> torch.nn.Module:
        return self.model.norm


class TimmBlocks(BlockBackend):
    """A timm ViT split after block k: every token (class, registers, patches: the later blocks read them all),
    laid out (B, D, 1, T); the rest is the later blocks, the final norm and the head, which is fitted on the
    encoder output exactly as without a layer (the same head)."""

    model: VisionTransformer
    base: TimmVitBackend

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
        return self.base.tokens(self.model.norm(x))

    def channel_maps(self, feats: torch.Tensor) -> torch.Tensor:
        """Tokens (B, D, 1, T) -> patch-token maps (B, D, gh, gw) (class and register tokens left out)."""
        return feats[:, :, 0, self.model.num_prefix_tokens :].unflatten(2, self.base.grid)


class TimmVitFamily(Family):
    """What a family of timm ViTs shares: the backend, the hook on the final norm, the block split, the
    checkpoint conversion (timm's `checkpoint_filter_fn` reads Meta's, OpenAI's and timm's own layouts)."""

    backend = TimmVitBackend
    block_backend = TimmBlocks
    block_remap = staticmethod(remap_tokens)
    mean: ClassVar[tuple[float, float, float]] = IMAGENET_MEAN
    std: ClassVar[tuple[float, float, float]] = IMAGENET_STD

    def make_backend(self, name, model, weights, device):
        return TimmVitBackend(name, model, weights, device, self.mean, self.std, family=self)

    def convert(self, state, model):
        state = checkpoint_filter_fn(state, model)
        own = model.state_dict()
        return {k: v for k, v in state.items() if k in own or not k.startswith("head.")}  # no classifier head here

    def owns(self, model):
        return isinstance(model, VisionTransformer)

    def patch(self, model, pairs):
        """A hook on the final norm: its (B, tokens, C) output gets the channel map (registers included)."""
        return ReplacementPatch(model.norm, pairs, model.embed_dim, remap=remap_tokens)

    def output_channels(self, model):
        return model.embed_dim

    def blocks(self, model):
        return model.blocks if isinstance(model, VisionTransformer) else None

    def block_width(self, blocks, block):
        return blocks[block].norm1.normalized_shape[0]
