"""Replacement inside the encoder (`--layer k`): block k's output, the later blocks re-run per candidate."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import redundancy
from redundancy.cli import main
from redundancy.errors import ConfigError
from redundancy.models import build_backend
from redundancy.models.layers import at_block
from redundancy.replace import apply_map, channel_map

from ..conftest import ROOT, SAMPLE, search_argv

IMAGE = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def base():
    return build_backend("sam_tiny", random_init=True, seed=0, device="cpu", progress=False)


FAMILIES = {  # model: (block, its width, block-k feature shape, stage outputs cached before it)
    "sam_tiny": (0, 96, (1, 96, 8, 8), 0),  # the ViT's width, not the neck's 256
    "dinov2_tiny": (0, 64, (1, 64, 1, 65), 0),  # every token: class + 8 x 8 patches
    "sam2_tiny": (3, 384, (1, 384, 8, 8), 2),  # Hiera stage 3 (of 4): stages 1 and 2 ride along
}


def _backend(name):
    return build_backend(name, random_init=True, seed=0, device="cpu", progress=False)


def _rest(deep, encoded):
    out = deep.rest(encoded["features"], {k: v for k, v in encoded.items() if k != "features"})
    return out["features"] if isinstance(out, dict) else out


@pytest.mark.parametrize("name", list(FAMILIES))
def test_the_split_encoder_gives_the_encoder_output(name):
    block, width, shape, stages = FAMILIES[name]
    base = _backend(name)
    deep = at_block(base, block)
    assert deep.channels == width and deep.layer == block
    encoded = deep.encode([IMAGE])
    assert encoded["features"].shape == shape and len(encoded) == 1 + stages
    torch.testing.assert_close(_rest(deep, encoded), base.encode([IMAGE])["features"], atol=1e-5, rtol=0)
    assert deep.channel_maps(encoded["features"]).shape[:2] == shape[:2]


@pytest.mark.parametrize("block", [0, 1, 4])
def test_every_hiera_stage_resumes_exactly(block):
    """A block in each kind of place: the first stage, a stage's end (its output is a neck input), the last."""
    base = _backend("sam2_tiny")
    encoded = at_block(base, block).encode([IMAGE])
    torch.testing.assert_close(_rest(at_block(base, block), encoded), base.encode([IMAGE])["features"])


@pytest.mark.parametrize("name", ["dinov2_tiny", "sam2_tiny"])
def test_a_set_at_a_block_equals_the_patched_model_in_every_family(name):
    block = FAMILIES[name][0]
    base = _backend(name)
    deep = at_block(base, block)
    encoded = deep.encode([IMAGE])
    pairs = [(3, 7), (10, 2, 0.5)]
    with redundancy.patch(base.model, pairs, layer=block):
        patched = base.encode([IMAGE])["features"]
    edited = {**encoded, "features": apply_map(encoded["features"], channel_map(pairs, deep.channels))}
    torch.testing.assert_close(patched, _rest(deep, edited), atol=1e-5, rtol=0)
    assert not torch.allclose(patched, base.encode([IMAGE])["features"], atol=1e-4)


def test_a_set_at_a_block_equals_the_patched_model(base):
    """The engine's view (block-k features remapped, later blocks re-run) is what `patch` does to the model."""
    deep = at_block(base, 0)
    block = deep.encode([IMAGE])["features"]
    for pairs in ([(3, 7)], [(3, 7), (10, 2, 0.5)]):
        with redundancy.patch(base.model, pairs, layer=0):
            patched = base.encode([IMAGE])["features"]
        expected = deep.rest(apply_map(block, channel_map(pairs, 96)))
        assert torch.allclose(patched, expected, atol=1e-5)
        assert not torch.allclose(patched, base.encode([IMAGE])["features"], atol=1e-3)


@pytest.mark.slow
def test_search_at_a_block_records_it_and_applies_there(tmp_path, capsys):
    run = tmp_path / "run"
    argv = search_argv(images=4, heldout=2, top_n=2, channels="every:24")
    assert main([*argv, "--layer", "0", "--out", str(run)]) == 0
    repl = json.loads((run / "replacements.json").read_text())
    assert repl["layer"] == 0 and repl["channels"] == 96
    assert json.loads((run / "config.json").read_text())["config"]["layer"] == 0
    out = tmp_path / "applied"
    capsys.readouterr()
    assert main(["apply", "--run", str(run), "--data", str(SAMPLE), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 32 and summary["patched_score"] is not None
    backend = build_backend("sam_tiny", random_init=True, seed=0, device="cpu", progress=False)
    handle = redundancy.patch(backend.model, run / "replacements.json")  # the layer comes from the file
    assert handle.module is backend.model.image_encoder.blocks[0]
    handle.remove()


def test_a_layer_outside_the_encoder_or_model_is_refused(base):
    with pytest.raises(ConfigError, match="0..1"):
        at_block(base, 2)
    with pytest.raises(ConfigError, match="0..4"):
        at_block(_backend("sam2_tiny"), 5)

    class Other:
        name, model = "other", torch.nn.Linear(2, 2)

    with pytest.raises(ConfigError, match="not available for other's encoder"):
        at_block(Other(), 0)
    with pytest.raises(ConfigError, match="encoder block index"):
        redundancy.engine.SessionConfig(model="sam_tiny", data="x", layer=-1)


def test_dinov2_searches_inside_the_encoder_with_the_outputs_head(tmp_path, capsys):
    """A classify search at block 0: the head is the one fitted on the encoder output (the same file as without
    a layer), and ablate / apply rebuild the split model and score as the search did."""
    data = str(ROOT / "assets" / "classify_sample")
    argv = ["search", "--model", "dinov2_tiny", "--random-init", "--data", data, "--search-images", "12",
            "--heldout-images", "6", "--sources", "every:8", "--targets", "every:8", "--top-n", "2"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    assert main([*argv, "--layer", "0", "--out", str(tmp_path / "deep")]) == 0
    heads = [json.loads((tmp_path / r / "config.json").read_text())["head"]["sha256"] for r in ("out", "deep")]
    assert heads[0] == heads[1]
    repl = json.loads((tmp_path / "deep" / "replacements.json").read_text())
    assert repl["layer"] == 0 and repl["channels"] == 64
    gains = np.load(tmp_path / "deep" / "pair_scores.npy")
    i, j = np.argwhere(~np.isnan(gains))[1]
    capsys.readouterr()
    assert main(["ablate", "--run", str(tmp_path / "deep"), "--replace", f"{i}:{j}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["edits"][0]["delta_score"] == pytest.approx(gains[i, j], abs=1e-4)
    assert main(["apply", "--run", str(tmp_path / "deep"), "--data", data, "--out", str(tmp_path / "ap")]) == 0


@pytest.mark.slow
def test_sam2_searches_inside_its_trunk(tmp_path):
    run = tmp_path / "run"
    argv = search_argv(model="sam2_tiny", images=3, heldout=1, top_n=2, channels="every:96")
    assert main([*argv, "--layer", "3", "--out", str(run)]) == 0
    repl = json.loads((run / "replacements.json").read_text())
    assert repl["layer"] == 3 and repl["channels"] == 384
    backend = _backend("sam2_tiny")
    handle = redundancy.patch(backend.model, run / "replacements.json")
    assert handle.module is backend.model.image_encoder.trunk.blocks[3]
    handle.remove()
