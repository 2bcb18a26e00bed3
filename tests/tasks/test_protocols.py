"""`--protocol persam` equals PerSAM's eval_miou.py, re-implemented here from its logic, on masks written by apply."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from redundancy.runs.apply import ApplyOptions, apply_pairs
from redundancy.tasks import Stats, get_task, group_ids

from ..conftest import SAMPLE

reduce = get_task("segment").reduce  # mIoU pooled by the protocol


def eval_miou(pred_root: Path, gt_root: Path, ref_idx: str = "00") -> float:
    """PerSAM's eval_miou.py: per object, skip GT paths containing ref_idx, read masks as gray > 0, pool
    intersection and union over the object's images, IoU = I / (U + 1e-10); mIoU over every object."""
    ious = []
    for obj in sorted(p.name for p in gt_root.iterdir() if ".DS" not in p.name):
        gts, preds = sorted((gt_root / obj).rglob("*.png")), sorted((pred_root / obj).rglob("*.png"))
        inter = union = 0
        for gt_path, pred_path in zip(gts, preds):
            if ref_idx in str(gt_path.relative_to(gt_root)):
                continue
            gt = np.asarray(Image.open(gt_path).convert("L")) > 0
            pred = np.asarray(Image.open(pred_path).convert("L")) > 0
            inter += np.logical_and(pred, gt).sum()
            union += np.logical_or(pred, gt).sum()
        ious.append(inter / (union + 1e-10))
    return 100.0 * float(np.mean(ious))


@pytest.fixture(scope="module")
def applied(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("applied")
    repl = {"model": "sam_tiny", "pairs": [{"source": 3, "target": 7}, {"source": 100, "target": 12}]}
    return out, apply_pairs(tiny, repl, SAMPLE, out, ApplyOptions(protocol="persam"))


def test_persam_protocol_matches_eval_miou_on_written_masks(applied):
    out, res = applied
    gt = SAMPLE / "Annotations"
    assert res.patched_score == pytest.approx(eval_miou(out / "masks", gt), abs=5e-5)
    assert res.baseline_score == pytest.approx(eval_miou(out / "baseline_masks", gt), abs=5e-5)
    # the reference image counts under perseg, not under persam
    assert len(list((out / "masks").rglob("00.png"))) == 4


def test_an_object_with_only_its_reference_image_counts_as_zero():
    stats = Stats(np.stack([[[5, 3, 4]], [[10, 6, 8]], np.zeros((1, 3))], -1))
    ids, n = group_ids(["a", "a", "b"], "persam", ["a/00", "a/01", "b/00"])
    assert list(ids) == [-1, 0, -1] and n == 2
    miou, _ = reduce(stats, ids, n)
    assert miou[0] == pytest.approx(100 * (3 / 6 + 0) / 2)  # object b: no evaluated image, IoU 0
    perseg, _ = reduce(stats, *group_ids(["a", "a", "b"], "perseg"))
    assert perseg[0] == pytest.approx(100 * (8 / 16 + 4 / 8) / 2)
