"""Classification: image labels, top-1 accuracy in percent, cross-entropy as the loss and tie-break."""

from __future__ import annotations

import csv
import io

import numpy as np
import torch
import torch.nn.functional as F

from ..data import Dataset, Sample
from ..data.pictures import captioned
from ..errors import ConfigError, DataError
from .base import Metric, Task, register
from .heads import LinearClassifier, fit_classifier
from .protocols import evaluated


def _csv(rows: list[list]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


@register
class ClassifyTask(Task):
    """Image labels: top-1 accuracy in percent, cross-entropy as the loss and tie-break."""

    order = 1
    name = "classify"
    metrics = (Metric("accuracy", "accuracy", percent=True),)
    columns = ("correct", "ce")
    loss_label = "cross-entropy"
    stackable = True
    layouts = ("classes", "csv")
    data_hint = "class folders or a CSV of image,label"
    target_note = "the label above each image"
    picture_note = "the label above each image; predictions with their confidence"

    def check_data(self, dataset: Dataset, classes: tuple[str, ...] = ()) -> None:
        super().check_data(dataset, classes)
        if self.serves(dataset) and classes and dataset.classes != classes:
            raise DataError(
                f"the data's classes ({', '.join(dataset.classes[:6])}) are not the run's ({', '.join(classes[:6])}); "
                "use the same class folders, or a folder of unlabelled images."
            )

    def load_target(self, sample: Sample) -> np.ndarray | None:
        return None if sample.label is None else np.asarray(sample.label, dtype=np.int64)

    def measure(self, outputs, target, upscale):
        logits = outputs.double()
        correct = (logits.argmax(1) == target).double()
        ce = F.cross_entropy(logits, target.expand(len(logits)), reduction="none")
        return torch.stack([correct, ce], 1)

    def row_loss(self, outputs, target, upscale):
        return F.cross_entropy(outputs.float(), target.expand(len(outputs)), reduction="none")

    def reduce(self, stats, groups, n_groups, metric=None):
        v = evaluated(stats.values, groups).astype(np.float64)
        return 100.0 * v[..., 0].mean(1), v[..., 1].mean(1)

    def per_group(self, stats, groups, n_groups, metric=None):
        return 100.0 * evaluated(stats.values, groups).astype(np.float64)[..., 0]

    def fit_head(self, backend, feats, targets, classes):
        if len({int(t) for t in targets}) < 2:
            raise ConfigError(
                "the head split holds a single class, so no classifier can be fitted; use more head images."
            )
        return fit_classifier(feats, torch.stack(targets), list(classes)), "L-BFGS logistic regression, float64"

    def head_from_state(self, state, backend, classes):
        return LinearClassifier(state["weight"], state["bias"], backend.channels, list(classes))

    def prediction_files(self, names, images, patched, baseline, classes):
        rows = [["image", "predicted", "confidence", "baseline_predicted", "baseline_confidence"]]
        for name, z, b in zip(names, patched, baseline):
            pz, pb = z.float().softmax(0), b.float().softmax(0)
            rows.append(
                [
                    name,
                    classes[int(pz.argmax())],
                    f"{float(pz.max()):.4f}",
                    classes[int(pb.argmax())],
                    f"{float(pb.max()):.4f}",
                ]
            )
        return {"predictions.csv": _csv(rows)}

    def target_view(self, image, target, classes):
        return captioned(image, f"label: {classes[int(target)]}")

    def prediction_view(self, image, output, target, classes):
        prob = output.float().softmax(0)
        k = int(prob.argmax())
        label = f" (label {classes[int(target)]})" if target is not None else ""
        return captioned(image, f"{classes[k]} {float(prob[k]):.0%}{label}")

    def difference_view(self, image, before, after, target, classes):
        p0, p1 = before.float().softmax(0), after.float().softmax(0)
        k = int(target) if target is not None else int(p0.argmax())  # the label's (else the prediction's) class
        change = f"{classes[k]} {float(p0[k]):.0%} -> {float(p1[k]):.0%}"
        a, b = int(p0.argmax()), int(p1.argmax())
        return captioned(image, change + ("" if a == b else f"; top class {classes[a]} -> {classes[b]}"))
