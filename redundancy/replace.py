"""Channel replacement as an index map over channels, applied to features or live on a model.

A map f of length C takes values in [0, C]: X'[:, c] = X[:, f[c]], and the value C means
"zero this channel". A set of pairs is applied at once, every read from the original X.

A pair may be soft, (i, j, a): X'[:, i] = (1 - a) X[:, i] + a X[:, j], a in (0, 1]; a = 1 is the paper's
replacement and is written as the plain pair (i, j). A soft set is the map plus an alpha per channel
(`ChannelMap`); hard sets keep the plain map, so their numbers stay bit-identical.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ReplacementError

EDIT_KINDS = ("zero", "swap", "replace", "scale")
MAX_SCALE = 10.0  # scale edits: s in [0, MAX_SCALE]
LAYER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")  # a layer given as a submodule's dotted name


@dataclass(frozen=True)
class Edit:
    """One ablation: zero channel i, swap i <-> j, replace i with j (i takes j's values), or scale i by s."""

    kind: str
    i: int
    j: int | None = None
    scale: float | None = None  # scale: X'_i = s X_i (0 zeroes it, as Table 1 does)

    def __str__(self) -> str:
        return {
            "zero": f"zero {self.i}",
            "swap": f"swap {self.i}<->{self.j}",
            "replace": f"replace {self.i}<-{self.j}",
            "scale": f"scale {self.i}x{self.scale:g}" if self.scale is not None else "",
        }[self.kind]


def parse_edits(kind: str, text: str) -> list[Edit]:
    """Edits of one kind from text: '6,216' for zero, '1:2,5:9' for swap / replace, '6:0.5' for scale (channel:
    factor); one edit per item."""
    edits = []
    for item in filter(None, (t.strip() for t in (text or "").split(","))):
        i, sep, j = item.partition(":")
        if (kind != "zero") != bool(sep):
            want = {"zero": "channels like 6,216", "scale": "channel:factor like 6:0.5"}.get(kind, "pairs like 3:7")
            raise ReplacementError(f"{kind} expects {want}, got '{item}'.")
        try:
            if kind == "scale":
                s = float(j)
                if not 0 <= s <= MAX_SCALE:
                    raise ReplacementError(f"scale factor {j} must be in [0, {MAX_SCALE:g}] (0 zeroes the channel).")
                edits.append(Edit(kind, int(i), scale=s))
            else:
                edits.append(Edit(kind, int(i), int(j) if sep else None))
        except ValueError:
            raise ReplacementError(f"'{item}' is not a channel number (integers like 6 or 216).") from None
    return edits


def parse_mixed(text: str, default: str = "zero") -> list[Edit]:
    """Edits of several kinds from one line, as `ablate`'s flags give them: groups split by ';', each `KIND items`
    or bare items of the `default` kind: 'zero 6,216; swap 1:2; scale 6:0.5' or '6,216'."""
    edits = []
    for group in filter(None, (g.strip() for g in (text or "").split(";"))):
        word, _, rest = group.partition(" ")
        kind, items = (word, rest) if word in EDIT_KINDS else (default, group)
        edits += parse_edits(kind, items)
    return edits


def check_channel(c: object, channels: int) -> int:
    """An in-range integer channel index, or a ReplacementError saying what is wrong."""
    if isinstance(c, bool) or not isinstance(c, int):
        try:
            if isinstance(c, float) and not c.is_integer():
                raise ValueError
            c = int(str(c).strip()) if not isinstance(c, float) else int(c)
        except ValueError:
            raise ReplacementError(f"channel '{c}' is not an integer; channels are 0..{channels - 1}.") from None
    if not 0 <= c < channels:
        raise ReplacementError(f"channel {c} is out of range; this model has channels 0..{channels - 1}.")
    return c


def check_alpha(a: object) -> float:
    """A soft pair's mixing weight in (0, 1], or a ReplacementError saying what is wrong."""
    if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 < float(a) <= 1:
        raise ReplacementError(f"alpha {a!r} must be a number in (0, 1]: the share of the target channel mixed in.")
    return float(a)


def validate_pairs(pairs: list[tuple], channels: int) -> list[tuple]:
    """Checked (source, target[, alpha]) pairs: in range, source != target, each source used once, alpha in
    (0, 1]; alpha 1 is dropped (the plain pair), so a hard set always reads as pairs of two."""
    out, seen = [], {}
    for pair in pairs:
        if len(pair) not in (2, 3):
            raise ReplacementError(f"pair {pair} must be (source, target) or (source, target, alpha).")
        i, j = check_channel(pair[0], channels), check_channel(pair[1], channels)
        a = check_alpha(pair[2]) if len(pair) == 3 else 1.0
        if i == j:
            raise ReplacementError(f"pair ({i}, {j}) replaces a channel with itself; source and target must differ.")
        if i in seen:
            raise ReplacementError(
                f"channel {i} is the source of two pairs ({i}<-{seen[i]} and {i}<-{j}); a channel can take only one "
                "other channel's values. Drop one of them."
            )
        seen[i] = j
        out.append((i, j) if a == 1.0 else (i, j, a))
    return out


def pair_dict(pair: tuple) -> dict:
    """A pair's JSON form: {"source", "target"}, plus "alpha" when soft."""
    return {"source": pair[0], "target": pair[1], **({"alpha": pair[2]} if len(pair) == 3 else {})}


def pair_of(item: dict) -> tuple:
    """A pair as a replacement set lists it, from its JSON form {"source", "target"[, "alpha"]}."""
    a = item.get("alpha", 1.0)
    return (item["source"], item["target"]) if a == 1.0 else (item["source"], item["target"], a)


def pair_rows(ij: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Pairs (P, 2) as rows (P, 3) of (source, target, alpha): the form scored candidates are ranked in."""
    return np.column_stack([ij, np.full(len(ij), alpha)])


def row_pair(row: np.ndarray) -> tuple:
    """A (source, target, alpha) row as a set lists it: (i, j), or (i, j, alpha) when soft."""
    i, j, a = int(row[0]), int(row[1]), float(row[2])
    return (i, j) if a == 1.0 else (i, j, a)


def pair_text(pair: tuple) -> str:
    """'216<-19', or '216<-19@0.5' for a soft pair."""
    return f"{pair[0]}<-{pair[1]}" + (f"@{pair[2]:g}" if len(pair) == 3 else "")


def identity_map(channels: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The map that changes nothing, (C,) long."""
    return torch.arange(channels, device=device)


def pairs_map(pairs: list[tuple], channels: int) -> torch.Tensor:
    """Map for a replacement set: every pair (i, j) makes channel i a copy of channel j (alphas: `set_map`)."""
    return set_map(pairs, channels)[0]


def set_map(pairs: list[tuple], channels: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A set's map (C,) and, when some pairs are soft, its alpha per channel (C,) (1 elsewhere; None for a hard
    set), from one validation of the pairs."""
    f, alpha = identity_map(channels), None
    for p in validate_pairs(pairs, channels):
        f[p[0]] = p[1]
        if len(p) == 3:
            alpha = torch.ones(channels) if alpha is None else alpha
            alpha[p[0]] = p[2]
    return f, alpha


def edit_map(edit: Edit, channels: int) -> torch.Tensor:
    """Map for one ablation edit."""
    if edit.kind not in EDIT_KINDS:
        raise ReplacementError(f"unknown edit '{edit.kind}'; use one of {', '.join(EDIT_KINDS)}.")
    f = identity_map(channels)
    i = check_channel(edit.i, channels)
    if edit.kind in ("zero", "scale"):  # scale: mixed with the zero channel (`edit_alpha`)
        f[i] = channels
        return f
    j = check_channel(edit.j, channels)
    if i == j:
        raise ReplacementError(f"{edit.kind} {i} with itself changes nothing; pick two different channels.")
    f[i] = j
    if edit.kind == "swap":
        f[j] = i
    return f


def edit_alpha(edit: Edit, channels: int) -> torch.Tensor | None:
    """Alphas (C,) of a scale edit (its channel mixes 1 - s of the zero channel in: s X_i); None for the others."""
    if edit.kind != "scale":
        return None
    alpha = torch.ones(channels)
    alpha[check_channel(edit.i, channels)] = 1.0 - edit.scale
    return alpha


def channel_map(pairs: list[tuple], channels: int) -> torch.Tensor | ChannelMap:
    """What a set applies: the plain index map for a hard set, a `ChannelMap` when some pairs are soft."""
    f, alpha = set_map(pairs, channels)
    return f if alpha is None else ChannelMap(f, alpha)


def set_maps(sets: list[list[tuple]], channels: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Maps (V, C) of several sets, with their alphas (V, C) when any pair is soft (else None)."""
    each = [set_map(p, channels) for p in sets]
    return torch.stack([f for f, _ in each]), stack_alphas([a for _, a in each], channels)


def stack_alphas(alphas: list[torch.Tensor | None], channels: int) -> torch.Tensor | None:
    """Per-variant alphas (V, C) for the evaluator (a hard variant's: ones); None when every variant is hard."""
    if all(a is None for a in alphas):
        return None
    return torch.stack([torch.ones(channels) if a is None else a for a in alphas])


@dataclass(frozen=True)
class ChannelMap:
    """A soft set: X'[:, c] = (1 - alpha[c]) X[:, c] + alpha[c] X[:, index[c]]."""

    index: torch.Tensor  # (C,) as a plain map
    alpha: torch.Tensor  # (C,) in [0, 1]

    def __len__(self) -> int:
        return len(self.index)


def pair_maps(pairs: torch.Tensor, channels: int) -> torch.Tensor:
    """Maps for single pairs, batched: pairs (P, 2) long -> maps (P, C)."""
    maps = identity_map(channels, pairs.device).repeat(len(pairs), 1)
    maps[torch.arange(len(pairs), device=pairs.device), pairs[:, 0]] = pairs[:, 1]
    return maps


def pair_alphas(pairs: torch.Tensor, alpha: float, channels: int) -> torch.Tensor:
    """Alphas (P, C) for single soft pairs (P, 2): `alpha` at each pair's source channel, 1 elsewhere."""
    alphas = torch.ones(len(pairs), channels, device=pairs.device)
    alphas[torch.arange(len(pairs), device=pairs.device), pairs[:, 0]] = alpha
    return alphas


def apply_maps(x: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Features of one image x (C, h, w) under V maps (V, C) -> (V, C, h, w)."""
    ext = torch.cat([x, x.new_zeros(1, *x.shape[1:])])  # index C reads this zero channel
    return ext[maps]


def apply_map(feats: torch.Tensor, f: torch.Tensor | ChannelMap) -> torch.Tensor:
    """Features (B, C, h, w) under one map (C,) or soft `ChannelMap` -> (B, C, h, w)."""
    if not isinstance(feats, torch.Tensor) or feats.dim() != 4 or feats.shape[1] != len(f):
        got = (
            f"{feats.shape[1]} channels"
            if isinstance(feats, torch.Tensor) and feats.dim() == 4
            else "no (B, C, h, w) map"
        )
        raise ReplacementError(
            f"the patched module's output has {got}, but the replacement set is for {len(f)} channels; "
            "patch the module whose output the pairs were found on (SAM: image_encoder; SAM2: use sam2_patch)."
        )
    ext = torch.cat([feats, feats.new_zeros(feats.shape[0], 1, *feats.shape[2:])], dim=1)
    if isinstance(f, ChannelMap):
        alpha = f.alpha.to(feats.device, feats.dtype)[None, :, None, None]
        return (1 - alpha) * feats + alpha * ext[:, f.index.to(feats.device)]  # alpha 1: the copy, exactly
    return ext[:, f.to(feats.device)]


class ReplacementPatch:
    """Zero-parameter patch: a forward hook that remaps the channels of a module's output.

    Use on SAM's `image_encoder` (or any `Backend.patch(pairs)`); works as a context manager:

        with ReplacementPatch(sam.image_encoder, [(216, 19)]):
            predictor.set_image(image)   # features now carry the replacement

    `remap(output, f)` adapts the hook to modules whose output is not a plain (B, C, h, w) tensor.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        pairs: list[tuple],
        channels: int = 256,
        remap: Callable[[Any, torch.Tensor], Any] | None = None,
    ):
        self.map = channel_map(pairs, channels)
        self.module = module
        self.remap = remap or apply_map
        self.handle = None
        self.attach()

    def attach(self) -> None:
        if self.handle is None:
            self.handle = self.module.register_forward_hook(lambda _m, _inp, out: self.remap(out, self.map))

    def remove(self) -> None:
        if self.handle is not None:
            self.handle.remove()
            self.handle = None

    def __enter__(self) -> ReplacementPatch:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


REPLACEMENTS_SHAPE = '{"pairs": [{"source": i, "target": j[, "alpha": a]}, ...]} as written by a search'


def parse_replacements(data: object, source: str, model: str | None = None, channels: int | None = None) -> list[tuple]:
    """Pairs (soft ones with their alpha) from a decoded replacements.json object, checked against the model
    and channel count.

    Channels must be JSON integers: 2.7, "3" or true are refused, never rounded or coerced.
    """
    if not isinstance(data, dict) or not isinstance(data.get("pairs"), list):
        raise ReplacementError(f"{source} is not a valid replacements.json: it needs {REPLACEMENTS_SHAPE}.")
    pairs = []
    for k, p in enumerate(data["pairs"]):
        if not isinstance(p, dict) or not {"source", "target"} <= p.keys():
            raise ReplacementError(f"{source}: pair {k} is {json.dumps(p)}; each pair needs {REPLACEMENTS_SHAPE}.")
        for key in ("source", "target"):
            if isinstance(p[key], bool) or not isinstance(p[key], int):
                raise ReplacementError(
                    f"{source}: pair {k} has {key} {json.dumps(p[key])}, which is not a whole channel number."
                )
        alpha = p.get("alpha", 1.0)
        if alpha is None or isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise ReplacementError(f"{source}: pair {k} has alpha {json.dumps(alpha)}; alpha is a number in (0, 1].")
        pairs.append((p["source"], p["target"], alpha))
    if model is not None and data.get("model") not in (None, model):
        raise ReplacementError(
            f"{source} was found for model '{data.get('model')}' but is being applied to '{model}'; "
            "channel meanings differ between models, so use the matching model."
        )
    if channels is not None and data.get("channels") not in (None, channels):
        raise ReplacementError(f"{source} is for {data.get('channels')} channels; this model has {channels}.")
    return validate_pairs(pairs, channels or 10**9)


def recorded_layer(data: dict, source: str) -> int | str | None:
    """The layer a decoded replacements.json records (None: the encoder output; an encoder block, or a timm model's
    stage or module name); one line for an odd value."""
    layer = data.get("layer")
    odd = isinstance(layer, bool) or not isinstance(layer, (int, str)) or (isinstance(layer, int) and layer < 0)
    if layer is not None and (odd or (isinstance(layer, str) and not LAYER_NAME.fullmatch(layer))):
        raise ReplacementError(
            f"{source} records layer {json.dumps(layer)}, which is neither a block number (0, 1, ...) nor a module "
            "name; use the replacements.json a search wrote."
        )
    return layer


def check_block(data: dict, source: str, layer: int | str | None) -> None:
    """Refuse a set found at another encoder block than the one it would be applied at (`layer`; None: the encoder
    output): the same channel numbers name other features there."""
    found = recorded_layer(data, source)
    if found != layer:

        def where(k: int | str | None) -> str:
            return "the encoder output" if k is None else f"encoder block {k}" if isinstance(k, int) else f"module {k}"

        raise ReplacementError(
            f"{source} was found at {where(found)}, but this model replaces at {where(layer)}, where its channel "
            f"numbers name other features; load the model at {where(found)} (the app's encoder block field: "
            f"{'empty' if found is None else found}) to apply it."
        )


def load_replacements(path: str | Path, model: str | None = None, channels: int | None = None) -> list[tuple]:
    """Pairs from a replacements.json file, checked against the model and channel count it is used with."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ReplacementError(f"{path}: no such file; pass the replacements.json of a finished search.") from None
    except (json.JSONDecodeError, UnicodeDecodeError, IsADirectoryError, RecursionError) as e:
        raise ReplacementError(
            f"{path.name} is not a valid replacements.json ({e.__class__.__name__}: {e}); "
            f"it needs {REPLACEMENTS_SHAPE}."
        ) from None
    return parse_replacements(data, path.name, model, channels)
