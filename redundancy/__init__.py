"""redundancy: parameter-free adaptation of SAM-style models by channel replacement (arXiv 2504.08915).

The public API (README, "From Python"):

    build_backend(name, ...)          a model split at its encoder output (registry: `REGISTRY`)
    SessionConfig(...), Session.open  a model, a dataset split into search / held-out sets, cached features (frozen)
    SearchSettings(...)               how a search runs: metric, top N, channel scope, mode (frozen, per call)
    run_search(session, settings, Callbacks())  score pairs, keep the top N, try every subset, held-out numbers
    write_run(out, session, result)   the run directory (config, scores, top N, combinations, replacements)
    RunDir(path)                      read a run directory back
    patch(model, pairs)               install a found set on your own SAM / SAM2 / DINOv2 / CLIP / MAE / timm model
    from_module(name, model, layer)   any nn.Module as a model, read at one submodule's output (or `timm:NAME`)
"""

__version__ = "0.1.0"

import importlib

from . import threads  # noqa: F401  (before torch starts its threads: how they wait, `threads.py`)

# name -> module: imported on first use (PEP 562), so `import redundancy.report.figures` or `.report.viz`
# does not load the model stack just because the package exports it.
_API = {
    "REGISTRY": ".models",
    "build_backend": ".models",
    "patch": ".models.patching",
    "from_module": ".models.module",
    "Callbacks": ".engine",
    "SearchResult": ".engine",
    "SearchSettings": ".engine",
    "Session": ".engine",
    "SessionConfig": ".engine",
    "run_search": ".engine",
    "load_replacements": ".replace",
    "RunDir": ".runs.rundir",
    "write_run": ".runs.writers",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name], __name__), name)
    raise AttributeError(f"module 'redundancy' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
