"""The report's figures, each drawn from one of its tables (or the zero sweeps behind two of them): 300 dpi PNGs, as
`figures` makes, with the demo models' own names and the tables' intervals as error bars."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..figures import (  # noqa: E402
    ACCENT,
    BAD,
    DPI,  # noqa: E402
    GOOD,
    NEUTRAL,
    STYLE,
)
from .context import unspan  # noqa: E402
from .tables import Table  # noqa: E402

NOTE = "demo models trained by this repository: not SAM / SAM2 / DINOv2"


def _rows(t: Table, *columns: str, where=None) -> list[list]:
    """The measured rows' values of some columns (filtered by `where(row as dict)`)."""
    out = []
    for row in t.measured():
        d = dict(zip(t.columns, row))
        if where is None or where(d):
            out.append([d[c] for c in columns])
    return out


def _bars(ax, labels: list[str], base: list[float], ours: list[float], cis: list, unit: str) -> None:
    """Baseline and +ours side by side; +ours carries its gain's 95% interval (`span` cells) as an error bar."""
    x = np.arange(len(labels))
    err = np.zeros((2, len(labels)))
    for k, cell in enumerate(cis):
        bounds = unspan(cell)
        if bounds is not None:  # +ours = baseline + gain: its interval is the baseline plus the gain's
            err[:, k] = max(ours[k] - base[k] - bounds[0], 0.0), max(base[k] + bounds[1] - ours[k], 0.0)
    ax.bar(x - 0.2, base, 0.4, color=NEUTRAL, label="baseline")
    ax.bar(x + 0.2, ours, 0.4, yerr=err, capsize=2, error_kw={"lw": 0.8}, color=GOOD,
           label="+ours (95% interval of the gain)")  # fmt: skip
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylabel(unit)
    ax.legend(frameon=False, fontsize=6)


def main_results(t: Table) -> plt.Figure:
    rows = _rows(t, "model", "domain", "baseline", "+ours", "95% CI of gain", where=lambda d: d["domain"] != "average")
    fig, ax = plt.subplots(figsize=(5.2, 3.0), layout="constrained")
    _bars(ax, [f"{m}\n{d}" for m, d, *_ in rows], [r[2] for r in rows], [r[3] for r in rows], [r[4] for r in rows],
          "held-out mIoU %")  # fmt: skip
    ax.set_title("Main results per target domain")
    return fig


def finetuned(t: Table) -> plt.Figure:
    rows = _rows(t, "fine-tuning", "baseline", "+ours", "95% CI of gain")
    fig, ax = plt.subplots(figsize=(3.6, 2.8), layout="constrained")
    _bars(ax, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
          "held-out mIoU %")  # fmt: skip
    ax.set_title("On top of fine-tuning")
    return fig


def pairs(t: Table) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(4.6, 2.8), layout="constrained")
    rows = _rows(t, "model", "domain", "pairs (k)", "held-out, top k")
    for key in dict.fromkeys((m, d) for m, d, *_ in rows):
        pts = [(k, v) for m, d, k, v in rows if (m, d) == key]
        ax.plot([p[0] for p in pts], [p[1] - pts[0][1] for p in pts], marker="o", ms=3,
                label=f"{key[0]} {key[1]}")  # fmt: skip
    ax.axhline(0, color=NEUTRAL, lw=0.8)
    ax.set_xlabel("pairs applied (the top k)")
    ax.set_ylabel("held-out gain (mIoU points)")
    ax.set_title("Number of replacement pairs")
    ax.legend(frameon=False, fontsize=6, ncol=2)
    return fig


def zero_sweep(deltas: dict[str, list[float]], model: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(4.6, 2.8), layout="constrained")
    for domain, d in deltas.items():
        ax.plot(np.sort(d)[::-1], lw=1.2, label=domain)
    ax.axhline(0, color=NEUTRAL, lw=0.8)
    ax.set_xlabel("channels by the change when zeroed: harmful (left) to useful (right)")
    ax.set_ylabel("search-set mIoU change (points)")
    ax.set_title(f"Zero sweep of {model}")
    ax.legend(frameon=False)
    return fig


def cost(t: Table) -> plt.Figure:
    rows = _rows(t, "method", "peak memory (GB)", "trainable parameters")
    fig, ax = plt.subplots(figsize=(4.6, 2.4), layout="constrained")
    y = np.arange(len(rows))
    ax.barh(y, [r[1] for r in rows], color=[GOOD] + [ACCENT] * (len(rows) - 1))
    for k, (_, gb, params) in enumerate(rows):
        ax.text(gb, k, f"  {params:,} trainable", va="center", fontsize=6)
    ax.set_yticks(y, [r[0] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("peak memory (GB)")
    ax.set_title("Cost on the same images and device")
    ax.margins(x=0.45)
    return fig


def dinov2(t: Table) -> plt.Figure:
    rows = _rows(t, "task", "domain", "metric", "improvement", "spread (std)",
                 where=lambda d: d["metric"] in ("accuracy", "rmse"))  # fmt: skip
    fig, axes = plt.subplots(1, 2, figsize=(5.2, 2.6), layout="constrained")
    for ax, metric, unit in zip(axes, ("accuracy", "rmse"), ("accuracy points", "RMSE decrease (m)")):
        mine = [r for r in rows if r[2] == metric]
        gains = [r[3] for r in mine]
        ax.bar(range(len(mine)), gains, yerr=[r[4] for r in mine], capsize=3,
               color=[GOOD if g > 0 else BAD for g in gains])  # fmt: skip
        ax.axhline(0, color=NEUTRAL, lw=0.8)
        ax.set_xticks(range(len(mine)), [r[1] for r in mine])
        ax.set_ylabel(unit)
        ax.set_title(f"{'classification' if metric == 'accuracy' else 'depth'}: held-out improvement")
    return fig


def save(fig: plt.Figure, path: Path) -> Path:
    """Write a figure as a 300 dpi PNG with the demo-model note on it (fixed metadata: the same data, the same
    file)."""
    fig.get_layout_engine().set(rect=(0, 0.04, 1, 0.96))  # a strip at the bottom for the note, clear of labels
    fig.text(0.99, 0.005, NOTE, ha="right", va="bottom", fontsize=5, color=BAD)
    fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return path


def styled():
    """matplotlib's settings for the report's figures (the publication figures' style)."""
    return plt.rc_context(STYLE)
