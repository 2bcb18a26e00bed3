"""On-disk cache of encoder features, keyed by model, weights and image content.

Features are stored in float16 and always read back through the cache (also right after
encoding), so a run gives the same numbers whether or not its features were cached.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import load_image
from ..errors import Cancelled, ModelError, RunError
from ..io import cache_dir
from ..io import sha256_file as file_sha256
from ..models import FEATURES, Backend

log = logging.getLogger(__name__)

CACHE_VERSION = "v2"  # bump when preprocessing changes, so old entries are not reused


@dataclass(frozen=True)
class Encoded:
    """What `FeatureCache.encode` returns: the encoder outputs and how many images came from the cache or were
    encoded now."""

    tensors: dict[str, torch.Tensor]  # {FEATURES: (B, C, h, w), other per-image decoder inputs}
    hits: int
    misses: int


class FeatureCache:
    """Encode each image once per (model, weights), and read it back from then on."""

    def __init__(self, root: str | Path | None = None, dtype: torch.dtype = torch.float16):
        self.root = Path(root) if root is not None else cache_dir() / "features"
        if self.root.exists() and not self.root.is_dir():
            raise RunError(f"the feature cache {self.root} is a file, not a folder; pass a folder with --cache.")
        self.dtype = dtype

    def path(self, backend: Backend, image_sha: str) -> Path:
        """Where one image's features live."""
        layer = getattr(backend, "layer", None)  # features inside the encoder (block k): their own entries
        tag = f"{CACHE_VERSION}|{backend.name}|{backend.weights.key}|{self.dtype}" + (
            f"|block{layer}" if layer is not None else ""
        )
        key = hashlib.sha256(tag.encode())
        return self.root / backend.name / key.hexdigest()[:24] / f"{image_sha}.pt"

    def _store(self, path: Path, encoded: dict[str, torch.Tensor]) -> None:
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            os.close(fd)
            torch.save({k: v.to("cpu", self.dtype).clone() for k, v in encoded.items()}, tmp)
            os.replace(tmp, path)  # atomic: readers never see half a file
        except (OSError, RuntimeError) as e:  # torch.save reports a full disk as a RuntimeError
            reason = getattr(e, "strerror", None) or "write failed: read-only or full?"
            raise RunError(
                f"cannot write the feature cache {self.root} ({reason}); pass a "
                "writable folder with --cache (or set REDUNDANCY_CACHE)."
            ) from None
        finally:
            if tmp and os.path.exists(tmp):
                os.unlink(tmp)

    def _load(self, path: Path) -> dict[str, torch.Tensor] | None:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
            return data if isinstance(data, dict) and FEATURES in data else None
        except Exception:  # a damaged entry is re-encoded, never fatal
            return None

    def encode(
        self,
        backend: Backend,
        image_paths: list[Path],
        on_progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Encoded:
        """Encoder outputs {FEATURES: (B, C, h, w), ...} float32 on the backend's device, cached per image."""
        hits = misses = 0
        out: list[dict[str, torch.Tensor]] = []
        for k, image_path in enumerate(image_paths):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled by the user while encoding; images encoded so far stay cached.")
            path = self.path(backend, file_sha256(image_path))
            cached = self._load(path) if path.exists() else None
            if cached is None:
                misses += 1
                encoded = backend.encode([load_image(image_path)])
                if not all(bool(torch.isfinite(v).all()) for v in encoded.values()):
                    raise ModelError(
                        f"{image_path.name}: the encoder produced NaN or Inf features; the weights (or the "
                        "fine-tune) are broken for this input. Check them with a known-good checkpoint."
                    )
                self._store(path, {key: v[0] for key, v in encoded.items()})
                cached = self._load(path)
                assert cached is not None, "an entry just written (atomically) reads back"
            else:
                hits += 1
            out.append(cached)
            if on_progress:
                on_progress(k + 1, len(image_paths))
        log.debug("encoded %d images of %s: %d from the cache, %d new", len(out), backend.name, hits, misses)
        tensors = {key: torch.stack([o[key] for o in out]).to(backend.device, torch.float32) for key in out[0]}
        return Encoded(tensors, hits, misses)

    def features(self, backend: Backend, image_paths: list[Path], on_progress=None) -> torch.Tensor:
        """Only the replaced features (B, C, h, w)."""
        return self.encode(backend, image_paths, on_progress).tensors[FEATURES]
