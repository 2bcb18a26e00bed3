"""Figures from small real runs: every figure in every format, valid files, plotted values = run numbers."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from redundancy.cli import main
from redundancy.errors import RunError
from redundancy.report.figures import DPI, SINGLE, Run, pair_heatmap, pairs_curve, render, shared_channels, topn_bars

from ..conftest import search_argv


def _run(out, seed):
    assert main(search_argv("--out", str(out), seed=seed, heldout=0, top_n=4)) == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    a, b = _run(root / "sample_a", 0), _run(root / "sample_b", 1)
    assert main(["ablate", "--run", str(a), "--zero", "6,216,19", "--replace", "3:7"]) == 0
    return a, b


@pytest.fixture(scope="module")
def rendered(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("figs")
    return out, render(list(runs), out)


@pytest.mark.slow
def test_every_figure_in_every_format_is_a_valid_file(rendered):
    out, written = rendered
    optional = ("ablation", "selection")  # sample_a has an ablation; neither is a cv run
    names = [f"sample_a_{n}" for n in SINGLE if n != "selection"] + [
        f"sample_b_{n}" for n in SINGLE if n not in optional
    ]
    for name in [*names, "consistency"]:
        png = Image.open(out / f"{name}.png")
        assert round(png.info["dpi"][0]) == DPI and min(png.size) >= 300
        root = ET.parse(out / f"{name}.svg").getroot()
        assert root.tag.endswith("svg")
        pdf = (out / f"{name}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
        caption = (out / f"{name}.txt").read_text()
        assert "model sam_tiny" in caption and "random weights (seed" in caption and "search set 4 images" in caption
    assert len(written) == (len(names) + 1) * 4


@pytest.mark.slow
def test_figures_regenerate_identically(runs, rendered, tmp_path):
    out, _ = rendered
    render([runs[0]], tmp_path, ("svg", "pdf", "png"))
    for name in ("pair_heatmap", "topn", "channel_gallery"):
        for fmt in ("svg", "pdf", "png"):
            same = (tmp_path / f"{name}.{fmt}").read_bytes() == (out / f"sample_a_{name}.{fmt}").read_bytes()
            assert same, f"{name}.{fmt}"


def test_plotted_values_are_the_runs_numbers(runs):
    run = Run.load(runs[0])
    top = json.loads((runs[0] / "topn.json").read_text())["top"]
    bars = [p.get_height() for p in topn_bars(run).axes[0].patches]
    assert bars == pytest.approx([p["gain"] for p in top])
    heat = pair_heatmap(run).axes[0].images[0].get_array()
    scores = np.load(runs[0] / "pair_scores.npy")
    chans = list(range(0, 256, 32))
    np.testing.assert_array_equal(np.ma.filled(heat, np.nan), scores[np.ix_(chans, chans)])
    best_of_k, top_k = (line.get_ydata() for line in pairs_curve(run).axes[0].lines[:2])
    rows = {r["pairs"]: float(r["score"]) for r in run.combos}
    names = [f"{p['source']}<-{p['target']}" for p in top]
    assert list(top_k) == [rows[" ".join(names[:k])] for k in range(1, 5)]
    by_size = [[float(r["score"]) for r in run.combos if int(r["size"]) == k] for k in range(1, 5)]
    assert list(best_of_k) == [max(v) for v in by_size] and max(best_of_k) == max(rows.values())
    from redundancy.report.figures import ablation_bars

    heights = [p.get_height() for p in ablation_bars(run).axes[0].patches]
    ablation = json.loads((runs[0] / "ablation.json").read_text())["edits"]
    assert heights == pytest.approx([v["delta_score"] for v in ablation.values()])


def test_consistency_counts_and_errors(tmp_path):
    assert shared_channels([{1, 2}, {2, 3}, {2}]) == [(2, 3), (1, 1), (3, 1)]
    with pytest.raises(RunError, match="is not a run folder"):  # an empty folder: no search ever wrote there
        render([tmp_path], tmp_path / "o")
    assert main(["figures", str(tmp_path), "--out", str(tmp_path / "o")]) == 2


@pytest.mark.slow
def test_a_cv_run_gets_its_selection_curve(tmp_path):
    from redundancy.report.figures import selection_curve

    run = tmp_path / "cv"
    argv = search_argv("--out", str(run), "--select", "cv", "--folds", "3", images=6, heldout=0, top_n=3)
    assert main(argv) == 0
    written = render([run], tmp_path / "figs", ("png",))
    assert tmp_path / "figs" / "selection.png" in written
    loaded = Run.load(run)
    sel = loaded.replacements["selection"]
    in_sample, held = (line.get_ydata() for line in selection_curve(loaded).axes[0].lines[:2])
    assert list(held) == pytest.approx(sel["curve"])
    scores = {r["pairs"]: float(r["score"]) for r in loaded.combos}
    assert in_sample[-1] == pytest.approx(max(scores.values()) - loaded.topn["baseline_score"])  # N' = N: every subset
