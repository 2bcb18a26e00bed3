"""Generate the classification and depth samples (assets/classify_sample/, assets/depth_sample/): CC0, seeded.

classify_sample: ImageFolder layout <kind>/NN.jpg, 5 shape classes x 24 images (96 px).
depth_sample: images/NNN.jpg + depth/NNN.png (16-bit millimetres, 0 invalid), 120 synthetic rooms (96 px).
Rerun with `python assets/make_task_samples.py` to regenerate identical files.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redundancy.data.synthetic import write_classes, write_depth  # noqa: E402

PER_CLASS, DEPTH_IMAGES = 24, 120
SEEDS = {"classify_sample": 200, "depth_sample": 201}


def make(root: Path) -> None:
    for name in SEEDS:
        shutil.rmtree(root / name, ignore_errors=True)
    write_classes(root / "classify_sample", PER_CLASS, SEEDS["classify_sample"])
    write_depth(root / "depth_sample", DEPTH_IMAGES, SEEDS["depth_sample"])


if __name__ == "__main__":
    make(Path(__file__).parent)
