"""The documentation without building it: a short README whose links resolve, a docs/ page for every nav entry, and
a command-line reference (docs/hooks.py) with a section for every verb of the parser."""

from __future__ import annotations

import importlib.util
import re

import yaml

from redundancy.cli.parser import build_parser

from .conftest import ROOT

DOCS = ROOT / "docs"


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _nav_pages(nav) -> list[str]:
    """Every page file a mkdocs nav names, nested sections included."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [p for item in nav for p in _nav_pages(item)]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in _nav_pages(value)]
    return []


def _relative_links(markdown: str) -> list[str]:
    """Targets of markdown links that are neither URLs nor in-page anchors, without their #fragment."""
    prose = re.sub(r"```.*?```|`[^`\n]*`", "", markdown, flags=re.S)  # code is not a link
    targets = re.findall(r"\]\(([^)\s]+)\)", prose)
    return [t.split("#")[0] for t in targets if not re.match(r"^(#|[a-z]+:)", t)]


def test_the_readme_is_a_five_minute_read():
    assert (ROOT / "README.md").stat().st_size <= 12_000


def test_every_page_in_the_nav_exists_and_every_docs_page_is_in_the_nav():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages = _nav_pages(config["nav"])
    assert pages and len(pages) == len(set(pages))
    assert [p for p in pages if not (DOCS / p).is_file()] == []
    assert sorted(p.name for p in DOCS.glob("*.md")) == sorted(pages)  # no page left out of the nav


def test_every_relative_link_in_the_readme_and_the_docs_points_to_a_file():
    readme = _relative_links((ROOT / "README.md").read_text())
    assert "docs/cli.md" in readme  # the README points into the docs
    missing = [t for t in readme if not (ROOT / t).exists()]
    for page in DOCS.glob("*.md"):
        missing += [f"{page.name}: {t}" for t in _relative_links(page.read_text()) if not (DOCS / t).is_file()]
    assert missing == []


def test_the_cli_reference_has_a_section_for_every_verb():
    hooks = _hooks()
    verbs = list(hooks.verbs(build_parser()))
    assert {"search", "apply", "ablate"} <= set(verbs)
    page = (DOCS / "cli.md").read_text()
    assert hooks.MARKER in page
    built = hooks.on_page_markdown(page)
    assert hooks.MARKER not in built
    for verb in verbs:
        section = re.search(rf"^### `{re.escape(verb)}`\n\n```text\n(.*?)```", built, re.M | re.S)
        assert section, verb
        assert section.group(1).startswith(f"usage: python -m redundancy {verb}")
        assert max(len(line) for line in section.group(1).splitlines()) <= 100  # a fixed width, whatever the terminal
