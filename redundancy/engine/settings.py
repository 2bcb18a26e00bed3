"""Frozen settings: what a session is (`SessionConfig`) and how one search runs on it (`SearchSettings`),
each checked when made, and the channel lists they name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch

from ..data.prompts import PROMPT_MODES
from ..errors import ConfigError, ReplacementError, RunError
from ..models.prompted import MASK_CHOICES
from ..replace import LAYER_NAME
from ..tasks import LOSS, PROTOCOLS, all_metrics, task_names
from .evaluator import PRECISIONS, check_rows
from .screening import DEFAULT_MODE, MODES, SearchMode, option_spec
from .select import SEARCH, SELECT_MODES

CPU_AUTO_STRIDE = 8  # on CPU, `auto` scores every 8th channel (32 of 256): minutes, not hours


def _choice(name: str, value: object, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"unknown {name} '{value}'; use one of {', '.join(map(str, allowed))}.")


def check_layer(layer: object) -> None:
    """A layer is an encoder block / stage index (0, 1, ...) or a submodule's dotted name (timm and module models)."""
    if layer is None or (isinstance(layer, int) and not isinstance(layer, bool) and layer >= 0):
        return
    if not isinstance(layer, str) or not LAYER_NAME.fullmatch(layer):
        raise ConfigError(
            f"layer must be an encoder block index (0, 1, ...) or a module name (layer4, stages.3), got {layer!r}."
        )


@dataclass(frozen=True)
class SessionConfig:
    """What a session is: model and weights, data and its split, prompts, protocol, device, decoder batches.

    Given to `Session.open`; written to config.json ("config") so the session can be rebuilt exactly.
    """

    model: str
    data: str
    checkpoint: str | None = None
    finetuned: str | None = None  # full / decoder-only / LoRA fine-tune applied over the base weights
    random_init: bool = False
    seed: int = 0  # random weights and the search / held-out split
    search_images: int = 50
    heldout_images: int | None = None  # None: every image not in the search set
    prompt: str = "none"
    protocol: str | None = None  # None: the dataset's convention
    mask_choice: str = "single"
    device: str = "auto"
    rows: int | None = None  # decoder rows per call; None: the device default
    precision: str = "fp32"  # fp32 | tf32 | bf16: how the batched decoder multiplies (`evaluator.PRECISIONS`)
    compile: bool = False  # torch.compile the fixed-shape decoder call (CUDA graphs on a GPU)
    task: str | None = None  # a task name (segment, classify, depth); None: the data's (and the model's) task
    head: str | None = None  # classify / depth: a head state dict (weight, bias); None: fit one on a head split
    head_images: int | None = None  # images of that head split; None: a third of the data
    layer: int | str | None = None  # replace at this encoder block / stage, or named module (None: encoder output)

    def __post_init__(self) -> None:
        self.check()  # frozen and checked when made: an unusable session config never exists

    def to_dict(self) -> dict:
        """The config as config.json records it."""
        return asdict(self)

    @classmethod
    def recorded(cls, record: dict, **override) -> SessionConfig:
        """The config a run recorded (config.json's "config"), with `override`; RunError if it is malformed."""
        known = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}
        try:
            return cls(**{**known, **override})
        except (TypeError, ValueError) as e:
            raise RunError(f"config.json's settings are malformed ({e}); rerun the search.") from None

    def check(self) -> None:
        """Raise a ConfigError naming the setting whose value no step could use."""
        _choice("prompt", self.prompt, PROMPT_MODES)
        _choice("mask choice", self.mask_choice, MASK_CHOICES)
        _choice("precision", self.precision, PRECISIONS)
        if not isinstance(self.compile, bool):
            raise ConfigError(f"compile is on or off (true / false), got {self.compile!r}.")
        if self.protocol is not None:
            _choice("protocol", self.protocol, PROTOCOLS)
        if self.task is not None:
            _choice("task", self.task, task_names())
        check_layer(self.layer)
        if self.head_images is not None and self.head_images < 1:
            raise ConfigError(f"head images must be at least 1 (got {self.head_images}).")
        if self.search_images < 1:
            raise ConfigError(f"search images must be at least 1 (got {self.search_images}); the paper uses 50.")
        if self.heldout_images is not None and self.heldout_images < 0:
            raise ConfigError(
                f"held-out images must be 0 (none) or more (got {self.heldout_images}); leave it unset for all."
            )
        check_rows(self.rows)


@dataclass(frozen=True)
class SearchSettings:
    """How one search runs on a session: metric, top N, channel scope, mode and its options, the selection rule.

    `options` are the search modes' own parameters by name (`screening.MODES[...].options`: taylor's
    `candidates`, halving's `halving_keep`, ...); a mode reads its own, with its defaults for those not given.
    """

    metric: str | None = None  # the task's score (None: its default, mIoU for segmentation) or "loss"
    top_n: int = 10
    sources: str = "auto"
    targets: str = "auto"
    mode: str = DEFAULT_MODE  # a registered search mode (exact; screening modes score only promising pairs exactly)
    options: Mapping[str, float] | tuple = ()  # the modes' options given (name -> value); stored sorted, frozen
    select: str = "search"  # search: the paper's best subset | cv, greedy: chosen by k-fold cross-validation
    folds: int = 5  # select cv / greedy: folds of the search set's images (objects)
    pool: int | None = None  # select greedy: candidate pairs (None: 4 x top N)
    alphas: str = ""  # soft replacement: alphas in (0, 1) scored besides 1, "0.25,0.5" ("": the paper's copies)

    def __post_init__(self) -> None:
        given = self.options.items() if isinstance(self.options, Mapping) else self.options
        object.__setattr__(self, "options", tuple(sorted((str(k), v) for k, v in given)))
        self.check()  # frozen and checked when made: unusable settings never reach a search

    def option(self, name: str):
        """A mode option's value: as given, else its mode's default."""
        given = dict(self.options)
        return given[name] if name in given else option_spec(name).default

    @property
    def search_mode(self) -> SearchMode:
        """The mode object that scores the pairs."""
        return MODES[self.mode]

    @property
    def alpha_grid(self) -> tuple[float, ...]:
        """The soft alphas to score besides 1 (the paper's copy), sorted; () for hard replacement only."""
        try:
            grid = sorted({float(a) for a in self.alphas.replace(" ", "").split(",") if a})
        except ValueError:
            raise ConfigError(f"alphas '{self.alphas}' must be numbers in (0, 1) like 0.25,0.5,0.75.") from None
        if any(not 0 < a < 1 for a in grid):
            raise ConfigError(f"alphas '{self.alphas}' must lie in (0, 1): 1 (the plain copy) is always scored.")
        return tuple(grid)

    def check(self) -> None:
        """Raise a ConfigError naming the setting whose value no search could use."""
        if self.metric is not None:
            _choice("metric", self.metric, all_metrics())
        _choice("search mode", self.mode, tuple(MODES))
        for name, value in dict(self.options).items():  # (name, value) pairs once made
            option_spec(name).check(value)
        if not 1 <= self.top_n <= 16:
            raise ConfigError(f"top N must be 1 to 16 (got {self.top_n}): it means 2^N - 1 combinations to evaluate.")
        _choice("selection", self.select, SELECT_MODES)
        self.alpha_grid  # noqa: B018 (parsed here so a bad grid is refused when the settings are made)
        if self.pool is not None and self.pool < 1:
            raise ConfigError(f"the greedy pool must be at least 1 pair (got {self.pool}).")
        if self.select != SEARCH and (not self.search_mode.exact or self.metric == LOSS or not 2 <= self.folds <= 20):
            raise ConfigError(
                f"select {self.select} needs mode exact (every pair's per-image scores), the task's score as the "
                f"metric (not loss) and 2 to 20 folds (got mode {self.mode}, metric {self.metric}, {self.folds} folds)."
            )

    def to_dict(self) -> dict:
        """The settings as config.json records them (options as an object)."""
        return {**asdict(self), "options": dict(self.options)}

    @classmethod
    def recorded(cls, record: dict) -> SearchSettings:
        """Settings from config.json's "search" (or `to_dict`)."""
        known = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, "options": known.get("options") or {}})


def parse_channels(spec: str | list[int], channels: int, device: torch.device, name: str = "channels") -> list[int]:
    """Channel list from 'auto', 'all', 'every:K' or '0-31,40,...' (ranges inclusive); `name` is the setting."""
    if isinstance(spec, list):
        return spec
    spec = str(spec).strip().lower()
    if spec == "auto":
        spec = "all" if device.type == "cuda" else f"every:{CPU_AUTO_STRIDE}"
    if spec == "all":
        return list(range(channels))
    out: list[int] = []
    try:
        if spec.startswith("every:"):
            step = int(spec.split(":", 1)[1])
            if step < 1:
                raise ValueError
            return list(range(0, channels, step))
        for part in filter(None, (p.strip() for p in spec.split(","))):
            lo, _, hi = part.partition("-")
            out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    except ValueError:
        raise ReplacementError(
            f"{name} '{spec}': cannot read this channel list; use all, auto, every:K (K >= 1) or ranges like 0-31,40."
        ) from None
    bad = [c for c in out if not 0 <= c < channels]
    if bad:
        raise ReplacementError(
            f"{name} '{spec}': channel {bad[0]} is out of range; this model has channels 0..{channels - 1}."
        )
    return sorted(set(out))
