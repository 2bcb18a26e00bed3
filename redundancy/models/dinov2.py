"""DINOv2 backend: timm's VisionTransformer (the class timm ships the official DINOv2 weights in) + a cheap head.

The replaced tensor is the last block's normed output: `model.norm`'s tokens, the class token and
every patch token (register tokens, where the model has them, are not searched: no head reads
them, so the patch hook's edit of them changes nothing). Both heads of the paper read it, the
classifier the class token (and the patch mean), the depth head every patch token (and the class
token), so one channel map on this one tensor is the zero-parameter patch for either task.
Features are laid out (B, C, 1, T), token 0 the class token, tokens 1.. the patch grid row by
row; `channel_maps` reshapes them for display.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn

from ..errors import ModelError
from ..prompts import Prompt
from ..replace import ReplacementPatch, apply_map
from .base import FEATURES, Backend, DecodeContext, ImageMeta
from .weights import WeightsInfo

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet statistics DINOv2 was trained with
INPUT_SIZE = 224  # DINOv2's linear-evaluation resolution: a 16 x 16 patch grid

# timm's DINOv2 architectures (its `vit_*_patch14_dinov2` models): width, depth, heads, MLP.
CONFIGS = {
    "s": dict(embed_dim=384, depth=12, num_heads=6),
    "b": dict(embed_dim=768, depth=12, num_heads=12),
    "l": dict(embed_dim=1024, depth=24, num_heads=16),
    "g": dict(embed_dim=1536, depth=40, num_heads=24, mlp_ratio=2.66667 * 2, mlp_layer="swiglu"),
    "tiny": dict(embed_dim=64, depth=2, num_heads=2),  # test size, same class and token layout
}
TINY_INPUT = 112  # dinov2_tiny: an 8 x 8 patch grid


def build(size: str, registers: bool = False, img_size: int = INPUT_SIZE) -> VisionTransformer:
    """timm's DINOv2 ViT-`size`/14 (LayerScale, no head), at `img_size` pixels, with 4 registers if asked."""
    args = dict(CONFIGS[size])
    if args.pop("mlp_layer", None):  # ViT-g uses SwiGLU as in DINOv2 (timm: SwiGLUPacked)
        from timm.layers import SwiGLUPacked

        args.update(mlp_layer=SwiGLUPacked, act_layer=torch.nn.SiLU)
    if registers:
        args.update(reg_tokens=4, no_embed_class=True)
    return VisionTransformer(
        img_size=img_size, patch_size=14, init_values=1e-5, num_classes=0, dynamic_img_size=False, **args
    )


def convert(state: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Meta's DINOv2 checkpoint layout (or timm's Hub files) -> this model's keys, position embeddings resized."""
    return checkpoint_filter_fn(state, model)


class Dinov2Backend(Backend):
    """A frozen DINOv2 encoder split at its last normed tokens, with a head chosen by the task."""

    tasks = ("classify", "depth")

    def __init__(self, name: str, model: VisionTransformer, weights: WeightsInfo, device: torch.device):
        self.name = name
        self.model = model.to(device).eval()
        self.weights = weights
        self.device = device
        self.channels = model.embed_dim
        self.input_size = model.patch_embed.img_size[0]
        self.grid = tuple(model.patch_embed.grid_size)
        self.head: torch.nn.Module | None = None  # set by the session: a classifier or a depth head
        self.image_path = ("",)

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """RGB uint8 (H, W, 3) -> (3, S, S): resized whole (no crop, so every pixel has a patch), normalised."""
        x = torch.tensor(image, device=self.device).permute(2, 0, 1).float()[None] / 255.0
        x = F.interpolate(x, (self.input_size,) * 2, mode="bicubic", antialias=True, align_corners=False)
        mean = torch.tensor(MEAN, device=self.device)[:, None, None]
        std = torch.tensor(STD, device=self.device)[:, None, None]
        return ((x[0].clamp(0, 1) - mean) / std).float()

    def _tokens(self, normed: torch.Tensor) -> torch.Tensor:
        """The normed tokens (B, prefix + N, C) without register tokens -> (B, C, 1, 1 + N)."""
        keep = torch.cat([normed[:, :1], normed[:, self.model.num_prefix_tokens :]], 1)
        return keep.transpose(1, 2)[:, :, None]

    def forward_features(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return {FEATURES: self._tokens(self.model.forward_features(batch))}

    def meta(self, original_hw: tuple[int, int]) -> ImageMeta:
        return ImageMeta(tuple(original_hw), (self.input_size, self.input_size))

    def embed_prompts(self, prompts: list[Prompt], metas: list[ImageMeta]) -> DecodeContext:
        if any(p.box or p.point for p in prompts):
            raise ModelError(f"{self.name} takes no prompts: classification and depth use prompt none.")
        empty = torch.zeros(len(prompts), 0, device=self.device)
        return DecodeContext(empty, empty)

    def batch_context(self, context: DecodeContext) -> DecodeContext:
        return context

    def _head(self) -> torch.nn.Module:
        if self.head is None:
            raise ModelError(f"{self.name} has no head yet: open a session with a classify or depth dataset.")
        return self.head

    def decode(self, feats, context, mask_choice="single", reference=False) -> torch.Tensor:
        """Tokens (V, C, 1, T) -> head outputs: logits (V, K) or depth (V, gh, gw)."""
        return self._head()(feats)

    def upscale(self, out: torch.Tensor, meta: ImageMeta) -> torch.Tensor:
        """Depth (V, gh, gw) -> (V, H, W) bilinearly at the image's size; logits pass unchanged."""
        if out.dim() == 3:
            return F.interpolate(out[:, None], meta.original_hw, mode="bilinear", align_corners=False)[:, 0]
        return out

    def has_pair_outputs(self) -> bool:
        return hasattr(self.head, "pair_outputs")

    def pair_output_size(self) -> int:
        return self._head().output_size

    def pair_outputs(self, feats: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        return self._head().pair_outputs(feats, pairs)

    def channel_maps(self, feats: torch.Tensor) -> torch.Tensor:
        """Tokens (B, C, 1, T) -> patch-token maps (B, C, gh, gw) (the class token is left out)."""
        return feats[:, :, 0, 1:].unflatten(2, self.grid)

    def feature_module(self) -> torch.nn.Module:
        return self.model.norm

    def patch(self, pairs: list[tuple[int, int]]) -> ReplacementPatch:
        """Hook on the final norm: its (B, tokens, C) output gets the channel map (registers included)."""
        return dinov2_patch(self.model, pairs)


def remap_tokens(out: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Normed tokens (B, T, C) under a channel map (C,)."""
    return apply_map(out.transpose(1, 2)[..., None], f)[..., 0].transpose(1, 2)


def dinov2_patch(model: VisionTransformer, pairs: list[tuple[int, int]]) -> ReplacementPatch:
    """Install `pairs` on a timm DINOv2 ViT: a forward hook on its final norm (the tensor the search edited)."""
    return ReplacementPatch(model.norm, pairs, model.embed_dim, remap=remap_tokens)
