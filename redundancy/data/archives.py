"""Dataset archives: a .zip extracted safely (checked entry by entry) into a session's folder or the cache."""

from __future__ import annotations

import errno
import lzma
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path

from ..errors import DataError
from ..io import cache_dir, env_number
from ..io import sha256_file as file_sha256

ARCHIVE_EXTS = (".zip", ".tar", ".gz", ".tgz", ".7z", ".rar")
ZIP_MAX_BYTES = env_number("REDUNDANCY_ZIP_MAX_BYTES", 2 * 1024**3)  # uncompressed total
ZIP_MAX_RATIO = 200  # uncompressed / compressed, a decompression-bomb guard
ZIP_MAX_FILES = 20_000


def extract_zip(zip_path: Path, dest: Path) -> Path:
    """Extract a dataset zip safely (no path escapes, links, bombs or half-read entries) into `dest`; return it.

    Everything that can be checked from the archive's directory is checked before a byte is written; what
    only shows while reading (damaged data, sizes that lie, a full disk) stops with one line naming the entry.
    """
    zip_path = Path(zip_path)
    if not zipfile.is_zipfile(zip_path):
        raise DataError(f"{zip_path.name}: not a zip archive; make it a .zip of a dataset folder.")
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise DataError(f"{zip_path.name}: cannot open this zip ({_reason(e)}); re-create it.") from None
    with zf:
        plan = _zip_plan(zip_path.name, zf.infolist(), dest.resolve())
        budget = ZIP_MAX_BYTES
        for info, target in plan:
            if info.is_dir():
                _zip_io(zip_path.name, info, lambda t=target: t.mkdir(parents=True, exist_ok=True))
                continue
            budget -= _zip_io(zip_path.name, info, lambda i=info, t=target, b=budget: _copy_entry(zf, i, t, b))
    return dest


ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


MAX_NAME_BYTES = 255  # per path component, as Linux file systems allow


def _zip_plan(archive: str, infos: list[zipfile.ZipInfo], base: Path) -> list[tuple[zipfile.ZipInfo, Path]]:
    """(entry, target) for every entry, after the checks the archive's directory allows; DataError on the first
    entry that is unsafe (outside, a link, encrypted, a method Python lacks) or ambiguous."""
    if len(infos) > ZIP_MAX_FILES:
        raise DataError(f"{archive}: {len(infos)} entries is over the limit of {ZIP_MAX_FILES}.")
    total = sum(i.file_size for i in infos)
    packed = max(1, sum(i.compress_size for i in infos))
    if total > ZIP_MAX_BYTES or total / packed > ZIP_MAX_RATIO:
        raise DataError(
            f"{archive}: unpacks to {total:,} bytes ({total / packed:.0f}x its size); the limits are "
            f"{ZIP_MAX_BYTES:,} bytes and {ZIP_MAX_RATIO}x. Is it a decompression bomb?"
        )
    plan, files, dirs = [], {}, {}
    for info in infos:
        name = info.filename.replace("\\", "/")  # archives made on Windows may use backslashes
        target = (base / name).resolve()
        if name.startswith("/") or ":" in name.split("/")[0] or not target.is_relative_to(base):
            raise DataError(f"{archive}: entry '{name}' points outside the archive; refused.")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DataError(f"{archive}: entry '{name}' is a symbolic link; refused.")
        if info.flag_bits & 0x1:
            raise DataError(f"{archive}: entry '{name}' is encrypted; re-create the zip without a password.")
        if info.compress_type not in ZIP_METHODS:
            raise DataError(
                f"{archive}: entry '{name}' uses a compression method this tool cannot read (number "
                f"{info.compress_type}); re-create the zip with standard (deflate) compression."
            )
        long = next((part for part in name.split("/") if len(part.encode()) > MAX_NAME_BYTES), None)
        if long is not None:
            raise DataError(f"{archive}: entry '{long[:40]}...' has a name over {MAX_NAME_BYTES} bytes; shorten it.")
        if target in files and not info.is_dir():
            raise DataError(
                f"{archive}: entries '{files[target]}' and '{info.filename}' name the same file once "
                "path separators are normalised; refused as ambiguous. Re-create the zip."
            )
        (dirs if info.is_dir() else files)[target] = info.filename
        for parent in target.parents:  # every folder above a file or folder is a folder too
            if parent == base:
                break
            dirs.setdefault(parent, info.filename)
        plan.append((info, target))
    clash = next((t for t in files if t in dirs), None)
    if clash is not None:
        raise DataError(
            f"{archive}: '{files[clash]}' is a file and also the folder of '{dirs[clash]}'; rename one and "
            "re-create the zip."
        )
    return plan


def _copy_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int) -> int:
    """Write one entry to `target`, at most `budget` bytes (whatever its header claims); bytes written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(info) as src, open(target, "wb") as dst:
        while block := src.read(1 << 20):
            written += len(block)
            if written > budget:
                raise DataError(
                    f"entry '{info.filename}' unpacks to more than the {ZIP_MAX_BYTES:,}-byte limit; is it a "
                    "decompression bomb?"
                )
            dst.write(block)
    return written


def _zip_io(archive: str, info: zipfile.ZipInfo, step):
    """Run one extraction step; damaged data and file-system failures become one line naming the entry."""
    try:
        return step()
    except DataError as e:
        raise DataError(f"{archive}: {e}") from None
    except (zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, NotImplementedError, RuntimeError) as e:
        raise DataError(
            f"{archive}: entry '{info.filename}' is damaged ({_reason(e)}: its data or recorded size is wrong); "
            "re-create the zip."
        ) from None
    except OSError as e:
        fix = {
            errno.ENOSPC: "the server's disk is full; try a smaller zip, or free space (or set REDUNDANCY_CACHE)",
            errno.ENAMETOOLONG: "its name is too long for this file system; shorten it",
            errno.EEXIST: "a file and a folder share that name; rename one",
            errno.ENOTDIR: "a file and a folder share that name; rename one",
            errno.EISDIR: "a file and a folder share that name; rename one",
        }.get(e.errno, "re-create the zip, or extract it yourself and give the folder")
        raise DataError(f"{archive}: cannot extract '{info.filename}' ({e.strerror or _reason(e)}); {fix}.") from None


def _reason(e: Exception) -> str:
    """An exception as a short reason: its class and first line, without server paths."""
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{e.__class__.__name__}: {text[:120]}" if text else e.__class__.__name__


def extract_cached(zip_path: Path) -> Path:
    """Extract a dataset zip once into the cache ($REDUNDANCY_CACHE/datasets/<sha256>/) and return that folder."""
    dest = cache_dir() / "datasets" / file_sha256(zip_path)[:24]
    if (dest / ".complete").exists():
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(
            f"cannot extract {zip_path.name} into {dest.parent} ({e.strerror}); "
            "set REDUNDANCY_CACHE to a writable folder."
        ) from None
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".extract-"))
    try:
        extract_zip(zip_path, tmp)
        (tmp / ".complete").write_text(zip_path.name)
        shutil.rmtree(dest, ignore_errors=True)  # a half-extracted copy from a killed run
        os.replace(tmp, dest)
    except OSError:
        if not (dest / ".complete").exists():  # another process may have won the race; that is fine
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def nested_archives(root: Path) -> str:
    """' It holds the archive(s) a.zip, ...: extract ...' when archives sit inside the data, else ''."""
    found = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix.lower() in ARCHIVE_EXTS)
    if not found:
        return ""
    return (
        f" It holds the archive(s) {', '.join(found[:3])}: a zip inside a zip is not opened; zip the folders instead."
    )
