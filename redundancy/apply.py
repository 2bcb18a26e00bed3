"""Apply a found replacement set to new images: patched masks on disk, mIoU when GT exists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .data import Dataset, load_image, open_dataset
from .errors import RunError
from .export import read_run, write_json, write_predictions
from .features import FeatureCache
from .models import Backend, build_backend
from .replace import identity_map, pairs_map, parse_replacements
from .score import EvalSet, Evaluator


@dataclass
class ApplyResult:
    """Where the predictions went and, with GT, baseline vs patched mIoU (percent)."""

    images: int
    zip_path: Path
    baseline_miou: float | None
    patched_miou: float | None
    pairs: list[tuple[int, int]]


def backend_for_run(config: dict, device: str = "auto") -> Backend:
    """Rebuild the run's model with the same weights (random seed or checkpoint)."""
    cfg = config["config"]
    backend = build_backend(
        cfg["model"],
        cfg.get("checkpoint"),
        cfg.get("random_init", False),
        cfg.get("seed", 0),
        device,
        finetuned=cfg.get("finetuned"),
    )
    recorded, now = config.get("weights", {}), backend.weights
    state_changed = recorded.get("state_sha256") not in (None, now.state_sha256)  # runs before the hash: label only
    if state_changed or recorded.get("label") != now.label:
        raise RunError(
            f"the run used weights '{recorded.get('label')}' but the files now give '{now.label}' (or other tensors "
            "under the same label); a checkpoint changed since the run. Restore it or rerun the search."
        )
    return backend


def open_run_data(config: dict, data: str | Path | None = None) -> Dataset:
    """The dataset a run searched: its recorded (absolute) path, or `data` instead; the content must match."""
    path = data or config["config"]["data"]
    dataset = open_dataset(path)
    recorded = config["data"]["sha256"]
    if dataset.content_hash() != recorded:
        raise RunError(
            f"the data at {path} is not the data this run searched (sha256 {dataset.content_hash()[:12]}..., the run "
            f"recorded {recorded[:12]}...); pass that dataset with --data."
        )
    return dataset


def apply_run(
    run: Path,
    data: Path,
    out: Path,
    device: str = "auto",
    cache: FeatureCache | None = None,
    extract_to: Path | None = None,
    backend: Backend | None = None,
    verify: bool = True,
    protocol: str | None = None,
) -> ApplyResult:
    """Predict every image of `data` with a run's replacement set; write PNG masks, overlays, a zip."""
    config, repl = read_run(run, verify)
    backend = backend or backend_for_run(config, device)
    cfg = config["config"]
    return apply_pairs(
        backend,
        repl,
        data,
        out,
        cfg.get("prompt", "none"),
        cfg.get("mask_choice", "single"),
        protocol or config.get("protocol"),
        cache,
        extract_to,
        cfg.get("rows"),
    )


def apply_pairs(
    backend: Backend,
    replacements: dict,
    data: Path,
    out: Path,
    prompt: str = "none",
    mask_choice: str = "single",
    protocol: str | None = None,
    cache: FeatureCache | None = None,
    extract_to: Path | None = None,
    rows: int | None = None,
) -> ApplyResult:
    """Apply a replacements.json dict to the images of `data` (masks optional) and write the results."""
    pairs = parse_replacements(replacements, "the replacement set", backend.name, backend.channels)
    dataset = open_dataset(data, extract_to=extract_to, require_masks=False)
    protocol = protocol or dataset.default_protocol
    evalset = EvalSet.build(backend, dataset, cache or FeatureCache(), prompt, protocol)
    ev = Evaluator(backend, evalset, mask_choice, rows)
    f = pairs_map(pairs, backend.channels)
    masks = [(logits > 0).cpu().numpy() for logits in ev.logits(f)]
    baseline = [(logits > 0).cpu().numpy() for logits in ev.logits()]  # for any external evaluator to compare
    images = [load_image(s.image_path) for s in dataset.samples]
    zip_path = write_predictions(Path(out), evalset.names, images, masks, baseline)
    base = patched = None
    if dataset.has_masks:
        miou, _ = ev.summarize(ev.stats(torch.stack([identity_map(backend.channels), f])))
        base, patched = float(miou[0]), float(miou[1])
    write_json(
        Path(out) / "apply.json",
        {
            "model": backend.name,
            "weights_label": backend.weights.label,
            "data": str(data),
            "images": len(images),
            "pairs": [list(p) for p in pairs],
            "protocol": protocol,
            "baseline_miou": base,
            "patched_miou": patched,
        },
    )
    return ApplyResult(len(images), zip_path, base, patched, pairs)
