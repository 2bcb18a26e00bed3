"""Any PyTorch module as a backend: the output of one named submodule is the tensor the search edits, read by a head
fitted on it (`tasks/heads.py`). The timm family (`timm_any.py`) and a user's own module (`module.py`) build on it;
nothing here knows an architecture.

The submodule's output is caught by a forward hook, and the forward stops there: nothing after it runs while
encoding. Its layout is read once from a probe image:
- tokens (B, N, C), prefix tokens (class, registers, distillation) first, as timm's ViTs give them;
- a map (B, C, H, W), or channels last (B, H, W, C) where the model says so (timm's Swin: `output_fmt`).
Features are laid out as the heads read them, (B, C, 1, 1 + n): token 0 is the class token where the model has
one, else the map's spatial mean (a channel copy commutes with the mean, so the edit is the same one); tokens 1..
are the grid row by row. Register and distillation tokens are left out, as for DINOv2. The live patch hooks the
same submodule, in its own layout, so a patched model's features are the ones the search scored.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass

import torch

from ..errors import ConfigError, ModelError
from ..replace import ReplacementPatch, apply_map
from ..tasks.base import head_tasks
from ._registry import Family
from ._weights import WeightsInfo
from .base import FEATURES, Backend
from .headed import IMAGENET_MEAN, IMAGENET_STD, HeadedBackend
from .layers import BlockBackend, remap_channels_last, remap_tokens

TOKENS, NCHW, NHWC = "tokens", "NCHW", "NHWC"  # the layouts a submodule's output may have
REMAPS = {TOKENS: remap_tokens, NCHW: apply_map, NHWC: remap_channels_last}


@dataclass(frozen=True)
class Where:
    """How to read features from a model: which submodule, at what input size and normalisation, with which
    prefix tokens (a family's knowledge of the model, before the probe)."""

    module: str  # the submodule's dotted name (`model.get_submodule`)
    input_hw: tuple[int, int]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    prefix: int = 0  # tokens before the grid in a (B, N, C) output (class, registers, distillation)
    cls: bool = False  # whether the first of them is a class token (token 0 of the features)
    grid: tuple[int, int] | None = None  # the token grid, where the model knows it (ViTs: patch_embed.grid_size)
    channels_last: bool = False  # a 4-d output is (B, H, W, C)


@dataclass(frozen=True)
class Anatomy:
    """`Where`, with what the probe found: the output's layout, channels and grid."""

    where: Where
    layout: str  # TOKENS | NCHW | NHWC
    channels: int
    grid: tuple[int, int]


class _Reached(Exception):
    """Raised by the capture hook: the forward has produced what was asked for, the rest need not run."""


def submodule(model: torch.nn.Module, name: str) -> torch.nn.Module:
    """`model`'s submodule called `name`, or a ConfigError listing a few of the names it has."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        names = [n for n, _ in model.named_children()]
        raise ConfigError(
            f"{type(model).__name__} has no module '{name}'; its top-level modules are {', '.join(names[:12])}"
            f"{', ...' if len(names) > 12 else ''} (a dotted name reaches inside them: stages.2, blocks.5)."
        ) from None


def capture(model: torch.nn.Module, module: torch.nn.Module, batch: torch.Tensor, name: str) -> torch.Tensor:
    """`module`'s output when `model` runs on `batch` (after any live patch on it); the forward stops there."""
    caught: list = []

    def hook(_m, _inp, out):
        caught.append(out)
        raise _Reached

    handle = module.register_forward_hook(hook)  # after any patch hook: it sees the patched output
    try:
        model(batch)
    except _Reached:
        pass
    finally:
        handle.remove()
    if not caught:
        raise ModelError(f"module '{name}' does not run in the model's forward; pick another layer.")
    out = caught[0]
    if not isinstance(out, torch.Tensor) or out.dim() not in (3, 4):
        got = f"a {out.dim()}-d tensor" if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelError(
            f"module '{name}' outputs {got}, not tokens (B, N, C) or a map (B, C, H, W); pick another layer."
        )
    return out


def probe(model: torch.nn.Module, where: Where) -> Anatomy:
    """The layout, channels and grid of `where.module`'s output, from one blank image through `model`."""
    module = submodule(model, where.module)
    device = next(iter(model.parameters()), torch.empty(0)).device
    with torch.no_grad():
        out = capture(model, module, torch.zeros(1, 3, *where.input_hw, device=device), where.module)
    if out.dim() == 4:
        layout = NHWC if where.channels_last else NCHW
        grid = tuple(out.shape[1:3]) if layout == NHWC else tuple(out.shape[2:])
        return Anatomy(where, layout, int(out.shape[3] if layout == NHWC else out.shape[1]), grid)  # type: ignore[arg-type]
    n = out.shape[1] - where.prefix
    if n < 1:
        raise ModelError(f"module '{where.module}' outputs {out.shape[1]} tokens, none of them a patch's.")
    side = math.isqrt(n)
    grid = where.grid if where.grid and math.prod(where.grid) == n else (side, side) if side * side == n else (1, n)
    return Anatomy(where, TOKENS, int(out.shape[2]), grid)


def as_tokens(out: torch.Tensor, anatomy: Anatomy) -> torch.Tensor:
    """A submodule's output in its layout -> features (B, C, 1, 1 + n): token 0 the class token or the mean."""
    # contiguous before the mean: one summation order whatever the output's memory layout (a live patch's output
    # is laid out otherwise than the model's own), so a patched model's mean token is the engine's, bit for bit
    if anatomy.layout == TOKENS:
        w = anatomy.where
        grid = out[:, w.prefix :].transpose(1, 2).contiguous()  # (B, C, n)
        first = out[:, 0, :, None] if w.cls else grid.mean(2, keepdim=True)
    else:
        grid = (out.flatten(2) if anatomy.layout == NCHW else out.flatten(1, 2).transpose(1, 2)).contiguous()
        first = grid.mean(2, keepdim=True)
    return torch.cat([first, grid], 2)[:, :, None]


class HookedBackend(HeadedBackend):
    """A model read at one submodule's output (module doc), scored by a fitted head."""

    tasks = head_tasks(prompted=True)  # classification, depth and segmentation (a per-patch head), all fitted

    def __init__(
        self,
        name: str,
        model: torch.nn.Module,
        weights: WeightsInfo,
        device: torch.device,
        anatomy: Anatomy,
        *,
        family: Family | None = None,
        layer: int | str | None = None,
    ):
        self.name, self.family, self.weights, self.device = name, family, weights, device
        self.model = model.to(device).eval()
        self.anatomy = anatomy
        self.module = submodule(self.model, anatomy.where.module)
        self.channels, self.grid = anatomy.channels, anatomy.grid
        self.input_hw = anatomy.where.input_hw
        self.mean, self.std = anatomy.where.mean, anatomy.where.std
        self.layer = layer  # where `--layer` put it (None: the family's default), in headers and cache keys
        self.head = None

    def forward_features(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return {FEATURES: as_tokens(capture(self.model, self.module, batch, self.anatomy.where.module), self.anatomy)}

    def feature_module(self) -> torch.nn.Module:
        return self.module

    def patch(self, pairs: list[tuple]) -> ReplacementPatch:
        return hook_patch(self.model, self.anatomy, pairs)


def hook_patch(model: torch.nn.Module, anatomy: Anatomy, pairs: list[tuple]) -> ReplacementPatch:
    """A live patch of `pairs` on the submodule `anatomy` reads, in its output's own layout."""
    module = submodule(model, anatomy.where.module)
    return ReplacementPatch(module, pairs, anatomy.channels, remap=REMAPS[anatomy.layout])


class HookedFamily(Family):
    """A family read at a named submodule: it says where (`where`), the probe finds the rest. `--layer` moves the
    submodule (a stage index or a name) and the head is fitted there; no later block re-runs."""

    backend = HookedBackend  # type: ignore[assignment]  # made by `make_backend`, with the probed anatomy
    block_backend = BlockBackend  # unused: `split` moves the hooked submodule instead
    block_remap = staticmethod(apply_map)

    @abstractmethod
    def where(self, model: torch.nn.Module, layer: int | str | None) -> Where:
        """Where to read `model`'s features for `layer` (None: the family's default, its encoder output)."""

    def anatomy(self, model: torch.nn.Module, layer: int | str | None) -> Anatomy:
        return probe(model, self.where(model, layer))

    def make_backend(self, name: str, model: torch.nn.Module, weights: WeightsInfo, device: torch.device) -> Backend:
        return HookedBackend(name, model, weights, device, self.anatomy(model.to(device), None), family=self)

    def split(self, backend: Backend, layer: int | str) -> Backend:
        anatomy = self.anatomy(backend.model, layer)
        return HookedBackend(
            backend.name, backend.model, backend.weights, backend.device, anatomy, family=self, layer=layer
        )

    def splits_at(self, layer):
        return True

    def patch(self, model, pairs):
        return hook_patch(model, self.anatomy(model, None), pairs)

    def layer_patch(self, model, pairs, layer):
        return hook_patch(model, self.anatomy(model, layer), pairs)

    def layer_channels(self, model, layer):
        return self.anatomy(model, layer).channels

    def output_channels(self, model):
        return self.anatomy(model, None).channels

    def blocks(self, model):
        return None

    def block_width(self, blocks, block):
        raise NotImplementedError  # `split` replaces the block split
