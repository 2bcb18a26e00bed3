"""The backend contract, over every registry entry small enough to build here (timm's `test_model_forward` over
`list_models()`): a family is tested by registering it.

For each: it builds (seeded random weights, or its shipped demo file), its family owns its model, encoding gives
finite features of the declared width, decoding (with a head for classify / depth) gives outputs that upscale
to the image, `patch()` on the model equals the engine's replacement, and a split after block 0 resumes the
encoder exactly.
"""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
import torch

import redundancy
from redundancy.data.prompts import Prompt
from redundancy.errors import ModelError
from redundancy.models import FAMILIES, FEATURES, REGISTRY, Backend, DecodeContext, build_backend
from redundancy.models.layers import at_block
from redundancy.models.prompted import PromptContext, PromptedBackend
from redundancy.replace import apply_map, pairs_map
from redundancy.tasks.heads import LinearClassifier, LinearDepth

SMALL = [name for name, spec in REGISTRY.items() if spec.test_size]
IMAGE = np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)


def test_the_backend_interface_speaks_no_family_s_vocabulary():
    """Prompts, mask choice and decoder internals are the promptable decoders' (models/prompted.py), not the
    interface's: a family without prompts implements none of it and carries no placeholder tensors."""
    assert not {"embed_prompts", "decoder_module", "mask_choice"} & set(dir(Backend))
    assert [f.name for f in dataclasses.fields(DecodeContext)] == ["extras"]
    assert "mask_choice" not in inspect.signature(Backend.decode).parameters


def test_a_backend_s_context_is_its_own(backend):
    """A promptable backend's context carries its prompts and choice; any other refuses a prompt."""
    encoded = backend.encode([IMAGE])
    ctx = backend.context(encoded, [Prompt()], [backend.meta(IMAGE.shape[:2])], "best")
    if isinstance(backend, PromptedBackend):
        assert isinstance(ctx, PromptContext) and ctx.choice == "best"
        assert ctx.take([0, 0]).sparse.shape[0] == 2  # rows of every tensor field
    else:
        assert type(ctx) is DecodeContext and not any(v.numel() == 0 for v in ctx.extras.values())
        with pytest.raises(ModelError, match="takes no prompts"):
            backend.context(encoded, [Prompt(point=(3, 4))], [backend.meta(IMAGE.shape[:2])])


def test_every_family_has_a_test_size_entry():
    """Or is a family of models named on demand (timm:, hf:, module:), with its own contract test (test_timm.py)."""
    assert {REGISTRY[name].family for name in SMALL} | {"timm", "hf", "torch_module"} == set(FAMILIES)


@pytest.fixture(scope="module", params=SMALL)
def backend(request):
    spec = REGISTRY[request.param]
    b = build_backend(request.param, random_init=spec.shipped is None, seed=0, device="cpu", progress=False)
    if "classify" in b.tasks:  # a head as the session would attach one
        c = b.channels
        b.attach_head(LinearClassifier(torch.randn(3, 2 * c, generator=torch.Generator().manual_seed(0)),
                                       torch.zeros(3), c, ["a", "b", "c"]))  # fmt: skip
    return b


def _decode(b, feats, encoded):
    meta = b.meta(IMAGE.shape[:2])
    ctx = b.context(encoded, [Prompt()], [meta])
    return b.upscale(b.decode(feats, ctx), meta)


def test_a_registered_model_builds_encodes_and_decodes(backend):
    assert FAMILIES[REGISTRY[backend.name].family] is backend.family and backend.family.owns(backend.model)
    encoded = backend.encode([IMAGE])
    feats = encoded[FEATURES]
    assert feats.shape[:2] == (1, backend.channels) and torch.isfinite(feats).all()
    maps = backend.channel_maps(feats)
    assert maps.dim() == 4 and maps.shape[1] == backend.channels
    out = _decode(backend, feats, encoded)
    if out.dim() == 3:  # masks or depth at the image's size; class logits have no size
        assert out.shape == (1, *IMAGE.shape[:2])
    assert torch.isfinite(out).all()


def test_patch_on_the_model_equals_the_engines_replacement(backend):
    pairs = [(0, 3), (5, 1)]
    with torch.no_grad():
        plain = backend.encode([IMAGE])[FEATURES]
        with redundancy.patch(backend.model, pairs):  # the family's hook, found from the model itself
            patched = backend.encode([IMAGE])[FEATURES]
    torch.testing.assert_close(patched, apply_map(plain, pairs_map(pairs, backend.channels)))


def test_a_split_after_block_zero_resumes_the_encoder(backend):
    split = at_block(backend, 0)
    with torch.no_grad():
        x = torch.stack([backend.preprocess(IMAGE)])
        want = backend.forward_features(x)[FEATURES]
        inner = split.forward_features(x)
        extras = {k: v for k, v in inner.items() if k != FEATURES}
        rest = split.rest(inner[FEATURES], extras)
        got = rest[FEATURES] if isinstance(rest, dict) else rest
    assert inner[FEATURES].shape[1] == split.channels
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_a_depth_head_reads_every_vit_family(backend):
    if "depth" not in backend.tasks:
        pytest.skip("no depth head for this family")
    c = backend.channels
    head = LinearDepth(torch.randn(2 * c, generator=torch.Generator().manual_seed(1)), torch.zeros(1), c, backend.grid)
    feats = backend.encode([IMAGE])[FEATURES]
    backend.attach_head(head)  # the head shapes its outputs back to the image (depth: bilinearly)
    out = backend.upscale(head(feats), backend.meta(IMAGE.shape[:2]))
    assert out.shape == (1, *IMAGE.shape[:2]) and torch.isfinite(out).all()
    pairs = torch.tensor([[0, 3], [5, 1]])
    shortcut = head.pair_outputs(feats, pairs)  # the rank-one shortcut equals decoding the edited tokens
    for k, (i, j) in enumerate(pairs.tolist()):
        torch.testing.assert_close(shortcut[k], head(apply_map(feats, pairs_map([(i, j)], c))))
