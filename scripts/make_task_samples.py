"""Generate the classification and depth data (CC0, seeded): the samples and the DINOv2 demo's target domains.

classify_sample: ImageFolder layout <kind>/NN.jpg, 5 shape classes x 24 images (96 px).
depth_sample: images/NNN.jpg + depth/NNN.png (16-bit millimetres, 0 invalid), 120 synthetic rooms (96 px).
task_domains/classify/<domain>: the same classes in the shifted looks of the segmentation domains (gray,
camouflage, texture), 5 x 30 images at 112 px (the DINOv2 demo's input size: nothing is resized).
task_domains/depth/<domain>: 150 rooms restyled gray or texture (their depth as rendered), 112 px.
Rerun with `python scripts/make_task_samples.py` to regenerate identical files.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redundancy.bundled import ASSETS  # noqa: E402
from redundancy.data.synthetic import TASK_DOMAINS, write_classes, write_depth  # noqa: E402

PER_CLASS, DEPTH_IMAGES = 24, 120
DOMAIN_PER_CLASS, DOMAIN_ROOMS, DOMAIN_SIZE = 30, 150, 112  # a head split, a search set and a held-out set of 50
CLASSIFY_DOMAINS = {f"task_domains/classify/{d}": 210 + k for k, d in enumerate(TASK_DOMAINS["classify"])}
DEPTH_TARGETS = {f"task_domains/depth/{d}": 220 + k for k, d in enumerate(TASK_DOMAINS["depth"])}
SEEDS = {"classify_sample": 200, "depth_sample": 201, **CLASSIFY_DOMAINS, **DEPTH_TARGETS}


def make(root: Path) -> None:
    for name in SEEDS:
        shutil.rmtree(root / name, ignore_errors=True)
    write_classes(root / "classify_sample", PER_CLASS, SEEDS["classify_sample"])
    write_depth(root / "depth_sample", DEPTH_IMAGES, SEEDS["depth_sample"])
    for name, seed in CLASSIFY_DOMAINS.items():
        write_classes(root / name, DOMAIN_PER_CLASS, seed, DOMAIN_SIZE, domain=name.rsplit("/", 1)[1])
    for name, seed in DEPTH_TARGETS.items():
        write_depth(root / name, DOMAIN_ROOMS, seed, DOMAIN_SIZE, domain=name.rsplit("/", 1)[1])


if __name__ == "__main__":
    make(ASSETS)
