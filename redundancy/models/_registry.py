"""The model registry: machinery only. Each family module (sam.py, sam2.py, dinov2.py, clip.py, mae.py)
registers its `Family` and its `ModelSpec`s when imported (timm's `@register_model` + `default_cfgs` style);
nothing here knows a family. Unknown names raise an error listing the valid ones.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch

from ..bundled import DEMO_DIR
from ..errors import ConfigError, ModelError
from ..registry import Registry, UnknownName
from ..replace import ReplacementPatch
from ._weights import DEMO_LABEL, WeightsInfo
from .base import Backend
from .layers import BlockBackend, patchable_blocks

HUB_SOURCE = "hub"  # --checkpoint hub: the registry's Hugging Face Hub copy of the official weights
DEMO_MANIFEST = "models.json"  # in DEMO_DIR: each shipped demo checkpoint's file, sha256, base and training record
DEFAULT_MODEL = "sam_tiny_demo"  # what the CLI and the app open with: shipped, so it works offline (not SAM)


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: how to build the architecture and where its official weights live."""

    name: str
    family: str  # a registered `Family`'s name
    description: str
    build: Callable[[], torch.nn.Module]
    url: str | None = None
    sha256: str | None = None
    shipped: Path | None = None  # a checkpoint shipped in this repository (the demo models), checked by sha256
    tasks: tuple[str, ...] = ()  # what its head can do, the first the default (empty: its family's backend's)
    hub: str | None = None  # the same weights' Hugging Face Hub repository (another source, its own format)
    test_size: bool = False  # small enough to build with random weights in a test (the contract test runs it)
    weights_note: str | None = None  # a shipped demo model's label: what its weights are (and are not)
    own_weights: bool = False  # a module given from Python: its weights are the ones it has (nothing is loaded)


class BackendMaker(Protocol):
    """A `Backend` subclass as `Family.make_backend` calls it: over a built, loaded model of the family's own class."""

    @property
    def tasks(self) -> tuple[str, ...]:
        """What its models do (a spec without tasks of its own takes these)."""
        ...

    def __call__(
        self, name: str, model: Any, weights: WeightsInfo, device: torch.device, *, family: Family | None = None
    ) -> Backend: ...


class Family(ABC):
    """What one model family knows: its backend, its checkpoints' layout, the hooks `patch` and `--layer` use.

    The loader, `layers`, `patching` and the run writers ask the family; none of them checks a name or a type.
    """

    name: ClassVar[str]  # as `ModelSpec.family` names it
    label: ClassVar[str]  # as papers and model cards name it: "SAM", "DINOv2", ...
    backend: ClassVar[BackendMaker]
    block_backend: ClassVar[type[BlockBackend]]  # the backend split after an encoder block (`--layer`)
    precedence: ClassVar[int] = 0  # `patch` asks the owning family of the highest (a module registered by name: 1)

    def make_backend(self, name: str, model: torch.nn.Module, weights: WeightsInfo, device: torch.device) -> Backend:
        """The backend over a built, loaded model."""
        return self.backend(name, model, weights, device, family=self)

    def read(self, state: dict) -> tuple[dict, Callable[[], torch.nn.Module] | None, str | None]:
        """A checkpoint's tensors in this family's own layout, with the builder (and registry name) its tensors
        call for when they say which size they are (transformers' SAM files); (state, None, None) otherwise."""
        return state, None, None

    def convert(self, state: dict, model: torch.nn.Module) -> dict:
        """A checkpoint's keys -> `model`'s (official layouts, position embeddings resized)."""
        return state

    def finetune_converter(self, path: Path) -> Callable[[dict], dict] | None:
        """A renaming of another layout's fine-tune keys (None: the file uses the model's own)."""
        return None

    @abstractmethod
    def owns(self, model: torch.nn.Module) -> bool:
        """Whether a user's model (for `patch`) is one of this family's."""

    @abstractmethod
    def patch(self, model: torch.nn.Module, pairs: list[tuple]) -> ReplacementPatch:
        """A live patch of `pairs` on the tensor the search edits, in a user's own model."""

    @abstractmethod
    def output_channels(self, model: torch.nn.Module) -> int:
        """Channels of that tensor."""

    @abstractmethod
    def blocks(self, model: torch.nn.Module) -> torch.nn.ModuleList | None:
        """The encoder blocks `--layer` indexes (None: this model has none the family can split)."""

    @abstractmethod
    def block_width(self, blocks: torch.nn.ModuleList, block: int) -> int:
        """Channels of block `block`'s output."""

    def block_patch(self, model: torch.nn.Module, pairs: list[tuple], block: int) -> ReplacementPatch:
        """A live patch on the output of encoder block `block` of a user's model."""
        blocks = self.blocks(model)
        assert blocks is not None, "callers check the model's blocks first (layers.patchable_blocks)"
        return ReplacementPatch(blocks[block], pairs, self.block_width(blocks, block), remap=self.block_remap)

    def splits_at(self, layer: int | str | None) -> bool:
        """Whether `split` takes this kind of layer (here: an encoder block's index)."""
        return not isinstance(layer, str)

    def split(self, backend: Backend, layer: int | str) -> Backend:
        """`backend` replacing at `layer` instead of its encoder output: here, after encoder block `layer`, with the
        blocks after it re-run per candidate (`layers.py`); a family without such blocks says how it splits."""
        blocks = self.blocks(backend.model)
        if blocks is None or not isinstance(layer, int):
            raise ConfigError(
                f"{backend.name} splits only at encoder blocks (0, 1, ...), not at {layer!r}; leave the layer unset "
                "for the encoder output."
                if blocks is not None
                else f"replacement inside the encoder (a layer) is not available for {backend.name}'s encoder; leave "
                "the layer unset."
            )
        return self.block_backend(backend, layer, blocks)

    def layer_channels(self, model: torch.nn.Module, layer: int | str) -> int:
        """Channels of the tensor a set found at `layer` edits, in a user's model (for reading its file)."""
        blocks = patchable_blocks(self, model, layer)
        return self.block_width(blocks, layer)  # type: ignore[arg-type]

    def layer_patch(self, model: torch.nn.Module, pairs: list[tuple], layer: int | str) -> ReplacementPatch:
        """A live patch of a set found at `layer` on a user's model."""
        patchable_blocks(self, model, layer)
        return self.block_patch(model, pairs, layer)  # type: ignore[arg-type]

    @staticmethod
    @abstractmethod
    def block_remap(output, f):
        """A block's output under a channel map (its layout: channels last, or tokens)."""


REGISTRY: Registry[ModelSpec] = Registry("model")
FAMILIES: Registry[Family] = Registry("model family")
# "prefix:" -> the spec of "prefix:NAME" (timm:, module:): models named on demand, not listed in REGISTRY
RESOLVERS: dict[str, Callable[[str], ModelSpec]] = {}
_RESOLVED: dict[str, ModelSpec] = {}


def names_a_path(name: str) -> bool:
    """Whether a `prefix:` model name points at this machine's files (hf:/path, hf:./path, hf:~/path): the CLI and
    Python take those; a web visitor does not."""
    _, colon, rest = str(name).partition(":")
    return bool(colon) and rest.startswith(("/", ".", "~"))


def register_resolver(prefix: str, resolve: Callable[[str], ModelSpec]) -> None:
    """Make every model named `prefix` + NAME resolvable (`resolve` raises a one-line error for an unknown NAME)."""
    if prefix in RESOLVERS:
        raise ValueError(f"model prefix '{prefix}' is registered twice")
    RESOLVERS[prefix] = resolve


def remember(spec: ModelSpec) -> ModelSpec:
    """Keep a resolved (or given) spec under its name, its tasks filled in from its family: later lookups find it."""
    if not spec.tasks:
        spec = replace(spec, tasks=FAMILIES[spec.family].backend.tasks)
    _RESOLVED[spec.name] = spec
    return spec


def register_family(family: type[Family]) -> type[Family]:
    """Class decorator: make a family known by its name."""
    FAMILIES.add(family.name, family())
    return family


def register(*specs: ModelSpec) -> None:
    """Add registry entries (a family module calls it for its own)."""
    for spec in specs:
        if spec.family not in FAMILIES:
            raise ModelError(f"{spec.name}: family '{spec.family}' is not registered.")
        if not spec.tasks:  # what its family's backend does
            spec = replace(spec, tasks=FAMILIES[spec.family].backend.tasks)
        REGISTRY.add(spec.name, spec)


def get_spec(name: str) -> ModelSpec:
    """The registry entry for `name`, or a `prefix:NAME` model's (timm:resnet18); unknown names list the valid ones
    (`UnknownName`)."""
    if name in REGISTRY or not isinstance(name, str):
        return REGISTRY[name]
    if name in _RESOLVED:
        return _RESOLVED[name]
    prefix, colon, _ = name.partition(":")
    if colon and prefix + colon in RESOLVERS:
        return remember(RESOLVERS[prefix + colon](name))
    try:
        return REGISTRY[name]
    except UnknownName as e:
        named = " or ".join(f"{p}NAME" for p in RESOLVERS if p != "module:")
        raise UnknownName(f"{str(e)[:-1]}; or any {named}.") from None


def family_of(name: str) -> Family:
    """The family of registry entry `name`."""
    return FAMILIES[get_spec(name).family]


def families_with(task: str) -> list[str]:
    """Labels of the families whose models have a head for `task` (for messages)."""
    return list(dict.fromkeys(FAMILIES[s.family].label for s in REGISTRY.values() if task in s.tasks))


def register_demo_models(directory: Path = DEMO_DIR) -> None:
    """Registry entries for the demo checkpoints listed in `directory`/models.json (trained here: not SAM, not
    DINOv2); each entry's `label` says what it is, `source_score` what it scores on its source domain."""
    manifest = directory / DEMO_MANIFEST
    if not manifest.exists():
        return
    for name, entry in json.loads(manifest.read_text()).items():
        base = get_spec(entry["base"])
        score = entry.get("source_score") or {"label": "mIoU", "value": entry["source_miou"]}
        label = entry.get("label", DEMO_LABEL)
        description = f"{label}; {base.name} classes, {score['value']:.1f} {score['label']} on its synthetic source"
        register(
            replace(
                base,
                name=name,
                description=description,
                sha256=entry["sha256"],
                shipped=directory / entry["file"],
                url=None,
                hub=None,
                test_size=True,
                weights_note=label,
            )  # fmt: skip
        )
