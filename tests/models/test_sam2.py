"""SAM2 backend parity and end-to-end search; fine-tuned checkpoints (partial, LoRA) as plug-in."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sam2.sam2_image_predictor import SAM2ImagePredictor

from redundancy.cli import main
from redundancy.data import load_image, load_mask
from redundancy.data.prompts import prompt_from_mask
from redundancy.errors import WeightsError
from redundancy.models import build_backend
from redundancy.replace import apply_map, pairs_map

from ..conftest import SAMPLE, predictor_kwargs, search_argv


@pytest.fixture(scope="module")
def tiny2():
    return build_backend("sam2_tiny", random_init=True, seed=0, device="cpu")


@pytest.fixture(scope="module")
def predictor(tiny2):
    p = SAM2ImagePredictor(tiny2.model)
    p._bb_feat_sizes = tiny2.feat_sizes  # the predictor hard-codes the 1024 px sizes
    return p


@pytest.mark.parametrize("mode", ["none", "box", "point"])
def test_sam2_backend_matches_sam2_image_predictor(tiny2, predictor, mode):
    image = load_image(SAMPLE / "Images" / "blob" / "02.jpg")
    prompt = prompt_from_mask(load_mask(SAMPLE / "Annotations" / "blob" / "02.png"), mode)
    ours = tiny2.predict([image], [prompt])[0]
    predictor.set_image(image)
    kwargs = predictor_kwargs(prompt)
    ref, _, _ = predictor.predict(multimask_output=False, return_logits=True, **kwargs)
    assert ours.shape == ref.shape[1:] == image.shape[:2]
    np.testing.assert_allclose(ours.numpy(), ref[0], atol=1e-5, rtol=1e-5)
    best = tiny2.predict([image], [prompt], "best")[0]
    masks, iou, _ = predictor.predict(multimask_output=True, return_logits=True, **kwargs)
    np.testing.assert_allclose(best.numpy(), masks[int(np.argmax(iou))], atol=1e-5, rtol=1e-5)


def test_sam2_patch_acts_on_image_embed_after_no_mem_embed(tiny2, predictor):
    image = load_image(SAMPLE / "Images" / "disc" / "03.jpg")
    predictor.set_image(image)
    plain = predictor._features["image_embed"].clone()
    with tiny2.patch([(5, 7), (9, 1)]):
        predictor.set_image(image)
        patched = predictor._features["image_embed"].clone()
    # (X + e)[f] - e + e equals X'[f] up to one float rounding of the added no_mem_embed
    torch.testing.assert_close(patched, apply_map(plain, pairs_map([(5, 7), (9, 1)], 256)), atol=1e-6, rtol=0)
    assert not torch.allclose(patched, plain)
    assert torch.equal(tiny2.encode([image])["features"], plain)  # backend features == what the decoder reads


@pytest.mark.slow
def test_sam2_search_end_to_end_and_exact_ablation(tmp_path, capsys):
    out = tmp_path / "run"
    args = search_argv("--out", str(out), "--json", model="sam2_tiny")
    assert main(args) == 0
    repl = json.loads(capsys.readouterr().out)
    assert repl["model"] == "sam2_tiny" and repl["weights_label"] == "random weights (seed 0)"
    scores = np.load(out / "pair_scores.npy")
    i, j = (int(v) for v in np.unravel_index(np.nanargmax(scores), scores.shape))
    assert main(["ablate", "--run", str(out), "--replace", f"{i}:{j}", "--json"]) == 0
    edit = json.loads(capsys.readouterr().out)["edits"][0]
    assert np.float32(edit["delta_score"]) == scores[i, j]
    assert main(["apply", "--run", str(out), "--data", str(SAMPLE), "--out", str(tmp_path / "a"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 32


def _perturbed_decoder(backend, prefix: str = "module.") -> dict:
    gen = torch.Generator().manual_seed(1)
    return {
        prefix + k: v + 0.05 * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
        for k, v in backend.model.state_dict().items()
        if k.startswith("mask_decoder.")
    }


def test_decoder_only_finetune_over_the_base(tiny, tmp_path):
    path = tmp_path / "decoder_ft.pth"
    sd = _perturbed_decoder(tiny)
    torch.save(sd, path)
    ft = build_backend("sam_tiny", random_init=True, seed=0, device="cpu", finetuned=path)
    report = ft.weights.finetuned
    assert report["kind"] == "partial" and report["modules"] == ["mask_decoder"]
    assert "partial fine-tune sha256:" in ft.weights.label and ft.weights.key != tiny.weights.key
    own, base = ft.model.state_dict(), tiny.model.state_dict()
    assert all(torch.equal(own[k.removeprefix("module.")], v) for k, v in sd.items())
    assert all(torch.equal(own[k], base[k]) for k in base if k.startswith("image_encoder."))


def test_lora_is_merged(tiny, tmp_path):
    w = tiny.model.state_dict()["image_encoder.blocks.0.attn.qkv.weight"]
    a, b = torch.randn(4, w.shape[1]), torch.randn(w.shape[0], 4)
    path = tmp_path / "lora.pth"
    torch.save(
        {
            "sam.image_encoder.blocks.0.attn.qkv.lora_A": a,
            "sam.image_encoder.blocks.0.attn.qkv.lora_B": b,
            "sam.image_encoder.blocks.0.attn.qkv.lora_alpha": torch.tensor(8.0),
        },
        path,
    )
    ft = build_backend("sam_tiny", random_init=True, seed=0, device="cpu", finetuned=path)
    assert ft.weights.finetuned["kind"] == "lora" and ft.weights.finetuned["lora_merged"] == 1
    merged = ft.model.state_dict()["image_encoder.blocks.0.attn.qkv.weight"]
    torch.testing.assert_close(merged, w + 2.0 * b @ a)


def test_mismatched_finetune_is_reported_not_half_loaded(tiny, tmp_path):
    bad = tmp_path / "other.pth"
    torch.save({"sam_mask_decoder.iou_token.weight": torch.zeros(1, 256)}, bad)  # a SAM2 key on SAM
    with pytest.raises(WeightsError, match="match nothing in sam_tiny"):
        build_backend("sam_tiny", random_init=True, seed=0, device="cpu", finetuned=bad)
    wrong = tmp_path / "shape.pth"
    torch.save({"mask_decoder.iou_token.weight": torch.zeros(2, 256)}, wrong)
    with pytest.raises(WeightsError, match="other shapes"):
        build_backend("sam_tiny", random_init=True, seed=0, device="cpu", finetuned=wrong)


def test_search_on_a_finetuned_model_records_its_hash(tiny, tmp_path, capsys):
    path = tmp_path / "decoder_ft.pth"
    torch.save(_perturbed_decoder(tiny), path)
    out = tmp_path / "run"
    assert (
        main(
            search_argv("--finetuned", str(path), "--out", str(out), "--json", heldout=0, top_n=2, channels="every:64")
        )
        == 0
    )
    repl = json.loads(capsys.readouterr().out)
    config = json.loads((out / "config.json").read_text())
    digest = config["weights"]["finetuned"]["sha256"]
    assert len(digest) == 64 and digest[:12] in repl["weights_label"]
    assert config["config"]["finetuned"] == str(path)
