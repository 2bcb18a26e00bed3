"""Crash-safe file writes: every file appears whole or not at all."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import overload

from .errors import RunError

CACHE_ENV = "REDUNDANCY_CACHE"
_UMASK = os.umask(0)  # read once at import (os.umask can only be read by setting it)
os.umask(_UMASK)


def cache_dir() -> Path:
    """Root of the on-disk cache: $REDUNDANCY_CACHE, else ~/.cache/redundancy."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "redundancy"
    return Path(root)


def atomic_write(path: Path, data: bytes | str) -> Path:
    """Write via a temp file + rename so a crash never leaves half a file behind."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; run files follow the umask like any new file
        os.replace(tmp, path)
    except OSError as e:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        raise RunError(f"cannot write {path} ({e.strerror}); pick a writable --out folder with free space.") from e
    return path


def ensure_folder(path: str | Path, what: str = "--out") -> Path:
    """`path` as an existing, writable folder (created if needed), checked before any work that would write
    into it starts; RunError naming the problem otherwise."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunError(f"{what} {path} is a file, not a folder; give a folder to write into.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunError(f"cannot create {what} {path} ({e.strerror}); pick a writable folder.") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise RunError(f"{what} {path} is not writable; pick a writable folder.")
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


@overload
def env_number(name: str, default: int, kind: type[int] = int) -> int: ...
@overload
def env_number(name: str, default: float, kind: type[float]) -> float: ...
def env_number(name: str, default: float, kind: type = int) -> float:
    """A numeric setting from the environment ('4e7' and '40_000_000' both read as 40000000 for ints).

    A value that is not a number stops the program with one line naming the variable, never a traceback.
    """
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw.replace("_", ""))
        if kind is int:
            if not value.is_integer() or value < 0:
                raise ValueError
            return int(value)
        return value
    except ValueError:
        raise SystemExit(
            f"error: {name}={raw!r} is not a valid {'whole ' if kind is int else ''}number; "
            f"set it like {name}={default} or unset it."
        ) from None
