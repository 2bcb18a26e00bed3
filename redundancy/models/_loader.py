"""Building a registry entry: its architecture, with seeded random, official, local or Hub weights (and a
fine-tune on top), into its family's backend. One loader for every family: what differs is asked of the family.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..errors import WeightsError
from . import _weights as W
from ._device import resolve_device
from ._registry import FAMILIES, HUB_SOURCE, REGISTRY, ModelSpec, get_spec
from .base import Backend
from .finetuned import apply_finetuned

_BUILD_LOCK = threading.Lock()
DEMO_FIX = (
    "restore it with `git checkout -- assets/demo` or retrain it with `python -m redundancy train-demo "
    "--replace-shipped`."
)


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
    family = FAMILIES[spec.family]
    dev = resolve_device(device)
    if random_init and checkpoint:
        raise WeightsError("random weights and a checkpoint file exclude each other; pick one.")
    if not 0 <= seed < 2**63:
        raise WeightsError(f"seed {seed} is out of range; use a whole number from 0 to 2**63 - 1.")
    if spec.own_weights and (random_init or checkpoint):
        raise WeightsError(f"{name} is a module given from Python: it keeps its own weights; drop the weights choice.")
    loaded = None if random_init or spec.own_weights else _read_weights(spec, checkpoint, progress)
    build = spec.build
    if loaded is not None:
        state, sized, sized_name = family.read(loaded.state)  # a file that says its own size is built at it
        loaded = replace(loaded, state=state)
        build, name = sized or build, sized_name or name
    # Module init draws from torch's global generator: builds are serialised (two sessions building at once
    # would interleave their draws) and the caller's generator state is restored afterwards.
    with _BUILD_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build()
    if spec.own_weights:
        info = W.WeightsInfo("module", sha256=W.state_sha256(model, name))
    else:
        info = W.WeightsInfo("random", seed=seed) if loaded is None else _load_into(spec, model, loaded)
    if finetuned:
        path, hub = W.hub_fetch(finetuned, progress) if W.is_hub(finetuned) else (Path(finetuned), None)
        report = apply_finetuned(model, path, name, convert=family.finetune_converter(path))
        info = replace(info, finetuned={**report.to_dict(), "path": str(finetuned), "hub": hub})
    info = replace(info, state_sha256=W.state_sha256(model, f"{name} ({info.label})"))
    return family.make_backend(name, model, info, dev)


@dataclass(frozen=True)
class _Loaded:
    """A checkpoint read from disk (or the Hub), before it meets the model."""

    state: dict
    path: Path
    digest: str
    kind: str  # "checkpoint" | "demo"
    hub: dict | None = None


def _read_weights(spec: ModelSpec, checkpoint: str | Path | None, progress: bool) -> _Loaded:
    """The requested weights as a state dict: a local file, an hf:// file, the shipped demo file or the download."""
    kind, hub = "checkpoint", None
    if checkpoint is None and spec.shipped is not None:
        checkpoint, kind = spec.shipped, "demo"
    elif checkpoint == HUB_SOURCE or (checkpoint is None and spec.hub and (not spec.url or W.prefer_hub(spec.hub))):
        if not spec.hub:
            raise WeightsError(f"{spec.name} has no Hub copy in the registry; pass hf://OWNER/REPO/FILE or a file.")
        checkpoint, hub = W.hub_fetch(W.HUB_SCHEME + spec.hub, progress, offline_fix(spec))
    elif checkpoint is None:
        if spec.url is None:
            raise WeightsError(f"{spec.name} has no official checkpoint; use random weights or a checkpoint file.")
        checkpoint = W.fetch(spec.url, spec.sha256, progress, offline_fix(spec))
    elif W.is_hub(checkpoint):
        checkpoint, hub = W.hub_fetch(str(checkpoint), progress)
    path = Path(checkpoint)
    if kind == "demo":  # the shipped file must be the one its record describes
        state, digest = W.load_state_dict(path, spec.sha256, DEMO_FIX)
    else:
        state, digest = W.load_state_dict(path, trusted_sha256=spec.sha256)
    if hub is not None and spec.sha256 is not None:  # the Hub copy of an official file: is it byte for byte?
        hub = {**hub, "same_as_official_file": digest == spec.sha256}
    return _Loaded(state, path, digest, kind, hub)


def offline_fix(spec: ModelSpec) -> str:
    """The ways out of a failed download: a file, random weights, or a shipped demo model of the same task."""
    demos = [f"--model {s.name}" for s in REGISTRY.values() if s.shipped is not None and s.tasks[0] == spec.tasks[0]]
    shipped = (
        f"; or pick a demo model this repository trained and ships, no download needed (CLI: {' or '.join(demos)})"
    )
    return (
        "download the file elsewhere and give it as the checkpoint file (CLI: --checkpoint PATH); use random weights "
        f"for a pipeline test (CLI: --random-init){shipped if demos else ''}."
    )


def _load_into(spec: ModelSpec, model: torch.nn.Module, loaded: _Loaded) -> W.WeightsInfo:
    """Load read weights into `model` (converted to its keys) and describe them."""
    state = loaded.state
    if loaded.kind == "demo":
        # A demo file holds the image path only; the video modules it leaves out (SAM2's memory) load as zeros.
        state = {**{k: torch.zeros_like(v) for k, v in model.state_dict().items() if k not in state}, **state}
    state = FAMILIES[spec.family].convert(state, model)
    W.load_into(model, state, loaded.path.name, spec.name)
    note = spec.weights_note if loaded.kind == "demo" else None
    return W.WeightsInfo(loaded.kind, sha256=loaded.digest, path=str(loaded.path), hub=loaded.hub, note=note)
