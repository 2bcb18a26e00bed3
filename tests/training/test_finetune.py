"""Fine-tuning a demo model (the paper's plug-in baselines): what each mode trains, and that its file loads through
the plug-in loader (`--finetuned`) as the model it trained."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from redundancy.data import synthetic
from redundancy.errors import ConfigError
from redundancy.models import build_backend
from redundancy.models.base import FEATURES
from redundancy.training.finetune import (
    FinetuneConfig,
    FinetuneResult,
    finetune,
    save_finetune,
    square_batch,
    trainable,
)


@pytest.fixture(scope="module")
def data():
    return synthetic.batch("gray", 4, np.random.default_rng(0))


def _features(backend, images) -> torch.Tensor:
    return backend.encode(list(images))[FEATURES]


@pytest.mark.slow
def test_decoder_only_trains_the_mask_decoder_and_loads_as_a_partial_fine_tune(tmp_path, data):
    backend = build_backend("sam_tiny_demo", device="cpu")
    before = {k: v.clone() for k, v in backend.model.state_dict().items()}
    result = finetune(backend, *data, FinetuneConfig(mode="decoder", epochs=2, batch=2))
    assert set(result.state) == {k for k in before if k.startswith("mask_decoder.")}
    assert result.trainable == sum(p.numel() for p in backend.model.mask_decoder.parameters())
    assert len(result.curve) == 2 and all(np.isfinite(p["loss"]) for p in result.curve)
    after = backend.model.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before if not k.startswith("mask_decoder."))
    assert any(not torch.equal(after[k], before[k]) for k in result.state)
    loaded = build_backend("sam_tiny_demo", device="cpu", finetuned=save_finetune(tmp_path / "dec.pt", result))
    assert loaded.weights.finetuned["kind"] == "partial" and "partial fine-tune" in loaded.weights.label
    assert all(torch.equal(loaded.model.state_dict()[k], v) for k, v in result.state.items())


@pytest.mark.slow
def test_lora_adapters_load_merged_as_the_model_they_trained(tmp_path, data):
    images, _ = data
    backend = build_backend("sam_tiny_demo", device="cpu")
    base = _features(backend, images)
    cfg = FinetuneConfig(mode="lora", rank=2, alpha=4.0)
    with trainable(backend, cfg) as (params, state):
        with torch.no_grad():
            for p in params:
                p.add_(0.05 * torch.randn_like(p))  # adapters away from their zero start, as training leaves them
        trained = _features(backend, images)
        file = state()
    assert torch.equal(_features(backend, images), base)  # the adapters are gone from the model again
    lora = [k for k in file if k.endswith(".lora_A")]
    assert lora and all(k.startswith("image_encoder.") for k in file)
    assert sum(file[k].numel() + file[k.replace("_A", "_B")].numel() for k in lora) == sum(p.numel() for p in params)
    path = save_finetune(tmp_path / "lora.pt", FinetuneResult(file, 0, [], 0.0, cfg))
    merged = build_backend("sam_tiny_demo", device="cpu", finetuned=path)
    assert merged.weights.finetuned["kind"] == "lora" and merged.weights.finetuned["lora_merged"] == len(lora)
    torch.testing.assert_close(_features(merged, images), trained, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(trained, base, atol=1e-4)


@pytest.mark.slow
def test_a_fine_tune_is_seeded(data):
    runs = []
    for _ in range(2):
        backend = build_backend("sam_tiny_demo", device="cpu")
        runs.append(finetune(backend, *data, FinetuneConfig(mode="lora", epochs=1, batch=2, seed=3)))
    assert all(torch.equal(runs[0].state[k], runs[1].state[k]) for k in runs[0].state)


def test_bad_settings_and_data_are_one_line_errors():
    with pytest.raises(ConfigError, match="not one of decoder, lora, encoder"):
        FinetuneConfig(mode="adapter")
    with pytest.raises(ConfigError, match="at least 1"):
        FinetuneConfig(epochs=0)
    with pytest.raises(ConfigError, match="square images"):
        square_batch([np.zeros((8, 10, 3), np.uint8)], [np.zeros((8, 10), bool)])
    backend = build_backend("dinov2_tiny", random_init=True, device="cpu")
    with pytest.raises(ConfigError, match="no mask decoder"), trainable(backend, FinetuneConfig(mode="decoder")):
        pass
