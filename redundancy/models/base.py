"""The backend interface the engine uses: encode images, build each image's decoder context, decode features to
head outputs. Nothing here is one family's: prompts and mask choice are the promptable decoders' (`prompted.py`)."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from ..data.prompts import Prompt
from ..errors import ModelError
from ..replace import ReplacementPatch
from ..tasks.heads import Head
from ._weights import WeightsInfo


@dataclass(frozen=True)
class ImageMeta:
    """Sizes a backend needs to map low-res logits back to an image: (H, W) each."""

    original_hw: tuple[int, int]
    input_hw: tuple[int, int]


@dataclass
class DecodeContext:
    """Per-image decoder inputs besides the replaced features, batched over B images.

    The base holds the encoder's other per-image outputs the decoder reads (`extras`, e.g. SAM2's
    high-resolution skips); a family's subclass adds its own fields (SAM's prompts: `prompted.py`).
    `take` picks rows of every tensor field so that one decoder call can mix images.
    """

    extras: dict[str, torch.Tensor] = field(default_factory=dict, kw_only=True)

    def take(self, index: torch.Tensor | list[int]) -> DecodeContext:
        """Rows for the given image indices (V,): each tensor (and each tensor in a dict) indexed, the rest kept."""

        def rows(value):
            if isinstance(value, torch.Tensor):
                return value[index]
            if isinstance(value, dict):
                return {k: rows(v) for k, v in value.items()}
            return value

        return dataclasses.replace(self, **{f.name: rows(getattr(self, f.name)) for f in dataclasses.fields(self)})


FEATURES = "features"  # the key of the replaced tensor in `Backend.encode`'s output


def extras_of(encoded: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An encoder's outputs besides the replaced features: what a decode context carries as its `extras`."""
    return {k: v for k, v in encoded.items() if k != FEATURES}


class FamilyHooks(Protocol):
    """What a backend and the encoder split ask of their family (`_registry.Family` implements it)."""

    @property
    def name(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def block_backend(self) -> Callable[[Backend, int, torch.nn.ModuleList], Backend]: ...
    def patch(self, model: torch.nn.Module, pairs: list[tuple]) -> ReplacementPatch: ...
    def blocks(self, model: torch.nn.Module) -> torch.nn.ModuleList | None: ...
    def block_width(self, blocks: torch.nn.ModuleList, block: int) -> int: ...
    def block_patch(self, model: torch.nn.Module, pairs: list[tuple], block: int) -> ReplacementPatch: ...
    def split(self, backend: Backend, layer: int | str) -> Backend: ...


class Backend(ABC):
    """A frozen model split at the tensor the search edits (its encoder output).

    The engine only calls these methods; features are (B, C, h, w) with C = `channels`.
    """

    name: str
    channels: int
    weights: WeightsInfo
    device: torch.device
    model: torch.nn.Module
    model_input_pixels: int = 0  # pixels of any fixed-size map `upscale` passes through (memory bound)
    image_path: tuple[str, ...] = ("",)  # state-dict key prefixes image segmentation uses (SAM: all of them)
    tasks: tuple[str, ...] = ()  # what its head does (task names; each family's backend says, the first the default)
    head: Head | None = None  # a head the session attaches (DINOv2); SAM's decoder is its own
    fits_heads: bool = True  # scored by a head fitted on its features (False: its own decoder, which takes prompts)
    family: FamilyHooks | None = None  # its `Family`, given when the family makes it: patch hooks and encoder blocks

    encode_batch = 4  # images per encoder call

    @abstractmethod
    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """RGB uint8 image (H, W, 3) -> the encoder's input (3, S, S) on the device, as its predictor makes it."""

    @abstractmethod
    def forward_features(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encoder inputs (B, 3, S, S) -> {FEATURES: (B, C, h, w), other decoder inputs}; differentiable."""

    @torch.no_grad()
    def encode(self, images: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """RGB uint8 images (H, W, 3) -> {FEATURES: (B, C, h, w), other per-image decoder inputs}."""
        chunks = [
            self.forward_features(torch.stack([self.preprocess(im) for im in images[s : s + self.encode_batch]]))
            for s in range(0, len(images), self.encode_batch)
        ]
        return {k: torch.cat([c[k] for c in chunks]) for k in chunks[0]}

    @abstractmethod
    def meta(self, original_hw: tuple[int, int]) -> ImageMeta:
        """Sizes for an image of this original (H, W)."""

    def context(
        self,
        encoded: dict[str, torch.Tensor],
        prompts: list[Prompt],
        metas: list[ImageMeta],
        mask_choice: str = "single",
    ) -> DecodeContext:
        """Decoder context for B encoded images: the encoder's other outputs. A promptable family adds the prompts'
        embeddings and its mask choice (`prompted.py`); a model that takes no prompts refuses any and has no choice."""
        if any(p.box or p.point for p in prompts):
            raise ModelError(f"{self.name} takes no prompts (a fitted head scores it): use prompt none.")
        return DecodeContext(extras=extras_of(encoded))

    @abstractmethod
    def decode(self, feats: torch.Tensor, context: DecodeContext, reference: bool = False) -> torch.Tensor:
        """Features (V, C, h, w) with their context rows (V) -> head outputs (SAM: low-res mask logits (V, h', w')).

        `reference` runs the package's own modules where a family has a faster equivalent (SAM's re-associated
        decoder, `models/decoder.py`; equal up to float rounding; the plain reference loop uses it).
        """

    @abstractmethod
    def upscale(self, logits: torch.Tensor, meta: ImageMeta) -> torch.Tensor:
        """Low-res logits (V, h', w') of one image -> logits at its original size (V, H, W)."""

    def attach_head(self, module: Head) -> None:
        """Score with this head from now on (a session attaches its head once, before anything decodes)."""
        self.head = module

    @abstractmethod
    def feature_module(self) -> torch.nn.Module:
        """The module whose output is the features that replacement edits (for forward hooks)."""

    def channel_maps(self, feats: torch.Tensor) -> torch.Tensor:
        """Features (B, C, ...) as spatial maps (B, C, h, w) for display (SAM's already are)."""
        return feats

    def has_pair_outputs(self) -> bool:
        """Whether `pair_outputs` has a shortcut for this head (a linear head: the rank-one update)."""
        return False

    def pair_output_size(self) -> int:
        """Numbers per (pair, image) that `pair_outputs` returns (its memory per row)."""
        raise NotImplementedError

    def pair_outputs(self, feats: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """Head outputs (P, B, ...) for every pair (source takes target) on every image (B, C, ...)."""
        raise NotImplementedError

    def patch(self, pairs: list[tuple[int, int]]) -> ReplacementPatch:
        """A live forward-hook patch applying `pairs` to this model's encoder output (its family's hook)."""
        assert self.family is not None, "a backend is made by its family (Family.make_backend)"
        return self.family.patch(self.model, pairs)

    def batch_context(self, context: DecodeContext) -> DecodeContext:
        """The same context laid out for the batched decoder path (read once per image set; default: as it is)."""
        return context

    @torch.no_grad()
    def predict(
        self, images: list[np.ndarray], prompts: list[Prompt], mask_choice: str = "single"
    ) -> list[torch.Tensor]:
        """Unmodified predictions: images (H, W, 3) with prompts -> logits (H, W) at original size."""
        encoded = self.encode(images)
        metas = [self.meta(im.shape[:2]) for im in images]
        low = self.decode(encoded[FEATURES], self.context(encoded, prompts, metas, mask_choice))
        return [self.upscale(low[b : b + 1], m)[0] for b, m in enumerate(metas)]
