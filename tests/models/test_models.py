"""Registry, weights handling and parity of the SAM backend with segment_anything's SamPredictor."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor

from redundancy.data import load_image
from redundancy.data.prompts import Prompt, prompt_from_mask
from redundancy.errors import DeviceError, WeightsError
from redundancy.models import REGISTRY, build_backend
from redundancy.models import _weights as W
from redundancy.registry import UnknownName

from ..conftest import predictor_kwargs


def test_registry_has_the_sam_family_and_rejects_unknown_names():
    assert {"sam_vit_b", "sam_vit_l", "sam_vit_h", "sam_tiny"} <= set(REGISTRY)
    for name in ("sam_vit_b", "sam_vit_l", "sam_vit_h"):
        spec = REGISTRY[name]
        assert spec.url.startswith("https://dl.fbaipublicfiles.com/segment_anything/")
        assert len(spec.sha256) == 64
    with pytest.raises(UnknownName, match="unknown model .sam_vit_q.; choose one of: sam_vit_b"):
        build_backend("sam_vit_q", random_init=True)


def test_random_init_is_seeded_and_labelled(tiny):
    again = build_backend("sam_tiny", random_init=True, seed=0, device="cpu")
    other = build_backend("sam_tiny", random_init=True, seed=1, device="cpu")
    a, b, c = (m.model.state_dict() for m in (tiny, again, other))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert tiny.weights.label == "random weights (seed 0)"
    assert tiny.channels == 256


@pytest.mark.parametrize("mode", ["none", "box", "point"])
def test_backend_matches_sam_predictor(tiny, sample, mode):
    from redundancy.data import load_mask

    image = load_image(sample / "Images" / "star" / "01.jpg")
    gt = load_mask(sample / "Annotations" / "star" / "01.png")
    prompt = prompt_from_mask(gt, mode)
    ours = tiny.predict([image], [prompt])[0]
    predictor = SamPredictor(tiny.model)
    predictor.set_image(image)
    kwargs = predictor_kwargs(prompt)
    ref, _, _ = predictor.predict(multimask_output=False, return_logits=True, **kwargs)
    assert ours.shape == ref.shape[1:] == gt.shape
    np.testing.assert_allclose(ours.numpy(), ref[0], atol=1e-5, rtol=1e-5)


def test_best_multimask_choice_matches_predictor_argmax(tiny, sample):
    image = load_image(sample / "Images" / "disc" / "00.jpg")
    ours = tiny.predict([image], [Prompt()], "best")[0]
    predictor = SamPredictor(tiny.model)
    predictor.set_image(image)
    masks, iou, _ = predictor.predict(multimask_output=True, return_logits=True)
    np.testing.assert_allclose(ours.numpy(), masks[int(np.argmax(iou))], atol=1e-5)


def test_checkpoint_roundtrip_and_label(tiny, tmp_path):
    path = tmp_path / "tiny.pth"
    torch.save(tiny.model.state_dict(), path)
    loaded = build_backend("sam_tiny", checkpoint=path, device="cpu")
    assert loaded.weights.kind == "checkpoint"
    assert loaded.weights.label.startswith("checkpoint sha256:")
    assert loaded.weights.sha256 == W.sha256_of(path)
    assert all(torch.equal(v, loaded.model.state_dict()[k]) for k, v in tiny.model.state_dict().items())


def test_checkpoint_errors_are_clear(tiny, tmp_path):
    good = tmp_path / "tiny.pth"
    torch.save(tiny.model.state_dict(), good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(WeightsError, match="truncated"):
        build_backend("sam_tiny", checkpoint=truncated, device="cpu")

    class Evil:
        def __reduce__(self):
            return (print, ("pickled code ran",))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"w": Evil()}))
    with pytest.raises(WeightsError):
        build_backend("sam_tiny", checkpoint=evil, device="cpu")

    with pytest.raises(WeightsError, match="another model size"):  # a sam_tiny file for sam_vit_b
        build_backend("sam_vit_b", checkpoint=good, device="cpu")
    with pytest.raises(WeightsError, match="does not exist"):
        build_backend("sam_tiny", checkpoint=tmp_path / "nope.pth", device="cpu")
    with pytest.raises(WeightsError, match="expected"):
        W.load_state_dict(good, expected_sha256="0" * 64)
    with pytest.raises(WeightsError, match="no official checkpoint"):
        build_backend("sam_tiny", device="cpu")


def test_download_failure_says_how_to_proceed(tmp_path, monkeypatch):
    monkeypatch.setenv("REDUNDANCY_CACHE", str(tmp_path))
    with pytest.raises(WeightsError, match="CLI: --checkpoint PATH"):
        W.fetch("http://127.0.0.1:9/sam_vit_b_01ec64.pth", "0" * 64, progress=False)
    assert not list(tmp_path.rglob("*.part"))  # no half-written file stays behind


def test_download_verifies_sha256(tmp_path, monkeypatch):
    monkeypatch.setenv("REDUNDANCY_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "weights.bin"
    src.write_bytes(b"x" * 1000)
    digest = W.sha256_of(src)
    path = W.fetch(src.as_uri(), digest, progress=False)
    assert path.read_bytes() == src.read_bytes() and path.parent.name == "checkpoints"
    with pytest.raises(WeightsError, match="sha256"):
        W.download(src.as_uri(), "f" * 64, tmp_path / "other.bin", progress=False)
    assert not (tmp_path / "other.bin").exists()


def test_cuda_without_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(DeviceError, match="choose device cpu"):
        build_backend("sam_tiny", random_init=True, device="cuda")
