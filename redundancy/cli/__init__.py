"""The command line, `python -m redundancy VERB` (or `redundancy VERB`): its flags (`parser`), its verbs (`verbs`)
and the CLI line a front end hands a user to run a job on their own machine (`commandline`)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Entry point: the flags are parsed before the engine loads (`--help` and flag errors answer at once), then
    the verb runs; user errors print one clear line and exit 2."""
    from .parser import build_parser

    args = build_parser().parse_args(argv)
    from .verbs import run

    return run(args)


__all__ = ["main"]
