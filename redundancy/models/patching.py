"""`patch`: install a found replacement set on a user's own SAM or SAM2 model, picking the right hook."""

from __future__ import annotations

from pathlib import Path

import torch
from segment_anything.modeling import ImageEncoderViT, Sam

from ..errors import ReplacementError
from ..replace import ReplacementPatch, load_replacements
from .sam import PROMPT_DIM
from .sam2 import sam2_patch


def patch(model: torch.nn.Module, pairs: list[tuple[int, int]] | str | Path) -> ReplacementPatch:
    """Apply `pairs` (or a replacements.json path) to `model`'s encoder output; `.remove()` undoes it.

    SAM (`segment_anything`'s Sam, or its image encoder) gets a hook on the image encoder; SAM2
    (`SAM2Base`) the hook that acts on `image_embed` after `no_mem_embed`, as the search did.
    """
    if isinstance(pairs, (str, Path)):
        pairs = load_replacements(pairs, channels=PROMPT_DIM)
    if isinstance(model, Sam):
        return ReplacementPatch(model.image_encoder, pairs, PROMPT_DIM)
    if isinstance(model, ImageEncoderViT):
        return ReplacementPatch(model, pairs, PROMPT_DIM)
    if hasattr(model, "sam_mask_decoder") and hasattr(model, "no_mem_embed"):  # sam2's SAM2Base
        return sam2_patch(model, pairs)
    raise ReplacementError(
        f"patch() knows SAM (segment_anything Sam) and SAM2 (SAM2Base) models, not {type(model).__name__}; "
        "for another module use redundancy.replace.ReplacementPatch(module, pairs, channels)."
    )
