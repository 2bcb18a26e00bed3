"""What a visitor of the app may see: messages and run files without server paths or session folder names.

A hosted app works in folders a visitor must never learn (its session folders, Gradio's upload copies, the
server's own checkout). `Redactor` rewrites every absolute path in a message or a run record: a path under a
known folder becomes that folder's public name (an upload's own file name, a bundled dataset's path inside
the repository), any other absolute path its last component. Messages are also escaped, since the app
renders them as HTML.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

# An absolute POSIX path inside text: a "/" at the start or after a space, quote or bracket (so never the "/"
# of a relative path, a URL or a pattern like Images/<object>/*.jpg).
_ABSOLUTE = re.compile(r"(?<![^\s'\"`(\[{=])(/[^\s'\"`,;()<>\[\]{}|]+)")


@dataclass
class Redactor:
    """Known server folders -> what a visitor sees instead ("" hides the folder, keeping what is inside it)."""

    names: dict[str, str] = field(default_factory=dict)

    def add(self, folder: str | Path, public: str) -> None:
        """Show `folder` (and anything under it) as `public`."""
        for form in {str(folder), os.path.realpath(folder)}:
            self.names[form.rstrip("/")] = public

    def path(self, text: str) -> str:
        """One absolute path as a visitor sees it."""
        for folder in sorted(self.names, key=len, reverse=True):  # the most specific folder first
            if text == folder or text.startswith(folder + "/"):
                rest = text[len(folder) :].lstrip("/")
                public = self.names[folder]
                return "/".join(p for p in (public, rest) if p) or "."
        return Path(text).name or text

    def text(self, message: str) -> str:
        """A message with every absolute path replaced by its public form."""
        return _ABSOLUTE.sub(lambda m: self.path(m.group(1)), message)

    def html(self, message: str) -> str:
        """`text`, escaped for a page that renders it as HTML (a `<object>` in a message stays text)."""
        return html.escape(self.text(message), quote=False)

    def record(self, obj: object) -> object:
        """A JSON-able record (a run file's content) with every path-like string value in its public form."""
        if isinstance(obj, dict):
            return {k: self.record(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.record(v) for v in obj]
        if isinstance(obj, str) and obj.startswith("/"):
            return self.path(obj)
        return obj


PUBLIC = Redactor()  # no known folders: every absolute path shows as its last component
