"""Search modes: one module per mode (exact: the paper; taylor, halving: screening), each registering itself.

A mode is a class with one verb (`score`), its own options and its cost (`base.SearchMode`); the settings,
the CLI's flags, the cost model and the comparison of modes (`compare`) read the registry.
"""

# isort: off
from . import exact, taylor, halving  # noqa: F401  (each mode registers itself, in this order)

# isort: on
from .base import MODES, Option, SearchMode, all_options, mode_options, option_spec, reference_mode
from .compare import ModeReport, compare_modes

DEFAULT_MODE = exact.ExactMode.name  # the paper's mode: what the settings, the CLI and the app start with

__all__ = [
    "DEFAULT_MODE",
    "MODES",
    "ModeReport",
    "Option",
    "SearchMode",
    "all_options",
    "compare_modes",
    "mode_options",
    "option_spec",
    "reference_mode",
]
