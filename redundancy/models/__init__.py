"""Models: one module per family (sam, sam2, dinov2, clip, mae; timm_any, hf_any: any timm or transformers model by
name; module: your own module from Python), each registering its specs; the registry,
weights and loader machinery (`_registry`, `_weights`, `_loader`); the backend interface the engine sees
(`base`); shared machinery (the re-associated decoder, timm ViTs, encoder blocks, heads, live patches)."""

# isort: off
from . import sam, sam2, dinov2, clip, mae, timm_any, hf_any, module  # noqa: F401  (each registers itself, in this order)

# isort: on
from ._device import DEVICES, check_device
from ._loader import build_backend
from ._registry import (
    DEFAULT_MODEL,
    FAMILIES,
    REGISTRY,
    Family,
    ModelSpec,
    families_with,
    family_of,
    get_spec,
    names_a_path,
    register_demo_models,
)
from ._weights import WeightsInfo
from .base import FEATURES, Backend, DecodeContext, ImageMeta

register_demo_models()  # after the families: a demo model is one of their architectures with shipped weights

__all__ = [
    "DEFAULT_MODEL",
    "DEVICES",
    "FAMILIES",
    "FEATURES",
    "REGISTRY",
    "Backend",
    "DecodeContext",
    "Family",
    "ImageMeta",
    "ModelSpec",
    "WeightsInfo",
    "build_backend",
    "check_device",
    "families_with",
    "family_of",
    "get_spec",
    "names_a_path",
]
