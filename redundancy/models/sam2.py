"""SAM 2 / 2.1 (Hiera): built with the sam2 package's own configs and classes, its backend, the patch hook, the
Hiera block split for `--layer`, and its registry entries.

Conventions, following `SAM2ImagePredictor` (the parity reference):
- Replacement acts on `image_embed` (B, 256, 64, 64 at 1024 px), the last encoder output the mask
  decoder consumes, *after* the predictor adds `no_mem_embed` to it. The two high-resolution skip
  features (`high_res_feats`, 32 and 64 channels) pass through unchanged as decoder context.
- With no prompt the image predictor sends no sparse token (the -1 padding point belongs to
  SAM2Base's video/training path, which this tool does not use).
- Boxes become two corner points labelled 2 and 3, as in the predictor.
- Object-score logits are ignored, as the image predictor does; single-mask output keeps SAM2's
  dynamic fallback to the most stable multimask output when the config enables it.
- Each decoder row is its own (image, prompt) pair (`repeat_image=False`), so pairs x images batch.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from sam2.build_sam import build_sam2
from sam2.modeling.sam2_base import SAM2Base
from sam2.utils.transforms import SAM2Transforms

from ..data.prompts import Prompt
from ..errors import ModelError
from ..replace import ReplacementPatch, apply_map
from ..tasks import SEGMENT
from ._registry import Family, ModelSpec, register, register_family
from ._weights import WeightsInfo
from .base import FEATURES, DecodeContext, FamilyHooks, ImageMeta, extras_of
from .decoder import predict_masks, to_subpixel
from .layers import BlockBackend, remap_channels_last
from .prompted import ALL_MASKS, PromptContext, PromptedBackend, channels_last

CONFIGS = {
    "t": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "s": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "b+": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "l": "configs/sam2.1/sam2.1_hiera_l.yaml",
}
SAM2_0_CONFIGS = {k: f"configs/sam2/sam2_hiera_{k}.yaml" for k in CONFIGS}
# Real Hiera-T classes at test size: 128 px input (8 x 8 image_embed), stages [1, 1, 2, 1].
TINY_OVERRIDES = [
    "++model.image_size=128",
    "++model.image_encoder.trunk.stages=[1,1,2,1]",
    "++model.image_encoder.trunk.global_att_blocks=[3]",
]
# The demo model's base: the same tiny classes with a 32-wide Hiera trunk, so that its image path
# (trunk, FPN neck, prompt encoder, SAM2's own 256-channel mask decoder) fits a ~10 MB fp16 file.
NARROW_OVERRIDES = [
    *TINY_OVERRIDES,
    "++model.image_encoder.trunk.embed_dim=32",
    "++model.image_encoder.neck.backbone_channel_list=[256,128,64,32]",
]
# What image segmentation uses; the rest of SAM2Base (memory attention and encoder, object pointers) is
# the video path, never called here.
IMAGE_PATH = ("image_encoder.", "sam_prompt_encoder.", "sam_mask_decoder.", "no_mem_embed")


def build(config: str, overrides: list[str] | None = None) -> torch.nn.Module:
    """A SAM2Base from the sam2 package's hydra config (random init; weights are loaded separately)."""
    return build_sam2(config, ckpt_path=None, device="cpu", mode="eval", hydra_overrides_extra=overrides or [])


class Sam2Backend(PromptedBackend):
    """SAM2 split at `image_embed` (+ no_mem_embed); high-res features ride along as decoder context."""

    tasks = (SEGMENT,)  # its own mask decoder: segmentation only

    model: SAM2Base

    def __init__(
        self,
        name: str,
        model: SAM2Base,
        weights: WeightsInfo,
        device: torch.device,
        *,
        family: FamilyHooks | None = None,
    ):
        self.name, self.family = name, family
        self.model = model.to(device).eval().requires_grad_(False)
        self.weights = weights
        self.device = device
        self.channels = model.sam_prompt_encoder.embed_dim
        size = model.image_size
        self.transforms = SAM2Transforms(resolution=size, mask_threshold=0.0, max_hole_area=0, max_sprinkle_area=0)
        self.feat_sizes = [(size // 4, size // 4), (size // 8, size // 8), (size // 16, size // 16)]
        self.model_input_pixels = 0  # masks go straight from low-res to the original size
        self._pe = model.sam_prompt_encoder.get_dense_pe().to(device)

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        return self.transforms(image).to(self.device)

    def forward_features(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.from_backbone(self.model.forward_image(batch))

    def from_backbone(self, backbone_out: dict) -> dict[str, torch.Tensor]:
        """SAM2's backbone output -> {FEATURES: image_embed + no_mem_embed, the two high-res skips}."""
        _, vision_feats, _, _ = self.model._prepare_backbone_features(backbone_out)
        if self.model.directly_add_no_mem_embed:
            vision_feats[-1] = vision_feats[-1] + self.model.no_mem_embed
        b = vision_feats[-1].shape[1]
        feats = [f.permute(1, 2, 0).reshape(b, -1, *hw) for f, hw in zip(vision_feats, self.feat_sizes)]
        return {"high_res_0": feats[0], "high_res_1": feats[1], FEATURES: feats[2]}

    def meta(self, original_hw: tuple[int, int]) -> ImageMeta:
        size = self.model.image_size
        h, w = original_hw
        return ImageMeta((h, w), (size, size))

    @torch.no_grad()
    def embed_prompts(self, prompts: list[Prompt], metas: list[ImageMeta]) -> PromptContext:
        kinds = {("box" if p.box else "point" if p.point else "none") for p in prompts}
        if len(kinds) > 1:
            raise ModelError(f"all prompts in one batch must be of one kind, got {sorted(kinds)}.")
        points = None
        if prompts and (prompts[0].box or prompts[0].point):
            raw = [
                np.array(p.box, np.float32).reshape(2, 2) if p.box else np.array([p.point], np.float32) for p in prompts
            ]
            coords = torch.stack(
                [
                    self.transforms.transform_coords(torch.as_tensor(r, device=self.device), True, m.original_hw)
                    for r, m in zip(raw, metas)
                ]
            )
            label = [2, 3] if prompts[0].box else [1]
            labels = torch.tensor([label] * len(prompts), dtype=torch.int, device=self.device)
            points = (coords, labels)
        sparse, dense = self.model.sam_prompt_encoder(points=points, boxes=None, masks=None)
        n = len(prompts)
        return PromptContext(sparse.expand(n, -1, -1), dense.expand(n, -1, -1, -1))

    def decode(self, feats: torch.Tensor, context: DecodeContext, reference: bool = False) -> torch.Tensor:
        assert isinstance(context, PromptContext), "SAM2 decodes with its prompts (Backend.context)"
        dec = self.model.sam_mask_decoder
        hr = [context.extras["high_res_0"], context.extras["high_res_1"]] if dec.use_high_res_features else None
        if reference:  # the package's own MaskDecoder.predict_masks
            masks, iou, _, _ = dec.predict_masks(
                feats, self._pe, context.sparse, context.dense, repeat_image=False, high_res_features=hr
            )  # masks (V, 4, 4h, 4w)
        else:
            s = int(dec.pred_obj_scores)  # an object-score token comes first when the model predicts one
            own = [dec.obj_score_token.weight] if s else []
            out_tokens = torch.cat([*own, dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
            tokens = torch.cat([out_tokens.expand(len(feats), -1, -1), context.sparse], dim=1)
            masks, hs = predict_masks(dec, feats + context.dense, self._pe, tokens, first=s + 1, skips=hr)
            iou = dec.iou_prediction_head(hs[:, s])
        v = torch.arange(len(masks), device=masks.device)
        if context.choice == ALL_MASKS:
            return masks
        if context.choice == "best":
            return masks[v, iou[:, 1:].argmax(dim=1) + 1]
        if dec.dynamic_multimask_via_stability:
            return dec._dynamic_multimask_via_stability(masks, iou)[0][:, 0]
        return masks[:, 0]

    def batch_context(self, context: DecodeContext) -> DecodeContext:
        ctx = channels_last(context)
        for key, levels in (("high_res_0", 2), ("high_res_1", 1)):  # skips in the upscaler's sub-pixel order
            if key in ctx.extras:
                ctx.extras[key] = to_subpixel(ctx.extras[key], levels).contiguous()
        return ctx

    def upscale(self, logits: torch.Tensor, meta: ImageMeta) -> torch.Tensor:
        return self.transforms.postprocess_masks(logits[:, None], meta.original_hw)[:, 0]

    def feature_module(self) -> torch.nn.Module:
        return self.model.image_encoder

    def decoder_module(self) -> torch.nn.Module:
        return self.model.sam_mask_decoder

    image_path = IMAGE_PATH


def backbone_from_trunk(model: SAM2Base, outputs: list[torch.Tensor]) -> dict:
    """What `model.forward_image` returns, from the Hiera trunk's stage outputs: the package's own steps after
    the trunk (FPN neck, scalp, the decoder's high-res projections), for a trunk resumed after a block."""
    encoder = model.image_encoder
    features, pos = encoder.neck(outputs)
    if encoder.scalp > 0:
        features, pos = features[: -encoder.scalp], pos[: -encoder.scalp]
    if model.use_high_res_features_in_sam:
        features[0] = model.sam_mask_decoder.conv_s0(features[0])
        features[1] = model.sam_mask_decoder.conv_s1(features[1])
    return {"vision_features": features[-1], "vision_pos_enc": pos, "backbone_fpn": features}


def sam2_patch(model: SAM2Base, pairs: list[tuple[int, int]]) -> ReplacementPatch:
    """Live patch for a SAM2 model (e.g. under your own SAM2ImagePredictor).

    The image encoder's lowest-resolution output X gets `no_mem_embed` (e) added later by the
    predictor; replacement is defined on X + e, so the hook writes (X + e)[:, f] - e.
    """
    e = model.no_mem_embed.reshape(1, -1, 1, 1) if model.directly_add_no_mem_embed else None

    def remap(out: dict, f: torch.Tensor) -> dict:
        x = out["vision_features"]
        y = apply_map(x, f) if e is None else apply_map(x + e, f) - e
        out["backbone_fpn"][-1] = out["vision_features"] = y
        return out

    return ReplacementPatch(model.image_encoder, pairs, model.sam_prompt_encoder.embed_dim, remap)


STAGE = "stage_"  # extras: the outputs of the stages that end before the split block


class HieraBlocks(BlockBackend):
    """SAM2's Hiera trunk split after block k; earlier stages' outputs are cached extras for the FPN neck."""

    model: SAM2Base
    base: Sam2Backend

    def _emits(self, i: int) -> bool:
        trunk = self.model.image_encoder.trunk
        return i == trunk.stage_ends[-1] or (i in trunk.stage_ends and trunk.return_interm_layers)

    def forward_features(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        trunk = self.model.image_encoder.trunk  # Hiera.forward, stopped after block k
        x = trunk.patch_embed(batch)
        x = x + trunk._get_pos_embed(x.shape[1:3])
        out: dict[str, torch.Tensor] = {}
        for i, blk in enumerate(self.blocks[: self.block + 1]):
            x = blk(x)
            if i < self.block and self._emits(i):
                out[f"{STAGE}{len(out)}"] = x.permute(0, 3, 1, 2)
        return {**out, FEATURES: x.permute(0, 3, 1, 2)}

    def rest(self, feats: torch.Tensor, extras: dict | None = None) -> dict[str, torch.Tensor]:
        """Block-k features -> the SAM2 backend's features and high-res skips (plain layout)."""
        extras = extras or {}
        stages = sorted((k for k in extras if k.startswith(STAGE)), key=lambda k: int(k[len(STAGE) :]))
        outputs = [extras[k] for k in stages]
        if self._emits(self.block):
            outputs.append(feats)
        x = feats.permute(0, 2, 3, 1)
        for i in range(self.block + 1, len(self.blocks)):
            x = self.blocks[i](x)
            if self._emits(i):
                outputs.append(x.permute(0, 3, 1, 2))
        return self.base.from_backbone(backbone_from_trunk(self.model, outputs))

    def batch_context(self, context: DecodeContext) -> DecodeContext:
        return channels_last(context)  # stage extras stay as they are: the skips are made per row

    def decode(self, feats: torch.Tensor, context: DecodeContext, reference: bool = False) -> torch.Tensor:
        out = self.rest(feats, context.extras)
        ctx = replace(context, extras=extras_of(out))
        ctx = ctx if reference else self.base.batch_context(ctx)  # the batched decoder's skip layout
        return self.base.decode(out[FEATURES], ctx, reference)


@register_family
class Sam2Family(Family):
    """SAM2: `image_embed` after `no_mem_embed` (the tensor SAM2's image predictor decodes) is what the search edits."""

    name = "sam2"
    label = "SAM2"
    backend = Sam2Backend
    block_backend = HieraBlocks
    block_remap = staticmethod(remap_channels_last)

    def owns(self, model):
        return hasattr(model, "sam_mask_decoder") and hasattr(model, "no_mem_embed")

    def patch(self, model, pairs):
        return sam2_patch(model, pairs)

    def output_channels(self, model):
        return model.sam_prompt_encoder.embed_dim

    def blocks(self, model):
        trunk = getattr(getattr(model, "image_encoder", None), "trunk", None)  # SAM2Base's Hiera
        return trunk.blocks if trunk is not None and hasattr(trunk, "stage_ends") else None

    def block_width(self, blocks, block):
        return blocks[block].dim_out


SAM2_1_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
SAM2_0_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/072824/"
_SIZES = (
    ("t", "tiny", "Hiera-T (39M)"),
    ("s", "small", "Hiera-S (46M)"),
    ("b+", "base_plus", "Hiera-B+ (81M)"),
    ("l", "large", "Hiera-L (224M)"),
)
_SAM2_1_SHA256 = {  # published sha256 of the official SAM 2.1 checkpoints
    "t": "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69",
    "s": "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38",
    "b+": "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5",
    "l": "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318",
}


def _sam2(
    name: str,
    description: str,
    config: str,
    file: str | None,
    sha256: str | None = None,
    base_url: str = SAM2_1_URL,
    overrides: list[str] | None = None,
    hub: str | None = None,
) -> ModelSpec:
    url = base_url + file if file else None
    build_fn = lambda: build(config, overrides)  # noqa: E731
    return ModelSpec(name, "sam2", description, build_fn, url, sha256, hub=hub, test_size=file is None)


register(
    *(
        _sam2(
            f"sam2_hiera_{k}",
            f"SAM 2.1 {label}, official Meta checkpoint",
            CONFIGS[k],
            f"sam2.1_hiera_{file}.pt",
            _SAM2_1_SHA256[k],
            hub=f"facebook/sam2.1-hiera-{file.replace('_', '-')}/sam2.1_hiera_{file}.pt",
        )
        for k, file, label in _SIZES
    ),
    *(
        _sam2(
            f"sam2.0_hiera_{k}",
            f"SAM 2 (July 2024) {label}; no published sha256, the file's hash is recorded",
            SAM2_0_CONFIGS[k],
            f"sam2_hiera_{file}.pt",
            None,
            SAM2_0_URL,
            hub=f"facebook/sam2-hiera-{file.replace('_', '-')}/sam2_hiera_{file}.pt",
        )
        for k, file, label in _SIZES
    ),
    _sam2(
        "sam2_tiny",
        "SAM 2.1 Hiera classes at test size (128 px, 5 blocks); no official weights",
        CONFIGS["t"],
        None,
        overrides=TINY_OVERRIDES,
    ),
    _sam2(
        "sam2_tiny_narrow",
        "sam2_tiny with a 32-wide Hiera trunk (the SAM2 demo model's base); no official weights",
        CONFIGS["t"],
        None,
        overrides=NARROW_OVERRIDES,
    ),
)
