"""Model names -> builders and official checkpoints; one private loader serves every family."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..device import resolve_device
from ..errors import ModelError, WeightsError
from ..tasks import CLASSIFY, DEPTH, SEGMENT
from . import dinov2 as D2
from . import sam2 as S2
from . import weights as W
from .base import Backend
from .finetuned import apply_finetuned
from .hf_sam import infer_config, is_transformers_sam, peft_alpha, to_segment_anything
from .sam import SAM_CONFIGS, SamBackend, build_sam

SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
SAM2_1_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
SAM2_0_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/072824/"
DINOV2_URL = "https://dl.fbaipublicfiles.com/dinov2/"
HUB_SOURCE = "hub"  # --checkpoint hub: the registry's Hugging Face Hub copy of the official weights


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: how to build the architecture and where its official weights live."""

    name: str
    family: str
    description: str
    build: Callable[[], torch.nn.Module]
    backend: type[Backend]
    url: str | None = None
    sha256: str | None = None
    shipped: Path | None = None  # a checkpoint shipped in this repository (the demo models), checked by sha256
    convert: Callable[[dict, torch.nn.Module], dict] | None = None  # checkpoint layout -> the model's keys
    tasks: tuple[str, ...] = (SEGMENT,)  # what its head can do; the first is the default
    hub: str | None = None  # the same weights' Hugging Face Hub repository (another source, its own format)


def _sam(
    name: str, description: str, file: str | None = None, sha256: str | None = None, hub: str | None = None
) -> ModelSpec:
    cfg = SAM_CONFIGS[name]
    return ModelSpec(
        name, "sam", description, lambda: build_sam(cfg), SamBackend, SAM_URL + file if file else None, sha256, hub=hub
    )


def _sam2(
    name: str,
    description: str,
    config: str,
    file: str | None,
    sha256: str | None = None,
    base_url: str = SAM2_1_URL,
    overrides: list[str] | None = None,
    hub: str | None = None,
) -> ModelSpec:
    return ModelSpec(
        name,
        "sam2",
        description,
        lambda: S2.build(config, overrides),
        S2.Sam2Backend,
        base_url + file if file else None,
        sha256,
        hub=hub,
    )


_SIZES = (
    ("t", "tiny", "Hiera-T (39M)"),
    ("s", "small", "Hiera-S (46M)"),
    ("b+", "base_plus", "Hiera-B+ (81M)"),
    ("l", "large", "Hiera-L (224M)"),
)
_SAM2_1_SHA256 = {  # published sha256 of the official SAM 2.1 checkpoints
    "t": "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69",
    "s": "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38",
    "b+": "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5",
    "l": "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318",
}


def _dinov2(name: str, size: str, registers: bool, label: str) -> ModelSpec:
    """A DINOv2 entry: timm's class, Meta's official file (no published sha256: its hash is recorded)."""
    img = D2.TINY_INPUT if size == "tiny" else D2.INPUT_SIZE
    build = lambda: D2.build(size, registers, img)  # noqa: E731
    tasks = (CLASSIFY, DEPTH)
    if size == "tiny":
        desc = f"DINOv2 classes at test size (timm ViT, 2 blocks, 64 channels, {img} px); no official weights"
        return ModelSpec(name, "dinov2", desc, build, D2.Dinov2Backend, convert=D2.convert, tasks=tasks)
    reg = "_reg4" if registers else ""
    arch = f"vit{size}14{reg}"
    timm_name = {"s": "small", "b": "base", "l": "large", "g": "giant"}[size]
    return ModelSpec(
        name,
        "dinov2",
        f"DINOv2 {label}{' with registers' if registers else ''}, official Meta checkpoint at {img} px; "
        "no published sha256, the file's hash is recorded",
        build,
        D2.Dinov2Backend,
        f"{DINOV2_URL}dinov2_{arch}/dinov2_{arch}_pretrain.pth",
        convert=D2.convert,
        tasks=tasks,
        hub=f"timm/vit_{timm_name}_patch14{reg}_dinov2.lvd142m/model.safetensors",
    )


REGISTRY: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        _sam(
            "sam_vit_b",
            "SAM ViT-B (91M), official Meta checkpoint",
            "sam_vit_b_01ec64.pth",
            "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
            "facebook/sam-vit-base/model.safetensors",
        ),
        _sam(
            "sam_vit_l",
            "SAM ViT-L (308M), official Meta checkpoint",
            "sam_vit_l_0b3195.pth",
            "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
            "facebook/sam-vit-large/model.safetensors",
        ),
        _sam(
            "sam_vit_h",
            "SAM ViT-H (636M), official Meta checkpoint",
            "sam_vit_h_4b8939.pth",
            "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
            "facebook/sam-vit-huge/model.safetensors",
        ),
        _sam("sam_tiny", "SAM classes at test size (2 blocks, 128 px, real 256-ch decoder); no official weights"),
        *(
            _sam2(
                f"sam2_hiera_{k}",
                f"SAM 2.1 {label}, official Meta checkpoint",
                S2.CONFIGS[k],
                f"sam2.1_hiera_{file}.pt",
                _SAM2_1_SHA256[k],
                hub=f"facebook/sam2.1-hiera-{file.replace('_', '-')}/sam2.1_hiera_{file}.pt",
            )
            for k, file, label in _SIZES
        ),
        *(
            _sam2(
                f"sam2.0_hiera_{k}",
                f"SAM 2 (July 2024) {label}; no published sha256, the file's hash is recorded",
                S2.SAM2_0_CONFIGS[k],
                f"sam2_hiera_{file}.pt",
                None,
                SAM2_0_URL,
                hub=f"facebook/sam2-hiera-{file.replace('_', '-')}/sam2_hiera_{file}.pt",
            )
            for k, file, label in _SIZES
        ),
        _sam2(
            "sam2_tiny",
            "SAM 2.1 Hiera classes at test size (128 px, 5 blocks); no official weights",
            S2.CONFIGS["t"],
            None,
            overrides=S2.TINY_OVERRIDES,
        ),
        *(
            _dinov2(f"dinov2_vit{k}14{'_reg' if reg else ''}", k, reg, label)
            for k, label in (
                ("s", "ViT-S/14 (21M)"),
                ("b", "ViT-B/14 (86M)"),
                ("l", "ViT-L/14 (300M)"),
                ("g", "ViT-g/14 (1.1B)"),
            )
            for reg in (False, True)
        ),
        _dinov2("dinov2_tiny", "tiny", False, ""),
        _sam2(
            "sam2_tiny_narrow",
            "sam2_tiny with a 32-wide Hiera trunk (the SAM2 demo model's base); no official weights",
            S2.CONFIGS["t"],
            None,
            overrides=S2.NARROW_OVERRIDES,
        ),
    )
}


_BUILD_LOCK = threading.Lock()
DEMO_DIR = Path(__file__).resolve().parents[2] / "assets" / "demo"
DEMO_MANIFEST = "models.json"  # in DEMO_DIR: each shipped demo checkpoint's file, sha256, base and training record


def _demo_specs() -> list[ModelSpec]:
    """Registry entries for the demo checkpoints listed in assets/demo/models.json (trained here, not SAM)."""
    manifest = DEMO_DIR / DEMO_MANIFEST
    if not manifest.exists():
        return []
    specs = []
    for name, entry in json.loads(manifest.read_text()).items():
        base = REGISTRY[entry["base"]]
        miou = entry["source_miou"]
        description = f"{W.DEMO_LABEL}; {base.name} classes, {miou:.1f} mIoU on its synthetic source domain"
        specs.append(
            replace(base, name=name, description=description, sha256=entry["sha256"], shipped=DEMO_DIR / entry["file"])
        )
    return specs


REGISTRY.update({s.name: s for s in _demo_specs()})


def get_spec(name: str) -> ModelSpec:
    """The registry entry for `name`; unknown names list the valid ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown model '{name}'; choose one of: {', '.join(REGISTRY)}.") from None


def build_backend(
    name: str,
    checkpoint: str | Path | None = None,
    random_init: bool = False,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    finetuned: str | Path | None = None,
) -> Backend:
    """Build model `name` with official, local or seeded random weights (+ an optional fine-tune on top)."""
    spec = get_spec(name)
    dev = resolve_device(device)
    if random_init and checkpoint:
        raise WeightsError("random weights and a checkpoint file exclude each other; pick one.")
    if not 0 <= seed < 2**63:
        raise WeightsError(f"seed {seed} is out of range; use a whole number from 0 to 2**63 - 1.")
    loaded = None if random_init else _read_weights(spec, checkpoint, progress)
    build = spec.build
    if loaded is not None and loaded.transformers:  # a transformers SamModel: its size comes from its tensors
        cfg = infer_config(loaded.state)
        build = lambda: build_sam(cfg)  # noqa: E731
        name = next((n for n, c in SAM_CONFIGS.items() if c == cfg), name)
    # Module init draws from torch's global generator: builds are serialised (two sessions building at once
    # would interleave their draws) and the caller's generator state is restored afterwards.
    with _BUILD_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build()
    info = W.WeightsInfo("random", seed=seed) if loaded is None else _load_into(spec, model, loaded)
    if finetuned:
        path, hub = W.hub_fetch(finetuned, progress) if W.is_hub(finetuned) else (Path(finetuned), None)
        report = apply_finetuned(model, path, name, convert=_sam_convert(spec, path))
        info = replace(info, finetuned={**report.to_dict(), "path": str(finetuned), "hub": hub})
    info = replace(info, state_sha256=W.state_sha256(model, f"{name} ({info.label})"))
    return spec.backend(name, model, info, dev)


@dataclass(frozen=True)
class _Loaded:
    """A checkpoint read from disk (or the Hub), before it meets the model."""

    state: dict
    path: Path
    digest: str
    kind: str  # "checkpoint" | "demo"
    hub: dict | None = None
    transformers: bool = False  # converted from transformers' SamModel names


def _sam_convert(spec: ModelSpec, path: Path) -> Callable[[dict], dict] | None:
    """For SAM: a converter of transformers-format (or peft) state dicts to segment_anything's keys."""
    if spec.family != "sam":
        return None
    return lambda state: to_segment_anything(state, peft_alpha(path)) if is_transformers_sam(state) else state


def _read_weights(spec: ModelSpec, checkpoint: str | Path | None, progress: bool) -> _Loaded:
    """The requested weights as a state dict: a local file, an hf:// file, the shipped demo file or the download."""
    kind, hub = "checkpoint", None
    if checkpoint is None and spec.shipped is not None:
        checkpoint, kind = spec.shipped, "demo"
    elif checkpoint == HUB_SOURCE or (checkpoint is None and spec.hub and W.prefer_hub(spec.hub)):
        if not spec.hub:
            raise WeightsError(f"{spec.name} has no Hub copy in the registry; pass hf://OWNER/REPO/FILE or a file.")
        checkpoint, hub = W.hub_fetch(W.HUB_SCHEME + spec.hub, progress)
    elif checkpoint is None:
        if spec.url is None:
            raise WeightsError(f"{spec.name} has no official checkpoint; use random weights or a checkpoint file.")
        checkpoint = W.fetch(spec.url, spec.sha256, progress)
    elif W.is_hub(checkpoint):
        checkpoint, hub = W.hub_fetch(str(checkpoint), progress)
    path = Path(checkpoint)
    if kind == "demo":  # the shipped file must be the one its record describes
        fix = "restore it with `git checkout -- assets/demo` or retrain it with `python -m redundancy train-demo`."
        state, digest = W.load_state_dict(path, spec.sha256, fix)
    else:
        state, digest = W.load_state_dict(path)
    if hub is not None and spec.sha256 is not None:  # the Hub copy of an official file: is it byte for byte?
        hub = {**hub, "same_as_official_file": digest == spec.sha256}
    transformers = spec.family == "sam" and is_transformers_sam(state)
    if transformers:
        state = to_segment_anything(state)
    return _Loaded(state, path, digest, kind, hub, transformers)


def _load_into(spec: ModelSpec, model: torch.nn.Module, loaded: _Loaded) -> W.WeightsInfo:
    """Load read weights into `model` (converted to its keys) and describe them."""
    state = loaded.state
    if loaded.kind == "demo":
        # A demo file holds the image path only; the video modules it leaves out (SAM2's memory) load as zeros.
        state = {**{k: torch.zeros_like(v) for k, v in model.state_dict().items() if k not in state}, **state}
    if spec.convert is not None:
        state = spec.convert(state, model)
    W.load_into(model, state, loaded.path.name, spec.name)
    return W.WeightsInfo(loaded.kind, sha256=loaded.digest, path=str(loaded.path), hub=loaded.hub)
