"""Run directories: atomic writes of config, scores, top-N, combinations, replacement set, predictions."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .imaging import depth_colour, depth_png, overlay, png_bytes
from .io import atomic_write, write_json
from .pipeline import SearchResult, SearchSettings, Session, config_dict, search_key
from .replace import pair_dict, pair_text
from .rundir import ABLATION, HEAD, RunDir
from .screen import ModeReport
from .tasks import clamp_depth


def _csv(rows: list[list]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def pair_table(result: SearchResult) -> str:
    """pair_scores.csv: one row per scored pair."""
    s = result.scores
    ii, jj = np.nonzero(~np.isnan(s.miou_gain))
    rows = [["source", "target", "miou_gain", "loss_gain"]]
    rows += [[int(i), int(j), f"{s.miou_gain[i, j]:.6f}", f"{s.loss_gain[i, j]:.6f}"] for i, j in zip(ii, jj)]
    return _csv(rows)


def combinations_table(result: SearchResult) -> str:
    """combinations.csv: one row per evaluated subset."""
    c = result.combos
    rows = [["size", "pairs", "miou", "loss", "delta_miou", "delta_loss"]]
    rows += [
        [
            len(r.pairs),
            " ".join(pair_text(p) for p in r.pairs),
            f"{r.miou:.6f}",
            f"{r.loss:.6f}",
            f"{r.miou - c.baseline_miou:.6f}",
            f"{r.loss - c.baseline_loss:.6f}",
        ]
        for r in c.rows
    ]
    return _csv(rows)


def replacements_dict(result: SearchResult) -> dict:
    """replacements.json: the found set with baseline vs patched numbers on both sets."""
    c, best = result.combos, result.combos.best
    gains = {p.pair: p.gain for p in result.top}
    return {
        **result.header,
        "metric": result.settings.metric,
        "prompt": result.config.prompt,
        "mask_choice": result.config.mask_choice,
        "pairs": [{**pair_dict(p), "single_pair_gain": gains.get(p)} for p in c.best_pairs],
        "note": None if best else "no subset of the top pairs beat the baseline; the empty set is returned",
        "search": {
            "images": result.search_images,
            "baseline_miou": c.baseline_miou,
            "patched_miou": best.miou if best else c.baseline_miou,
            "baseline_loss": c.baseline_loss,
            "patched_loss": best.loss if best else c.baseline_loss,
            "confidence": (result.confidence or {}).get("best"),  # bootstrap over search images (or objects)
        },
        "heldout": result.heldout,
        "selection": result.selection,  # select cv: the cross-validation report; None for the paper's rule
    }


def write_run(out: Path, session: Session, result: SearchResult, public: Callable[[dict], dict] | None = None) -> Path:
    """Write every run file into `out` (created if needed); return `out`.

    `public` rewrites the JSON records before they are written (the app: without server paths, for visitors).
    """
    out = Path(out)
    public = public or (lambda record: record)
    s = result.scores
    conf = result.confidence
    top = {
        **result.header,
        "top_n": result.settings.top_n,
        "metric": s.metric,
        "baseline_miou": s.baseline_miou,
        "baseline_loss": s.baseline_loss,
        "top": [{**p.to_dict(), "confidence": conf["top"][k] if conf else None} for k, p in enumerate(result.top)],
        "skipped_same_source": [p.to_dict() for p in result.skipped],
    }
    repl = public(replacements_dict(result))
    write_json(out / "config.json", public(config_dict(session, result)))
    atomic_write(out / "pair_scores.npy", _npy(s.gain.astype(np.float32)))
    atomic_write(out / "pair_scores.csv", pair_table(result))
    write_json(out / "topn.json", public(top))
    atomic_write(out / "combinations.csv", combinations_table(result))
    atomic_write(out / "preview.npz", preview_npz(session, result.best_pairs))
    if session.backend.head is not None and session.task.name != "segment":
        buf = io.BytesIO()
        torch.save(session.backend.head.state(), buf)
        atomic_write(out / HEAD, buf.getvalue())
    write_json(out / "replacements.json", repl)
    key = search_key(session, result.settings, session.channel_pairs(result.settings))
    RunDir(out).seal(key)  # last: marks a finished run
    return out


def write_comparison(out: Path, session: Session, settings: SearchSettings, reports: list[ModeReport]) -> Path:
    """modes.json (with what identifies the session and the settings) and modes.csv of a search-mode comparison."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [r.row() for r in reports]
    pairs = session.channel_pairs(settings)
    write_json(
        out / "modes.json",
        {
            **session.header(),
            "data_sha256": session.dataset.content_hash(),
            "search_images": len(session.search_set),
            "pairs": len(pairs),
            "config": asdict(session.cfg),
            "search": asdict(session.resolve(settings)),
            "modes": rows,
        },
    )
    atomic_write(out / "modes.csv", _csv([list(rows[0])] + [list(r.values()) for r in rows]))
    return out


def save_ablation(run: Path, base, rows) -> Path:
    """Merge ablation rows into RUN/ablation.json (the latest result per edit wins) and hash it in the manifest."""
    rd = RunDir(run)
    data = rd.ablation() or {"edits": {}}
    data["baseline"] = vars(base)
    data["edits"].update({r.edit: vars(r) for r in rows})
    path = write_json(rd.path / ABLATION, data)
    rd.record(ABLATION)
    return path


def preview_npz(session: Session, pairs: list[tuple], k: int = 4) -> bytes:
    """A few search images with GT, baseline and patched masks and their channel maps, so figures need
    only the run directory: keys image_i, gt_i, base_i, patched_i (i < k; masks for segmentation
    only), feats (k, C, h, w), names."""
    from .data import load_image, load_mask
    from .replace import identity_map, set_map

    ev = session.evaluator("search")
    idx = list(range(min(k, len(ev.set))))
    c = session.backend.channels
    arrays = {
        "names": np.array([ev.set.names[i] for i in idx]),
        "feats": session.backend.channel_maps(ev.set.feats[idx]).cpu().numpy().astype(np.float16),
    }
    segment = session.task.name == "segment"
    if segment:
        base = ev.logits(identity_map(c), idx)
        f, alpha = set_map(pairs, c)
        patched = ev.logits(f, idx, alpha)
    for i in idx:
        sample = session.search_set.samples[i]
        arrays[f"image_{i}"] = load_image(sample.image_path)
        if segment:
            arrays[f"gt_{i}"] = load_mask(sample.mask_path)
            arrays[f"base_{i}"] = (base[i] > 0).cpu().numpy()
            arrays[f"patched_{i}"] = (patched[i] > 0).cpu().numpy()
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def read_run(run: Path, verify: bool = True) -> tuple[dict, dict]:
    """(config.json, replacements.json) of a finished run whose files match their manifest (unless not `verify`)."""
    rd = RunDir(run)
    if verify:
        rd.verify()
    return rd.config(), rd.replacements()


def write_predictions(
    out: Path,
    names: list[str],
    images: list[np.ndarray],
    masks: list[np.ndarray],
    baseline: list[np.ndarray] | None = None,
) -> Path:
    """masks/NAME.png (0/255), overlays/NAME.png, optionally baseline_masks/NAME.png (unpatched model),
    and predictions.zip holding them all; returns the zip."""
    files = {}
    for k, (name, image, mask) in enumerate(zip(names, images, masks)):
        files[f"masks/{name}.png"] = png_bytes(mask.astype(np.uint8) * 255)
        files[f"overlays/{name}.png"] = png_bytes(overlay(image, mask))
        if baseline is not None:
            files[f"baseline_masks/{name}.png"] = png_bytes(baseline[k].astype(np.uint8) * 255)
    return _zip_files(Path(out), files)


def _zip_files(out: Path, files: dict[str, bytes]) -> Path:
    """Write `files` (relative name -> bytes) under `out` and into out/predictions.zip; return the zip."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            atomic_write(out / name, data)
            zf.writestr(name, data)
    return atomic_write(out / "predictions.zip", buf.getvalue())


def write_labels(
    out: Path, names: list[str], logits: list[torch.Tensor], baseline: list[torch.Tensor], classes: list[str]
) -> Path:
    """predictions.csv (image, patched and baseline class with their softmax confidence) and its zip."""
    rows = [["image", "predicted", "confidence", "baseline_predicted", "baseline_confidence"]]
    for name, z, b in zip(names, logits, baseline):
        pz, pb = z.float().softmax(0), b.float().softmax(0)
        rows.append(
            [
                name,
                classes[int(pz.argmax())],
                f"{float(pz.max()):.4f}",
                classes[int(pb.argmax())],
                f"{float(pb.max()):.4f}",
            ]
        )
    return _zip_files(Path(out), {"predictions.csv": _csv(rows).encode()})


def write_depths(
    out: Path, names: list[str], images: list[np.ndarray], depth: list[torch.Tensor], baseline: list[torch.Tensor]
) -> Path:
    """depth/NAME.png and baseline_depth/NAME.png (16-bit millimetres), previews/NAME.png (image | baseline |
    patched, one colour scale per image) and predictions.zip of them all; depths in metres, clamped to the
    evaluation range as they are measured."""
    depth, baseline = ([clamp_depth(z).cpu().numpy() for z in zs] for zs in (depth, baseline))
    files = {}
    for name, image, d, b in zip(names, images, depth, baseline):
        lo, hi = float(min(d.min(), b.min())), float(max(d.max(), b.max()))
        files[f"depth/{name}.png"] = depth_png(d)
        files[f"baseline_depth/{name}.png"] = depth_png(b)
        files[f"previews/{name}.png"] = png_bytes(
            np.concatenate([image, depth_colour(b, lo, hi), depth_colour(d, lo, hi)], 1)
        )
    return _zip_files(Path(out), files)
