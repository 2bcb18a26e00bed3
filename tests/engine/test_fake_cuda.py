"""The CUDA path on a fake CUDA device (torch's FakeTensorMode): device mix-ups fail here, on CPU CI.

Every tensor created under the mode is a fake that carries a device and a shape but no data, and an
op mixing a fake `cuda` tensor with a `cpu` one raises. Each model is built on the CPU and its
backend is made inside the mode, which moves the model to fake `cuda`; then the batched scoring
path runs one decoder call: encode, prompt embeddings, the Evaluator's channel-last gather of
replacement maps, the re-associated decoder, upscaling to the image size, and the Taylor
objective's forward. The run stops at logits and the objective: thresholds, metric sums and
`.item()` need real data, and autograd's backward needs a real CUDA context, neither of which fake
tensors have.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from redundancy.data.prompts import prompt_from_mask
from redundancy.engine.evalset import EvalSet
from redundancy.engine.evaluator import Evaluator
from redundancy.engine.screening.taylor import _outputs
from redundancy.models import FAMILIES, get_spec
from redundancy.models._weights import WeightsInfo
from redundancy.models.base import FEATURES
from redundancy.models.prompted import PromptContext
from redundancy.replace import pair_maps
from redundancy.tasks.segment import mask_stats

CUDA = torch.device("cuda")


def _image_and_mask(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    mask = np.zeros((h, w), bool)
    mask[h // 4 : h // 2, w // 3 : w // 2] = True
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8), mask


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sam_tiny", "sam2_tiny"])
@pytest.mark.parametrize("prompt", ["none", "box", "point"])
def test_batched_path_runs_on_a_fake_cuda_device(name, prompt):
    spec = get_spec(name)
    images, masks = zip(*[_image_and_mask(96, 128), _image_and_mask(128, 80)])
    model = spec.build()  # real weights on the CPU; moving them under the mode makes fake cuda copies
    prompts = [prompt_from_mask(m, prompt) for m in masks]  # from GT on the CPU: numbers, not tensors
    # segment_anything's PromptEncoder._embed_points indexes with a boolean mask (data-dependent), which
    # fake tensors cannot run: SAM's point embeddings are made on the CPU and moved to the fake device.
    cpu_context = None
    if spec.family == "sam" and prompt == "point":
        cpu = FAMILIES[spec.family].make_backend(name, model, WeightsInfo("random", seed=0), torch.device("cpu"))
        cpu_context = cpu.embed_prompts(prompts, [cpu.meta(m.shape) for m in masks])
    with FakeTensorMode(allow_non_fake_inputs=True):
        backend = FAMILIES[spec.family].make_backend(name, model, WeightsInfo("random", seed=0), CUDA)
        assert all(p.device.type == "cuda" for p in backend.model.parameters())
        if spec.family == "sam2":  # SAM2Transforms is TorchScript, which crashes on fake tensors: its input here
            size = backend.model.image_size
            encoded = backend.forward_features(torch.zeros(2, 3, size, size, device=CUDA))
        else:
            encoded = backend.encode(list(images))
        assert encoded[FEATURES].device.type == "cuda"
        metas = [backend.meta(m.shape) for m in masks]
        if cpu_context is None:
            context = backend.context(encoded, prompts, metas)
        else:
            context = PromptContext(cpu_context.sparse.to(CUDA), cpu_context.dense.to(CUDA))
        gts = [torch.from_numpy(m).to(CUDA) for m in masks]
        evalset = EvalSet(["a", "b"], encoded[FEATURES], context, metas, gts, np.arange(2))
        ev = Evaluator(backend, evalset, rows=4)
        maps = pair_maps(torch.tensor([[0, 1], [5, 3]]), backend.channels).to(CUDA)  # (2, C)
        low = ev._decode(maps[[0, 0, 1, 1]], torch.tensor([0, 1, 0, 1], device=CUDA))
        assert low.device.type == "cuda" and low.shape[0] == 4
        full = backend.upscale(low[:2], metas[0])
        assert full.device.type == "cuda" and tuple(full.shape) == (2, 96, 128)
        # The Taylor screen's objective, built with grad on; its backward needs a real CUDA context
        # (autograd's engine asks the driver for one), so the fake run stops before it.
        x = evalset.feats[:1].clone().requires_grad_(True)
        j = -mask_stats(ev.upscaler(0)(_outputs(ev, 0, x)), gts[0])[2].sum()
        assert j.requires_grad and j.device.type == "cuda"


def test_a_cpu_tensor_in_the_cuda_path_is_caught():
    """The guard itself: a decoder context left on the CPU makes the fake run raise."""
    spec = get_spec("sam_tiny")
    image, mask = _image_and_mask(64, 64)
    model = spec.build()
    with FakeTensorMode(allow_non_fake_inputs=True):
        backend = FAMILIES[spec.family].make_backend("sam_tiny", model, WeightsInfo("random", seed=0), CUDA)
        encoded = backend.encode([image])
        context = backend.context(encoded, [prompt_from_mask(mask, "none")], [backend.meta(mask.shape)])
        context.dense = context.dense.to("cpu")
        with pytest.raises(Exception, match="(?i)device"):
            backend.decode(encoded[FEATURES], context)
