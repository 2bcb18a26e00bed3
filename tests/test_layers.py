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

from .conftest import SAMPLE, search_argv

IMAGE = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def base():
    return build_backend("sam_tiny", random_init=True, seed=0, device="cpu", progress=False)


def test_the_split_encoder_gives_the_encoder_output(base):
    deep = at_block(base, 0)
    assert deep.channels == 96 and deep.layer == 0  # the ViT's width, not the neck's 256
    feats = deep.encode([IMAGE])["features"]
    assert feats.shape == (1, 96, 8, 8)
    assert torch.allclose(deep.rest(feats), base.encode([IMAGE])["features"], atol=1e-5)


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
    assert summary["images"] == 32 and summary["patched_miou"] is not None
    backend = build_backend("sam_tiny", random_init=True, seed=0, device="cpu", progress=False)
    handle = redundancy.patch(backend.model, run / "replacements.json")  # the layer comes from the file
    assert handle.module is backend.model.image_encoder.blocks[0]
    handle.remove()


def test_a_layer_outside_the_encoder_or_model_is_refused(base):
    with pytest.raises(ConfigError, match="0..1"):
        at_block(base, 2)
    dino = build_backend("dinov2_tiny", random_init=True, seed=0, device="cpu", progress=False)
    with pytest.raises(ConfigError, match="SAM's ViT encoders"):
        at_block(dino, 0)
    with pytest.raises(ConfigError, match="encoder block index"):
        redundancy.pipeline.SessionConfig(model="sam_tiny", data="x", layer=-1)


def test_the_app_loads_a_session_at_a_block():
    import app

    ws, badge, *_ = app.load(
        None, "sam_tiny", app.WEIGHTS[0], None, None, 0, app.BUNDLED, None, 4, "none", layer=" 0 ",
        progress=lambda *a, **k: None,
    )  # fmt: skip
    assert "encoder block 0 (96 channels)" in badge and ws.features(0).shape == (96, 8, 8)
    job = ws.start_search(2, None, "every:24", "every:24", None)
    job.thread.join()
    assert job.state.error is None and ws.result.header["layer"] == 0
    assert app.parse_layer("") is None and app.parse_layer(None) is None
    with pytest.raises(Exception, match="not a block number"):
        app.parse_layer("-1")
