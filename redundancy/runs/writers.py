"""Run directories written atomically: config, scores, top N, combinations, the replacement set, the preview and
the head; a mode comparison's table; ablation rows; and the prediction files `apply` writes (the task's)."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..engine import SearchResult, SearchSettings, Session
from ..engine.screening import ModeReport
from ..io import atomic_write, write_json
from ..replace import pair_dict, pair_text
from .rundir import ABLATION, HEAD, RUN_FORMAT, RunDir


def _csv(rows: list[list]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]  # numpy's stub: mypy lets **arrays reach allow_pickle
    return buf.getvalue()


def pair_table(result: SearchResult) -> str:
    """pair_scores.csv: one row per scored pair."""
    s = result.scores
    ii, jj = np.nonzero(~np.isnan(s.score_gain))
    rows: list[list[str | int]] = [["source", "target", "score_gain", "loss_gain"]]
    rows += [[int(i), int(j), f"{s.score_gain[i, j]:.6f}", f"{s.loss_gain[i, j]:.6f}"] for i, j in zip(ii, jj)]
    return _csv(rows)


def combinations_table(result: SearchResult) -> str:
    """combinations.csv: one row per evaluated subset."""
    c = result.combos
    rows: list[list[str | int]] = [["size", "pairs", "score", "loss", "delta_score", "delta_loss"]]
    rows += [
        [
            len(r.pairs),
            " ".join(pair_text(p) for p in r.pairs),
            f"{r.score:.6f}",
            f"{r.loss:.6f}",
            f"{r.score - c.baseline_score:.6f}",
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
            "baseline_score": c.baseline_score,
            "patched_score": best.score if best else c.baseline_score,
            "baseline_loss": c.baseline_loss,
            "patched_loss": best.loss if best else c.baseline_loss,
            "confidence": (result.confidence or {}).get("best"),  # bootstrap over search images (or objects)
        },
        "heldout": result.heldout,
        "selection": result.selection,  # select cv: the cross-validation report; None for the paper's rule
    }


def write_run(out: Path, *found, public: Callable[[dict], dict] | None = None) -> Path:
    """Write a finished search's run directory into `out` (created if needed); return `out`.

    `found` is the `SearchResult` (the README's `write_run(out, session, result)` still works: the session is
    not read, the result carries everything). `public` rewrites the JSON records before they are written
    (the app: without server paths, for visitors).
    """
    result: SearchResult = found[-1]
    out = Path(out)
    public = public or (lambda record: record)
    s = result.scores
    conf = result.confidence
    top = {
        **result.header,
        "top_n": result.settings.top_n,
        "metric": s.metric,
        "baseline_score": s.baseline_score,
        "baseline_loss": s.baseline_loss,
        "top": [{**p.to_dict(), "confidence": conf["top"][k] if conf else None} for k, p in enumerate(result.top)],
        "skipped_same_source": [p.to_dict() for p in result.skipped],
    }
    write_json(out / "config.json", public({**result.provenance, "run_format": RUN_FORMAT}))
    atomic_write(out / "pair_scores.npy", _npy(s.gain.astype(np.float32)))
    atomic_write(out / "pair_scores.csv", pair_table(result))
    write_json(out / "topn.json", public(top))
    atomic_write(out / "combinations.csv", combinations_table(result))
    atomic_write(out / "preview.npz", _npz(result.preview))
    if result.head_state is not None:
        buf = io.BytesIO()
        torch.save(result.head_state, buf)
        atomic_write(out / HEAD, buf.getvalue())
    write_json(out / "replacements.json", public(replacements_dict(result)))
    RunDir(out).seal(result.key)  # last: marks a finished run
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
            "config": session.cfg.to_dict(),
            "search": session.resolve(settings).to_dict(),
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


def read_run(run: Path, verify: bool = True) -> tuple[dict, dict]:
    """(config.json, replacements.json) of a finished run whose files match their manifest (unless not `verify`)."""
    rd = RunDir(run)
    if verify:
        rd.verify()
    return rd.config(), rd.replacements()


def write_files(out: Path, files: dict[str, bytes]) -> Path:
    """Write `files` (relative name -> bytes) under `out` and into out/predictions.zip; return the zip."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            atomic_write(out / name, data)
            zf.writestr(name, data)
    return atomic_write(out / "predictions.zip", buf.getvalue())
