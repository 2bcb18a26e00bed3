"""Channel maps (simultaneous reads, zero, swap, validation), the live patch, and the metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor

from redundancy.data import load_image
from redundancy.errors import ReplacementError
from redundancy.replace import (
    Edit,
    ReplacementPatch,
    apply_map,
    apply_maps,
    edit_map,
    load_replacements,
    pair_maps,
    pairs_map,
)
from redundancy.tasks import Stats, get_task, group_ids
from redundancy.tasks.segment import mask_stats

reduce = get_task("segment").reduce  # mIoU pooled by the protocol


def test_pairs_read_from_the_original_features():
    x = torch.arange(4.0).view(1, 4, 1, 1) + 10  # channel c holds 10 + c
    out = apply_map(x, pairs_map([(0, 1), (1, 2)], 4)).flatten().tolist()
    assert out == [11.0, 12.0, 12.0, 13.0]  # 1 took 2's value, and 0 took 1's *original* value


def test_zero_and_swap_edits():
    x = torch.arange(4.0).view(1, 4, 1, 1) + 10
    assert apply_map(x, edit_map(Edit("zero", 2), 4)).flatten().tolist() == [10, 11, 0, 13]
    assert apply_map(x, edit_map(Edit("swap", 0, 3), 4)).flatten().tolist() == [13, 11, 12, 10]
    assert apply_map(x, edit_map(Edit("replace", 3, 0), 4)).flatten().tolist() == [10, 11, 12, 10]


def test_batched_pair_maps_match_single_maps():
    pairs = torch.tensor([[0, 3], [2, 1], [3, 0]])
    x = torch.randn(4, 2, 2)
    batched = apply_maps(x, pair_maps(pairs, 4))
    for k, (i, j) in enumerate(pairs.tolist()):
        assert torch.equal(batched[k], apply_map(x[None], pairs_map([(i, j)], 4))[0])


@pytest.mark.parametrize(
    "pairs, message",
    [
        ([(0, 256)], "out of range"),
        ([(-1, 3)], "out of range"),
        ([(2, 2)], "itself"),
        ([(1, 2), (1, 3)], "source of two pairs"),
        ([("a", 2)], "not an integer"),
        ([(1.5, 2)], "not an integer"),
    ],
)
def test_invalid_pairs_are_rejected(pairs, message):
    with pytest.raises(ReplacementError, match=message):
        pairs_map(pairs, 256)


def test_patch_changes_a_users_own_predictor(tiny, sample):
    image = load_image(sample / "Images" / "ring" / "02.jpg")
    predictor = SamPredictor(tiny.model)
    predictor.set_image(image)
    plain = predictor.features.clone()
    with ReplacementPatch(tiny.feature_module(), [(5, 7), (9, 1)]):
        predictor.set_image(image)
        patched = predictor.features.clone()
    predictor.set_image(image)
    assert torch.equal(predictor.features, plain)  # removed on exit
    assert torch.equal(patched[:, 5], plain[:, 7]) and torch.equal(patched[:, 9], plain[:, 1])
    assert torch.equal(patched[:, 7], plain[:, 7])


def test_replacements_json_is_checked(tmp_path):
    good = tmp_path / "r.json"
    good.write_text(json.dumps({"model": "sam_tiny", "channels": 256, "pairs": [{"source": 3, "target": 7}]}))
    assert load_replacements(good, "sam_tiny", 256) == [(3, 7)]
    with pytest.raises(ReplacementError, match="sam_vit_b"):
        load_replacements(good, "sam_vit_b", 256)
    with pytest.raises(ReplacementError, match="for 256 channels"):
        load_replacements(good, "sam_tiny", 64)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ReplacementError, match="not a valid replacements.json"):
        load_replacements(bad)


def test_iou_and_loss_of_known_masks():
    gt = torch.zeros(4, 4, dtype=torch.bool)
    gt[:2, :2] = True  # 4 pixels
    logits = torch.full((2, 4, 4), -5.0)
    logits[0, :2, :] = 5.0  # predicts 8 pixels, 4 of them right
    inter, union, loss = mask_stats(logits, gt)
    assert inter.tolist() == [4, 0] and union.tolist() == [8, 4]
    assert loss[0] < loss[1]  # the better prediction has the lower Dice + CE


def test_protocols_pool_differently():
    # two images of object "a" (IoU 1/2 from 1/2, and 0/2) and one of "b" (IoU 1)
    stats = Stats(np.stack([[[1, 0, 3]], [[2, 2, 3]], np.zeros((1, 3))], -1))
    image, _ = reduce(stats, *group_ids(["a", "a", "b"], "image"))
    perseg, _ = reduce(stats, *group_ids(["a", "a", "b"], "perseg"))
    assert image[0] == pytest.approx(100 * (0.5 + 0 + 1) / 3)
    assert perseg[0] == pytest.approx(100 * (1 / 4 + 1) / 2)
