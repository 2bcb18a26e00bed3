"""Any transformers vision model, `hf:REPO` (`hf:facebook/dinov2-small`, `hf:google/siglip-base-patch16-224`) or
`hf:FOLDER` (a local folder with its config.json): built by `AutoModel.from_config` (a CLIP or SigLIP config's vision
tower alone), read at its `last_hidden_state` (`hooked.py` does the rest).

Where its features are read, found by probing rather than per architecture: the submodule whose output *is* the
model's `last_hidden_state` (a ViT's final layernorm, a ConvNeXt's last stage); `--layer k` the submodule whose
output is hidden state k + 1 (block k's), `--layer NAME` that submodule. Prefix tokens are what the token count
has beyond the patch grid (class token first, registers after). Weights: the repository's model.safetensors from the
Hub (the usual cache), a local checkpoint, or seeded random weights over its config.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from ..errors import ConfigError, WeightsError
from ._registry import ModelSpec, names_a_path, register_family, register_resolver
from ._weights import HUB_SCHEME, hub_fetch
from .headed import IMAGENET_MEAN, IMAGENET_STD
from .hooked import HookedFamily, Where

PREFIX = "hf:"
REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}")  # OWNER/NAME, as the Hub spells them
CONFIG, PREPROCESSOR = "config.json", "preprocessor_config.json"


def _file(source: str, name: str, required: bool) -> Path | None:
    """`name` of a local folder or a Hub repository (through the Hub cache), or None where an optional one is absent."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        path = folder / name
        if path.is_file():
            return path
        if required:
            raise ConfigError(f"{source} has no {name}; give a folder saved by save_pretrained, or a Hub repository.")
        return None
    try:
        return hub_fetch(f"{HUB_SCHEME}{source}/{name}", progress=False, fix=OFFLINE)[0]
    except WeightsError:
        if required:
            raise
        return None


OFFLINE = (
    "download the repository where the Hub is reachable (or save its config with save_pretrained) and give the "
    "folder: --model hf:FOLDER; its weights with --checkpoint PATH, or --random-init for a pipeline test."
)


def vision_config(config):
    """The config of the model to build: a two-tower config's (CLIP, SigLIP) vision tower, else itself."""
    return getattr(config, "vision_config", None) or config


def build(source: str) -> torch.nn.Module:
    """transformers' model for `source`'s config.json, with random weights (the loader loads the file)."""
    try:
        from transformers import AutoConfig, AutoModel
    except ImportError:
        raise ConfigError("hf: models need transformers: pip install 'redundancy[hf]' (or transformers).") from None

    path = _file(source, CONFIG, required=True)
    assert path is not None
    try:
        config = vision_config(AutoConfig.from_pretrained(path.parent))
        return AutoModel.from_config(config)
    except (ValueError, KeyError, TypeError, OSError) as e:
        raise ConfigError(
            f"transformers cannot build {source} ({e.__class__.__name__}: {str(e).splitlines()[0][:160]}); give a "
            "vision model's repository or folder."
        ) from None


def _size(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)[-2:]


def _normalisation(source: str) -> tuple[tuple, tuple]:
    """The image processor's mean and std (preprocessor_config.json), ImageNet's where it has none."""
    path = _file(source, PREPROCESSOR, required=False)
    record = json.loads(path.read_text()) if path else {}
    return tuple(record.get("image_mean", IMAGENET_MEAN)), tuple(record.get("image_std", IMAGENET_STD))


def producers(model: torch.nn.Module, size: tuple[int, int]) -> tuple[list[str], list[torch.Tensor]]:
    """For one blank image: the hidden states (embeddings, block 0, ..., last), and for each the name of the
    outermost submodule whose output is that very tensor ('' where none is)."""
    seen: dict[int, str] = {}
    kept: list = []  # every output stays alive while the probe runs: no id is reused by a later tensor

    def note(name: str):
        def hook(_m, _i, out) -> None:  # returns nothing: the output stays as it is
            kept.append(out)
            seen[id(out)] = name  # an outer module returns after the inner one that made the tensor: it wins

        return hook

    hooks = [m.register_forward_hook(note(name)) for name, m in model.named_modules() if name]
    try:
        with torch.no_grad():
            device = next(iter(model.parameters())).device
            out = model(torch.zeros(1, 3, *size, device=device), output_hidden_states=True)
    finally:
        for h in hooks:
            h.remove()
    states = [*(out.hidden_states or ()), out.last_hidden_state]
    return [seen.get(id(s), "") for s in states], states


@register_family
class HfFamily(HookedFamily):
    """Any transformers vision model (module doc)."""

    name = "hf"
    label = "transformers"

    def where(self, model, layer):
        config = model.config
        size = _size(getattr(config, "image_size", 224))
        names, states = producers(model, size)
        if layer is None or isinstance(layer, int):
            k = len(names) - 1 if layer is None else layer + 1
            if not 0 < k < len(names) or not names[k]:
                blocks = len(names) - 2
                what = "the last hidden state" if layer is None else f"block {layer}"
                raise ConfigError(
                    f"{what} is not one this model's {blocks} blocks give through a module of their own "
                    f"(0..{blocks - 1}); name the module instead."
                )
            module, state = names[k], states[k]
        else:
            module, state = layer, None
        patch = getattr(config, "patch_size", None)
        grid = tuple(s // _size(patch)[0] for s in size) if patch else None
        prefix = 0
        if state is not None and state.dim() == 3 and grid:
            prefix = max(0, state.shape[1] - grid[0] * grid[1])
        mean, std = getattr(model, "_redundancy_normalisation", (IMAGENET_MEAN, IMAGENET_STD))
        return Where(module, size, mean, std, prefix=prefix, cls=prefix > 0, grid=grid)  # type: ignore[arg-type]

    def owns(self, model):
        return type(model).__module__.startswith("transformers.") and hasattr(model, "config")

    def convert(self, state, model):
        """A repository's file: keys under another model's prefix (a CLIP file's vision_model.) mapped onto the
        tower's own; the other tower's and heads' keys dropped."""
        own = set(model.state_dict())
        out = {}
        for key, value in state.items():
            parts = key.split(".")
            match = next((".".join(parts[k:]) for k in range(len(parts)) if ".".join(parts[k:]) in own), None)
            if match is not None:
                out[match] = value
        return out if len(out) >= len(own) // 2 else state  # a file of another layout: the loader says what misfits


def resolve(name: str) -> ModelSpec:
    """The spec of `hf:REPO` or `hf:FOLDER`: AutoModel over its config, its model.safetensors as the weights."""
    source = name[len(PREFIX) :]
    local = names_a_path(name)
    if not (REPO_ID.fullmatch(source) or (local and Path(source).expanduser().is_dir())):
        raise ConfigError(
            f"{name[:120]} names neither a Hub repository (hf:OWNER/NAME) nor a folder (hf:/path, hf:./path) with a "
            "config.json."
        )

    def make() -> torch.nn.Module:
        model = build(source)
        model._redundancy_normalisation = _normalisation(source)  # type: ignore[assignment]  # read by `where`
        return model

    return ModelSpec(
        name,
        HfFamily.name,
        f"transformers AutoModel for {source}, built from its config.json"
        + (
            f"; its weights: --checkpoint {source}/model.safetensors"
            if local
            else "; weights from the Hugging Face Hub"
        )
        + "; a fitted head scores it",
        make,
        hub=None if local else f"{source}/model.safetensors",
    )


register_resolver(PREFIX, resolve)
