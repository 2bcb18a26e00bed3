"""Typed errors. Each message names the problem and how to fix it; UIs show them verbatim."""

from __future__ import annotations


class RedundancyError(Exception):
    """Base class for every error this package raises on purpose (safe to show to users)."""


class ModelError(RedundancyError):
    """An unusable model configuration (an unknown name is `registry.UnknownName`)."""


class WeightsError(RedundancyError):
    """A checkpoint could not be downloaded, verified or loaded."""


class DataError(RedundancyError):
    """A dataset, image or mask is missing, unreadable or inconsistent."""


class ConfigError(RedundancyError):
    """A setting has a value no step can use (an unknown choice, a number out of range)."""


class ReplacementError(RedundancyError):
    """An invalid channel index, pair or replacement set."""


class RunError(RedundancyError):
    """A run directory is missing, incomplete or does not match the request."""


class DeviceError(RedundancyError):
    """The requested compute device is not available."""


class Cancelled(RedundancyError):
    """A long computation was cancelled by the caller between batches."""
