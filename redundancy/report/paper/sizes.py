"""How large a `redundancy paper` run is: the default (the committed report, ~30 CPU minutes on 2 cores) and
`--tiny` (seconds: the same tables on a handful of images, for tests and the app's rerun button)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ...data.synthetic import TARGET_DOMAINS, TASK_DOMAINS
from ...errors import ConfigError

SEG_DOMAINS = TARGET_DOMAINS  # assets/domains/: the SAM demo models' target domains
CLASSIFY_DOMAINS, DEPTH_DOMAINS = TASK_DOMAINS["classify"], TASK_DOMAINS["depth"]  # assets/task_domains/<task>/


@dataclass(frozen=True)
class PaperSize:
    """Every size-dependent setting of the report's measurements."""

    name: str
    seg_models: tuple[str, ...] = ("sam_tiny_demo", "sam2_tiny_demo")
    seg_domains: tuple[str, ...] = SEG_DOMAINS
    search_images: int = 32  # segmentation search set per domain (the rest of the 120 images is held out)
    heldout_images: int | None = None  # cap on held-out images (None: every image outside the search set)
    scope: str = "every:8"  # segmentation sources and targets (992 pairs of 256 channels)
    top_n: int = 8
    sweep: str = "all"  # channels of the zero sweeps (Table 1, consistency)
    ft_model: str = "sam_tiny_demo"
    ft_domain: str = "gray"
    ft_epochs: tuple[tuple[str, int], ...] = (("decoder", 25), ("lora", 10))  # mode -> epochs (paper: 25)
    cost_images: int = 16  # the same images for every method of the cost table
    fresh_processes: bool = True  # measure each method's cost in a process of its own (else in this one)
    vit_model: str = "dinov2_tiny_demo"
    classify_domains: tuple[str, ...] = CLASSIFY_DOMAINS
    depth_domains: tuple[str, ...] = DEPTH_DOMAINS
    vit_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    vit_search_images: int = 50
    vit_heldout_images: int | None = None
    vit_head_images: int | None = None  # None: a third of the data, as a session's default
    vit_scope: tuple[tuple[str, str], ...] = (("classify", "all"), ("depth", "every:2"))  # task -> scope
    vit_top_n: int = 8

    def __post_init__(self):
        if self.search_images < 2 or self.top_n < 1 or not self.vit_seeds:
            raise ConfigError("a paper size needs at least 2 search images, top N >= 1 and one split seed.")

    def scope_of(self, task: str) -> str:
        """Sources and targets of a DINOv2 search for `task`."""
        return dict(self.vit_scope)[task]


DEFAULT = PaperSize("default")
TINY = replace(
    DEFAULT,
    name="tiny",
    seg_domains=SEG_DOMAINS[:2],
    search_images=4,
    heldout_images=4,
    scope="every:64",
    top_n=2,
    sweep="every:32",
    ft_epochs=(("decoder", 1), ("lora", 1)),
    cost_images=2,
    fresh_processes=False,
    classify_domains=CLASSIFY_DOMAINS[:1],
    depth_domains=DEPTH_DOMAINS[:1],
    vit_seeds=(0,),
    vit_search_images=6,
    vit_heldout_images=6,
    vit_head_images=10,
    vit_scope=(("classify", "every:16"), ("depth", "every:32")),
    vit_top_n=2,
)
SIZES = {s.name: s for s in (DEFAULT, TINY)}
