"""Training code that is part of the product: the demo models this repository trains on synthetic data
(`demo`: the machinery and SAM / SAM2's recipe; `vit_demo`: DINOv2's), and fine-tuning a model on a target
domain (`finetune`)."""

from . import demo, vit_demo  # noqa: F401  (each recipe module registers its demo models)
