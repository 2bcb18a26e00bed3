"""SAM (segment-anything): builders from the package's own classes, its backend, its checkpoints (Meta's and
transformers' `SamModel`), the patch hook, the ViT block split for `--layer`, and its registry entries."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
from segment_anything.utils.transforms import ResizeLongestSide

from ..data.prompts import Prompt
from ..errors import ModelError
from ..replace import ReplacementPatch, apply_map
from ..tasks import SEGMENT
from ._registry import Family, ModelSpec, register, register_family
from ._weights import WeightsInfo
from .base import FEATURES, DecodeContext, FamilyHooks, ImageMeta
from .decoder import predict_masks
from .hf_sam import infer_config, is_transformers_sam, peft_alpha, to_segment_anything
from .layers import BlockBackend, remap_channels_last
from .prompted import ALL_MASKS, PromptContext, PromptedBackend

PROMPT_DIM = 256  # the neck's output channels: C in the paper


@dataclass(frozen=True)
class SamConfig:
    """Encoder size knobs; the prompt encoder and mask decoder are SAM's own at every size."""

    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]
    image_size: int = 1024
    window_size: int = 14


SAM_CONFIGS = {
    "sam_vit_b": SamConfig(768, 12, 12, (2, 5, 8, 11)),
    "sam_vit_l": SamConfig(1024, 24, 16, (5, 11, 17, 23)),
    "sam_vit_h": SamConfig(1280, 32, 16, (7, 15, 23, 31)),
    # Same classes, two encoder blocks and a 128 px input (8 x 8 feature grid): for tests and CPU demos.
    "sam_tiny": SamConfig(96, 2, 2, (1,), image_size=128, window_size=4),
}


def build_sam(cfg: SamConfig) -> Sam:
    """A SAM model with the given encoder size, mirroring segment_anything.build_sam._build_sam."""
    grid = cfg.image_size // 16
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=cfg.depth,
            embed_dim=cfg.embed_dim,
            img_size=cfg.image_size,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=cfg.num_heads,
            patch_size=16,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=cfg.global_attn_indexes,
            window_size=cfg.window_size,
            out_chans=PROMPT_DIM,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=PROMPT_DIM,
            image_embedding_size=(grid, grid),
            input_image_size=(cfg.image_size, cfg.image_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=PROMPT_DIM, mlp_dim=2048, num_heads=8),
            transformer_dim=PROMPT_DIM,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return sam.eval()


class SamBackend(PromptedBackend):
    """SAM split at `image_encoder` output (`image_embeddings`, (B, 256, 64, 64) at full size)."""

    tasks = (SEGMENT,)  # its own mask decoder: segmentation only

    model: Sam

    def __init__(
        self, name: str, model: Sam, weights: WeightsInfo, device: torch.device, *, family: FamilyHooks | None = None
    ):
        self.name, self.family = name, family
        self.model = model.to(device).eval().requires_grad_(False)
        self.weights = weights
        self.device = device
        self.channels = PROMPT_DIM
        self.transform = ResizeLongestSide(model.image_encoder.img_size)
        self.model_input_pixels = model.image_encoder.img_size**2  # postprocess_masks goes through it
        self._pe = self.model.prompt_encoder.get_dense_pe()  # (1, C, h, w), image independent

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        resized = self.transform.apply_image(image)  # the predictor's exact resize, then normalise and pad
        x = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).contiguous()
        return self.model.preprocess(x[None].float())[0]

    def forward_features(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return {FEATURES: self.model.image_encoder(batch)}

    def meta(self, original_hw: tuple[int, int]) -> ImageMeta:
        h, w = original_hw
        input_h, input_w = self.transform.get_preprocess_shape(h, w, self.transform.target_length)
        return ImageMeta((h, w), (input_h, input_w))

    @torch.no_grad()
    def embed_prompts(self, prompts: list[Prompt], metas: list[ImageMeta]) -> PromptContext:
        kinds = {("box" if p.box else "point" if p.point else "none") for p in prompts}
        if len(kinds) > 1:
            raise ModelError(f"all prompts in one batch must be of one kind, got {sorted(kinds)}.")
        points = boxes = None
        if prompts and prompts[0].box:
            raw = [self.transform.apply_boxes(np.array([p.box]), m.original_hw) for p, m in zip(prompts, metas)]
            boxes = torch.as_tensor(np.concatenate(raw), dtype=torch.float, device=self.device)
        elif prompts and prompts[0].point:
            raw = [self.transform.apply_coords(np.array([p.point]), m.original_hw) for p, m in zip(prompts, metas)]
            coords = torch.as_tensor(np.stack(raw), dtype=torch.float, device=self.device)  # (B, 1, 2)
            points = (coords, torch.ones(coords.shape[:2], dtype=torch.int, device=self.device))
        sparse, dense = self.model.prompt_encoder(points=points, boxes=boxes, masks=None)
        n = len(prompts)
        return PromptContext(sparse.expand(n, -1, -1), dense.expand(n, -1, -1, -1))

    def decode(self, feats: torch.Tensor, context: DecodeContext, reference: bool = False) -> torch.Tensor:
        assert isinstance(context, PromptContext), "SAM decodes with its prompts (Backend.context)"
        # MaskDecoder.predict_masks repeats each image once per prompt (B images x T prompt rows);
        # here every row is its own (features, prompt) pair, so the same modules run without the repeat.
        dec = self.model.mask_decoder
        v = feats.shape[0]
        out_tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
        tokens = torch.cat([out_tokens.expand(v, -1, -1), context.sparse], dim=1)
        src = feats + context.dense
        if reference:  # the package's own modules, as MaskDecoder.predict_masks runs them
            b, c, h, w = src.shape
            hs, src = dec.transformer(src, self._pe.expand(v, -1, -1, -1), tokens)
            mask_tokens_out = hs[:, 1 : 1 + dec.num_mask_tokens]
            up = dec.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
            mlps = dec.output_hypernetworks_mlps
            hyper = torch.stack([mlp(mask_tokens_out[:, i]) for i, mlp in enumerate(mlps)], 1)
            masks = (hyper @ up.flatten(2)).view(b, -1, *up.shape[-2:])  # (V, 4, 4h, 4w)
        else:
            masks, hs = predict_masks(dec, src, self._pe, tokens, first=1)
        if context.choice == ALL_MASKS:
            return masks
        if context.choice == "single":
            return masks[:, 0]
        iou = dec.iou_prediction_head(hs[:, 0])[:, 1:]  # multimask outputs are tokens 1..3
        best = iou.argmax(dim=1) + 1
        return masks[torch.arange(v, device=masks.device), best]

    def upscale(self, logits: torch.Tensor, meta: ImageMeta) -> torch.Tensor:
        return self.model.postprocess_masks(logits[:, None], meta.input_hw, meta.original_hw)[:, 0]

    def feature_module(self) -> torch.nn.Module:
        return self.model.image_encoder

    def decoder_module(self) -> torch.nn.Module:
        return self.model.mask_decoder


class VitBlocks(BlockBackend):
    """SAM's ViT encoder split after block k: its output (B, D, h, w), D the ViT's width (768 for ViT-B, not the
    neck's 256); the rest is the later blocks and the neck."""

    model: Sam

    def forward_features(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        enc = self.model.image_encoder
        x = enc.patch_embed(batch)
        if enc.pos_embed is not None:
            x = x + enc.pos_embed
        for blk in self.blocks[: self.block + 1]:
            x = blk(x)
        return {FEATURES: x.permute(0, 3, 1, 2)}

    def rest(self, feats: torch.Tensor, extras: dict | None = None) -> torch.Tensor:
        x = feats.permute(0, 2, 3, 1)
        for blk in self.blocks[self.block + 1 :]:
            x = blk(x)
        return self.model.image_encoder.neck(x.permute(0, 3, 1, 2))


def _is_sammodel(model: torch.nn.Module) -> bool:
    """A transformers `SamModel` (its own module names)."""
    return all(hasattr(model, m) for m in ("vision_encoder", "prompt_encoder", "mask_decoder"))


def _remap_output(out, f: torch.Tensor):
    """A transformers vision encoder's output (ModelOutput or tuple; the embeddings first) under a channel map."""
    if isinstance(out, tuple):
        return (apply_map(out[0], f), *out[1:])
    out["last_hidden_state"] = apply_map(out["last_hidden_state"], f)  # ModelOutput: item and attribute
    return out


@register_family
class SamFamily(Family):
    """SAM: the image encoder's output (`image_embeddings`) is what the search edits."""

    name = "sam"
    label = "SAM"
    backend = SamBackend
    block_backend = VitBlocks
    block_remap = staticmethod(remap_channels_last)

    def read(self, state):
        if not is_transformers_sam(state):
            return state, None, None
        state = to_segment_anything(state)
        cfg = SamConfig(**infer_config(state))  # its size comes from its tensors
        name = next((n for n, c in SAM_CONFIGS.items() if c == cfg), None)
        return state, lambda: build_sam(cfg), name

    def finetune_converter(self, path):
        return lambda state: to_segment_anything(state, peft_alpha(path)) if is_transformers_sam(state) else state

    def owns(self, model):
        return isinstance(model, (Sam, ImageEncoderViT)) or _is_sammodel(model)

    def patch(self, model, pairs):
        if _is_sammodel(model):
            return ReplacementPatch(model.vision_encoder, pairs, PROMPT_DIM, remap=_remap_output)
        return ReplacementPatch(model.image_encoder if isinstance(model, Sam) else model, pairs, PROMPT_DIM)

    def output_channels(self, model):
        return PROMPT_DIM

    def blocks(self, model):
        encoder = model.image_encoder if isinstance(model, Sam) else model
        return encoder.blocks if isinstance(encoder, ImageEncoderViT) else None

    def block_width(self, blocks, block):
        return blocks[block].norm1.normalized_shape[0]


SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/"


def _sam(name: str, description: str, file: str | None = None, sha256: str | None = None, hub: str | None = None):
    cfg = SAM_CONFIGS[name]
    url = SAM_URL + file if file else None
    return ModelSpec(name, "sam", description, lambda: build_sam(cfg), url, sha256, hub=hub, test_size=file is None)


register(
    _sam(
        "sam_vit_b",
        "SAM ViT-B (91M), official Meta checkpoint",
        "sam_vit_b_01ec64.pth",
        "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
        "facebook/sam-vit-base/model.safetensors",
    ),
    _sam(
        "sam_vit_l",
        "SAM ViT-L (308M), official Meta checkpoint",
        "sam_vit_l_0b3195.pth",
        "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
        "facebook/sam-vit-large/model.safetensors",
    ),
    _sam(
        "sam_vit_h",
        "SAM ViT-H (636M), official Meta checkpoint",
        "sam_vit_h_4b8939.pth",
        "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
        "facebook/sam-vit-huge/model.safetensors",
    ),
    _sam("sam_tiny", "SAM classes at test size (2 blocks, 128 px, real 256-ch decoder); no official weights"),
)
