"""Apply on the data a set was found on: its search images scored apart from the others, each pooled as the whole."""

from __future__ import annotations

import pytest

from redundancy.runs.apply import ApplyOptions, apply_pairs

from ..conftest import write_pair


@pytest.mark.parametrize("seen", [("a0", "a1", "a2"), (), ("a0", "a1", "a2", "a3", "a4", "a5")])
def test_apply_scores_the_search_images_apart_from_the_rest(tiny, tmp_path, seen):
    data = tmp_path / "data"
    for k in range(6):  # images/ + masks/: the image protocol, so the whole is the image-weighted mean of its parts
        write_pair(data, f"a{k}", size=(48, 40), box=(4 + 2 * k, 6, 30, 28 + k))
    replacements = {"model": tiny.name, "pairs": [{"source": 0, "target": 5}, {"source": 7, "target": 9}]}
    res = apply_pairs(tiny, replacements, data, tmp_path / f"out{len(seen)}", ApplyOptions(seen=seen))
    if len(seen) in (0, 6):  # nothing to tell apart: no split
        assert res.split == {}
        return
    (n_s, b_s, p_s), (n_o, b_o, p_o) = res.split["search"], res.split["other"]
    assert (n_s, n_o) == (3, 3)
    assert (b_s + b_o) / 2 == pytest.approx(res.baseline_score, abs=1e-9)
    assert (p_s + p_o) / 2 == pytest.approx(res.patched_score, abs=1e-9)
