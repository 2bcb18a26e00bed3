"""A run directory: the one place that knows its files, reads them, checks them and clears them.

A search writes RUN_FILES, then `manifest.json` last (`complete: true`, the search's fingerprint and
the sha256 of every file). Later steps add files the run owns (`ablation.json`, `applied/`,
`figures/`); recorded files get their hash in the manifest too. Every module that opens a run
(apply, ablate, figures, the CLI, the app) goes through `RunDir`.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.datasets import looks_like_data
from ..errors import RunError
from ..io import sha256_file, write_json

RUN_FILES = (
    "config.json",
    "pair_scores.npy",
    "pair_scores.csv",
    "topn.json",
    "combinations.csv",
    "replacements.json",
    "preview.npz",
)
HEAD = "head.pt"  # classify / depth runs also write the head the search scored with
SEARCH_FILES = (*RUN_FILES, HEAD)  # what a search may write (all hashed in the manifest)
MANIFEST = "manifest.json"
ABLATION = "ablation.json"
OPTIONAL = (HEAD, ABLATION)  # hashed in the manifest whenever present
# Everything a run owns besides RUN_FILES: removed with it when a new search overwrites the folder.
OWNED = (MANIFEST, ABLATION, "applied", "figures", "state", "_data")
STARTED = (MANIFEST, ABLATION, "state")  # besides SEARCH_FILES: what shows a search began here
# The files' schema, recorded in config.json as `run_format` (absent: 1). Format 1 named every score field mIoU
# (`baseline_miou`, `miou_gain`, ...) whatever the task scored; format 2 calls them scores, with the metric named
# beside them. Runs of format 1 are read under today's names (`LEGACY_FIELDS`), their files untouched.
RUN_FORMAT = 2
LEGACY_FIELDS = {
    "miou": "score",
    "miou_gain": "score_gain",
    "baseline_miou": "baseline_score",
    "patched_miou": "patched_score",
    "delta_miou": "delta_score",
}


def upgraded(record):
    """A run record (JSON objects and lists, or CSV rows) with any format-1 field names as today's."""
    if isinstance(record, dict):
        return {LEGACY_FIELDS.get(k, k): upgraded(v) for k, v in record.items()}
    if isinstance(record, list):
        return [upgraded(v) for v in record]
    return record


@dataclass(frozen=True)
class RunDir:
    """A run directory on disk; reading methods raise RunError with the fix when a file is missing or broken."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def manifest(self) -> dict | None:
        """manifest.json, or None when the search never finished writing."""
        p = self.path / MANIFEST
        return self._json(MANIFEST) if p.is_file() else None

    @property
    def finished(self) -> bool:
        m = self.manifest()
        return bool(m and m.get("complete"))

    @property
    def started(self) -> bool:
        """Whether the folder holds anything a search writes: a run, finished or not (else it is no run at all)."""
        return self.path.is_dir() and any((self.path / n).exists() for n in (*SEARCH_FILES, *STARTED))

    def check_is_run(self) -> None:
        """Refuse a path that is no run at all (missing, a file, a folder of other things), naming what it is."""
        what = "Give the --out folder of a `search` (it writes config.json, pair_scores.npy, ...)."
        if not self.path.exists():
            raise RunError(f"{self.path}: no such folder. {what}")
        if not self.path.is_dir():
            raise RunError(f"{self.path} is a file, not a run folder. {what}")
        if not self.started:
            data = " It looks like a dataset: a dataset goes to --data." if looks_like_data(self.path) else ""
            raise RunError(f"{self.path} is not a run folder: it holds none of the files a search writes.{data} {what}")

    def verify(self) -> None:
        """Refuse an unfinished run, or one whose files no longer match their manifest hashes."""
        self.check_is_run()
        m = self.manifest()
        if not (m and m.get("complete")):
            raise RunError(
                f"{self.path} is not a finished run (no complete {MANIFEST}): its search was interrupted or is "
                "still running. Rerun the same search command to finish it, or pass --unverified to use it as is."
            )
        files = m.get("files")
        if not isinstance(files, dict):
            raise RunError(f"{self.path}: {MANIFEST} lists no files; rerun the search.")
        for name in files:  # before any file is opened: a manifest names only files inside its run
            if not isinstance(name, str) or not self.inside(name):
                raise RunError(f"{self.path}: {MANIFEST} names {name!r}, which is not a file of this run; refused.")
        unlisted = [n for n in (*RUN_FILES, *OPTIONAL) if n not in files and (n in RUN_FILES or self.has(n))]
        if unlisted:
            raise RunError(
                f"{self.path}: {unlisted[0]} is not covered by {MANIFEST} (edited after the run?); rerun the search, "
                "or pass --unverified to use the files as they are."
            )
        for name, digest in files.items():
            p = self.path / name
            if not p.is_file():
                raise RunError(f"{self.path}: {name} is listed in {MANIFEST} but missing; rerun the search.")
            if sha256_file(p) != digest:
                raise RunError(
                    f"{self.path}: {name} does not match its sha256 in {MANIFEST} (edited or damaged after the run); "
                    "rerun the search, or pass --unverified to use the files as they are."
                )

    def inside(self, name: str) -> bool:
        """Whether `name` is a plain relative path to a file inside this run folder (links resolved)."""
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            return False
        return (self.path / rel).resolve().is_relative_to(self.path.resolve())

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def seal(self, fingerprint: str | None = None) -> None:
        """Write manifest.json last: the run is complete, with the hash of every run file present."""
        files = {name: sha256_file(self.path / name) for name in (*SEARCH_FILES, ABLATION) if self.has(name)}
        write_json(self.path / MANIFEST, {"complete": True, "fingerprint": fingerprint, "files": files})

    def record(self, name: str) -> None:
        """Add (or refresh) the hash of a file written after the search, e.g. ablation.json."""
        m = self.manifest()
        if m is None:
            return  # an unfinished run has no manifest to add to; `seal` will hash what is there
        m.setdefault("files", {})[name] = sha256_file(self.path / name)
        write_json(self.path / MANIFEST, m)

    def clear(self) -> None:
        """Remove every file the run owns (before a new search is written into the same folder)."""
        for name in (*SEARCH_FILES, *OWNED):
            p = self.path / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()

    def _need(self, name: str) -> Path:
        p = self.path / name
        if not p.is_file():
            self.check_is_run()
            raise RunError(f"{self.path} is not a finished run ({name} missing); run `search --out {self.path}` first.")
        return p

    def _json(self, name: str) -> dict:
        try:
            data = json.loads(self._need(name).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RunError(f"{self.path}: {name} is not valid JSON ({e}); rerun the search.") from None
        except RecursionError:
            raise RunError(f"{self.path}: {name} is nested too deeply to be a run file; rerun the search.") from None
        if not isinstance(data, dict):
            raise RunError(f"{self.path}: {name} is not a JSON object; rerun the search.")
        return data

    def config(self) -> dict:
        """config.json, checked for the fields every reader of a run relies on."""
        config = self._json("config.json")
        problem = config_problem(config)
        if problem:
            raise RunError(
                f"{self.path}: config.json is malformed ({problem}); rerun the search (or restore the file)."
            )
        version = config.get("run_format", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise RunError(
                f"{self.path}: config.json's run_format is {version!r}, not a format version; rerun the search."
            )
        if version > RUN_FORMAT:
            raise RunError(
                f"{self.path} was written by a newer version of redundancy (run format {version}; this one reads up "
                f"to {RUN_FORMAT}); upgrade redundancy to read it."
            )
        return config

    def replacements(self) -> dict:
        return upgraded(self._json("replacements.json"))

    def topn(self) -> dict:
        return upgraded(self._json("topn.json"))

    def pair_scores(self) -> np.ndarray:
        """(C, C) gains: [i, j] = gain when channel i takes channel j's values; NaN where unscored."""
        return np.load(self._need("pair_scores.npy"))

    def combinations(self) -> list[dict]:
        with open(self._need("combinations.csv")) as f:
            return upgraded(list(csv.DictReader(f)))

    def ablation(self) -> dict | None:
        return upgraded(self._json(ABLATION)) if (self.path / ABLATION).is_file() else None

    def head(self) -> Path | None:
        """head.pt of a classify or depth run (None for segmentation)."""
        p = self.path / HEAD
        return p if p.is_file() else None

    def preview(self) -> dict | None:
        p = self.path / "preview.npz"
        if not p.is_file():
            return None
        with np.load(p) as data:
            return {k: data[k] for k in data.files}


# What readers of config.json rely on: (dotted field, type); `config_problem` names the first one that is off.
CONFIG_FIELDS = (
    ("model", str),
    ("channels", int),
    ("weights", dict),
    ("weights.label", str),
    ("config", dict),
    ("config.model", str),
    ("config.data", str),
    ("config.seed", int),
    ("config.prompt", str),
    ("data", dict),
    ("data.path", str),
    ("data.sha256", str),
    ("data.search_set", list),
    ("protocol", str),
    ("search", dict),
)


def config_problem(config: dict) -> str | None:
    """What is wrong with a config.json's fields (None when every field readers use has its type)."""
    for field, kind in CONFIG_FIELDS:
        value: object = config
        for part in field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return f"'{field}' should be {'a ' + kind.__name__ if kind is not dict else 'an object'}"
    return None
