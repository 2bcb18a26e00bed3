"""Fine-tuned weights over a base model (the paper's plug-in setting).

Accepted files (a plain state dict, or one wrapped under "model" / "state_dict"):
- full: every key of the model; replaces all weights.
- partial: a subset of the model's keys, e.g. a decoder-only fine-tune (`mask_decoder.*` for
  SAM, `sam_mask_decoder.*` for SAM2); those tensors replace the base's, the rest stays.
- LoRA: pairs `<module>.lora_A` (r, in) and `<module>.lora_B` (out, r) for Linear modules of the
  model, with an optional scalar `<module>.lora_alpha` (default: r); merged as
  W += (alpha / r) * B @ A. Plain tensors in the same file are loaded as a partial fine-tune.
Key prefixes `module.`, `model.` and `sam.` (DataParallel, wrappers, SAMed-style) are removed
when that makes the keys match. Any key that still fits nowhere, or a shape mismatch, stops
the load with a report; nothing is loaded silently in part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import WeightsError
from ._weights import check_dtypes, load_state_dict

PREFIXES = ("module.", "model.", "sam.")
LORA_SUFFIXES = (".lora_A", ".lora_B", ".lora_alpha")


@dataclass
class FinetuneReport:
    """What a fine-tuned file changed in the base model."""

    kind: str  # "full" | "partial" | "lora"
    sha256: str
    replaced: int = 0
    merged: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)  # top-level modules touched

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "sha256": self.sha256,
            "replaced_tensors": self.replaced,
            "lora_merged": len(self.merged),
            "modules": self.groups,
        }


def _strip(state: dict, own: set[str]) -> dict:
    """Remove wrapper prefixes while that increases the number of keys the model knows."""
    for _ in range(3):
        best = state
        for prefix in PREFIXES:
            cand = {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state.items()}
            if _known(cand, own) > _known(best, own):
                best = cand
        if best is state:
            return state
        state = best
    return state


def _known(state: dict, own: set[str]) -> int:
    return sum(1 for k in state if k in own or k.endswith(LORA_SUFFIXES) and k.rsplit(".", 1)[0] + ".weight" in own)


def apply_finetuned(
    model: torch.nn.Module,
    path: str | Path,
    model_name: str,
    convert: Callable[[dict], dict] | None = None,
) -> FinetuneReport:
    """Load a full, partial (e.g. decoder-only) or LoRA fine-tune of `model` in place.

    `convert` renames another layout's keys first (transformers' SamModel, peft adapters on it).
    """
    state, digest = load_state_dict(Path(path))
    if convert is not None:
        state = convert(state)
    own = model.state_dict()
    state = _strip(state, set(own))
    lora = {k: v for k, v in state.items() if k.endswith(LORA_SUFFIXES)}
    plain = {k: v for k, v in state.items() if k not in lora}
    unknown = [k for k in plain if k not in own]
    bases = sorted({k.rsplit(".", 1)[0] for k in lora})
    unknown += [f"{b}.lora_*" for b in bases if f"{b}.weight" not in own]
    shapes = [k for k in plain if k in own and plain[k].shape != own[k].shape]
    if unknown or shapes:
        parts = []
        if unknown:
            parts.append(f"{len(unknown)} keys match nothing in {model_name} (e.g. {unknown[0]})")
        if shapes:
            k = shapes[0]
            parts.append(
                f"{len(shapes)} tensors have other shapes (e.g. {k}: file {tuple(plain[k].shape)}, "
                f"model {tuple(own[k].shape)})"
            )
        raise WeightsError(
            f"{Path(path).name} is not a fine-tune of {model_name}: {'; '.join(parts)}. "
            "Pick the model it was trained from; accepted formats are listed in docs/models.md."
        )
    check_dtypes(own, {**plain, **lora}, Path(path).name)
    merged = []
    with torch.no_grad():
        for b in bases:
            a, bm = lora.get(f"{b}.lora_A"), lora.get(f"{b}.lora_B")
            if a is None or bm is None:
                raise WeightsError(f"{Path(path).name}: LoRA for {b} needs both lora_A and lora_B.")
            w = own[f"{b}.weight"]
            fits = a.dim() == bm.dim() == w.dim() == 2 and a.shape[0] == bm.shape[1] >= 1
            if not (a.is_floating_point() and bm.is_floating_point()):
                raise WeightsError(f"{Path(path).name}: LoRA factors of {b} must hold floating-point values.")
            if not fits or (bm.shape[0], a.shape[1]) != tuple(w.shape):
                raise WeightsError(
                    f"{Path(path).name}: LoRA for {b} has A {tuple(a.shape)} and B {tuple(bm.shape)}, which do not "
                    f"fit the weight {tuple(w.shape)}: A must be (rank, {w.shape[-1]}) and B ({w.shape[0]}, rank), "
                    "rank >= 1."
                )
            alpha = lora.get(f"{b}.lora_alpha", torch.tensor(float(a.shape[0])))
            if alpha.numel() != 1 or not bool(torch.isfinite(alpha.float()).all()):
                raise WeightsError(
                    f"{Path(path).name}: lora_alpha of {b} must be one finite number (got shape {tuple(alpha.shape)})."
                )
            plain[f"{b}.weight"] = w + (float(alpha) / a.shape[0]) * (bm.float() @ a.float()).to(w.dtype)
            merged.append(b)
    _check_changes(own, plain, Path(path).name, model_name)
    kind = "lora" if merged else "full" if len(plain) == len(own) else "partial"
    model.load_state_dict({**own, **plain}, strict=True)
    groups = sorted({k.split(".", 1)[0] for k in plain})
    return FinetuneReport(kind, digest, len(plain) - len(merged), merged, groups)


def _check_changes(own: dict, plain: dict, name: str, model_name: str) -> None:
    """Refuse a file that changes no weight (empty, or every tensor equal to the base's after the LoRA merge): it
    would be labelled a fine-tune while every number is the base model's."""
    if any(not torch.equal(v.to(own[k].dtype), own[k]) for k, v in plain.items()):
        return
    held = "holds no tensors" if not plain else f"holds {len(plain)} tensors, all equal to the base model's"
    raise WeightsError(
        f"{name} changes no weight of {model_name}: it {held}. Give the file your fine-tune saved after training, "
        "or use the base model without a fine-tune."
    )
