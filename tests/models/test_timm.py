"""The contract of models named on demand, over a dozen timm architectures from different families (each at its
smallest size) and four transformers models built from small configs, all with seeded random weights: encode, a
2-pair search, apply, `patch` parity (the patched model's own forward gives the engine's score for the found set)
and `--layer` (a stage index and a module name).

A few of them run in the quick tier; the rest are `slow` (the full suite runs them all).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import redundancy
from redundancy.engine import SearchSettings, Session, SessionConfig, run_search
from redundancy.engine.features import FeatureCache
from redundancy.errors import ConfigError
from redundancy.models import FEATURES, build_backend, get_spec
from redundancy.models.layers import at_block
from redundancy.registry import UnknownName
from redundancy.replace import apply_map, identity_map, pairs_map
from redundancy.runs.apply import apply_run, run_head
from redundancy.runs.writers import read_run, write_run

QUICK = ["resnet18", "vit_tiny_patch16_224", "swin_tiny_patch4_window7_224"]
SLOW = [
    "deit_tiny_patch16_224",
    "eva02_tiny_patch14_224",
    "convnext_atto",
    "efficientnet_b0",
    "mobilenetv3_small_100",
    "regnety_002",
    "fastvit_t8",
    "levit_128s",
    "mobilevitv2_050",
    "deit_tiny_distilled_patch16_224",
]
# transformers models from small configs (saved to a folder: hf:FOLDER), one per family of layouts
HF = {
    "dinov2": ("Dinov2Config", dict(image_size=56, patch_size=14)),  # class token first
    "convnext": ("ConvNextConfig", dict(hidden_sizes=[16, 32, 48, 64], depths=[1, 1, 1, 1], image_size=64)),  # a map
    "siglip": ("SiglipVisionConfig", dict(image_size=64, patch_size=16)),  # tokens without a class token
    "clip": ("CLIPVisionConfig", dict(image_size=64, patch_size=16)),
}
TOKENS = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)
ARCHS = [
    *(f"timm:{a}" for a in QUICK),
    *(pytest.param(f"timm:{a}", marks=pytest.mark.slow) for a in SLOW),
    "hf:dinov2",
    "hf:convnext",
    *(pytest.param(f"hf:{k}", marks=pytest.mark.slow) for k in ("siglip", "clip")),
]
# a stage index and a module name for each (the index reads timm's feature_info; the name any submodule)
LAYERS = {
    "timm:vit_tiny_patch16_224": "blocks.4",
    "timm:deit_tiny_patch16_224": "blocks.2",
    "timm:resnet18": "layer3",
    "hf:dinov2": "encoder.layer.0",
    "hf:convnext": "encoder.stages.2",
}


@pytest.fixture(scope="module")
def hf_folders(tmp_path_factory):
    """Each transformers config of `HF`, saved where hf:FOLDER reads it."""
    import transformers

    folders = {}
    for key, (cls, args) in HF.items():
        config = getattr(transformers, cls)(**({} if "hidden_sizes" in args else TOKENS), **args)
        folders[key] = tmp_path_factory.mktemp(key)
        config.save_pretrained(folders[key])
    return folders


def _name(name: str, folders: dict) -> str:
    """A model name as the CLI takes it: hf:KEY of the configs above becomes hf:FOLDER."""
    return f"hf:{folders[name[3:]]}" if name.startswith("hf:") else name


def test_a_dozen_architectures_from_different_families():
    families = {a.split("_")[0].rstrip("0123456789") for a in [*QUICK, *SLOW]}
    assert len(QUICK) + len(SLOW) >= 12 and len(families) >= 10 and len(HF) >= 3


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory):
    """Three classes of 6 small pictures each, told apart by their colour."""
    root = tmp_path_factory.mktemp("classes")
    rng = np.random.default_rng(0)
    for k, name in enumerate(("red", "green", "blue")):
        (root / name).mkdir()
        for i in range(6):
            image = rng.integers(0, 90, (40, 48, 3), dtype=np.uint8)
            image[..., k] += 120
            Image.fromarray(image).save(root / name / f"{i}.png")
    return root


def _config(name: str, data, layer=None) -> SessionConfig:
    return SessionConfig(
        model=name, data=str(data), random_init=True, device="cpu", search_images=6, head_images=6,
        layer=layer,
    )  # fmt: skip


def _search(session: Session):
    # two pairs: channel 0 takes channel 1 or 2
    return run_search(session, SearchSettings(top_n=2, sources="0", targets="1,2"))


@pytest.mark.parametrize("arch", ARCHS)
def test_a_model_by_name_encodes_searches_applies_and_patches(arch, class_folder, hf_folders, tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    session = Session.open(_config(_name(arch, hf_folders), class_folder), cache=cache, progress=False)
    backend = session.backend
    assert backend.family is not None and backend.family.owns(backend.model)
    feats = backend.encode([np.zeros((30, 50, 3), np.uint8)])[FEATURES]
    assert feats.shape[:3] == (1, backend.channels, 1) and feats.shape[3] == 1 + np.prod(backend.grid)
    assert backend.channel_maps(feats).shape == (1, backend.channels, *backend.grid) and torch.isfinite(feats).all()

    result = _search(session)
    assert result.pairs_in_scope == 2 and result.scores.score_gain.shape == (backend.channels, backend.channels)
    run = write_run(tmp_path / "run", session, result)
    config, _ = read_run(run)
    assert config["family"] == arch.split(":")[0] and config["head"]["kind"].startswith("linear classifier")
    applied = apply_run(run, class_folder, tmp_path / "applied", device="cpu", cache=cache)
    assert applied.images == 18

    combo = result.combos.best or result.combos.rows[0]  # the found set (or a tried one, where none helped)
    with redundancy.patch(backend.model, combo.pairs):  # the hook, found from the model itself
        patched = Session(backend, session.dataset, session.cfg, FeatureCache(tmp_path / "patched"),
                          head=run_head(run, config))  # fmt: skip
        ev = patched.evaluator("search")
        own = ev.summarize(ev.stats_plain(identity_map(backend.channels)[None]))[0][0]
    assert own == combo.score  # the same features bit for bit, so the same score


@pytest.mark.parametrize("arch", ARCHS)
def test_a_model_by_name_replaces_at_a_stage_or_a_named_module(arch, hf_folders):
    base = build_backend(_name(arch, hf_folders), random_init=True, device="cpu", progress=False)
    image = np.random.default_rng(1).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    for layer in (1, LAYERS.get(arch)):
        if layer is None:
            continue
        split = at_block(base, layer)
        assert split.layer == layer and split.channels != 0
        pairs = [(0, 1), (2, 0)]
        plain = split.encode([image])[FEATURES]
        with redundancy.patch(split.model, pairs, layer=layer):
            patched = split.encode([image])[FEATURES]
        assert torch.equal(patched, apply_map(plain, pairs_map(pairs, split.channels)))  # bit for bit


def test_the_default_reads_normed_tokens_or_the_last_stage():
    vit = build_backend("timm:vit_tiny_patch16_224", random_init=True, device="cpu", progress=False)
    assert vit.anatomy.where.module == "norm" and vit.anatomy.where.cls and vit.grid == (14, 14)
    cnn = build_backend("timm:resnet18", random_init=True, device="cpu", progress=False)
    assert cnn.anatomy.where.module == "layer4" and cnn.channels == 512 and cnn.grid == (7, 7)
    image = np.full((32, 32, 3), 128, np.uint8)
    feats = cnn.encode([image])[FEATURES]  # token 0 of a map is its spatial mean
    torch.testing.assert_close(feats[:, :, 0, 0], feats[:, :, 0, 1:].mean(-1))


def test_names_timm_does_not_build_get_one_line():
    with pytest.raises(UnknownName, match="did you mean timm:resnet18"):
        get_spec("timm:resnet18x")
    with pytest.raises(UnknownName, match="or any timm:NAME"):
        get_spec("resnet18")
    backend = build_backend("timm:resnet18", random_init=True, device="cpu", progress=False)
    with pytest.raises(ConfigError, match="not one of this model's 5 feature stages"):
        at_block(backend, 7)
    with pytest.raises(ConfigError, match="has no module 'layer9'"):
        at_block(backend, "layer9")


def test_timm_weights_offline_say_the_ways_out(monkeypatch):
    import huggingface_hub

    from redundancy.errors import WeightsError

    def offline(repo, filename, **kw):
        raise huggingface_hub.errors.LocalEntryNotFoundError(f"{repo}/{filename}: offline")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(WeightsError) as e:
        build_backend("timm:resnet18", device="cpu", progress=False)
    message = str(e.value)
    assert "timm/resnet18" in message and "--random-init" in message and "--checkpoint" in message


def test_a_timm_checkpoint_file_loads_with_its_classifier_dropped(tmp_path):
    import timm

    model = timm.create_model("resnet18", num_classes=10)  # a fine-tuned classifier the tool does not use
    torch.save(model.state_dict(), tmp_path / "r18.pth")
    backend = build_backend("timm:resnet18", checkpoint=tmp_path / "r18.pth", device="cpu", progress=False)
    assert backend.weights.kind == "checkpoint"
    torch.testing.assert_close(backend.model.conv1.weight, model.conv1.weight)
    assert json.dumps(backend.weights.to_dict())  # recorded as any checkpoint is


ROOT = Path(__file__).resolve().parents[2]
DINOV2_COPY = "timm:vit_small_patch14_dinov2(embed_dim=192,depth=6,num_heads=3,img_size=112)"


def test_timm_on_the_dinov2_demo_weights_scores_pairs_as_the_dinov2_family(tmp_path):
    """The same file through timm:'s generic reading and through the DINOv2 family: the same pair scores."""
    data = ROOT / "assets" / "classify_sample"
    common = dict(data=str(data), device="cpu", search_images=12, head_images=12, heldout_images=0)
    settings = SearchSettings(top_n=2, sources="every:24", targets="every:24")
    demo = ROOT / "assets" / "demo" / "dinov2_tiny_demo.pt"
    found = []
    for cfg in (
        SessionConfig(model="dinov2_tiny_demo", **common),
        SessionConfig(model=DINOV2_COPY, checkpoint=str(demo), **common),
    ):
        session = Session.open(cfg, cache=FeatureCache(tmp_path / cfg.model.split(":")[0]), progress=False)
        found.append(run_search(session, settings))
    a, b = (r.scores for r in found)
    assert found[1].header["family"] == "timm" and found[0].header["family"] == "dinov2"
    np.testing.assert_allclose(b.score_gain, a.score_gain, equal_nan=True, atol=1e-9)
    np.testing.assert_allclose(b.loss_gain, a.loss_gain, equal_nan=True, rtol=1e-6, atol=1e-9)
    assert np.isfinite(a.score_gain).sum() == 56 and a.baseline_score == b.baseline_score


def test_any_backbone_segments_with_a_fitted_per_patch_head(tmp_path):
    """A timm CNN on a shipped segmentation domain (PerSeg layout): a linear per-patch head, fitted on the head split,
    scores the masks; the run says which head; a prompt is refused in one line."""
    cfg = SessionConfig(model="timm:convnext_atto", data=str(ROOT / "assets" / "domains" / "gray"), random_init=True,
                        device="cpu", search_images=4, head_images=6, heldout_images=2)  # fmt: skip
    session = Session.open(cfg, cache=FeatureCache(tmp_path / "cache"), progress=False)
    assert session.task.name == "segment" and session.protocol == "perseg"
    result = run_search(session, SearchSettings(top_n=2, sources="0", targets="1,2"))
    assert result.header["head"]["kind"] == "linear per-patch segmentation head"
    assert np.isfinite(result.scores.baseline_score)
    with pytest.raises(ConfigError, match="fitted head, which takes no prompts"):
        Session(session.backend, session.dataset, dataclasses.replace(cfg, prompt="box"))
