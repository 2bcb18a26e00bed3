"""`patch`: install a found replacement set on a user's own model; the model's family picks the hook."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import ReplacementError
from ..replace import ReplacementPatch, load_replacements, recorded_layer
from ._registry import FAMILIES
from .layers import patchable_blocks


def patch(model: torch.nn.Module, pairs: list[tuple] | str | Path, layer: int | str | None = None) -> ReplacementPatch:
    """Apply `pairs` (or a replacements.json path) to `model`'s encoder output; `.remove()` undoes it.

    SAM (`segment_anything`'s Sam, or its image encoder; or a transformers `SamModel`) gets a hook on
    the image encoder's output (the image embeddings); SAM2 (`SAM2Base`) the hook that acts on
    `image_embed` after `no_mem_embed`, as the search did; a timm ViT (DINOv2, CLIP's image tower, MAE's
    encoder) a hook on its final norm, the tokens the heads read. A set found inside the encoder
    (`layer`, read from its replacements.json when not given) hooks the output of that encoder block.
    """
    if isinstance(pairs, (str, Path)) and layer is None:
        layer = _recorded_layer(pairs)
    # a timm ViT is DINOv2's and timm's: the first (by precedence) that reads the layer
    owners = sorted((f for f in FAMILIES.values() if f.owns(model)), key=lambda f: -f.precedence)
    family = next((f for f in owners if f.splits_at(layer)), owners[0] if owners else None)
    if layer is not None:
        if family is None:
            patchable_blocks(family, model, layer)  # raises: what this model is not
        assert family is not None
        if isinstance(pairs, (str, Path)):
            pairs = load_replacements(pairs, channels=family.layer_channels(model, layer))
        return family.layer_patch(model, pairs, layer)
    if family is None:
        raise ReplacementError(
            f"patch() knows {', '.join(f.label for f in FAMILIES.values())} models, not {type(model).__name__}; "
            "for another module use redundancy.replace.ReplacementPatch(module, pairs, channels)."
        )
    if isinstance(pairs, (str, Path)):
        pairs = load_replacements(pairs, channels=family.output_channels(model))
    return family.patch(model, pairs)


def _recorded_layer(path: str | Path) -> int | str | None:
    """The encoder block a replacements.json was found at (None: the encoder output, or an unreadable file,
    which `load_replacements` then reports)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return recorded_layer(data, Path(path).name) if isinstance(data, dict) else None  # an odd value: one line
