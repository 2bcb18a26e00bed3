"""Model registry and backends (SAM now; SAM2 plugs in through the same Backend interface)."""

from ..io import cache_dir
from .base import FEATURES, Backend, DecodeContext, ImageMeta
from .registry import REGISTRY, ModelSpec, build_backend, get_spec
from .weights import WeightsInfo

__all__ = [
    "REGISTRY",
    "Backend",
    "ImageMeta",
    "ModelSpec",
    "DecodeContext",
    "FEATURES",
    "WeightsInfo",
    "build_backend",
    "cache_dir",
    "get_spec",
]
