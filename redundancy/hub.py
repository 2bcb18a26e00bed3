"""Whose Hugging Face token a request may use.

On a Hugging Face Space the configured token (HF_TOKEN, a Space secret) is the owner's, while every request
comes from a visitor: a visitor's Hub request goes without it (anonymous) unless the owner opts in with
REDUNDANCY_ALLOW_PUSH=1 (e.g. on a private duplicate only they use). Elsewhere the person at the controls is
the token's owner (HF_TOKEN or `hf auth login`).
"""

from __future__ import annotations

import os

SPACE_ENV = "SPACE_ID"  # set by Hugging Face on every Space
OPT_IN_ENV = "REDUNDANCY_ALLOW_PUSH"  # a Space owner's opt-in: visitors act with the owner's token


def on_space() -> bool:
    """Whether this process serves a Hugging Face Space (its requests are visitors')."""
    return bool(os.environ.get(SPACE_ENV))


def owner_opted_in() -> bool:
    """Whether a Space's owner lets its visitors use the owner's token (REDUNDANCY_ALLOW_PUSH=1)."""
    return os.environ.get(OPT_IN_ENV) == "1"


def user_token() -> str | bool | None:
    """The token a Hub request here may carry, for huggingface_hub's `token=`: False (anonymous, never the
    configured one) for a Space visitor without the owner's opt-in; else the configured token, or None."""
    if on_space() and not owner_opted_in():
        return False
    from huggingface_hub import get_token

    return get_token()


def network_errors() -> tuple[type[Exception], ...]:
    """The errors of huggingface_hub's HTTP client when the Hub cannot be reached (httpx2 from huggingface_hub 2,
    httpx before), as an `except` clause takes them."""
    import importlib

    found = []
    for name in ("httpx2", "httpx"):
        try:
            found.append(importlib.import_module(name).HTTPError)
        except ImportError:
            continue
    return tuple(found)
