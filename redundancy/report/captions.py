"""Figure captions: what each figure shows and the numbers that matter in it, read from the run's own files
(the provenance line follows them in `figures.render`). Each takes a `figures.Run`."""

from __future__ import annotations

import numpy as np

from ..replace import pair_of, pair_text


def image_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """One image's IoU in percent (masks as bool arrays); 0 when both are empty, as the metric counts it."""
    union = np.logical_or(pred, gt).sum()
    return 100.0 * np.logical_and(pred, gt).sum() / union if union else 0.0


def _top(values: np.ndarray, k: int) -> list[int]:
    """The k channels with the largest finite values."""
    return [int(i) for i in np.argsort(-np.nan_to_num(values, nan=-np.inf)) if np.isfinite(values[i])][:k]


def _best_set(run) -> str:
    pairs = run.replacements["pairs"]
    return " ".join(pair_text(pair_of(p)) for p in pairs) or "the empty set"


def _scores(run) -> str:
    """'mIoU 27.59 -> 29.14 on 104 held-out images' (or on the search set when nothing was held out)."""
    m, r = run.metric, run.replacements
    where = r.get("heldout") or r["search"]
    which = "held-out" if r.get("heldout") else "search"
    return f"{m.show(where['baseline_score'])} -> {m.show(where['patched_score'])} on {where['images']} {which} images"


def channel_gallery(run, k: int = 6) -> str:
    redundant = _top(run.best_gain_as_source(), k)
    how = "zeroing it lowers the score most" if run.ablation else "the best donor to other channels"
    return (
        f"One search image and its channel maps: top row the {k} most effective channels ({how}), bottom row the "
        f"{k} most redundant (largest gain when replaced: {', '.join(map(str, redundant))})."
    )


def ablation(run) -> str:
    edits = run.ablation["edits"]
    zero = {int(k.split()[1]): v["delta_score"] for k, v in edits.items() if k.startswith("zero ")}
    m = run.metric
    if len(zero) > 20:
        worst, best = min(zero, key=zero.get), max(zero, key=zero.get)
        lower, higher = sum(d < 0 for d in zero.values()), sum(d > 0 for d in zero.values())
        return (
            f"Each of {len(zero)} channels zeroed alone ({m.label} change from the baseline "
            f"{m.show(run.ablation['baseline']['score'])}): {lower} lower the score (most: channel {worst}, "
            f"{zero[worst]:+.2f}), {higher} raise it (most: channel {best}, {zero[best]:+.2f}); the rest leave it."
        )
    return f"{m.label} change of each single-channel edit: " + ", ".join(f"{k} {v['delta_score']:+.2f}"
                                                                        for k, v in edits.items())  # fmt: skip


def pair_heatmap(run) -> str:
    gain = run.gain
    scored = int(np.isfinite(gain).sum())
    i, j = np.unravel_index(np.nanargmax(gain), gain.shape)
    return (
        f"Gain ({run.axis(delta=True)}) when channel i takes channel j's values, for the {scored:,} pairs scored "
        f"on {run.replacements['search']['images']} search images; circles: the top {len(run.topn['top'])}; "
        f"the best pair {i}<-{j} gains {gain[i, j]:+.3f}. Bars: the best gain per target and per source channel."
    )


def topn(run) -> str:
    top = run.topn["top"]
    conf = [p.get("confidence") for p in top]
    sure = sum(1 for c in conf if c and not c["within_noise"] and c["lo"] > 0)
    whiskers = f"; whiskers: 95% intervals, {sure} of {len(top)} above 0" if all(conf) else ""
    return f"The {len(top)} best pairs by their own gain (one per replaced channel){whiskers}."


def combinations(run) -> str:
    n = len(run.topn["top"])
    return (
        f"All {2**n - 1:,} subsets of the top {n} pairs, each scored on the search set (dashed: the baseline); "
        f"the best, {_best_set(run)}, is starred. Its effect: {_scores(run)}."
    )


def pairs_curve(run) -> str:
    ks = range(1, len(run.topn["top"]) + 1)
    best = [max(float(r["score"]) for r in run.combos if int(r["size"]) == k) for k in ks]
    k = int(np.argmax(best)) + 1
    return (
        f"The best {run.metric.label} reachable with k pairs applied together, k = 1..{len(best)}, and the top k by "
        f"single-pair gain: the curve peaks at k = {k} ({run.metric.show(best[k - 1])} on the search set)."
    )


def selection(run) -> str:
    sel = run.replacements["selection"]
    chosen = f"chose N' = {sel['chosen_n']}" if sel["chosen_n"] else "chose no set (no size's interval is above 0)"
    return (
        f"select {sel['select']}: the {sel['folds']}-fold cross-validated held-out gain per set size against the "
        f"search set's own (optimistic) gain; it {chosen}. Result: {_scores(run)}."
    )


def before_after(run, images: int = 4) -> str:
    return (
        f"Baseline (top) and patched (bottom) masks of the first {images} search images with each image's IoU; "
        f"white: the ground truth's outline. The set {_best_set(run)}: {_scores(run)}."
    )


CAPTIONS = {
    "channel_gallery": channel_gallery,
    "ablation": ablation,
    "pair_heatmap": pair_heatmap,
    "topn": topn,
    "combinations": combinations,
    "pairs_curve": pairs_curve,
    "selection": selection,
    "before_after": before_after,
}


def consistency_caption(runs) -> str:
    """The cross-run figure's caption: how many runs, and the channels most of them agree on."""
    return (
        f"Across {len(runs)} runs ({', '.join(r.label for r in runs)}): how much their 10 most redundant channels "
        "overlap (Jaccard), and the channels that are redundant (r) or effective (e) in several runs."
    )
