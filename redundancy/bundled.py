"""Where the bundled data lives: the demo models, the sample sets and the demo domains ship inside the package
(`redundancy/assets/`, package data of the wheel), so they are found from any folder after `pip install`."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
DEMO_DIR = ASSETS / "demo"  # the shipped demo checkpoints and their models.json
SAMPLE = ASSETS / "sample"  # the segmentation sample (PerSeg layout, random shapes)
CLASSIFY_SAMPLE = ASSETS / "classify_sample"
DEPTH_SAMPLE = ASSETS / "depth_sample"
DOMAINS = ASSETS / "domains"  # segmentation's demo target domains
TASK_DOMAINS = ASSETS / "task_domains"  # classify / depth's demo target domains, by task
HERO = ASSETS / "hero.png"  # a real search's result (scripts/make_hero.py), the app's first picture
HERO_MODEL = "sam_tiny_demo"  # the model it shows: the Data tab hides it while another model is chosen

# What every output of a result says where the weights are not a real checkpoint (labels, card banners, footers).
DEMO_LABEL = "demo model trained by this repository on synthetic shapes: not SAM"  # a demo's default label
RANDOM_NOTICE = "random weights: not a pretrained model"


def notice_for(kind: str | None, demo_label: str | None = None) -> str | None:
    """The warning for weights of this kind: random weights, or a demo model's own label (None: a real checkpoint)."""
    if kind == "random":
        return RANDOM_NOTICE
    return (demo_label or DEMO_LABEL) if kind == "demo" else None


def weights_notice(weights: dict) -> str | None:
    """The warning a result's outputs carry, from a run's recorded weights (None: a real checkpoint)."""
    if "notice" in weights:
        return weights["notice"]
    # a run written before the notice was recorded: its kind says which, a demo's label (before its hash) its words
    return notice_for(weights.get("kind"), str(weights.get("label", "")).split(" (sha256:")[0])


def bundled(name: str | Path) -> Path | None:
    """A path written as the repository spells it (`assets/domains/gray`) as the bundled folder it names, if it is
    one (inside the bundled assets, so `assets/../x` names nothing); else None."""
    parts = Path(name).parts
    if not parts or parts[0] != "assets" or Path(name).is_absolute():
        return None
    path = ASSETS.joinpath(*parts[1:]).resolve()
    return path if path.is_relative_to(ASSETS) and path.exists() else None
