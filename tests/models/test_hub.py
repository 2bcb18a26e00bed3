"""Hugging Face formats: transformers SamModel checkpoints (parity with SamModel's own forward), peft LoRA,
safetensors, hf:// references (resolved through huggingface_hub, recorded), and patching a SamModel."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import SamConfig, SamMaskDecoderConfig, SamModel, SamPromptEncoderConfig, SamVisionConfig  # noqa: E402

from redundancy import patch  # noqa: E402
from redundancy.data.prompts import Prompt  # noqa: E402
from redundancy.errors import WeightsError  # noqa: E402
from redundancy.models import _weights as W  # noqa: E402
from redundancy.models import build_backend  # noqa: E402

TINY = dict(hidden_size=96, num_hidden_layers=2, num_attention_heads=2, image_size=128, window_size=4)


@pytest.fixture(scope="module")
def hf_sam(tmp_path_factory):
    """A small random SamModel (sam_tiny's size), every weight perturbed, saved with save_pretrained."""
    torch.manual_seed(0)
    vision = SamVisionConfig(**TINY, global_attn_indexes=[1], mlp_dim=384)
    prompt = SamPromptEncoderConfig(image_size=128, image_embedding_size=8)
    # transformers' decoder attention-block norms default to eps 1e-6 where segment_anything's use 1e-5 (README,
    # Weights from the Hub); matched here so that the comparison isolates the key mapping
    decoder = SamMaskDecoderConfig(layer_norm_eps=1e-5)
    config = SamConfig(
        vision_config=vision.to_dict(), prompt_encoder_config=prompt.to_dict(), mask_decoder_config=decoder.to_dict()
    )
    model = SamModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    out = tmp_path_factory.mktemp("hf_sam")
    model.save_pretrained(out, safe_serialization=True)
    return model, out / "model.safetensors"


def _snapshot(root, repo: str, commit: str, weights):
    """A Hub-cache-shaped folder (models--OWNER--REPO/snapshots/COMMIT/model.safetensors) holding `weights`."""
    snapshot = root / f"models--{repo.replace('/', '--')}" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").write_bytes(weights.read_bytes())
    return snapshot


def _hf_logits(model, emb, prompt: Prompt | None):
    kw = {}
    if prompt is not None and prompt.point:
        kw = {
            "input_points": torch.tensor([[[prompt.point]]], dtype=torch.float),
            "input_labels": torch.ones(1, 1, 1).long(),
        }
    elif prompt is not None and prompt.box:
        kw = {"input_boxes": torch.tensor([[prompt.box]], dtype=torch.float)}
    with torch.no_grad():
        return model(image_embeddings=emb, multimask_output=False, **kw).pred_masks[:, 0, 0]


def test_transformers_sam_equals_sammodels_own_forward(hf_sam):
    """The tool's encode + decode of a converted SamModel checkpoint equals SamModel's forward, every prompt kind."""
    model, path = hf_sam
    backend = build_backend("sam_vit_b", checkpoint=path, device="cpu")  # the size comes from the tensors
    assert backend.name == "sam_tiny" and backend.weights.label.startswith("checkpoint sha256:")
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        feats = backend.forward_features(x)["features"]
        emb = model.get_image_embeddings(x)
    torch.testing.assert_close(feats, emb, atol=1e-4, rtol=1e-4)
    meta = backend.meta((128, 128))  # original = input size: prompt coordinates need no rescaling
    for prompt in (Prompt(), Prompt(point=(40.0, 70.0)), Prompt(box=(10.0, 20.0, 90.0, 100.0))):
        ctx = backend.embed_prompts([prompt], [meta])
        for reference in (True, False):
            with torch.no_grad():
                ours = backend.decode(emb, ctx, reference=reference)
            hf = _hf_logits(model, emb, prompt if prompt.point or prompt.box else None)
            torch.testing.assert_close(ours, hf, atol=1e-5, rtol=1e-4)


def test_patch_installs_a_found_set_on_the_transformers_model(hf_sam):
    """`patch(SamModel, pairs)`: the model's embeddings and masks are those of the replaced features."""
    model, path = hf_sam
    backend = build_backend("sam_tiny", checkpoint=path, device="cpu")
    x = torch.randn(1, 3, 128, 128)
    pairs = [(3, 7), (100, 0)]
    with torch.no_grad():
        emb = model.get_image_embeddings(x)
        expected = emb.clone()
        expected[:, 3], expected[:, 100] = emb[:, 7], emb[:, 0]
        handle = patch(model, pairs)
        try:
            patched = model.get_image_embeddings(x)
            masks = model(pixel_values=x, multimask_output=False).pred_masks[:, 0, 0]
        finally:
            handle.remove()
        ctx = backend.embed_prompts([Prompt()], [backend.meta((128, 128))])
        ours = backend.decode(expected, ctx)
    torch.testing.assert_close(patched, expected)
    torch.testing.assert_close(masks, ours, atol=2e-4, rtol=1e-4)
    with torch.no_grad():
        torch.testing.assert_close(model.get_image_embeddings(x), emb)  # removed: the model is as before


def test_peft_lora_adapter_on_a_sammodel_merges(hf_sam, tmp_path):
    """A peft-format adapter (base_model.model.<SamModel key>.lora_A/B.weight + adapter_config.json's
    lora_alpha) merges into the converted module as W += alpha / r * B @ A."""
    from safetensors.torch import save_file

    model, path = hf_sam
    r, alpha = 4, 8.0
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(r, 96, generator=g), torch.randn(288, r, generator=g)
    key = "base_model.model.vision_encoder.layers.0.attn.qkv"
    save_file({f"{key}.lora_A.weight": a, f"{key}.lora_B.weight": b}, tmp_path / "adapter_model.safetensors")
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": r, "lora_alpha": alpha, "peft_type": "LORA"}))
    base = build_backend("sam_tiny", checkpoint=path, device="cpu")
    tuned = build_backend("sam_tiny", checkpoint=path, device="cpu", finetuned=tmp_path / "adapter_model.safetensors")
    w0 = base.model.image_encoder.blocks[0].attn.qkv.weight
    w1 = tuned.model.image_encoder.blocks[0].attn.qkv.weight
    torch.testing.assert_close(w1, w0 + alpha / r * b @ a)
    assert tuned.weights.finetuned["kind"] == "lora" and "lora" in tuned.weights.label


def test_hub_reference_is_fetched_through_huggingface_hub_and_recorded(hf_sam, tmp_path, monkeypatch):
    """hf://OWNER/REPO[/FILE][@REV] goes to hf_hub_download; repo, file, revision, commit and sha256 are recorded."""
    import huggingface_hub

    _, path = hf_sam
    snapshot = _snapshot(tmp_path, "me/sam-tiny", "0123456789abcdef", path)
    calls = []

    def fake_download(repo, filename, revision=None, **kw):
        calls.append((repo, filename, revision))
        if filename != "model.safetensors":
            raise huggingface_hub.errors.EntryNotFoundError("no such file")
        return str(snapshot / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    backend = build_backend("sam_tiny", checkpoint="hf://me/sam-tiny@main", device="cpu")
    assert calls == [("me/sam-tiny", "model.safetensors", "main")]  # no file named: the repo's model.safetensors
    hub = backend.weights.hub
    assert hub == {"repo": "me/sam-tiny", "file": "model.safetensors", "revision": "main", "commit": "0123456789abcdef"}
    assert backend.weights.label.startswith("hf://me/sam-tiny/model.safetensors@0123456789ab sha256:")
    assert backend.weights.sha256 == W.sha256_of(path)

    def missing(repo, filename, revision=None, **kw):
        raise huggingface_hub.errors.EntryNotFoundError(f"{filename} not in {repo}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", missing)
    with pytest.raises(WeightsError, match="has none of model.safetensors, pytorch_model.bin"):
        W.hub_fetch("hf://me/other")


def test_hub_reference_offline_gets_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    import importlib

    import huggingface_hub.constants

    importlib.reload(huggingface_hub.constants)
    try:
        with pytest.raises(WeightsError, match="not in the local Hub cache"):
            W.hub_fetch("hf://facebook/sam-vit-base/model.safetensors")
    finally:
        monkeypatch.delenv("HF_HUB_OFFLINE")
        monkeypatch.delenv("HF_HUB_CACHE")
        importlib.reload(huggingface_hub.constants)


@pytest.mark.parametrize(
    "text, repo, file, rev",
    [
        ("hf://a/b", "a/b", None, None),
        ("hf://a/b/sub/c.pt", "a/b", "sub/c.pt", None),
        ("hf://a/b/c.safetensors@v1.0", "a/b", "c.safetensors", "v1.0"),
    ],
)
def test_hub_reference_parsing(text, repo, file, rev):
    ref = W.HubRef.parse(text)
    assert (ref.repo, ref.file, ref.revision) == (repo, file, rev)


def test_hub_reference_without_a_repository_is_refused():
    with pytest.raises(WeightsError, match="names no repository"):
        W.HubRef.parse("hf://onlyowner")


def test_safetensors_checkpoint_loads_like_a_pt_file(tmp_path, tiny):
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in tiny.model.state_dict().items()}
    save_file(state, tmp_path / "w.safetensors")
    torch.save(state, tmp_path / "w.pt")
    a = build_backend("sam_tiny", checkpoint=tmp_path / "w.safetensors", device="cpu")
    b = build_backend("sam_tiny", checkpoint=tmp_path / "w.pt", device="cpu")
    assert a.weights.state_sha256 == b.weights.state_sha256
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="not a readable .safetensors"):
        build_backend("sam_tiny", checkpoint=tmp_path / "bad.safetensors", device="cpu")
    assert np.isfinite(a.model.image_encoder.pos_embed.detach().numpy()).all()


def test_registry_hub_copy_is_used_with_checkpoint_hub_and_on_a_space(hf_sam, tmp_path, monkeypatch):
    """`--checkpoint hub` (and, on a Space, no checkpoint at all) reads the registry's Hub copy; whether it is
    byte for byte Meta's official file is checked against the official sha256, never assumed."""
    import huggingface_hub

    _, path = hf_sam
    snapshot = _snapshot(tmp_path, "facebook/sam-vit-base", "feedbeef", path)
    seen = []

    def fake_download(repo, filename, revision=None, **kw):
        seen.append((repo, filename))
        return str(snapshot / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    backend = build_backend("sam_vit_b", checkpoint="hub", device="cpu")
    assert seen == [("facebook/sam-vit-base", "model.safetensors")]
    assert backend.weights.hub["same_as_official_file"] is False  # a test file, not Meta's
    assert "official" not in backend.weights.label
    monkeypatch.setenv("SPACE_ID", "someone/redundancy")
    assert build_backend("sam_vit_b", device="cpu").weights.hub["repo"] == "facebook/sam-vit-base"
    with pytest.raises(WeightsError, match="no Hub copy"):
        build_backend("sam_tiny", checkpoint="hub", device="cpu")
