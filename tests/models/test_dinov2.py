"""DINOv2 (timm's classes, seeded random weights): features, checkpoints, heads, rank-one scores, both tasks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from timm.models.vision_transformer import checkpoint_filter_fn

from redundancy.cli import main
from redundancy.engine import SearchSettings, Session, SessionConfig, run_search
from redundancy.engine.features import FeatureCache
from redundancy.engine.scorer import PairScorer, channel_pairs
from redundancy.models import build_backend
from redundancy.models import dinov2 as D2
from redundancy.models.vit import TimmVitBackend
from redundancy.replace import pair_maps
from redundancy.runs.rundir import SEARCH_FILES
from redundancy.tasks.heads import LinearClassifier, LinearDepth

from ..conftest import ROOT

CLASSIFY = ROOT / "assets" / "classify_sample"
DEPTH = ROOT / "assets" / "depth_sample"


def _session(data, tmp_path, **kw) -> Session:
    cfg = SessionConfig(model="dinov2_tiny", data=str(data), random_init=True, **{"search_images": 12, **kw})
    return Session.open(cfg, cache=FeatureCache(tmp_path / "cache"), progress=False)


@pytest.mark.parametrize("registers", [False, True])
def test_features_are_timms_own_normed_tokens(registers):
    """The backend's features are timm's forward_features output: class token + patch tokens, registers dropped."""
    torch.manual_seed(0)
    model = D2.build("tiny", registers, D2.TINY_INPUT)
    backend = TimmVitBackend("dinov2_tiny", model, None, torch.device("cpu"))
    x = torch.randn(2, 3, D2.TINY_INPUT, D2.TINY_INPUT)
    with torch.no_grad():
        ref = model.forward_features(x)  # (B, prefix + N, C), already normed
        ours = backend.forward_features(x)["features"]
    prefix = model.num_prefix_tokens
    assert prefix == (5 if registers else 1)
    assert ours.shape == (2, 64, 1, 1 + 64)
    torch.testing.assert_close(ours[:, :, 0, 0], ref[:, 0])
    torch.testing.assert_close(ours[:, :, 0, 1:], ref[:, prefix:].transpose(1, 2))
    assert backend.channel_maps(ours).shape == (2, 64, 8, 8)


@pytest.mark.parametrize("registers", [False, True])
def test_meta_checkpoint_layout_loads_into_the_same_model(tmp_path, registers):
    """A checkpoint in Meta's DINOv2 layout (mask_token; with registers: register_tokens and the class
    position inside pos_embed) loads through the registry's converter and gives the original features."""
    torch.manual_seed(1)
    model = D2.build("tiny", registers, D2.TINY_INPUT)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    meta = {**state, "mask_token": torch.zeros(1, 64)}
    if registers:  # timm folded the class position into cls_token and split the registers out: undo it
        meta["register_tokens"] = meta.pop("reg_token")
        meta["pos_embed"] = torch.cat([torch.zeros(1, 1, 64), meta["pos_embed"]], 1)
    other = D2.build("tiny", registers, D2.TINY_INPUT)
    other.load_state_dict(checkpoint_filter_fn(meta, other))
    x = torch.randn(1, 3, D2.TINY_INPUT, D2.TINY_INPUT)
    with torch.no_grad():
        torch.testing.assert_close(other.forward_features(x), model.forward_features(x))
    if not registers:  # and through build_backend --checkpoint, with the file's hash in the label
        path = tmp_path / "meta.pth"
        torch.save(meta, path)
        backend = build_backend("dinov2_tiny", checkpoint=path, device="cpu")
        with torch.no_grad():
            torch.testing.assert_close(
                backend.forward_features(x)["features"][:, :, 0, 0], model.forward_features(x)[:, 0]
            )
        assert backend.weights.label.startswith("checkpoint sha256:")


def test_registry_names_every_dinov2_size_with_its_official_file():
    from redundancy.models import REGISTRY

    for size, c in (("s", 384), ("b", 768), ("l", 1024), ("g", 1536)):
        for reg in ("", "_reg"):
            spec = REGISTRY[f"dinov2_vit{size}14{reg}"]
            assert spec.url.startswith("https://dl.fbaipublicfiles.com/dinov2/dinov2_vit")
            assert spec.url.endswith(f"14{'_reg4' if reg else ''}_pretrain.pth")
            assert spec.tasks == ("classify", "depth")
        assert D2.CONFIGS[size]["embed_dim"] == c


@pytest.mark.parametrize("data", [CLASSIFY, DEPTH], ids=["classify", "depth"])
def test_rank_one_pair_path_equals_decoding_every_pair(data, tmp_path):
    """Every pair of a small channel set: the head's rank-one shortcut gives the generic path's stats."""
    session = _session(data, tmp_path)
    ev = session.evaluator("search")
    assert ev.backend.has_pair_outputs()
    pairs = channel_pairs([0, 5, 17, 40], [3, 5, 17, 63], 64)
    generic = ev.stats(pair_maps(pairs, 64))
    chunks = []
    assert ev.pair_stats(pairs, lambda start, st: chunks.append(st.values))
    fast = np.concatenate(chunks)
    assert fast.shape == generic.values.shape
    np.testing.assert_allclose(fast, generic.values, rtol=1e-5, atol=1e-5)
    scores = PairScorer(ev).score(pairs)  # the scorer takes the shortcut
    ij = pairs.numpy()
    base, _ = ev.summarize(ev.stats(torch.arange(64)[None]))
    gen, _ = ev.summarize(generic)
    np.testing.assert_allclose(scores.score_gain[ij[:, 0], ij[:, 1]], gen - base[0], atol=1e-5)


def test_fitted_classifier_learns_separable_features():
    """L-BFGS logistic regression on (cls, mean patch) features separates classes that differ in one channel."""
    from redundancy.tasks.heads import fit_classifier

    g = torch.Generator().manual_seed(0)
    feats = torch.randn(60, 8, 1, 5, generator=g)
    labels = torch.arange(60) % 3
    feats[:, 2, 0, 0] += 3.0 * labels  # the class token's channel 2 carries the label
    head = fit_classifier(feats, labels, ["a", "b", "c"])
    assert (head(feats).argmax(1) == labels).float().mean() > 0.95


def test_heads_check_their_shapes():
    with pytest.raises(Exception, match="2 classes but the dataset has 3"):
        LinearClassifier(torch.zeros(2, 128), torch.zeros(2), 64, ["a", "b", "c"])
    with pytest.raises(Exception, match="weight \\(classes, 64 or 128\\)"):
        LinearClassifier(torch.zeros(3, 100), torch.zeros(3), 64, ["a", "b", "c"])
    with pytest.raises(Exception, match="weight \\(128,\\)"):
        LinearDepth(torch.zeros(64), torch.zeros(1), 64, (8, 8))


def test_classification_search_end_to_end(tmp_path, capsys):
    """CLI search: a complete run directory with the head, disjoint splits, ablate reproduces a pair score."""
    out = tmp_path / "run"
    argv = ["search", "--model", "dinov2_tiny", "--random-init", "--data", str(CLASSIFY), "--search-images", "20"]
    argv += ["--sources", "every:4", "--targets", "every:4", "--top-n", "4", "--out", str(out)]
    assert main(argv) == 0
    assert "accuracy" in capsys.readouterr().out
    for name in SEARCH_FILES:  # the run files and the head
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "classify" and config["score_metric"] == "accuracy"
    assert config["search"]["metric"] == "accuracy" and config["classes"] == ["blob", "disc", "ring", "square", "star"]
    head = config["head"]
    assert head["source"] == "fitted" and len(head["images"]) == 40  # a third of 120 images
    assert not set(head["images"]) & set(config["data"]["search_set"])
    assert config["data"]["heldout_images"] == 120 - 40 - 20
    assert "random weights" in config["weights_label"]
    assert torch.load(out / "head.pt", weights_only=True)["weight"].shape == (5, 128)
    gains = np.load(out / "pair_scores.npy")
    i, j = np.argwhere(~np.isnan(gains))[3]
    assert main(["ablate", "--run", str(out), "--replace", f"{i}:{j}", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["edits"][0]
    assert row["delta_score"] == pytest.approx(gains[i, j], abs=1e-4)
    assert main(["apply", "--run", str(out), "--data", str(CLASSIFY), "--out", str(tmp_path / "ap"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["metric"] == "accuracy" and 0 <= summary["patched_score"] <= 100
    lines = (tmp_path / "ap" / "predictions.csv").read_text().splitlines()
    assert len(lines) == 121 and lines[0].startswith("image,predicted")


@pytest.mark.slow
def test_depth_search_end_to_end(tmp_path):
    """Python API: depth with AbsRel as the search metric, the held-out numbers, apply writes 16-bit PNGs."""
    session = _session(DEPTH, tmp_path, search_images=10, heldout_images=6)
    result = run_search(session, SearchSettings(metric="absrel", sources="every:8", targets="every:8", top_n=3))
    assert result.settings.metric == "absrel"
    base, best = result.combos.baseline_score, result.combos.best
    assert base < 0  # AbsRel, stored as a higher-is-better score
    assert best is None or best.score > base
    assert set(result.heldout) >= {"baseline_score", "patched_score"}
    from redundancy.runs.writers import write_run

    out = write_run(tmp_path / "run", session, result)
    assert main(["apply", "--run", str(out), "--data", str(DEPTH), "--out", str(tmp_path / "ap")]) == 0
    from PIL import Image

    png = Image.open(tmp_path / "ap" / "depth" / "000.png")
    assert png.mode.startswith("I") and png.size == (96, 96)
    assert (tmp_path / "ap" / "previews" / "000.png").is_file()
    assert main(["figures", str(out), "--out", str(tmp_path / "fig"), "--format", "png"]) == 0
    assert (tmp_path / "fig" / "pair_heatmap.png").is_file() and not (tmp_path / "fig" / "before_after.png").exists()


@pytest.mark.slow
def test_killed_depth_search_resumes_identically(tmp_path):
    """SIGKILL in the middle of rank-one pair scoring; the same command finishes with the reference's files."""
    import os
    import signal
    import subprocess
    import sys
    import time

    argv = ["search", "--model", "dinov2_tiny", "--random-init", "--data", str(DEPTH), "--search-images", "8"]
    argv += ["--heldout-images", "4", "--sources", "every:2", "--targets", "every:2", "--top-n", "3"]
    env = {**os.environ, "REDUNDANCY_PAIR_OUTPUTS": "4096"}  # small blocks: a partial state to kill
    ref = tmp_path / "ref"
    subprocess.run([sys.executable, "-m", "redundancy", *argv, "--out", str(ref)], cwd=ROOT, env=env, check=True)
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "redundancy", *argv, "--out", str(out)], cwd=ROOT, env=env)
    state = out / "state" / "pairs.r0.npz"
    end = time.time() + 120
    partial = False
    while time.time() < end and proc.poll() is None and not partial:
        try:
            with np.load(state) as d:
                done = np.isfinite(d["score_gain"])
                partial = bool(done.any()) and not bool(done.all())
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert partial, "no partial pair state appeared before the search ended"
    subprocess.run([sys.executable, "-m", "redundancy", *argv, "--out", str(out)], cwd=ROOT, env=env, check=True)
    for name in ("pair_scores.npy", "topn.json", "combinations.csv", "replacements.json", "head.pt"):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name


@pytest.mark.slow
def test_task_samples_regenerate_identically(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make", ROOT / "scripts" / "make_task_samples.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    make.make(tmp_path)
    for name in make.SEEDS:
        ours = sorted(p.relative_to(tmp_path / name) for p in (tmp_path / name).rglob("*") if p.is_file())
        shipped = sorted(
            p.relative_to(ROOT / "assets" / name) for p in (ROOT / "assets" / name).rglob("*") if p.is_file()
        )
        assert ours == shipped
        for rel in ours:
            assert (tmp_path / name / rel).read_bytes() == (ROOT / "assets" / name / rel).read_bytes(), rel


def test_patch_on_a_timm_dinov2_equals_the_searched_replacement():
    """`patch(model, pairs)` on a user's own timm DINOv2 gives the tokens the search scored with."""
    from redundancy import patch

    backend = build_backend("dinov2_tiny", random_init=True, device="cpu")
    x = torch.randn(1, 3, D2.TINY_INPUT, D2.TINY_INPUT)
    with torch.no_grad():
        feats = backend.forward_features(x)["features"]
        handle = patch(backend.model, [(3, 7), (10, 0)])
        patched = backend.forward_features(x)["features"]
        handle.remove()
    expected = feats.clone()
    expected[:, 3], expected[:, 10] = feats[:, 7], feats[:, 0]
    torch.testing.assert_close(patched, expected)
