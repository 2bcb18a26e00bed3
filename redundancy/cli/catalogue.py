"""The registries' choices the CLI's flags offer (tasks and metrics, protocols, prompts, search modes and their
options, selection rules, precisions, demo recipes), as a snapshot the parser reads without importing torch: so
`--help` and a mistyped flag answer in well under a second, before the engine loads.

The registries stay the one place these facts live. `catalogue.json` is derived from them: `python -m
redundancy.cli.catalogue` rewrites it, and a test fails while it differs from what the registries say.
"""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FILE = Path(__file__).with_name("catalogue.json")
KINDS = {"int": int, "float": float, "str": str}  # a mode option's value type, by the name the snapshot keeps


@dataclass(frozen=True)
class Flag:
    """A search mode's option as the CLI offers it: `--name` of `kind`, its help and default."""

    name: str
    kind: type
    help: str
    default: Any


@dataclass(frozen=True)
class Catalogue:
    """What the parser offers, read from the snapshot (`load`) or the registries (`live`)."""

    data: dict[str, Any]

    @property
    def tasks(self) -> dict[str, list[str]]:
        """Each task's metric names, the first its default."""
        return self.data["tasks"]

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric any task takes, in task order."""
        return tuple(dict.fromkeys(m for names in self.tasks.values() for m in names))

    @property
    def modes(self) -> dict[str, str]:
        """Each search mode's one-line summary, in the registry's order."""
        return self.data["modes"]

    @property
    def options(self) -> tuple[Flag, ...]:
        """Every search mode's own options."""
        return tuple(Flag(o["name"], KINDS[o["kind"]], o["help"], o["default"]) for o in self.data["options"])

    def __getattr__(self, name: str) -> Any:  # the plain lists: protocols, prompt_modes, precisions, ...
        try:
            return self.data[name]
        except KeyError:
            raise AttributeError(name) from None


def live() -> dict[str, Any]:
    """The snapshot's content as the registries say it now (imports the engine: torch and every built-in plug-in)."""
    from ..data.prompts import PROMPT_MODES
    from ..engine.evaluator import PRECISIONS
    from ..engine.screening import DEFAULT_MODE, MODES, all_options
    from ..engine.select import SELECT_MODES
    from ..models import DEFAULT_MODEL
    from ..models.prompted import MASK_CHOICES
    from ..tasks import PROTOCOLS, get_task, task_names
    from ..training.demo import RECIPES

    return {
        "tasks": {name: list(get_task(name).metric_names) for name in task_names()},
        "protocols": list(PROTOCOLS),
        "prompt_modes": list(PROMPT_MODES),
        "mask_choices": list(MASK_CHOICES),
        "precisions": list(PRECISIONS),
        "modes": {name: m.summary for name, m in MODES.items()},
        "default_mode": DEFAULT_MODE,
        "options": [
            {"name": o.name, "kind": o.kind.__name__, "help": o.help, "default": o.default} for o in all_options()
        ],
        "select_modes": list(SELECT_MODES),
        "default_model": DEFAULT_MODEL,
        "recipes": {name: asdict(r.defaults) for name, r in RECIPES.items()},  # each demo's training as shipped
    }


LOADED = ("redundancy.engine", "redundancy.models", "redundancy.tasks")  # with these imported, `live` costs nothing


def load() -> Catalogue:
    """What the parser offers: the registries themselves where the engine is already loaded in this process (so a
    plug-in imported before the CLI runs shows in it), else the snapshot (`catalogue.json`, shipped with the
    package), which needs no torch."""
    if all(name in sys.modules for name in LOADED):
        return Catalogue(live())
    return _snapshot()


@functools.cache
def _snapshot() -> Catalogue:
    return Catalogue(json.loads(FILE.read_text()))


def write() -> Path:
    """Rewrite the snapshot from the registries."""
    FILE.write_text(json.dumps(live(), indent=1) + "\n")
    return FILE


if __name__ == "__main__":
    print(f"wrote {write().name}")
