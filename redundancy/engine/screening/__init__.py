"""Search modes: one module per mode (exact: the paper; taylor, halving: screening), each registering itself.

A mode is a class with one verb (`score`), its own options and its cost (`base.SearchMode`); the settings,
the CLI's flags, the cost model and the comparison of modes (`compare`) read the registry.
"""

# isort: off
from . import exact, taylor, halving  # noqa: F401  (each mode registers itself, in this order)

# isort: on
from .base import MODES, Option, SearchMode, all_options, option_spec
from .compare import ModeReport, compare_modes

__all__ = ["MODES", "ModeReport", "Option", "SearchMode", "all_options", "compare_modes", "option_spec"]
