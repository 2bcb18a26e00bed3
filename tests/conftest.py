"""Shared fixtures: the bundled sample data, a seeded random-weight sam_tiny, a private feature cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "sample"


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Never touch the user's ~/.cache: every test session gets its own cache root."""
    os.environ["REDUNDANCY_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def sample() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def tiny():
    from redundancy.models import build_backend

    return build_backend("sam_tiny", random_init=True, seed=0, device="cpu")


def write_pair(folder: Path, stem: str, size=(40, 30), box=(5, 5, 20, 20), mask_value=255, ext=".png") -> None:
    """One image + mask in an images/ + masks/ dataset."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(stem))
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(
        folder / "images" / f"{stem}{ext}"
    )
    mask = np.zeros((size[1], size[0]), np.uint8)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = mask_value
    Image.fromarray(mask).save(folder / "masks" / f"{stem}.png")
