"""DINOv2: timm's VisionTransformer (the class timm ships the official DINOv2 weights in), Meta's checkpoints
and their Hub copies, and its registry entries. The backend, patch hook and block split are timm ViTs'
(`vit.py`): the last block's normed tokens are what the search edits, read by a cheap head per task.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models.vision_transformer import VisionTransformer

from ._registry import ModelSpec, register, register_family
from .vit import TimmVitFamily

INPUT_SIZE = 224  # DINOv2's linear-evaluation resolution: a 16 x 16 patch grid

# timm's DINOv2 architectures (its `vit_*_patch14_dinov2` models): width, depth, heads, MLP.
CONFIGS: dict[str, dict[str, Any]] = {
    "s": dict(embed_dim=384, depth=12, num_heads=6),
    "b": dict(embed_dim=768, depth=12, num_heads=12),
    "l": dict(embed_dim=1024, depth=24, num_heads=16),
    "g": dict(embed_dim=1536, depth=40, num_heads=24, mlp_ratio=2.66667 * 2, mlp_layer="swiglu"),
    "tiny": dict(embed_dim=64, depth=2, num_heads=2),  # test size, same class and token layout
    "tiny_wide": dict(embed_dim=192, depth=6, num_heads=3),  # the demo model's: wide enough for channels to specialise
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


@register_family
class Dinov2Family(TimmVitFamily):
    """DINOv2 (ImageNet normalisation; Meta's `*_pretrain.pth` layout or timm's own)."""

    name = "dinov2"
    label = "DINOv2"


DINOV2_URL = "https://dl.fbaipublicfiles.com/dinov2/"


def _dinov2(name: str, size: str, registers: bool, label: str) -> ModelSpec:
    """A DINOv2 entry: timm's class, Meta's official file (no published sha256: its hash is recorded)."""
    img = TINY_INPUT if size.startswith("tiny") else INPUT_SIZE
    build_fn = lambda: build(size, registers, img)  # noqa: E731
    if size.startswith("tiny"):
        c = CONFIGS[size]
        desc = (
            f"DINOv2 classes at test size (timm ViT, {c['depth']} blocks, {c['embed_dim']} channels, {img} px){label}; "
            "no official weights"
        )
        return ModelSpec(name, "dinov2", desc, build_fn, test_size=True)
    reg = "_reg4" if registers else ""
    arch = f"vit{size}14{reg}"
    timm_name = {"s": "small", "b": "base", "l": "large", "g": "giant"}[size]
    return ModelSpec(
        name,
        "dinov2",
        f"DINOv2 {label}{' with registers' if registers else ''}, official Meta checkpoint at {img} px; "
        "no published sha256, the file's hash is recorded",
        build_fn,
        f"{DINOV2_URL}dinov2_{arch}/dinov2_{arch}_pretrain.pth",
        hub=f"timm/vit_{timm_name}_patch14{reg}_dinov2.lvd142m/model.safetensors",
    )


register(
    *(
        _dinov2(f"dinov2_vit{k}14{'_reg' if reg else ''}", k, reg, label)
        for k, label in (
            ("s", "ViT-S/14 (21M)"),
            ("b", "ViT-B/14 (86M)"),
            ("l", "ViT-L/14 (300M)"),
            ("g", "ViT-g/14 (1.1B)"),
        )
        for reg in (False, True)
    ),
    _dinov2("dinov2_tiny", "tiny", False, ""),
    _dinov2("dinov2_tiny_wide", "tiny_wide", False, ": the architecture of the demo model dinov2_tiny_demo"),
)
