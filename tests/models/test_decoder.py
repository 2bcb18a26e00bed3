"""The re-associated decoder (models/decoder.py) against the packages' own modules."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch

from redundancy.data.prompts import Prompt
from redundancy.models import build_backend
from redundancy.models.decoder import two_way, upscale_masks
from redundancy.models.prompted import PromptContext


def _perturbed(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """A copy with every parameter moved off its init (norm biases start at 0, which would hide bugs)."""
    module = copy.deepcopy(module)
    gen = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        p.data += 0.05 * torch.randn(p.shape, generator=gen)
    return module


@pytest.fixture(scope="module")
def sam2_tiny():
    return build_backend("sam2_tiny", random_init=True, seed=0, device="cpu")


@pytest.mark.parametrize("grid", [8, 64])
def test_two_way_equals_the_transformer(tiny, grid):
    transformer = _perturbed(tiny.model.mask_decoder.transformer)
    gen = torch.Generator().manual_seed(1)
    image, pe = torch.randn(3, 256, grid, grid, generator=gen), torch.randn(1, 256, grid, grid, generator=gen)
    tokens = torch.randn(3, 7, 256, generator=gen)
    with torch.no_grad():
        want_q, want_k = transformer(image, pe, tokens)
        got_q, got_k = two_way(transformer, image, pe, tokens)
        got_cl = two_way(transformer, image.contiguous(memory_format=torch.channels_last), pe, tokens)[1]
    torch.testing.assert_close(got_q, want_q, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(got_k, want_k, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(got_cl, got_k, atol=0, rtol=0)  # memory layout does not change the values


def test_upscale_masks_equals_the_modules(tiny, sam2_tiny):
    gen = torch.Generator().manual_seed(2)
    keys, hyper = torch.randn(2, 64, 256, generator=gen), torch.randn(2, 4, 32, generator=gen)
    up = _perturbed(tiny.model.mask_decoder.output_upscaling)
    with torch.no_grad():
        want = (hyper @ up(keys.transpose(1, 2).reshape(2, 256, 8, 8)).flatten(2)).view(2, 4, 32, 32)
        torch.testing.assert_close(upscale_masks(up, keys, (8, 8), hyper), want, atol=1e-5, rtol=1e-4)

        dc1, ln1, act1, dc2, act2 = up2 = _perturbed(sam2_tiny.model.sam_mask_decoder.output_upscaling, 3)
        skips = [torch.randn(2, dc2.out_channels, 32, 32, generator=gen), torch.randn(2, dc1.out_channels, 16, 16)]
        src = keys.transpose(1, 2).reshape(2, 256, 8, 8)
        ref = act2(dc2(act1(ln1(dc1(src) + skips[1]))) + skips[0])  # SAM2's predict_masks with high-res features
        want = (hyper @ ref.flatten(2)).view(2, 4, 32, 32)
        torch.testing.assert_close(upscale_masks(up2, keys, (8, 8), hyper, skips), want, atol=1e-5, rtol=1e-4)


def _context(backend, n: int, kind: str, choice: str = "single") -> PromptContext:
    prompt = {"none": Prompt(), "box": Prompt(box=(10, 20, 90, 100)), "point": Prompt(point=(40, 50))}[kind]
    metas = [backend.meta((120, 160))] * n
    return replace(backend.embed_prompts([prompt] * n, metas), choice=choice)


@pytest.mark.parametrize("family", ["sam", "sam2"])
@pytest.mark.parametrize("kind", ["none", "box", "point"])
@pytest.mark.parametrize("choice", ["single", "best"])
def test_fast_decode_equals_the_reference_modules(tiny, sam2_tiny, family, kind, choice):
    backend = tiny if family == "sam" else sam2_tiny
    gen = torch.Generator().manual_seed(4)
    feats = torch.randn(3, 256, 8, 8, generator=gen)
    ctx = _context(backend, 3, kind, choice)
    if family == "sam2":
        assert backend.model.sam_mask_decoder.use_high_res_features  # the skip path is exercised
        ctx.extras = {"high_res_0": torch.randn(3, 32, 32, 32, generator=gen), "high_res_1": torch.randn(3, 64, 16, 16)}
    with torch.no_grad():
        fast = backend.decode(feats, ctx)
        ref = backend.decode(feats, ctx, reference=True)
        laid_out = backend.decode(feats, backend.batch_context(ctx))  # the evaluator's per-set layout
    torch.testing.assert_close(fast, ref, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(laid_out, fast, atol=1e-6, rtol=1e-5)
