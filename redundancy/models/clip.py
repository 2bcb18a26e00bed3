"""CLIP's image tower (OpenAI): timm's VisionTransformer in CLIP's configuration, OpenAI's official checkpoints
(and timm's Hub copies), and its registry entries. Classification and depth run through the same heads as for
DINOv2 (`vit.py`): the tower's last normed tokens, before CLIP's projection to the text space.

The official files are OpenAI's TorchScript archives, whose sha256 is the folder of their URL; they are
opened only when the file hashes to it (`_weights.load_state_dict`), and timm's converter reads their
`visual.*` tensors. The text tower is not loaded.
"""

from __future__ import annotations

from functools import partial

import torch
from timm.models.vision_transformer import VisionTransformer

from ._registry import ModelSpec, register, register_family
from .vit import TimmVitFamily

OPENAI_URL = "https://openaipublic.azureedge.net/clip/models/"
OPENAI_MEAN, OPENAI_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
INPUT_SIZE = 224
# name -> (timm ViT arguments, the official file under OPENAI_URL: <sha256>/<file>, the timm Hub copy, label)
SIZES = {
    "clip_vitb16": (
        dict(patch_size=16, embed_dim=768, depth=12, num_heads=12),
        "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt",
        "timm/vit_base_patch16_clip_224.openai/model.safetensors",
        "ViT-B/16 (86M)",
    ),
    "clip_vitl14": (
        dict(patch_size=14, embed_dim=1024, depth=24, num_heads=16),
        "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
        "timm/vit_large_patch14_clip_224.openai/model.safetensors",
        "ViT-L/14 (304M)",
    ),
}
TINY = dict(patch_size=16, embed_dim=64, depth=2, num_heads=2)  # test size: 112 px, a 7 x 7 grid
TINY_INPUT = 112


def build(args: dict, img_size: int = INPUT_SIZE) -> VisionTransformer:
    """CLIP's image tower as timm builds it (`vit_*_clip_quickgelu_224`): a pre-norm, QuickGELU as OpenAI
    trained it, the class token; no projection head."""
    return VisionTransformer(
        img_size=img_size, pre_norm=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-5), act_layer="quick_gelu",
        num_classes=0, global_pool="token", dynamic_img_size=False, **args,
    )  # fmt: skip


@register_family
class ClipFamily(TimmVitFamily):
    """CLIP's image tower (OpenAI's normalisation; OpenAI's `visual.*` layout, open_clip's or timm's own)."""

    name = "clip"
    label = "CLIP"
    mean, std = OPENAI_MEAN, OPENAI_STD


def _clip(name: str, args: dict, file: str, hub: str, label: str) -> ModelSpec:
    sha256 = file.split("/")[0]  # OpenAI's clip.py checks the download against the same folder name
    return ModelSpec(
        name,
        "clip",
        f"CLIP {label} image tower, official OpenAI checkpoint at {INPUT_SIZE} px (sha256 checked)",
        lambda: build(args),
        OPENAI_URL + file,
        sha256,
        hub=hub,
    )


register(
    *(_clip(name, *entry) for name, entry in SIZES.items()),
    ModelSpec(
        "clip_tiny",
        "clip",
        f"CLIP image tower classes at test size (timm ViT, 2 blocks, 64 channels, {TINY_INPUT} px); no official "
        "weights",
        lambda: build(TINY, TINY_INPUT),
        test_size=True,
    ),
)
