"""Hugging Face `transformers` SAM checkpoints (`SamModel`) in segment_anything's layout, and their size.

`SamModel` keeps SAM's modules under other names (`vision_encoder.layers.N.layer_norm1` for
`image_encoder.blocks.N.norm1`, `mask_embed.conv1` for `mask_downscaling.0`, ...). `to_segment_anything`
renames every key by the rules below, so a transformers checkpoint (full, a partial fine-tune,
or a peft LoRA adapter) loads into the same `segment_anything` classes as Meta's files, and
`infer_config` reads the encoder's size from the tensors.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from ..errors import WeightsError

# (pattern, replacement) applied in order to each key; the first that matches renames it.
RULES: tuple[tuple[str, str], ...] = (
    (r"^shared_image_embedding\.positional_embedding$", "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"),
    (r"^vision_encoder\.patch_embed\.projection\.", "image_encoder.patch_embed.proj."),
    (r"^vision_encoder\.layers\.(\d+)\.layer_norm([12])\.", r"image_encoder.blocks.\1.norm\2."),
    (r"^vision_encoder\.layers\.(\d+)\.", r"image_encoder.blocks.\1."),
    (r"^vision_encoder\.neck\.conv1\.", "image_encoder.neck.0."),
    (r"^vision_encoder\.neck\.layer_norm1\.", "image_encoder.neck.1."),
    (r"^vision_encoder\.neck\.conv2\.", "image_encoder.neck.2."),
    (r"^vision_encoder\.neck\.layer_norm2\.", "image_encoder.neck.3."),
    (r"^vision_encoder\.", "image_encoder."),
    (r"^prompt_encoder\.mask_embed\.conv1\.", "prompt_encoder.mask_downscaling.0."),
    (r"^prompt_encoder\.mask_embed\.layer_norm1\.", "prompt_encoder.mask_downscaling.1."),
    (r"^prompt_encoder\.mask_embed\.conv2\.", "prompt_encoder.mask_downscaling.3."),
    (r"^prompt_encoder\.mask_embed\.layer_norm2\.", "prompt_encoder.mask_downscaling.4."),
    (r"^prompt_encoder\.mask_embed\.conv3\.", "prompt_encoder.mask_downscaling.6."),
    (r"^prompt_encoder\.point_embed\.", "prompt_encoder.point_embeddings."),
    (r"^mask_decoder\.transformer\.layers\.(\d+)\.layer_norm(\d)\.", r"mask_decoder.transformer.layers.\1.norm\2."),
    (r"^mask_decoder\.transformer\.layer_norm_final_attn\.", "mask_decoder.transformer.norm_final_attn."),
    (r"^mask_decoder\.upscale_conv1\.", "mask_decoder.output_upscaling.0."),
    (r"^mask_decoder\.upscale_layer_norm\.", "mask_decoder.output_upscaling.1."),
    (r"^mask_decoder\.upscale_conv2\.", "mask_decoder.output_upscaling.3."),
    (r"^(mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head))\.proj_in\.", r"\1.layers.0."),
)
DUPLICATE = "prompt_encoder.shared_embedding.positional_embedding"  # tied to shared_image_embedding
MARKERS = ("vision_encoder.", "shared_image_embedding.")  # keys only a transformers SamModel has
PEFT_PREFIX = "base_model.model."


def is_transformers_sam(state: dict) -> bool:
    """Whether a state dict (or a peft adapter over one) uses transformers' SamModel names."""
    return any(k.removeprefix(PEFT_PREFIX).startswith(MARKERS) for k in state)


def _mlp_depths(keys: list[str]) -> dict[str, int]:
    """Hidden layer count of each transformers SamFeedForward (proj_in, layers.*, proj_out)."""
    depth: dict[str, int] = {}
    for k in keys:
        m = re.match(r"^(mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head))\.layers\.(\d+)\.", k)
        if m:
            depth[m.group(1)] = max(depth.get(m.group(1), 0), int(m.group(2)) + 1)
    return depth


def rename(key: str, depths: dict[str, int]) -> str:
    """One transformers SamModel key -> segment_anything's name for it."""
    m = re.match(
        r"^(mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head))\.(layers\.(\d+)|proj_out)\.(.*)$", key
    )
    if m:  # hidden layers shift by one (proj_in is layers.0), proj_out is the last
        index = int(m.group(3)) + 1 if m.group(3) is not None else depths.get(m.group(1), 1) + 1
        return f"{m.group(1)}.layers.{index}.{m.group(4)}"
    for pattern, repl in RULES:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    return key


def to_segment_anything(state: dict[str, torch.Tensor], alpha: dict[str, float] | None = None) -> dict:
    """A transformers SamModel state dict (or peft LoRA adapter on one) renamed to segment_anything's keys.

    peft's `<module>.lora_A.weight` / `.lora_B.weight` become `<module>.lora_A` / `.lora_B`, with the
    adapter's `lora_alpha` (from `alpha`, per module or "*") as `<module>.lora_alpha`: the form
    `finetuned.apply_finetuned` merges.
    """
    state = {k.removeprefix(PEFT_PREFIX): v for k, v in state.items()}
    dup = state.pop(DUPLICATE, None)
    shared = state.get("shared_image_embedding.positional_embedding")
    if dup is not None and shared is not None and not torch.equal(dup, shared):
        raise WeightsError("this SamModel checkpoint has two different positional embeddings; it is not a SAM.")
    if dup is not None and shared is None:
        state["shared_image_embedding.positional_embedding"] = dup
    lora = {}
    for k in list(state):
        m = re.match(r"^(.*)\.(lora_[AB])(?:\.default)?\.weight$", k)
        if m:
            lora[f"{m.group(1)}.{m.group(2)}"] = state.pop(k)
    state.update(lora)
    depths = _mlp_depths(list(state))
    out = {}
    for k, v in state.items():
        suffix = next((s for s in (".lora_A", ".lora_B") if k.endswith(s)), "")
        if suffix:  # rename the module the adapter belongs to, through its weight's key
            out[rename(k.removesuffix(suffix) + ".weight", depths).removesuffix(".weight") + suffix] = v
        else:
            out[rename(k, depths)] = v
    for k in [k for k in out if k.endswith(".lora_A")]:
        module = k[: -len(".lora_A")]
        a = (alpha or {}).get(module, (alpha or {}).get("*"))
        if a is not None:
            out[f"{module}.lora_alpha"] = torch.tensor(float(a))
    return out


def peft_alpha(adapter: Path) -> dict[str, float] | None:
    """{"*": lora_alpha} from the adapter_config.json peft writes next to an adapter file, if there is one."""
    config = Path(adapter).with_name("adapter_config.json")
    if not config.is_file():
        return None
    try:
        data = json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise WeightsError(f"{config.name}: not valid JSON ({e}); restore the file peft wrote.") from None
    alpha = data.get("lora_alpha") if isinstance(data, dict) else None
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, int | float)):
        raise WeightsError(f"{config.name}: lora_alpha {alpha!r} is not a number; restore the file peft wrote.")
    return {"*": float(alpha)} if alpha is not None else None


def infer_config(state: dict[str, torch.Tensor]) -> dict:
    """The SAM encoder size a segment_anything-layout state dict was made for, read from its tensors: the
    keyword arguments of `sam.SamConfig`.

    Width from the patch embedding, depth from the block count, head size from the relative
    position tables (2 x window - 1 rows: global blocks have 2 x grid - 1), input from pos_embed.
    """
    try:
        embed = state["image_encoder.patch_embed.proj.weight"].shape[0]
        grid = state["image_encoder.pos_embed"].shape[1]
        blocks = sorted({int(k.split(".")[2]) for k in state if k.startswith("image_encoder.blocks.")})
        rel = [state[f"image_encoder.blocks.{b}.attn.rel_pos_h"] for b in blocks]
    except KeyError as e:
        raise WeightsError(f"the checkpoint has no SAM image encoder tensor {e}; is it a SAM checkpoint?") from None
    head_dim = rel[0].shape[1]
    global_blocks = tuple(b for b, r in zip(blocks, rel) if r.shape[0] == 2 * grid - 1)
    local = [r.shape[0] for r in rel if r.shape[0] != 2 * grid - 1]
    window = (local[0] + 1) // 2 if local else 14
    return dict(
        embed_dim=embed, depth=len(blocks), num_heads=embed // head_dim, global_attn_indexes=global_blocks,
        image_size=grid * 16, window_size=window,
    )  # fmt: skip
