"""Generate the demo's target domains (assets/domains/<domain>/) with redundancy.data.synthetic: no external data, CC0.

PerSeg layout per domain: Images/<kind>/NN.jpg and Annotations/<kind>/NN.png, 5 object kinds x 24
images = 120 images (a 50-image search set and a held-out set of 70). Rerun with
`python scripts/make_domains.py` to regenerate identical files.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redundancy.bundled import ASSETS  # noqa: E402
from redundancy.data.synthetic import TARGET_DOMAINS, write_perseg  # noqa: E402

PER_KIND = 24
SEEDS = {domain: 100 + k for k, domain in enumerate(TARGET_DOMAINS)}  # one fixed seed per domain


def make(root: Path) -> None:
    for domain, seed in SEEDS.items():
        shutil.rmtree(root / domain, ignore_errors=True)
        write_perseg(root / domain, domain, PER_KIND, seed)


if __name__ == "__main__":
    make(ASSETS / "domains")
