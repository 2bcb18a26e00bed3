"""Partial results of a running search, saved in RUN/state/ so a killed search resumes where it stopped.

Scores are batch-composition invariant (fixed-shape decoder calls), so scoring the remaining
pairs after a restart gives exactly the numbers an uninterrupted run would have produced.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np

from ..engine.provenance import fingerprint
from ..errors import RunError
from ..io import atomic_write, ensure_folder, write_json
from .rundir import LEGACY_FIELDS, MANIFEST, RunDir

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows
    fcntl = None


STATE = "state"


def _json_object(path: Path) -> dict | None:
    """The JSON object in `path`, or None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _is_run_manifest(m: dict | None) -> bool:
    """A finished run's manifest as `RunDir.seal` writes it: complete, its fingerprint, each file's sha256."""
    if m is None or not isinstance(m.get("complete"), bool) or not isinstance(m.get("files"), dict):
        return False
    hashes = all(isinstance(k, str) and isinstance(v, str) for k, v in m["files"].items())
    return hashes and "fingerprint" in m and isinstance(m["fingerprint"], (str, type(None)))


def _is_state_manifest(m: dict | None) -> bool:
    """An unfinished search's state/manifest.json as `RunState` writes it: its fingerprint and when it was saved."""
    return m is not None and isinstance(m.get("fingerprint"), str) and isinstance(m.get("updated"), (int, float))


def is_run_folder(path: Path) -> bool:
    """Whether a folder holds a search of this tool: a finished run or an unfinished one (its saved state), told by
    the manifest's schema, never by a file name alone (a user's own manifest.json is not a run)."""
    return _is_run_manifest(_json_object(path / MANIFEST)) or _is_state_manifest(_json_object(path / STATE / MANIFEST))


def check_out_folder(path: Path) -> None:
    """Refuse a search's --out that holds files this tool did not write (they would be replaced or deleted)."""
    if path.exists() and not path.is_dir():
        raise RunError(f"--out {path} is a file; give a folder for the run.")
    if path.is_dir() and not is_run_folder(path):
        theirs = sorted(p.name for p in path.iterdir())
        if theirs:
            raise RunError(
                f"--out {path} already holds files that are not a run of this tool (e.g. {theirs[0]}); choose a new "
                "or empty folder, so that nothing of yours is replaced."
            )


@contextlib.contextmanager
def search_lock(path: Path) -> Iterator[None]:
    """Hold the run folder for one search at a time: a second search into it (even with --restart) is refused
    while the first runs. The lock is the folder's own (flock on it), so nothing is left behind and a killed
    search releases it."""
    ensure_folder(path)
    if fcntl is None:  # no flock on this platform: the run folder is not guarded
        yield
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunError(
                f"another search is writing to {path} right now; wait for it to finish, or choose another --out."
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def finished_search(run: RunDir, key: str) -> bool:
    """Whether `run` holds a finished search with fingerprint `key` (the same model, data, split and settings)."""
    manifest = run.manifest()
    return bool(manifest and manifest.get("complete") and manifest.get("fingerprint") == key)


def claim_run_dir(run: RunDir, key: str, overwrite: bool = False) -> None:
    """Make `run` ready for a search with fingerprint `key`: a finished run of other settings is refused
    (or, with `overwrite`, removed with everything it owns); a finished run of the same settings is redone
    (the CLI asks for --restart first: `finished_search`)."""
    check_out_folder(run.path)
    manifest = run.manifest()
    if not (manifest and manifest.get("complete")) or manifest.get("fingerprint") == key:
        return
    if not overwrite:
        raise RunError(
            f"{run.path} holds a finished run of other settings; choose another --out, or pass --overwrite to "
            "replace it (its ablation.json, applied/ and figures/ go too)."
        )
    run.clear()


class RunState:
    """Saved progress of one search: pair gains so far and evaluated combinations so far."""

    def __init__(self, run_dir: Path, key: str, min_interval_s: float = 1.0, restart: bool = False, rank: int = 0):
        self.dir = Path(run_dir) / STATE
        self.key = key
        self.rank = rank  # each torchrun rank saves its own files; loading merges them all
        self.min_interval_s = min_interval_s
        self._last = 0.0
        manifest = self.dir / "manifest.json"
        if restart:
            shutil.rmtree(self.dir, ignore_errors=True)
        elif manifest.exists():
            try:
                saved = json.loads(manifest.read_text()).get("fingerprint")
            except (ValueError, AttributeError, RecursionError):  # unreadable saved state: not this search's
                saved = None
            if saved != key:
                raise RunError(
                    f"{run_dir} holds an unfinished search with other settings; use another --out, "
                    "or --restart to discard it."
                )
        write_json(manifest, {"fingerprint": key, "updated": time.time()})

    def _load(self, name: str) -> dict | None:
        """Arrays saved under `name` by any rank, merged (first finite value wins)."""
        merged = None
        for path in sorted(self.dir.glob(f"{name}.r*.npz")):
            try:
                with np.load(path) as data:  # saved by an older version: its arrays under today's names
                    part = {LEGACY_FIELDS.get(k, k): data[k] for k in data.files}
            except (OSError, ValueError):  # unreadable partial state: that rank's work is redone
                continue
            if merged is None:
                merged = part
            elif all(merged[k].shape == part[k].shape for k in merged if merged[k].dtype.kind == "f"):
                for k, v in merged.items():
                    if v.dtype.kind == "f":
                        merged[k] = np.where(np.isnan(v), part[k], v)
        return merged

    def _save(self, name: str, force: bool, **arrays: np.ndarray) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.min_interval_s:
            return
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy's stub: mypy lets **arrays reach allow_pickle (bool)
        atomic_write(self.dir / f"{name}.r{self.rank}.npz", buf.getvalue())
        self._last = now

    def pairs(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """(score_gain, loss_gain) C x C saved so far; NaN where not scored yet."""
        data = self._load("pairs")
        if data is None or data["score_gain"].shape != (channels, channels):
            nan = np.full((channels, channels), np.nan, np.float32)
            return nan, nan.copy()
        return data["score_gain"], data["loss_gain"]

    def save_pairs(self, score_gain: np.ndarray, loss_gain: np.ndarray, force: bool = False) -> None:
        self._save("pairs", force, score_gain=score_gain, loss_gain=loss_gain)

    def combos(self, n: int, top: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(score, loss, per-image stats) of the n subsets of these top pairs saved so far (NaN: not evaluated yet)."""
        data = self._load("combos")
        if data is None or data["score"].shape != (n,) or data["key"].item() != fingerprint(top):
            return np.full(n, np.nan), np.full(n, np.nan), np.full((n, 0, 0), np.nan)
        per_image = data["per_image"] if "per_image" in data else np.full((n, 0, 0), np.nan)
        return data["score"], data["loss"], per_image

    def save_combos(
        self,
        top: list[tuple[int, int]],
        score: np.ndarray,
        loss: np.ndarray,
        per_image: np.ndarray,
        force: bool = False,
    ) -> None:
        self._save("combos", force, score=score, loss=loss, per_image=per_image, key=np.array(fingerprint(top)))

    def finish(self) -> None:
        """The run's files are written: partial state is no longer needed."""
        shutil.rmtree(self.dir, ignore_errors=True)
