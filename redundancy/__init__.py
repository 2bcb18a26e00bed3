"""redundancy: parameter-free adaptation of SAM-style models by channel replacement (arXiv 2504.08915).

The public API (README, "From Python"):

    build_backend(name, ...)          a model split at its encoder output (registry: `REGISTRY`)
    SessionConfig(...), Session.open  a model, a dataset split into search / held-out sets, cached features (frozen)
    SearchSettings(...)               how a search runs: metric, top N, channel scope, mode (frozen, per call)
    run_search(session, settings, Callbacks())  score pairs, keep the top N, try every subset, held-out numbers
    write_run(out, session, result)   the run directory (config, scores, top N, combinations, replacements)
    RunDir(path)                      read a run directory back
    patch(model, pairs)               install a found set on your own SAM / SAM2 model
"""

__version__ = "0.1.0"

from .export import write_run  # noqa: E402
from .models import REGISTRY, build_backend  # noqa: E402
from .models.patching import patch  # noqa: E402
from .pipeline import Callbacks, SearchResult, SearchSettings, Session, SessionConfig, run_search  # noqa: E402
from .replace import load_replacements  # noqa: E402
from .rundir import RunDir  # noqa: E402

__all__ = [
    "REGISTRY",
    "Callbacks",
    "RunDir",
    "SearchResult",
    "SearchSettings",
    "SessionConfig",
    "Session",
    "build_backend",
    "load_replacements",
    "patch",
    "run_search",
    "write_run",
]
