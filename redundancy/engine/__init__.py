"""The engine: features, the batched evaluator, the pair scorer, search modes, combinations, selection rules,
soft pairs, confidence, sharding, settings, the cost model and the session-level steps (search, ablate)."""

from .ablate import AblationRow, ablate
from .progress import Callbacks, ScoreProgress, Stage
from .search import SearchResult, compare_search_modes, run_search
from .session import SavedHead, Session
from .settings import SearchSettings, SessionConfig, parse_channels

__all__ = [
    "AblationRow",
    "Callbacks",
    "SavedHead",
    "ScoreProgress",
    "SearchResult",
    "SearchSettings",
    "Session",
    "SessionConfig",
    "Stage",
    "ablate",
    "compare_search_modes",
    "parse_channels",
    "run_search",
]
