"""The CLI command that does what a SessionConfig and SearchSettings describe (to hand a job to a terminal)."""

from __future__ import annotations

import shlex
from dataclasses import fields

FLAG_NAMES = {"mask_choice": "--mask", "rows": "--batch-rows"}  # the CLI's two flags not named after their field


def _flag(name: str, value) -> list[str]:
    flag = FLAG_NAMES.get(name, "--" + name.replace("_", "-"))
    return [flag] if value is True else [flag, str(value)]


def _flags(obj, skip: tuple[str, ...] = ()) -> list[str]:
    """`--field value` for each field of dataclass `obj` that differs from its default (booleans: the bare flag);
    a search's mode options become their own flags (`--candidates 32`)."""
    out: list[str] = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name in skip or value == f.default:
            continue
        if f.name == "options":
            out += [part for name, v in value for part in _flag(name, v)]
            continue
        out += _flag(f.name, value)
    return out


def command_line(verb: str, cfg, settings=None, out: str | None = None) -> str:
    """`python -m redundancy VERB ...` for a session config (and search settings), quoted for a POSIX shell.

    The device is left to the machine that runs it (`auto`), so the line works on a laptop and a GPU box.
    """
    args = ["python", "-m", "redundancy", verb, *_flags(cfg, skip=("device",))]
    if settings is not None:
        args += _flags(settings)
    if out is not None:
        args += ["--out", out]
    return shlex.join(args)
