"""A seed always means the same weights, and caches are keyed by what the weights are, not by their label."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor

import torch

from redundancy.engine.features import FeatureCache
from redundancy.io import write_json
from redundancy.models import build_backend


def _state(seed: int) -> str:
    return build_backend("sam_tiny", random_init=True, seed=seed, device="cpu", progress=False).weights.state_sha256


def test_concurrent_seeded_builds_equal_sequential_ones():
    sequential = {seed: _state(seed) for seed in (11, 12)}
    seeds = [11, 12] * 4
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(_state, seeds))
    assert parallel == [sequential[s] for s in seeds]
    assert sequential[11] != sequential[12]


def test_building_leaves_the_callers_random_stream_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    build_backend("sam_tiny", random_init=True, seed=0, device="cpu", progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_feature_cache_key_follows_the_weights_not_the_label(monkeypatch, tmp_path):
    good = build_backend("sam_tiny", random_init=True, seed=0, device="cpu", progress=False)
    monkeypatch.setattr(torch, "manual_seed", lambda _s: None)  # a build that ignores its seed
    torch.random.default_generator.manual_seed(99)
    bad = build_backend("sam_tiny", random_init=True, seed=0, device="cpu", progress=False)
    assert good.weights.label == bad.weights.label == "random weights (seed 0)"
    assert good.weights.state_sha256 != bad.weights.state_sha256
    cache = FeatureCache(tmp_path)
    assert cache.path(good, "img") != cache.path(bad, "img")
    assert good.weights.to_dict()["state_sha256"] == good.weights.state_sha256  # what config.json records


def test_run_files_follow_the_umask(tmp_path):
    import redundancy.io as io_mod

    path = write_json(tmp_path / "config.json", {"a": 1})
    # mkstemp alone gives 0600: other users of a shared run folder (torchrun ranks under another uid) could not read
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~io_mod._UMASK
