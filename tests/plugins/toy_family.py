"""A toy model family, one file: an 8x8-patch linear encoder (16 channels) and its own decoder, which reads one
number per image (a 1x1 convolution's mean): the family registers itself and one model, `toy_net`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from redundancy.models._registry import Family, ModelSpec, register, register_family
from redundancy.models.base import FEATURES, Backend, ImageMeta
from redundancy.models.layers import BlockBackend
from redundancy.replace import ReplacementPatch, apply_map

CHANNELS, SIZE = 16, 32


class ToyNet(torch.nn.Module):
    """Encoder: 8x8 patches -> 16 channels; decoder: their mean through a 1x1 convolution."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = torch.nn.Conv2d(3, CHANNELS, 8, stride=8)
        self.decoder = torch.nn.Conv2d(CHANNELS, 1, 1)


class ToyBackend(Backend):
    tasks = ("brightness",)  # the toy task (tests/plugins/toy_task.py)
    fits_heads = False  # its own decoder scores it: no head is fitted

    def __init__(self, name, model, weights, device, *, family=None):
        self.name, self.weights, self.device, self.family = name, weights, device, family
        self.model = model.to(device).eval()
        self.channels = CHANNELS

    def preprocess(self, image):
        x = torch.tensor(image, device=self.device).permute(2, 0, 1).float()[None] / 255.0
        return F.interpolate(x, (SIZE, SIZE), mode="bilinear", align_corners=False)[0]

    def forward_features(self, batch):
        return {FEATURES: self.model.encoder(batch)}

    def meta(self, original_hw):
        return ImageMeta(tuple(original_hw), (SIZE, SIZE))

    def decode(self, feats, context, reference=False):
        return self.model.decoder(feats).mean((1, 2, 3))  # (V,): one number per row

    def upscale(self, out, meta):
        return out  # a number has no size

    def feature_module(self):
        return self.model.encoder


@register_family
class ToyFamily(Family):
    name, label = "toy", "Toy"
    backend = ToyBackend
    block_backend = BlockBackend

    def owns(self, model):
        return isinstance(model, ToyNet)

    def patch(self, model, pairs):
        return ReplacementPatch(model.encoder, pairs, CHANNELS)

    def output_channels(self, model):
        return CHANNELS

    def blocks(self, model):
        return None  # no split inside the encoder

    def block_width(self, blocks, block):
        raise NotImplementedError

    @staticmethod
    def block_remap(output, f):
        return apply_map(output, f)


register(ModelSpec("toy_net", ToyFamily.name, "a toy encoder (random weights)", ToyNet, test_size=True))
