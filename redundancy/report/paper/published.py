"""The paper's own numbers (arXiv 2504.08915, on real SAM / SAM2 / DINOv2), the one place they are written down.

The report prints them beside its own measurements, always in rows marked as the paper's: they are not
measured here and are not comparable in level (other models, other data); they show the shape of each result.
"""

from __future__ import annotations

SOURCE = "paper (arXiv 2504.08915)"

# Table 1: PerSeg, SAM ViT-B; (row, channel, mIoU); the paper gives no mIoU for the channels that lower it
TABLE1_MODEL = "SAM ViT-B, PerSeg"
TABLE1 = [
    ("baseline", None, 50.6),
    ("unchanged", 6, 50.6),
    ("improves", 216, 52.7),
    ("lowers", 175, None),
    ("lowers", 19, None),
    ("lowers", 189, None),
]

# Main results: average mIoU over 9 datasets, baseline -> with replacement
MAIN = {
    "sam": ("SAM ViT-B, 9-dataset average", 49.14, 58.08),
    "sam2": ("SAM2 Hiera-T, 9-dataset average", 57.29, 65.63),
}

# On top of fine-tuned models: (fine-tuning, baseline, with replacement)
FINETUNED = [
    ("decoder-only", 73.61, 74.62),
    ("LoRA (SAMed)", 78.56, 79.72),
    ("SAM-COBOT", 78.73, 79.32),
    ("SAM-Adapter", 72.89, 73.80),
    ("SAM-PARSER", 60.96, 65.39),
    ("DoRA", 79.12, 79.92),
]
FINETUNED_MODES = {"decoder": "decoder-only", "lora": "LoRA (SAMed)"}  # our mode -> the paper's row beside it

# Cost on a GPU: (method, GPU memory GB, trainable parameters in thousands)
COST = {"search": ("ours", 11.1, 0), "decoder": ("decoder-only fine-tuning", 13.7, 4057),
        "encoder": ("encoder fine-tuning", 34.6, 89670)}  # fmt: skip

PAIRS_PEAK = 6  # more pairs help up to a point: on COCO the score peaks at 6 pairs (no per-N numbers given)

# DINOv2: NYUv2 depth (MSE, AbsRel, delta1) and CIFAR accuracy, baseline -> with replacement
DINOV2 = {
    "ViT-S": {"mse": (0.225, 0.209), "absrel": (0.126, 0.112), "delta1": (0.893, 0.907), "accuracy": (80.41, 80.81)},
    "ViT-B": {"mse": (0.210, 0.193), "absrel": (0.110, 0.095), "delta1": (0.900, 0.916), "accuracy": (88.08, 88.49)},
}

# Cross-domain consistency on SAM ViT-B: channel 19 helps on natural, medical and camouflaged data; these four
# are redundant everywhere
CONSISTENT_USEFUL = (19,)
CONSISTENT_REDUNDANT = (20, 98, 162, 226)
