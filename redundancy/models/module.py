"""Your own PyTorch module as a model, from Python (Captum-style): name the submodule whose output the search edits,
and the whole pipeline runs on it (search, screening, ablate, apply, figures, run folders, `patch`).

    from redundancy.models.module import from_module
    name = from_module("mynet", my_model, "layer4", input_size=224)
    session = Session.open(SessionConfig(model=name, data="my/class/folders"))

The module keeps its own weights (nothing is downloaded or re-initialised); a head is fitted on the submodule's
output for the data's task (`hooked.py`). The name lives in this process only, as the module does.
"""

from __future__ import annotations

import weakref

import torch

from ..errors import ConfigError
from ._registry import FAMILIES, ModelSpec, register_family, register_resolver, remember
from .headed import IMAGENET_MEAN, IMAGENET_STD
from .hooked import HookedFamily, Where, submodule

PREFIX = "module:"


@register_family
class ModuleFamily(HookedFamily):
    """Modules given from Python, read where their owner said (`from_module`)."""

    name = "torch_module"
    label = "your module"
    precedence = 1  # a module its owner registered is read where they said, whatever class it is

    def __init__(self) -> None:
        self.given: weakref.WeakKeyDictionary[torch.nn.Module, Where] = weakref.WeakKeyDictionary()

    def where(self, model, layer):
        base = self.given[model]
        if layer is None:
            return base
        if not isinstance(layer, str):
            raise ConfigError(f"a module given from Python is split at a module name (layer4, blocks.3), not {layer}.")
        return Where(layer, base.input_hw, base.mean, base.std, base.prefix, base.cls, base.grid, base.channels_last)

    def owns(self, model):
        return model in self.given


def from_module(
    name: str,
    model: torch.nn.Module,
    layer: str,
    *,
    input_size: int | tuple[int, int] = 224,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    prefix_tokens: int = 0,
    class_token: bool = False,
    channels_last: bool = False,
) -> str:
    """Make `model` a model of this process, read at submodule `layer`'s output; returns its model name.

    `input_size` and `mean`/`std` are how images reach it (the whole image resized, then normalised). A token output
    (B, N, C) has `prefix_tokens` before its grid, the first of them a class token if `class_token`; a 4-d output is
    (B, C, H, W), or (B, H, W, C) with `channels_last`. Calling it again with the same name replaces the entry.
    """
    submodule(model, layer)  # a name it lacks: one line now, not at the first encode
    hw = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    family = FAMILIES[ModuleFamily.name]
    assert isinstance(family, ModuleFamily)
    family.given[model] = Where(layer, hw, tuple(mean), tuple(std), prefix_tokens, class_token, None, channels_last)  # type: ignore[arg-type]
    spec = ModelSpec(
        PREFIX + name,
        ModuleFamily.name,
        f"{type(model).__name__} given from Python, read at its module {layer}; its own weights; a fitted head "
        "scores it",
        lambda: model,
        own_weights=True,
    )
    return remember(spec).name


def _unknown(name: str) -> ModelSpec:
    raise ConfigError(f"no module was given as {name} in this process; call from_module first (docs/python.md).")


register_resolver(PREFIX, _unknown)
