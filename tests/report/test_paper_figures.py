"""The paper report's figures and tables read as a paper's: 300 dpi, nothing clipped, the demo models' own names,
the tables' intervals as error bars, and each row's numbers at its metric's decimals."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from redundancy.report.paper import figures
from redundancy.report.paper.tables import Table

MAIN = ["source", "model", "domain", "baseline", "+ours", "95% CI of gain"]


def main_table() -> Table:
    t = Table("main_results", "Main results", MAIN)
    t.add("sam_tiny_demo", "gray", 30.31, 33.31, "+2.02 to +4.03")
    t.add("sam2_tiny_demo", "camouflage", 17.96, 18.25, "-0.05 to +0.60")
    t.add("sam2_tiny_demo", "average", 22.25, 23.17, None)
    return t


def drawers() -> dict:
    """Each report figure's drawing from a small table of its own."""
    ft = Table("finetuned", "Fine-tuning", ["source", "fine-tuning", "baseline", "+ours", "95% CI of gain"])
    ft.add("lora", 36.7, 39.43, "+1.43 to +4.05")
    pairs = Table("pairs", "Pairs", ["source", "model", "domain", "pairs (k)", "held-out, top k"])
    for k, v in enumerate((30.3, 31.0, 33.3)):
        pairs.add("sam_tiny_demo", "gray", k, v)
    cost = Table("cost", "Cost", ["source", "method", "peak memory (GB)", "trainable parameters"])
    cost.add("ours (search)", 0.61, 0)
    cost.add("LoRA fine-tuning", 0.92, 12288)
    vit = Table("dinov2", "DINOv2", ["source", "task", "domain", "metric", "improvement", "spread (std)"])
    vit.add("classify", "gray", "accuracy", 4.8, 6.9)
    vit.add("depth", "gray", "rmse", 0.0124, 0.0174)
    rng = np.random.default_rng(0)
    return {
        "main_results": lambda: figures.main_results(main_table()),
        "finetuned": lambda: figures.finetuned(ft),
        "pairs": lambda: figures.pairs(pairs),
        "cost": lambda: figures.cost(cost),
        "dinov2": lambda: figures.dinov2(vit),
        "zero_sweep": lambda: figures.zero_sweep({"gray": list(rng.normal(size=256))}, "sam_tiny_demo"),
    }


@pytest.mark.parametrize("name", list(drawers()))
def test_nothing_is_clipped_and_the_png_is_300_dpi(name, tmp_path):
    with figures.styled():
        fig = drawers()[name]()
        path = figures.save(fig, tmp_path / f"{name}.png")  # closed for pyplot; still drawable
    fig.canvas.draw()
    drawn = fig.get_tightbbox(fig.canvas.get_renderer())  # every drawn artist, in inches
    width, height = fig.get_size_inches()
    assert drawn.x0 >= -0.01 and drawn.y0 >= -0.01, f"{name}: cut at the left or bottom edge ({drawn})"
    assert drawn.x1 <= width + 0.01 and drawn.y1 <= height + 0.01, f"{name}: cut at the right or top edge ({drawn})"
    with Image.open(path) as im:
        assert round(im.info["dpi"][0]) == 300 and im.width >= 1000


def test_main_results_names_the_demo_models_and_draws_the_gains_intervals():
    with figures.styled():
        fig = figures.main_results(main_table())
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["sam_tiny_demo\ngray", "sam2_tiny_demo\ncamouflage"]  # the average row is not a domain
    caps = [line for line in ax.lines if len(line.get_xdata()) == 2]  # the error bars' caps
    assert caps, "no error bars"
    (bars,) = [c for c in ax.collections if c.get_segments()]
    low, high = (seg[:, 1] for seg in np.array(bars.get_segments()).transpose(1, 0, 2))
    assert np.allclose(low, [30.31 + 2.02, 17.96 - 0.05]) and np.allclose(high, [30.31 + 4.03, 17.96 + 0.60])
    plt.close(fig)


def test_a_row_of_its_own_metric_shows_that_metrics_decimals():
    t = Table("dinov2", "DINOv2", ["source", "metric", "baseline", "seeds"], digits={"baseline": 4})
    t.add("accuracy", 31.2, 5, digits=2)
    t.add("rmse", 0.88541, 5, digits=4)
    t.add("absrel", 0.126, None, paper=True, digits=3)
    lines = t.markdown().splitlines()
    assert "| accuracy | 31.20 | 5 |" in lines[2] and "| 0.8854 |" in lines[3] and "*0.126*" in lines[4]
