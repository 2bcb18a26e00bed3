"""Publication figures from run directories alone (matplotlib: vector SVG/PDF and 300 dpi PNG).

Each builder takes a `Run` (`runfiles.py`; or several) and returns a matplotlib Figure; `render` writes every
figure in the chosen formats with a caption sidecar (.txt) naming model, weights, data, search-set
size and seed. matplotlib is used for print output (vector formats, exact sizing, fonts);
the app's interactive views use plotly (`viz.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..data.pictures import overlay  # noqa: E402
from ..errors import RunError  # noqa: E402
from ..replace import pair_of, pair_text  # noqa: E402
from .captions import CAPTIONS, consistency_caption, image_iou  # noqa: E402
from .runfiles import Run, consistency_problem  # noqa: E402

_logger = logging.getLogger(__name__)
FORMATS = ("png", "svg", "pdf")
DPI = 300
# Okabe-Ito: distinguishable with the common colour-vision deficiencies and in greyscale print
GOOD, BAD, NEUTRAL, ACCENT = "#009E73", "#D55E00", "#999999", "#0072B2"
STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
    "savefig.dpi": DPI,
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
    "svg.hashsalt": "redundancy",
}
FEATURE_CMAP, GAIN_CMAP = "viridis", "RdBu"


def _fig(w: float, h: float):
    return plt.figure(figsize=(w, h), layout="constrained")


def channel_gallery(run: Run, k: int = 6, image: int = 0) -> plt.Figure:
    """The image, its k most effective and k most redundant channel maps (the paper's Figure 5 story).

    Redundant = largest gain when replaced; effective = largest loss when zeroed (after a zero
    sweep), else the best donors. A channel never appears in both rows.
    """
    p = _need_preview(run)
    feats = p["feats"][image].astype(np.float32)
    redundant = _rank(run.best_gain_as_source(), k)
    effective = [c for c in _rank(run.effective_score(), 2 * k) if c not in redundant][:k]
    fig = _fig(1.1 * (k + 1), 2.6)
    grid = fig.add_gridspec(2, k + 1)
    ax = fig.add_subplot(grid[:, 0])
    ax.imshow(p[f"image_{image}"])
    ax.set_title(str(p["names"][image]))
    ax.axis("off")
    how = "zeroing it hurts most" if run.ablation else "best donor to other channels"
    fig.suptitle(f"channel maps: effective = {how}; redundant = largest gain when replaced", fontsize=7)
    for row, (name, chans) in enumerate((("effective", effective), ("redundant", redundant))):
        for col, c in enumerate(chans):
            ax = fig.add_subplot(grid[row, col + 1])
            ax.imshow(feats[c], cmap=FEATURE_CMAP)
            ax.set_title(f"{name} {c}", fontsize=7, color=GOOD if row == 0 else BAD)
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


def _rank(values: np.ndarray, k: int) -> list[int]:
    order = [int(i) for i in np.argsort(-np.nan_to_num(values, nan=-np.inf)) if np.isfinite(values[i])]
    return order[:k]


def _need_preview(run: Run) -> dict:
    if run.preview is None:
        raise RunError(f"{run.path} has no preview.npz (runs from before this version); rerun the search.")
    return run.preview


def ablation_bars(run: Run) -> plt.Figure:
    """Delta mIoU per edit: Table 1 shape for a few edits, the full sweep as bars over channels."""
    if not run.ablation:
        raise RunError(f"{run.path} has no ablation.json; run `ablate --run {run.path} --zero all` first.")
    edits = run.ablation["edits"]
    zero = sorted((int(k.split()[1]), v["delta_score"]) for k, v in edits.items() if k.startswith("zero "))
    fig = _fig(6.5, 2.4)
    ax = fig.add_subplot()
    if len(zero) > 20:
        ch, d = zip(*zero)
        ax.bar(ch, d, width=1.0, color=[GOOD if x > 0 else BAD for x in d])
        ax.set_xlabel("zeroed channel")
    else:
        names, d = list(edits), [v["delta_score"] for v in edits.values()]
        ax.bar(range(len(d)), d, color=[GOOD if x > 0 else BAD for x in d])
        ax.set_xticks(range(len(d)), names, rotation=30, ha="right")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel(run.axis(delta=True))
    ax.set_title(f"single-channel edits (baseline {run.metric.show(run.ablation['baseline']['score'])})")
    return fig


def pair_heatmap(run: Run) -> plt.Figure:
    """C x C pair gains with the top N marked, and the marginals: best gain per source and per target."""
    gain = run.gain
    rows = np.flatnonzero(~np.isnan(gain).all(1))
    cols = np.flatnonzero(~np.isnan(gain).all(0))
    sub = gain[np.ix_(rows, cols)]
    bound = float(np.nanmax(np.abs(sub))) or 1.0
    fig = _fig(6.5, 5.2)
    grid = fig.add_gridspec(2, 2, width_ratios=(4, 1), height_ratios=(1, 4))
    ax = fig.add_subplot(grid[1, 0])
    im = ax.imshow(
        np.ma.masked_invalid(sub), cmap=GAIN_CMAP, vmin=-bound, vmax=bound, aspect="auto", interpolation="nearest"
    )
    pos_r = {int(c): k for k, c in enumerate(rows)}
    pos_c = {int(c): k for k, c in enumerate(cols)}
    top = [(p["source"], p["target"]) for p in run.topn["top"]]
    ax.scatter(
        [pos_c[j] for _, j in top],
        [pos_r[i] for i, _ in top],
        s=30,
        facecolors="none",
        edgecolors="black",
        linewidths=1.0,
        label="top N",
    )
    _channel_ticks(ax.set_yticks, rows)
    _channel_ticks(ax.set_xticks, cols)
    ax.set_xlabel("target channel j (copied)")
    ax.set_ylabel("source channel i (replaced)")
    corner = fig.add_subplot(grid[0, 1])  # the empty corner holds the legend: it never covers a data cell
    corner.axis("off")
    corner.legend(*ax.get_legend_handles_labels(), loc="center", frameon=False)
    fig.colorbar(im, ax=ax, location="bottom", shrink=0.6, label=run.axis(delta=True))
    top_ax = fig.add_subplot(grid[0, 0], sharex=ax)
    top_ax.bar(range(len(cols)), np.nanmax(np.nan_to_num(sub, nan=-np.inf), 0), color=ACCENT, width=1.0)
    top_ax.set_ylabel("best gain\nper target")
    top_ax.tick_params(labelbottom=False)
    side = fig.add_subplot(grid[1, 1], sharey=ax)
    side.barh(range(len(rows)), np.nanmax(np.nan_to_num(sub, nan=-np.inf), 1), color=ACCENT, height=1.0)
    side.set_xlabel("best gain\nper source")
    side.tick_params(labelleft=False)
    return fig


def _channel_ticks(setter, chans: np.ndarray, most: int = 16) -> None:
    step = max(1, len(chans) // most)
    setter(range(0, len(chans), step), [str(int(c)) for c in chans[::step]])


def topn_bars(run: Run) -> plt.Figure:
    """Gain of each of the top N pairs."""
    top = run.topn["top"]
    fig = _fig(4.0, 2.4)
    ax = fig.add_subplot()
    gains = [p["gain"] for p in top]
    ax.bar(range(len(top)), gains, color=[GOOD if g > 0 else BAD for g in gains])
    conf = [p.get("confidence") for p in top]
    if all(conf) and run.topn.get("metric") != "loss":  # intervals are of the score's gain
        # a percentile interval of a few images need not hold its point estimate: bars never go negative
        lo = [max(0.0, g - c["lo"]) for g, c in zip(gains, conf)]
        hi = [max(0.0, c["hi"] - g) for g, c in zip(gains, conf)]
        ax.errorbar(range(len(top)), gains, yerr=[lo, hi], fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
    ax.set_xticks(range(len(top)), [f"{p['source']}←{p['target']}" for p in top], rotation=45, ha="right")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel(
        "single-pair gain, " + ("loss decrease" if run.topn.get("metric") == "loss" else run.axis(delta=True))
    )
    whiskers = f"; whiskers: {conf[0]['level']:.0%} interval" if all(conf) and run.topn.get("metric") != "loss" else ""
    ax.set_title(f"top {len(top)} pairs{whiskers}")
    return fig


def combinations_scatter(run: Run) -> plt.Figure:
    """mIoU of every evaluated subset against its size; the baseline dashed, the best starred."""
    size = np.array([int(r["size"]) for r in run.combos])
    scores = np.array([float(r["score"]) for r in run.combos])
    value = run.metric.value  # scores are stored higher-is-better; plotted as users read them
    base = value(run.topn["baseline_score"])
    fig = _fig(4.0, 2.6)
    ax = fig.add_subplot()
    jitter = (np.random.default_rng(0).random(len(size)) - 0.5) * 0.25  # seeded: figures regenerate exactly
    ax.scatter(size + jitter, value(scores), s=8, color=NEUTRAL, alpha=0.7, label="subsets")
    ax.axhline(base, color="black", ls="--", lw=0.8, label="baseline")
    if run.replacements["pairs"]:
        b = int(np.argmax(scores))
        ax.scatter([size[b]], [value(scores[b])], marker="*", s=120, color=BAD, zorder=3, label="best")
    ax.set_xlabel("pairs in subset")
    ax.set_ylabel(run.axis())
    ax.legend(frameon=False)
    return fig


def pairs_curve(run: Run) -> plt.Figure:
    """mIoU against the number of pairs applied: the best subset of each size k, and the top k by single-pair gain."""
    by_pairs = {r["pairs"]: float(r["score"]) for r in run.combos}
    top = [pair_text(pair_of(p)) for p in run.topn["top"]]
    ks = list(range(1, len(top) + 1))
    best_of_k = [max(float(r["score"]) for r in run.combos if int(r["size"]) == k) for k in ks]
    top_k = [by_pairs[" ".join(top[:k])] for k in ks]
    best = int(np.argmax(best_of_k))
    value = run.metric.value  # plotted as users read the metric (RMSE upwards, lower is better)
    best_of_k, top_k = [value(v) for v in best_of_k], [value(v) for v in top_k]
    fig = _fig(4.0, 2.4)
    ax = fig.add_subplot()
    ax.plot(ks, best_of_k, marker="o", color=ACCENT, label="best subset of k pairs")
    ax.plot(ks, top_k, marker=".", color="0.5", ls=":", label="top k by single-pair gain")
    ax.axhline(value(run.topn["baseline_score"]), color="black", ls="--", lw=0.8, label="baseline")
    ax.annotate(
        f"peak at {ks[best]}",
        (ks[best], best_of_k[best]),
        textcoords="offset points",
        xytext=(0, 6),
        ha="center",
        fontsize=7,
    )
    ax.set_xlabel("pairs applied together (k)")
    ax.set_ylabel(run.axis())
    ax.set_xticks(ks)
    ax.legend(frameon=False, fontsize=6)
    return fig


def selection_curve(run: Run) -> plt.Figure:
    """select cv / greedy: the cross-validated held-out gain per set size N' against the search set's own gain
    (best subset of the first N' pairs, in-sample); the chosen N' and its 95% interval marked."""
    sel = run.replacements["selection"]
    curve = sel["curve"]
    ks = list(range(1, len(curve) + 1))
    top = [pair_text(pair_of(p)) for p in run.topn["top"]]
    base = run.topn["baseline_score"]
    in_sample = [  # the paper's view of each N': scores are stored higher-is-better, gains in score points
        max(float(r["score"]) for r in run.combos if r["pairs"] and set(r["pairs"].split()) <= set(top[:k])) - base
        for k in ks
    ]
    fig = _fig(4.0, 2.4)
    ax = fig.add_subplot()
    ax.plot(ks, in_sample, marker=".", color="0.5", ls=":", label="search set (best subset of the first N')")
    ax.plot(ks, curve, marker="o", color=ACCENT, label=f"{sel['folds']}-fold cross-validated, held out")
    est, best = sel["estimate"], sel["best_n"]
    if est:
        below, above = max(0.0, est["gain"] - est["lo"]), max(0.0, est["hi"] - est["gain"])
        ax.errorbar(
            [best], [est["gain"]], yerr=[[below], [above]], fmt="none", ecolor="black", elinewidth=0.8, capsize=3
        )
    ax.axhline(0, color="black", ls="--", lw=0.8, label="no change")
    chosen = sel["chosen_n"]
    note = f"chosen N' = {chosen}" if chosen else f"no set chosen: N' = {best}'s interval holds 0"
    ax.set_title(f"select {sel['select']}: {note}", fontsize=8)
    ax.set_xlabel("pairs in the set (N')")
    ax.set_ylabel(run.axis(delta=True))
    ax.set_xticks(ks)
    ax.legend(frameon=False, fontsize=6)
    return fig


def before_after(run: Run, images: int = 4) -> plt.Figure:
    """Baseline vs patched predictions (tinted) with the GT outline, for the preview images."""
    p = _need_preview(run)
    n = min(images, len(p["names"]))
    fig = _fig(1.6 * n, 3.4)
    for i in range(n):
        for row, key in enumerate(("base", "patched")):
            ax = fig.add_subplot(2, n, row * n + i + 1)
            img, gt, pred = p[f"image_{i}"], p[f"gt_{i}"], p[f"{key}_{i}"]
            ax.imshow(overlay(img, pred))
            ax.contour(gt, levels=[0.5], colors="white", linewidths=0.6)
            ax.set_title(f"{p['names'][i]} {'baseline' if row == 0 else 'patched'}\nIoU {image_iou(pred, gt):.1f}",
                         fontsize=6)  # fmt: skip
            ax.axis("off")
    return fig


def consistency(runs: list[Run], k: int = 10) -> plt.Figure:
    """Across runs: overlap of the k most redundant channels (Jaccard) and channels shared by several runs."""
    red = [set(_rank(r.best_gain_as_source(), k)) for r in runs]
    eff = [set(_rank(r.effective_score(), k)) for r in runs]
    n = len(runs)
    jac = np.array([[len(a & b) / max(1, len(a | b)) for b in red] for a in red])
    fig = _fig(6.5, 2.8)
    ax = fig.add_subplot(1, 2, 1)
    im = ax.imshow(jac, cmap="Greys", vmin=0, vmax=1)
    ax.set_xticks(range(n), [r.label for r in runs], rotation=30, ha="right")
    ax.set_yticks(range(n), [r.label for r in runs])
    for a in range(n):
        for b in range(n):
            ax.text(b, a, f"{jac[a, b]:.2f}", ha="center", va="center", color="white" if jac[a, b] > 0.5 else "black")
    ax.set_title(f"overlap of top-{k} redundant channels")
    fig.colorbar(im, ax=ax, shrink=0.8, label="Jaccard")
    ax2 = fig.add_subplot(1, 2, 2)
    shared_r = shared_channels(red)
    shared_e = shared_channels(eff)
    labels = [f"r{c}" for c, _ in shared_r[:8]] + [f"e{c}" for c, _ in shared_e[:8]]
    counts = [m for _, m in shared_r[:8]] + [m for _, m in shared_e[:8]]
    ax2.barh(range(len(labels)), counts, color=[BAD] * len(shared_r[:8]) + [GOOD] * len(shared_e[:8]))
    ax2.set_yticks(range(len(labels)), labels)
    ax2.invert_yaxis()
    ax2.set_xlabel(f"runs (of {n}) where the channel is in the top {k}")
    ax2.set_title("r = redundant, e = effective")
    return fig


def shared_channels(sets: list[set[int]]) -> list[tuple[int, int]]:
    """(channel, number of sets holding it), most shared first, ties by channel."""
    counts: dict[int, int] = {}
    for s in sets:
        for c in s:
            counts[c] = counts.get(c, 0) + 1
    return sorted(counts.items(), key=lambda t: (-t[1], t[0]))


SINGLE = {
    "channel_gallery": channel_gallery,
    "ablation": ablation_bars,
    "pair_heatmap": pair_heatmap,
    "topn": topn_bars,
    "combinations": combinations_scatter,
    "pairs_curve": pairs_curve,
    "selection": selection_curve,
    "before_after": before_after,
}


def check_formats(formats: tuple[str, ...]) -> tuple[str, ...]:
    """The figure formats, each once in the order given; none, or one not in FORMATS, is refused."""
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        given = f"unknown figure format '{bad[0]}'" if bad else "no figure format given"
        raise RunError(f"{given}; use one or more of {', '.join(FORMATS)} (comma-separated).")
    return tuple(dict.fromkeys(formats))


def render(
    run_dirs: list[str | Path],
    out: str | Path,
    formats: tuple[str, ...] = FORMATS,
    verify: bool = True,
    consistent: bool | None = None,
    say: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write every figure the runs support (one set per run, plus consistency for several runs) and return exactly
    the files written; runs whose files changed after their search are refused unless not `verify`.

    The consistency figure compares channel numbers, so it is drawn only over runs of one model, channel count and
    encoder block: `consistent` None draws it where it can and otherwise tells `say` why not (default: the
    log); True asks for it (runs that cannot be compared are refused); False leaves it out.
    """
    formats = check_formats(tuple(formats))
    runs = [Run.load(p, verify) for p in run_dirs]
    problem = consistency_problem(runs)
    if consistent and (len(runs) < 2 or problem):
        raise RunError(f"no consistency figure: {problem or 'it needs two or more runs'}.")
    if problem and consistent is None:
        (say or _logger.warning)(f"consistency figure skipped: {problem}.")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunError(f"cannot create the figures folder {out} ({e.strerror}); pick another --out.") from None
    written: list[Path] = []
    with plt.rc_context(STYLE):
        for run, prefix in zip(runs, _prefixes(runs)):
            for name, build in SINGLE.items():
                if name == "ablation" and not run.ablation:
                    continue  # optional: only after `ablate --run`
                if name == "selection" and not run.replacements.get("selection"):
                    continue  # select cv / greedy runs only
                if name == "before_after" and "gt_0" not in (run.preview or {}):
                    continue  # masks: segmentation runs only
                caption = f"{CAPTIONS[name](run)}\n{run.caption()}"  # what it shows and its numbers, then provenance
                written += _save(build(run), out, f"{prefix}_{name}" if prefix else name, formats, caption, run.notice)
        if len(runs) > 1 and not problem and consistent is not False:
            caption = consistency_caption(runs) + "\n" + "\n".join(r.caption() for r in runs)
            notice = next((r.notice for r in runs if r.notice), None)
            written += _save(consistency(runs), out, "consistency", formats, caption, notice)
    return written


def _prefixes(runs: list[Run]) -> list[str]:
    """Each run's file-name prefix: none for one run, else its folder's name, numbered where two share a name (their
    figures would overwrite each other)."""
    names = [r.path.name for r in runs]
    if len(runs) == 1:
        return [""]
    return names if len(set(names)) == len(names) else [f"run{k + 1}_{n}" for k, n in enumerate(names)]


def _save(
    fig: plt.Figure, out: Path, name: str, formats: tuple[str, ...], caption: str, notice: str | None
) -> list[Path]:
    """Write `fig` in each format with its caption beside; `notice` (random or demo weights) is printed on the figure
    itself, so it never passes for a result on a real model."""
    if notice:
        fig.get_layout_engine().set(rect=(0, 0.06, 1, 0.94))  # a band below the axes: the note hides no label
        fig.text(0.99, 0.01, notice, ha="right", va="bottom", fontsize=6, color=BAD)
    fig.canvas.draw()
    fig.set_layout_engine("none")  # freeze the layout: every format (in any order) gets the same geometry
    paths = []
    for fmt in formats:
        path = out / f"{name}.{fmt}"
        # fixed metadata so the same run gives byte-identical files
        meta = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}, "png": {}}[fmt]
        fig.savefig(path, format=fmt, dpi=DPI, metadata=meta)
        paths.append(path)
    plt.close(fig)
    (out / f"{name}.txt").write_text(caption + "\n")
    return paths + [out / f"{name}.txt"]
