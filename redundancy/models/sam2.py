"""SAM 2 / 2.1 (Hiera) family: built with the sam2 package's own configs and classes, and its backend.

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

import numpy as np
import torch
from sam2.build_sam import build_sam2
from sam2.utils.transforms import SAM2Transforms

from ..errors import ModelError
from ..prompts import Prompt
from ..replace import ReplacementPatch, apply_map
from .base import ALL_MASKS, FEATURES, Backend, DecodeContext, ImageMeta
from .decoder import predict_masks, to_subpixel
from .weights import WeightsInfo

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


class Sam2Backend(Backend):
    """SAM2 split at `image_embed` (+ no_mem_embed); high-res features ride along as decoder context."""

    def __init__(self, name: str, model: torch.nn.Module, weights: WeightsInfo, device: torch.device):
        self.name = name
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
        return ImageMeta(tuple(original_hw), (size, size))

    @torch.no_grad()
    def embed_prompts(self, prompts: list[Prompt], metas: list[ImageMeta]) -> DecodeContext:
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
        return DecodeContext(sparse.expand(n, -1, -1), dense.expand(n, -1, -1, -1))

    def decode(
        self, feats: torch.Tensor, context: DecodeContext, mask_choice: str = "single", reference: bool = False
    ) -> torch.Tensor:
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
        if mask_choice == ALL_MASKS:
            return masks
        if mask_choice == "best":
            return masks[v, iou[:, 1:].argmax(dim=1) + 1]
        if dec.dynamic_multimask_via_stability:
            return dec._dynamic_multimask_via_stability(masks, iou)[0][:, 0]
        return masks[:, 0]

    def batch_context(self, context: DecodeContext) -> DecodeContext:
        ctx = super().batch_context(context)
        for key, levels in (("high_res_0", 2), ("high_res_1", 1)):  # skips in the upscaler's sub-pixel order
            if key in ctx.extras:
                ctx.extras[key] = to_subpixel(ctx.extras[key], levels).contiguous()
        return ctx

    def upscale(self, logits: torch.Tensor, meta: ImageMeta) -> torch.Tensor:
        return self.transforms.postprocess_masks(logits[:, None], meta.original_hw)[:, 0]

    def feature_module(self) -> torch.nn.Module:
        return self.model.image_encoder

    image_path = IMAGE_PATH

    def patch(self, pairs: list[tuple[int, int]]) -> ReplacementPatch:
        return sam2_patch(self.model, pairs)


def backbone_from_trunk(model: torch.nn.Module, outputs: list[torch.Tensor]) -> dict:
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


def sam2_patch(model: torch.nn.Module, pairs: list[tuple[int, int]]) -> ReplacementPatch:
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
