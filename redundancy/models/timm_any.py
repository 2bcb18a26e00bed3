"""Any timm model by name, `timm:NAME` (`timm:resnet18`, `timm:convnext_atto`, `timm:eva02_tiny_patch14_224`): built
by `timm.create_model` without its classifier, read where timm's own feature API says (`hooked.py` does the rest).
`timm:NAME(key=value,...)` passes create_model's arguments: `timm:vit_small_patch14_dinov2(img_size=224)`.

Where its features are read:
- a token model with a final norm (ViT, DeiT, the DINOv2 copies): the normed tokens, as the DINOv2 family reads
  them (class token kept, register and distillation tokens left out);
- any other model (ResNet, ConvNeXt, EfficientNet, Swin, ...): the last stage of `feature_info`, a (B, C, H, W) map;
- `--layer k`: stage k of `feature_info` (a ViT's block k); `--layer NAME`: that submodule's output.
Weights: timm's own pretrained file from the Hugging Face Hub (its `pretrained_cfg`, the usual Hub cache), a local
checkpoint in timm's layout, or seeded random weights.
"""

from __future__ import annotations

import ast
import difflib

import timm
import torch
from timm.data import resolve_data_config

from ..errors import ConfigError, ModelError
from ..registry import UnknownName
from ._registry import ModelSpec, register_family, register_resolver
from .hooked import HookedFamily, Where

PREFIX = "timm:"


def stages(model: torch.nn.Module) -> list[str]:
    """The submodules timm's `feature_info` names, shallow to deep (a ViT's blocks, a CNN's stages)."""
    return [f["module"] for f in getattr(model, "feature_info", [])]


def default_module(model: torch.nn.Module) -> str:
    """The normed tokens of a token model with a final norm, else the last stage timm's feature API names."""
    norm = getattr(model, "norm", None)
    if (
        hasattr(model, "num_prefix_tokens")
        and isinstance(norm, torch.nn.Module)
        and not isinstance(norm, torch.nn.Identity)
    ):
        return "norm"
    names = stages(model)
    if not names:
        raise ConfigError(f"{type(model).__name__} has no feature_info; name the module to read (CLI: --layer NAME).")
    return names[-1]


def module_at(model: torch.nn.Module, layer: int | str | None) -> str:
    """The submodule `layer` names: the default (None), stage `layer` of feature_info (an index), or a name."""
    if layer is None:
        return default_module(model)
    if isinstance(layer, str):
        return layer
    names = stages(model)
    if not 0 <= layer < len(names):
        raise ConfigError(
            f"stage {layer} is not one of this model's {len(names)} feature stages (0..{len(names) - 1}: "
            f"{', '.join(names[:6])}{', ...' if len(names) > 6 else ''}); give one, or a module name."
        )
    return names[layer]


@register_family
class TimmFamily(HookedFamily):
    """Any model timm builds (module doc)."""

    name = "timm"
    label = "timm"

    def where(self, model, layer):
        data = resolve_data_config({}, model=model)
        embed = getattr(model, "patch_embed", None)
        size = getattr(embed, "img_size", None)  # a fixed-size ViT or Swin: the size it was built at
        grid = getattr(embed, "grid_size", None)
        return Where(
            module_at(model, layer),
            tuple(size) if size else tuple(data["input_size"][1:]),
            tuple(data["mean"]),
            tuple(data["std"]),
            prefix=int(getattr(model, "num_prefix_tokens", 0) or 0),
            cls=getattr(model, "cls_token", None) is not None,
            grid=tuple(grid) if grid else None,
            channels_last=getattr(model, "output_fmt", "NCHW") == "NHWC",
        )

    def owns(self, model):
        return hasattr(model, "pretrained_cfg") and hasattr(model, "feature_info")

    def convert(self, state, model):
        """timm's own files: the classifier this tool does not use is dropped (the head is fitted here)."""
        own = model.state_dict()
        classifier = getattr(model, "pretrained_cfg", {}).get("classifier") or "head"
        names = classifier if isinstance(classifier, (list, tuple)) else (classifier,)
        return {k: v for k, v in state.items() if k in own or not k.startswith(tuple(f"{n}." for n in names))}


def unknown(arch: str) -> UnknownName:
    """A one-line error for a name timm does not build, with the closest names it does."""
    close = difflib.get_close_matches(arch, timm.list_models(), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(PREFIX + c for c in close)}? " if close else ""
    return UnknownName(
        f"timm builds no model '{arch}'; {hint}timm.list_models('*{arch.split('_')[0]}*') lists its names."
    )


# create_model arguments that read files, fetch weights or change what is built into something else: never taken
# from a name (a name may come from a web visitor), whatever their value
UNSAFE = ("path", "pretrained", "cfg", "dir", "file", "url", "hub", "features_only", "out_indices")


def parse(name: str) -> tuple[str, dict]:
    """`timm:ARCH` or `timm:ARCH(key=value,...)` -> (ARCH, create_model's keyword arguments: numbers, booleans, None,
    tuples of numbers and short words)."""
    arch, paren, rest = name[len(PREFIX) :].partition("(")
    if not paren:
        return arch, {}
    fix = f"write e.g. timm:{arch}(img_size=112): key=value, each a number, True/False/None, a word or a tuple"
    try:
        call = ast.parse(f"f({rest}", mode="eval").body if len(rest) <= 400 else None
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        call = None
    if not isinstance(call, ast.Call) or call.args:
        raise ConfigError(f"the arguments of {name[:80]} do not read as key=value pairs; {fix}.")
    kwargs = {}
    for kw in call.keywords:
        try:
            value = ast.literal_eval(kw.value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            value = plain  # not a literal: refused below
        if kw.arg is None or any(word in kw.arg.lower() for word in UNSAFE) or not plain(value):
            raise ConfigError(
                f"'{kw.arg}' is not an architecture argument this tool passes on (no paths or weights); {fix}."
            )
        kwargs[kw.arg] = value
    return arch, kwargs


def plain(value: object) -> bool:
    """A value an architecture argument may take from a name: no file, no object, nothing long."""
    if isinstance(value, tuple):
        return len(value) <= 8 and all(isinstance(v, (int, float)) for v in value)
    if isinstance(value, str):
        return value.isidentifier() and len(value) <= 32
    return value is None or isinstance(value, (bool, int, float))


def create(arch: str, kwargs: dict) -> torch.nn.Module:
    """timm's model without its classifier; arguments it does not take are one line, not a traceback."""
    try:
        return timm.create_model(arch, pretrained=False, **{"num_classes": 0, **kwargs})
    except (TypeError, ValueError, AssertionError, RuntimeError) as e:
        raise ModelError(
            f"timm could not build {arch} with {kwargs or 'its defaults'} ({e.__class__.__name__}: "
            f"{str(e).splitlines()[0][:160] if str(e) else 'no message'}); check the arguments' names and values."
        ) from None


def resolve(name: str) -> ModelSpec:
    """The spec of `timm:ARCH[(key=value,...)]`: timm's builder without a classifier (and with those arguments),
    its Hub file as the official weights."""
    arch, kwargs = parse(name)
    if not arch or not timm.is_model(arch):
        raise unknown(arch)
    repo = getattr(timm.models.get_pretrained_cfg(arch), "hf_hub_id", None)
    hub = f"{repo}/model.safetensors" if repo else None
    where = f"timm's weights from the Hugging Face Hub ({repo})" if repo else "no published weights in timm"
    return ModelSpec(
        name,
        TimmFamily.name,
        f"timm {arch}{f' with {kwargs}' if kwargs else ''}, built by timm.create_model without its classifier; "
        f"{where}; a fitted head scores it",
        lambda: create(arch, kwargs),
        hub=hub,
    )


register_resolver(PREFIX, resolve)
