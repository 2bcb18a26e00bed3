"""MAE (masked autoencoders): the pre-trained encoder as timm's VisionTransformer, Meta's official checkpoints
(and timm's Hub copies), and its registry entries. Classification and depth run through the same heads as
for DINOv2 (`vit.py`): the encoder's last normed tokens. MAE's decoder (pixel reconstruction) is not loaded.
"""

from __future__ import annotations

from timm.models.vision_transformer import VisionTransformer

from ._registry import ModelSpec, register, register_family
from .vit import TimmVitFamily

MAE_URL = "https://dl.fbaipublicfiles.com/mae/pretrain/"
INPUT_SIZE = 224
# name -> (timm ViT arguments, the official file, the timm Hub copy, label)
SIZES = {
    "mae_vitb16": (
        dict(patch_size=16, embed_dim=768, depth=12, num_heads=12),
        "mae_pretrain_vit_base.pth",
        "timm/vit_base_patch16_224.mae/model.safetensors",
        "ViT-B/16 (86M)",
    ),
    "mae_vitl16": (
        dict(patch_size=16, embed_dim=1024, depth=24, num_heads=16),
        "mae_pretrain_vit_large.pth",
        "timm/vit_large_patch16_224.mae/model.safetensors",
        "ViT-L/16 (304M)",
    ),
    "mae_vith14": (
        dict(patch_size=14, embed_dim=1280, depth=32, num_heads=16),
        "mae_pretrain_vit_huge.pth",
        "timm/vit_huge_patch14_224.mae/model.safetensors",
        "ViT-H/14 (632M)",
    ),
}
TINY = dict(patch_size=16, embed_dim=64, depth=2, num_heads=2)  # test size: 112 px, a 7 x 7 grid
TINY_INPUT = 112


def build(args: dict, img_size: int = INPUT_SIZE) -> VisionTransformer:
    """MAE's encoder as timm builds it (`vit_*_224.mae`): a plain ViT with the class token, no head."""
    return VisionTransformer(img_size=img_size, num_classes=0, dynamic_img_size=False, **args)


@register_family
class MaeFamily(TimmVitFamily):
    """MAE's encoder (ImageNet normalisation; Meta's `{"model": ...}` files or timm's own)."""

    name = "mae"
    label = "MAE"


def _mae(name: str, args: dict, file: str, hub: str, label: str) -> ModelSpec:
    return ModelSpec(
        name,
        "mae",
        f"MAE {label} pre-trained encoder, official Meta checkpoint at {INPUT_SIZE} px; no published sha256, the "
        "file's hash is recorded",
        lambda: build(args),
        MAE_URL + file,
        hub=hub,
    )


register(
    *(_mae(name, *entry) for name, entry in SIZES.items()),
    ModelSpec(
        "mae_tiny",
        "mae",
        f"MAE encoder classes at test size (timm ViT, 2 blocks, 64 channels, {TINY_INPUT} px); no official weights",
        lambda: build(TINY, TINY_INPUT),
        test_size=True,
    ),
)
