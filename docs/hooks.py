"""mkdocs hook: the command-line reference in cli.md, generated from the argparse parser the CLI itself uses.

`on_page_markdown` replaces the marker `<!-- cli-reference -->` with one section per verb (the subparsers of
`redundancy.cli.parser.build_parser()`): a heading and the verb's `--help` text in a code block, as plain text at
a fixed width (100 columns) so the page does not depend on the terminal that built it. Registered in mkdocs.yml
under `hooks:`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

MARKER = "<!-- cli-reference -->"
# argparse wraps at $COLUMNS - 2; Python 3.14's argparse colours help on a terminal unless told not to.
PLAIN = {"COLUMNS": "100", "NO_COLOR": "1", "PYTHON_COLORS": "0"}


def _build_parser() -> argparse.ArgumentParser:
    try:
        from redundancy.cli.parser import build_parser
    except ImportError:  # mkdocs run from a checkout where the package is not installed
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from redundancy.cli.parser import build_parser
    return build_parser()


def verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Each verb's name and its subparser, in the order `--help` lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help(parser: argparse.ArgumentParser) -> str:
    """`parser.format_help()` as plain text wrapped at 100 columns, whatever the terminal is."""
    before = {k: os.environ.get(k) for k in PLAIN}
    os.environ.update(PLAIN)
    try:
        return parser.format_help().rstrip()
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def cli_reference() -> str:
    """The reference as markdown: the top-level usage, then a `### verb` section per verb."""
    parser = _build_parser()
    parts = ["### `redundancy`", "", "```text", _help(parser), "```", ""]
    for name, sub in verbs(parser).items():
        parts += [f"### `{name}`", "", "```text", _help(sub), "```", ""]
    return "\n".join(parts)


def on_page_markdown(markdown: str, page=None, config=None, files=None, **kwargs) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, cli_reference())
