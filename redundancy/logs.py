"""Logging: one `logging.getLogger(__name__)` per module under the "redundancy" logger, configured once by a
front end (the CLI's -v / -q, the app at launch), and a log file a user can attach to a bug report.

Library code never prints: it logs, and a front end decides what reaches the terminal. Every record also goes
to `log_file()` in full (tracebacks included), so an unexpected error can be shown as one line with a reference
while its traceback stays on disk.
"""

from __future__ import annotations

import logging
import logging.handlers
import secrets
from pathlib import Path

from .io import cache_dir

ROOT = "redundancy"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}  # verbosity -> terminal level (2+: DEBUG)


def log_file() -> Path:
    """Where the full log goes: <cache>/logs/redundancy.log ($REDUNDANCY_CACHE or ~/.cache/redundancy)."""
    return cache_dir() / "logs" / "redundancy.log"


def configure(verbosity: int = 0, file: Path | None = None) -> Path | None:
    """Send the package's records to stderr at `verbosity` (-1 quiet, 0 warnings, 1 info, 2 debug) and all of
    them to `file` (default `log_file()`); returns the file, or None where it cannot be written (the terminal
    still gets its records). Calling it again replaces the handlers it installed."""
    logger = logging.getLogger(ROOT)
    for handler in [h for h in logger.handlers if getattr(h, "_redundancy", False)]:
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # a host application's root handlers would print our records a second time
    console = logging.StreamHandler()
    console.setLevel(LEVELS.get(verbosity, logging.DEBUG if verbosity > 1 else logging.ERROR))
    console.setFormatter(logging.Formatter(FORMAT) if verbosity > 0 else Brief())  # -v: tracebacks too
    console.addFilter(lambda record: verbosity > 0 or getattr(record, "console", True))
    handlers: list[logging.Handler] = [console]
    path = Path(file) if file is not None else log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.handlers.RotatingFileHandler(path, maxBytes=5_000_000, backupCount=2, encoding="utf-8")
    except OSError:
        path = None
    else:
        to_file.setLevel(logging.DEBUG)
        to_file.setFormatter(logging.Formatter(FORMAT))
        handlers.append(to_file)
    for handler in handlers:
        handler._redundancy = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    _capture_warnings(handlers, verbosity)
    return path


def _capture_warnings(handlers: list[logging.Handler], verbosity: int) -> None:
    """Library warnings (torch's, torchvision's) go to the log file, and to the terminal only with -v: a command's
    output is its own lines, not a dependency's deprecation notes."""
    logging.captureWarnings(True)
    warned = logging.getLogger("py.warnings")
    for handler in [h for h in warned.handlers if getattr(h, "_redundancy", False)]:
        warned.removeHandler(handler)
    warned.propagate = False
    for handler in handlers[1:] if verbosity <= 0 else handlers:
        warned.addHandler(handler)


class Brief(logging.Formatter):
    """One line a record: 'warning: ...', no traceback (that goes to the log file)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def incident(logger: logging.Logger, what: str, console: bool = True) -> str:
    """Log the exception being handled, traceback included, under a short reference a user can quote; returns
    the reference (it names no path, so it is safe to show a visitor). `console=False`: the caller tells the user
    itself, so the terminal gets it only with -v."""
    ref = secrets.token_hex(4)
    logger.exception("%s (ref %s)", what, ref, extra={"console": console})
    return ref
