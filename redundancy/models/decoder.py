"""SAM / SAM2 mask decoder, re-associated for batched scoring (same weights, same maths).

Every cross-attention in the mask decoder pairs a handful of tokens (T, ~5-7) with thousands of
image positions (N = h * w). The package code projects all N image tokens to q/k/v and back
(four N x C x C/2 products per attention); regrouping the products around the small token side
does the same sums with two N x C x (heads * T) products instead:

- token -> image: q_h k_h^T = (q_h W_k,h) x^T + (a constant per query, which softmax ignores),
  and A_h (x W_v,h^T + b_v,h) = (A_h x) W_v,h^T + b_v,h because softmax rows sum to 1.
- image -> token: q_h k_h^T = x (W_q,h^T k_h^T) + b_q,h k_h^T, and the output projection folds
  into the values: sum_h A_h (v_h W_o,h^T).

About 2.3x fewer transformer FLOPs for a 64 x 64 grid, and no N x C copies for head reshapes.
The output upscaling's 2x2 stride-2 deconvolutions run as matrix products in a channels-last
sub-pixel layout (`upscale_masks`). Results equal the package's modules up to float rounding
(tests/models/test_decoder.py); `Evaluator.stats_plain` keeps the package's own modules as the reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import torch
from torch import Tensor, nn

if TYPE_CHECKING:  # the two packages' own module classes (untyped packages: mypy reads them as Any)
    from sam2.modeling.sam import mask_decoder as sam2_mask_decoder
    from sam2.modeling.sam import transformer as sam2_transformer
    from segment_anything.modeling import mask_decoder as sam_mask_decoder
    from segment_anything.modeling import transformer as sam_transformer

    Attention: TypeAlias = sam_transformer.Attention | sam2_transformer.Attention
    TwoWayAttentionBlock: TypeAlias = sam_transformer.TwoWayAttentionBlock | sam2_transformer.TwoWayAttentionBlock
    TwoWayTransformer: TypeAlias = sam_transformer.TwoWayTransformer | sam2_transformer.TwoWayTransformer
    MaskDecoder: TypeAlias = sam_mask_decoder.MaskDecoder | sam2_mask_decoder.MaskDecoder


def _heads(attn: Attention) -> tuple[int, int]:
    """(heads, head dim) of a SAM / SAM2 `Attention` module."""
    return attn.num_heads, attn.internal_dim // attn.num_heads


def token_to_image(attn: Attention, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """`attn(q=q, k=k, v=v)` for token queries q (R, T, C) over image keys k, values v (R, N, C)."""
    heads, d = _heads(attn)
    r, t, _ = q.shape
    qh = attn.q_proj(q).view(r, t, heads, d).transpose(1, 2)  # (R, H, T, d)
    wk = attn.k_proj.weight.view(heads, d, -1)  # (H, d, C)
    g = (qh @ wk).reshape(r, heads * t, -1) * d**-0.5  # (R, H*T, C); k's bias is softmax-invariant
    a = torch.softmax(g @ k.transpose(1, 2), dim=-1)  # (R, H*T, N)
    p = (a @ v).view(r, heads, t, -1)  # (R, H, T, C): attention-weighted image tokens
    wv = attn.v_proj.weight.view(heads, d, -1)
    o = (p @ wv.transpose(1, 2)).transpose(1, 2).reshape(r, t, heads * d) + attn.v_proj.bias
    return attn.out_proj(o)


def image_to_token(attn: Attention, q: Tensor, k: Tensor, v: Tensor, base: Tensor) -> Tensor:
    """`base + attn(q=q, k=k, v=v)` for image queries q (R, N, C) over token keys k, values v (R, T, C)."""
    heads, d = _heads(attn)
    r, t, _ = k.shape
    kh = attn.k_proj(k).view(r, t, heads, d).transpose(1, 2)  # (R, H, T, d)
    wq = attn.q_proj.weight.view(heads, d, -1)  # (H, d, C)
    m = (kh @ wq).reshape(r, heads * t, -1) * d**-0.5  # (R, H*T, C)
    bias = (kh @ attn.q_proj.bias.view(heads, d, 1)).reshape(r, heads * t, 1) * d**-0.5
    s = torch.baddbmm(bias, m, q.transpose(1, 2))  # (R, H*T, N) scores, tokens before positions
    # Softmax over each head's T tokens; in this layout it vectorises over N (8x faster on CPU).
    a = torch.softmax(s.view(r, heads, t, -1), dim=2).view(r, heads * t, -1).transpose(1, 2)  # (R, N, H*T)
    vh = attn.v_proj(v).view(r, t, heads, d).transpose(1, 2)  # (R, H, T, d)
    wo = attn.out_proj.weight.view(-1, heads, d).permute(1, 2, 0)  # (H, d, C)
    vw = (vh @ wo).reshape(r, heads * t, -1)  # (R, H*T, C): values already through out_proj
    # Each head's weights sum to 1, so out_proj's bias rides along as bias / heads on every value.
    return torch.baddbmm(base, a, vw + attn.out_proj.bias / heads)


def _block(
    layer: TwoWayAttentionBlock, queries: Tensor, keys: Tensor, query_pe: Tensor, key_pe: Tensor
) -> tuple[Tensor, Tensor]:
    """`TwoWayAttentionBlock.forward` with re-associated cross-attentions."""
    if layer.skip_first_layer_pe:
        queries = layer.self_attn(q=queries, k=queries, v=queries)
    else:
        q = queries + query_pe
        queries = queries + layer.self_attn(q=q, k=q, v=queries)
    queries = layer.norm1(queries)
    keys_pe = keys + key_pe
    queries = layer.norm2(queries + token_to_image(layer.cross_attn_token_to_image, queries + query_pe, keys_pe, keys))
    queries = layer.norm3(queries + layer.mlp(queries))
    keys = layer.norm4(image_to_token(layer.cross_attn_image_to_token, keys_pe, queries + query_pe, queries, keys))
    return queries, keys


def two_way(transformer: TwoWayTransformer, image: Tensor, image_pe: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
    """`TwoWayTransformer.forward(image, image_pe, tokens)`: image (R, C, h, w), pe (1 or R, C, h, w)."""
    keys = image.flatten(2).transpose(1, 2).contiguous()  # (R, N, C); free for channels-last input
    pe = image_pe.flatten(2).transpose(1, 2)
    queries = tokens
    for layer in transformer.layers:
        queries, keys = _block(layer, queries, keys, tokens, pe)
    out = token_to_image(transformer.final_attn_token_to_image, queries + tokens, keys + pe, keys)
    return transformer.norm_final_attn(queries + out), keys


def _subpixel_weight(deconv: nn.ConvTranspose2d) -> tuple[Tensor, Tensor]:
    """A 2x2 stride-2 transposed conv as one matrix: (C_in, 4 * C_out) ordered (a, b, C_out), bias."""
    w = deconv.weight.permute(0, 2, 3, 1).reshape(deconv.in_channels, -1)
    assert deconv.bias is not None, "SAM's and SAM2's upscaling deconvolutions have biases"
    return w, deconv.bias.repeat(4)


def to_subpixel(x: Tensor, levels: int) -> Tensor:
    """(R, c, h * 2^L, w * 2^L) -> (R, h * w * 4^L, c), pixels in the order `upscale_masks` makes them.

    Already (R, P, c) tensors pass through, so callers can lay skips out once per image.
    """
    if x.dim() == 3:
        return x
    r, c, hh, ww = x.shape
    h, w = hh >> levels, ww >> levels
    x = x.view(r, c, h, *[2] * levels, w, *[2] * levels)
    rows, cols = list(range(3, 3 + levels)), list(range(4 + levels, 4 + 2 * levels))
    order = [0, 2, 3 + levels] + [d for pair in zip(rows, cols) for d in pair] + [1]
    return x.permute(order).reshape(r, -1, c)


def _from_subpixel(x: Tensor, h: int, w: int, levels: int) -> Tensor:
    """Inverse of `_to_subpixel` for (R, h * w * 4^L, M) -> (R, M, h * 2^L, w * 2^L)."""
    r, _, m = x.shape
    x = x.view(r, h, w, *[2] * (2 * levels), m)
    rows, cols = list(range(3, 3 + 2 * levels, 2)), list(range(4, 4 + 2 * levels, 2))
    return x.permute([0, 3 + 2 * levels, 1, *rows, 2, *cols]).reshape(r, m, h << levels, w << levels)


def upscale_masks(
    upscaling: nn.Sequential, keys: Tensor, hw: tuple[int, int], hyper: Tensor, skips: list[Tensor] | None = None
) -> Tensor:
    """Mask logits (R, M, 4h, 4w) from transformer image tokens (R, h*w, C) and hypernetwork rows (R, M, c).

    `output_upscaling` (deconv, LayerNorm2d, act, deconv, act) and the final `hyper @ upscaled` product
    in a channels-last sub-pixel layout: each 2x2 stride-2 deconv is one matrix product, and only
    the small mask tensor is rearranged to image layout. `skips` are SAM2's high-res features
    [(R, c2, 4h, 4w), (R, c1, 2h, 2w)] (or already `to_subpixel`), added before each activation.
    """
    ln1: Any  # the packages' LayerNorm2d (untyped)
    dc1, ln1, act1, dc2, act2 = upscaling
    assert isinstance(dc1, nn.ConvTranspose2d) and isinstance(dc2, nn.ConvTranspose2d)
    r = keys.shape[0]
    w1, b1 = _subpixel_weight(dc1)
    y = torch.addmm(b1, keys.reshape(-1, keys.shape[-1]), w1).view(r, -1, dc1.out_channels)  # (R, 4N, c1)
    if skips is not None:
        y = y + to_subpixel(skips[1], 1)
    y = act1(nn.functional.layer_norm(y, (dc1.out_channels,), ln1.weight, ln1.bias, ln1.eps))
    w2, b2 = _subpixel_weight(dc2)
    y = torch.addmm(b2, y.view(-1, dc2.in_channels), w2).view(r, -1, dc2.out_channels)  # (R, 16N, c2)
    if skips is not None:
        y = y + to_subpixel(skips[0], 2)
    return _from_subpixel(act2(y) @ hyper.transpose(1, 2), *hw, 2)


def predict_masks(
    decoder: MaskDecoder, image: Tensor, image_pe: Tensor, tokens: Tensor, first: int, skips: list[Tensor] | None = None
) -> tuple[Tensor, Tensor]:
    """A SAM / SAM2 `MaskDecoder.predict_masks` body, one row per (image, prompt): (masks, tokens out).

    image (R, C, h, w) already holds the dense prompt embedding; tokens (R, T, C) are the output
    tokens followed by the sparse prompt tokens; `first` indexes the first mask token.
    """
    hs, keys = two_way(decoder.transformer, image, image_pe, tokens)
    mask_tokens = hs[:, first : first + decoder.num_mask_tokens]
    hyper = torch.stack([mlp(mask_tokens[:, i]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)], 1)
    h, w = image.shape[-2:]
    return upscale_masks(decoder.output_upscaling, keys, (h, w), hyper, skips), hs
