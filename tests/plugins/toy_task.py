"""A toy task, one file: predict an image's mean brightness (0-1), scored by minus the absolute error. It
registers its dataset layout (a `toy/` folder of images; the target is read from the image itself), its output
file and how it pictures predictions."""

from __future__ import annotations

import numpy as np
import torch

from redundancy.data import Sample, load_image
from redundancy.data.images import IMAGE_EXTS
from redundancy.data.layouts import Layout, files
from redundancy.data.layouts import register as register_layout
from redundancy.tasks.base import Metric, Task, register
from redundancy.tasks.protocols import evaluated


def read_toy(folder):
    """`toy/` with images: one sample each (None: not this layout)."""
    toy = folder.child("toy")
    if toy is None:
        return None
    return [Sample(stem, path, None, stem) for stem, path in files(toy, IMAGE_EXTS).items()], ()


TOY = register_layout(Layout("toyset", "toy/", read_toy, order=5, expected="toy/ (brightness)", marks=("toy",)))


@register
class BrightnessTask(Task):
    """An image's mean brightness in [0, 1]."""

    order = 9
    name = "brightness"
    metrics = (Metric("abs_error", "abs. error", higher_is_better=False),)
    columns = ("abs", "sq")
    loss_label = "MSE"
    layouts = (TOY.name,)
    outputs = ("brightness.csv",)
    data_hint = "toy/"

    def load_target(self, sample):
        return np.asarray(load_image(sample.image_path).mean() / 255.0, np.float32)

    def measure(self, outputs, target, upscale):
        err = upscale(outputs).double() - target.double()
        return torch.stack([err.abs(), err.square()], 1)

    def row_loss(self, outputs, target, upscale):
        return (upscale(outputs) - target).square()

    def reduce(self, stats, groups, n_groups, metric=None):
        v = evaluated(stats.values, groups).astype(np.float64)
        return -v[..., 0].mean(1), v[..., 1].mean(1)

    def per_group(self, stats, groups, n_groups, metric=None):
        return -evaluated(stats.values, groups).astype(np.float64)[..., 0]

    def prediction_files(self, names, images, patched, baseline, classes):
        rows = [f"{n},{float(p):.6f},{float(b):.6f}" for n, p, b in zip(names, patched, baseline)]
        return {"brightness.csv": "\n".join(["image,patched,baseline", *rows]).encode()}

    def target_view(self, image, target, classes):
        return image

    def prediction_view(self, image, output, target, classes):
        return np.full_like(image, int(255 * float(output.clamp(0, 1))))

    def difference_view(self, image, before, after, target, classes):
        return np.full_like(image, int(255 * min(1.0, abs(float(after - before)))))
