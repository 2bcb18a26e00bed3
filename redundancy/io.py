"""Crash-safe file writes: every file appears whole or not at all."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from .errors import RunError


def atomic_write(path: Path, data: bytes | str) -> Path:
    """Write via a temp file + rename so a crash never leaves half a file behind."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except OSError as e:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        raise RunError(f"cannot write {path} ({e.strerror}); pick a writable --out folder with free space.") from e
    return path


def write_json(path: Path, obj: dict) -> Path:
    """Atomically write `obj` as indented JSON."""
    return atomic_write(path, json.dumps(obj, indent=2) + "\n")


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
