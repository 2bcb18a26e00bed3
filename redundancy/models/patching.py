"""`patch`: install a found replacement set on a user's own SAM, SAM2 or DINOv2 model, picking the right hook."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from segment_anything.modeling import ImageEncoderViT, Sam
from timm.models.vision_transformer import VisionTransformer

from ..errors import ReplacementError
from ..replace import ReplacementPatch, apply_map, load_replacements
from .dinov2 import dinov2_patch
from .layers import block_channels, block_patch
from .sam import PROMPT_DIM
from .sam2 import sam2_patch


def patch(model: torch.nn.Module, pairs: list[tuple] | str | Path, layer: int | None = None) -> ReplacementPatch:
    """Apply `pairs` (or a replacements.json path) to `model`'s encoder output; `.remove()` undoes it.

    SAM (`segment_anything`'s Sam, or its image encoder; or a transformers `SamModel`) gets a hook on
    the image encoder's output (the image embeddings); SAM2
    (`SAM2Base`) the hook that acts on `image_embed` after `no_mem_embed`, as the search did; a
    DINOv2 ViT (timm's VisionTransformer) a hook on its final norm, the tokens the heads read.
    A set found inside the encoder (`layer`, read from its replacements.json when not given) hooks the
    output of that encoder block (SAM's ViT, DINOv2's ViT or SAM2's Hiera trunk).
    """
    if isinstance(pairs, (str, Path)) and layer is None:
        layer = _recorded_layer(pairs)
    if layer is not None:
        if isinstance(pairs, (str, Path)):
            pairs = load_replacements(pairs, channels=block_channels(model, layer))
        return block_patch(model, pairs, layer)
    if all(hasattr(model, m) for m in ("vision_encoder", "prompt_encoder", "mask_decoder")):  # transformers SamModel
        if isinstance(pairs, (str, Path)):
            pairs = load_replacements(pairs, channels=PROMPT_DIM)
        return ReplacementPatch(model.vision_encoder, pairs, PROMPT_DIM, remap=_remap_output)
    if isinstance(model, VisionTransformer):
        if isinstance(pairs, (str, Path)):
            pairs = load_replacements(pairs, channels=model.embed_dim)
        return dinov2_patch(model, pairs)
    if isinstance(pairs, (str, Path)):
        pairs = load_replacements(pairs, channels=PROMPT_DIM)
    if isinstance(model, Sam):
        return ReplacementPatch(model.image_encoder, pairs, PROMPT_DIM)
    if isinstance(model, ImageEncoderViT):
        return ReplacementPatch(model, pairs, PROMPT_DIM)
    if hasattr(model, "sam_mask_decoder") and hasattr(model, "no_mem_embed"):  # sam2's SAM2Base
        return sam2_patch(model, pairs)
    raise ReplacementError(
        f"patch() knows SAM (segment_anything Sam), SAM2 (SAM2Base) and DINOv2 (timm VisionTransformer) models, "
        f"not {type(model).__name__}; "
        "for another module use redundancy.replace.ReplacementPatch(module, pairs, channels)."
    )


def _recorded_layer(path: str | Path) -> int | None:
    """The encoder block a replacements.json was found at (None: the encoder output, or an unreadable file,
    which `load_replacements` then reports)."""
    try:
        layer = json.loads(Path(path).read_text()).get("layer")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return layer if isinstance(layer, int) and not isinstance(layer, bool) else None


def _remap_output(out, f: torch.Tensor):
    """A transformers vision encoder's output (ModelOutput or tuple; the embeddings first) under a channel map."""
    if isinstance(out, tuple):
        return (apply_map(out[0], f), *out[1:])
    out["last_hidden_state"] = apply_map(out["last_hidden_state"], f)  # ModelOutput: item and attribute
    return out
