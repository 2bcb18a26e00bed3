"""Classification: image labels, top-1 accuracy in percent, cross-entropy as the loss and tie-break."""

from __future__ import annotations

import csv
import io

import numpy as np
import torch
import torch.nn.functional as F

from ..data import Dataset, Sample
from ..data.images import IMAGE_EXTS
from ..data.layouts import Folder, Layout, Read, files
from ..data.layouts import register as register_layout
from ..data.pictures import captioned
from ..errors import ConfigError, DataError
from .base import Metric, Task, register
from .heads import LinearClassifier, fit_classifier
from .protocols import evaluated


def _csv(rows: list[list]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


def check_classes(samples: list[Sample], where: str) -> list[str]:
    """Labelled data of at least two classes (a classifier of one class measures nothing)."""
    found = len({s.label for s in samples})
    if found < 2:
        raise DataError(f"{where}: classification needs at least 2 classes, found {found}; add the other classes.")
    return []


def read_classes(folder: Folder) -> Read | None:
    """ImageFolder: <class>/<image>, class names from the folder names, sorted (two or more folders, no loose
    images beside them and no images/ folder: that would be another layout's)."""
    dirs = folder.subdirs()
    if folder.child("images") or len(dirs) < 2 or files(folder.root, IMAGE_EXTS):
        return None
    classes = tuple(d.name for d in dirs)
    samples = []
    for k, d in enumerate(dirs):
        found = files(d, IMAGE_EXTS)
        if not found:
            raise DataError(f"class folder '{d.name}/' holds no images; add images of that class or remove the folder.")
        samples += [Sample(f"{d.name}/{stem}", f, None, f"{d.name}/{stem}", k) for stem, f in found.items()]
    return samples, classes


def read_csv(folder: Folder) -> Read | None:
    """A CSV of (image, label) rows with a header; image paths relative to the CSV's folder, inside the dataset."""
    tables = sorted(p for p in folder.root.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    if not tables:
        return None
    if len(tables) > 1:
        raise DataError(
            f"{folder.where}: {len(tables)} CSV files ({', '.join(t.name for t in tables)}); "
            "keep the one of (image, label) rows."
        )
    table, base = tables[0], folder.base
    try:
        with table.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{table.name}: cannot read this CSV ({e}); save it as UTF-8 text.") from e
    except csv.Error as e:
        raise DataError(
            f"{table.name}: not a CSV of image,label rows ({e}); save one row per image, comma-separated."
        ) from e
    header = [h.strip().lower() for h in rows[0]] if rows else []
    col_img = next((header.index(h) for h in ("image", "path", "file", "filename") if h in header), None)
    col_lab = next((header.index(h) for h in ("label", "class", "category") if h in header), None)
    if col_img is None or col_lab is None:
        raise DataError(
            f"{table.name}: the first row must name the columns, e.g. 'image,label' "
            f"(found {', '.join(rows[0]) if rows else 'nothing'}); "
            "add that header row."
        )
    entries = []
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) <= max(col_img, col_lab) or not row[col_lab].strip():
            raise DataError(f"{table.name} line {n}: needs an image and a label; fill in or delete that line.")
        path = (table.parent / row[col_img].strip()).resolve()
        if not path.is_relative_to(base):  # checked before the file is touched: nothing outside is probed
            raise DataError(
                f"{table.name} line {n}: image '{row[col_img].strip()}' is outside the dataset folder; list images "
                "by paths relative to the CSV, inside the dataset."
            )
        if not path.is_file():
            raise DataError(
                f"{table.name} line {n}: image '{row[col_img].strip()}' does not exist next to the CSV; fix the path."
            )
        entries.append((path, row[col_lab].strip()))
    classes = tuple(sorted({lab for _, lab in entries}))
    index = {c: k for k, c in enumerate(classes)}
    seen: set[str] = set()
    samples = []
    here = table.parent.resolve()
    for path, lab in entries:
        name = str(path.relative_to(here if path.is_relative_to(here) else base))
        if name in seen:
            raise DataError(f"{table.name}: image '{name}' is listed twice; keep one row per image.")
        seen.add(name)
        samples.append(Sample(name, path, None, name, index[lab]))
    return samples, classes


CSV = register_layout(Layout("csv", "a CSV of image,label rows", read_csv, check_classes, order=30))
CLASSES = register_layout(
    Layout(
        "classes",
        "class folders {} of images, no masks",
        read_classes,
        check_classes,
        order=31,
        expected="class folders <class>/*.jpg or a CSV of image,label rows (classification)",
    )
)


@register
class ClassifyTask(Task):
    """Image labels: top-1 accuracy in percent, cross-entropy as the loss and tie-break."""

    order = 1
    name = "classify"
    metrics = (Metric("accuracy", "accuracy", percent=True),)
    columns = ("correct", "ce")
    loss_label = "cross-entropy"
    stackable = True
    layouts = (CLASSES.name, CSV.name)
    outputs = ("predictions.csv",)
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
