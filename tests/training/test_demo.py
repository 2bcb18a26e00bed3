"""The shipped demo model and its target domains: file integrity, labels, recorded accuracy, regeneration."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from redundancy.data import synthetic
from redundancy.errors import WeightsError
from redundancy.io import sha256_file
from redundancy.models import REGISTRY, build_backend
from redundancy.models._registry import DEMO_DIR, DEMO_MANIFEST
from redundancy.training import demo

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = json.loads((DEMO_DIR / DEMO_MANIFEST).read_text())


@pytest.fixture(scope="module")
def demo_backend():
    return build_backend("sam_tiny_demo", device="cpu")


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_shipped_checkpoint_matches_its_record(name):
    entry = MANIFEST[name]
    path = DEMO_DIR / entry["file"]
    assert sha256_file(path) == entry["sha256"] == REGISTRY[name].sha256
    assert path.stat().st_size == entry["bytes"] < 15_000_000
    assert entry["sha256"] in (ROOT / "assets" / "README.md").read_text()  # the README states the same hash


def test_demo_weights_are_labelled_as_trained_here_not_sam(demo_backend):
    w = demo_backend.weights
    assert w.kind == "demo" and "not SAM" in w.label and w.sha256 == MANIFEST["sam_tiny_demo"]["sha256"]
    assert "not SAM" in REGISTRY["sam_tiny_demo"].description
    assert "pretrained" not in REGISTRY["sam_tiny_demo"].description.lower()


SOURCE_FLOOR = {"source_miou": 80.0, "source_accuracy": 40.0}  # does its source task: accuracy twice chance (5 classes)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_demo_model_reaches_its_recorded_source_score(name):
    """Measured again here through its recipe's own score (the tool's prediction path, its fitted heads)."""
    entry = MANIFEST[name]
    recipe = demo.RECIPES[entry["base"]]
    measured = recipe.score(build_backend(name, device="cpu"))
    recorded = recipe.record(measured)
    assert recorded["source_test"] == entry["source_test"]  # the same test set, regenerated from its seed
    for key, value in measured.items():
        assert value == pytest.approx(_recorded(entry, key), abs=0.5 if key != "source_rmse" else 0.01), key
        if key in SOURCE_FLOOR:
            assert value > SOURCE_FLOOR[key], key


def _recorded(entry: dict, key: str) -> float:
    """A source score as models.json records it (SAM's `source_miou`; a ViT's `source_scores`)."""
    return entry[key] if key in entry else entry["source_scores"][key.removeprefix("source_")]


def test_the_dinov2_demo_model_is_labelled_as_trained_here_not_dinov2():
    backend = build_backend("dinov2_tiny_demo", device="cpu")
    assert backend.weights.kind == "demo" and "not DINOv2" in backend.weights.label
    assert "not DINOv2" in REGISTRY["dinov2_tiny_demo"].description
    assert "pretrained" not in REGISTRY["dinov2_tiny_demo"].description.lower()
    assert REGISTRY["dinov2_tiny_demo"].tasks == ("classify", "depth")


def test_a_modified_demo_file_is_refused(tmp_path):
    bad = tmp_path / "sam_tiny_demo.pt"
    blob = bytearray((DEMO_DIR / "sam_tiny_demo.pt").read_bytes())
    blob[-100] ^= 0xFF
    bad.write_bytes(bytes(blob))
    with (
        REGISTRY.replaced("sam_tiny_demo", replace(REGISTRY["sam_tiny_demo"], shipped=bad)),
        pytest.raises(
            WeightsError, match=f"expected {MANIFEST['sam_tiny_demo']['sha256'][:16]}.*git checkout -- assets/demo"
        ),
    ):
        build_backend("sam_tiny_demo", device="cpu")
    assert REGISTRY["sam_tiny_demo"].shipped != bad  # the registered entry is back


def test_target_domains_regenerate_identically(tmp_path):
    import scripts.make_domains as make_domains

    domain = "gray"
    synthetic.write_perseg(tmp_path, domain, make_domains.PER_KIND, make_domains.SEEDS[domain])
    shipped = ROOT / "assets" / "domains" / domain
    for kind in synthetic.KINDS:
        for k in range(make_domains.PER_KIND):
            for sub, name in (("Annotations", f"{k:02d}.png"), ("Images", f"{k:02d}.jpg")):
                a = np.asarray(Image.open(tmp_path / sub / kind / name), np.int16)
                b = np.asarray(Image.open(shipped / sub / kind / name), np.int16)
                assert np.abs(a - b).max() <= (0 if sub == "Annotations" else 2), (sub, kind, name)
    n = sum(1 for _ in (shipped / "Images").rglob("*.jpg"))
    assert n == make_domains.PER_KIND * len(synthetic.KINDS) >= 100  # a 50-image search set and a held-out set


@pytest.mark.slow
def test_training_lowers_the_loss_and_ships_fp16(tmp_path):
    """A few steps of the real training loop on a fresh model: the loss falls, the file is fp16 and loads."""
    cfg = demo.TrainConfig(steps=12, batch=4, eval_every=6, warmup=2)
    entry = demo.train_and_save(cfg, tmp_path, log=lambda _m: None)
    assert entry["curve"][-1]["loss"] < entry["curve"][0]["loss"]
    state = torch.load(tmp_path / "sam_tiny_demo.pt", weights_only=True)
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}
    assert json.loads((tmp_path / "models.json").read_text())["sam_tiny_demo"]["sha256"] == entry["sha256"]
