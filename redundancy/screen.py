"""Screening modes beyond the paper: find the promising pairs cheaply, then score only those exactly.

- `taylor`: one forward + backward per image gives g = dJ/dX for a smooth stand-in J of the search
  metric. Replacing channel i by channel j changes X by (x_j - x_i) on channel i only, so the
  first-order change of J is sum_{b,h,w} g_i (x_j - x_i) = M[i, j] - M[i, i] with M = G X^T
  (C x C, one matrix product). Pairs are ranked by it and the best K are rescored exactly.
  J follows the metric the search ranks by: for `loss`, minus the Dice + CE loss; for `miou`, a
  soft mIoU (sigmoid(logit / tau) in place of logit > 0, pooled by the same protocol), with tau a
  fraction (`temperature`) of the baseline logits' standard deviation. Ranking mIoU gains by the
  loss's gradient does not work (measured: 0/10 of the exact top 10); the soft mIoU does.
- `halving`: successive halving. Score every pair on a few images, keep the best fraction, double
  the images, repeat; the survivors end with exact scores on all images.

Both return PairScores whose NaN cells are pairs that were screened out (never scored exactly).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from .score import EvalSet, Evaluator, PairScorer, PairScores, ScoreProgress
from .search import CombinationResult, search_combinations, top_pairs

MODES = ("exact", "taylor", "halving")
TEMPERATURE = 0.1  # soft-mIoU tau as a fraction of the logits' std (0.05-0.25 measured equally good)


def _logits(evaluator: Evaluator, b: int, x: torch.Tensor) -> torch.Tensor:
    """Logits (H, W) at original size of search image b from its features x (1, C, h, w)."""
    es = evaluator.set
    low = evaluator.backend.decode(x, es.context.take([b]), evaluator.mask_choice)
    return evaluator.backend.upscale(low, es.metas[b])[0]


def _soft_counts(logits: torch.Tensor, gt: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft intersection and union of sigmoid(logits / tau) with a GT mask."""
    p, g = torch.sigmoid(logits.float() / tau), gt.float()
    return (p * g).sum(), (p + g - p * g).sum()


def _group_counts(evaluator: Evaluator, logits: list[torch.Tensor], tau: float) -> tuple[np.ndarray, np.ndarray]:
    """Soft intersection and union per metric group (the protocol's pooling), from per-image logits."""
    es = evaluator.set
    n = es.n_groups or int(es.groups.max()) + 1
    inter, union = np.zeros(n), np.zeros(n)
    for b, z in enumerate(logits):
        if es.groups[b] < 0:  # not evaluated by the protocol
            continue
        i, u = _soft_counts(z, es.targets[b], tau)
        inter[es.groups[b]] += float(i)
        union[es.groups[b]] += float(u)
    return inter, union


def screening_objective(evaluator: Evaluator, feats: torch.Tensor, metric: str, tau: float) -> float:
    """J for features (B, C, h, w): soft mIoU in percent (`miou`) or minus the task's mean loss (anything else)."""
    es = evaluator.set
    if metric != "miou":
        return -float(torch.cat([evaluator.row_loss(b, feats[b : b + 1]) for b in range(len(es))]).mean())
    inter, union = _group_counts(evaluator, [_logits(evaluator, b, feats[b : b + 1]) for b in range(len(es))], tau)
    return float(100.0 * (inter / union).mean())


def objective_gradient(
    evaluator: Evaluator, metric: str = "miou", temperature: float = TEMPERATURE
) -> tuple[torch.Tensor, float]:
    """dJ/dX at the unmodified features, (B, C, h, w), and the tau used (J as in `screening_objective`).

    The soft mIoU pools counts per group, so its gradient takes two passes: the unmodified logits
    first (their std sets tau; their soft counts give the group totals), then per image the
    backward of dJ/dI_g * I_b + dJ/dU_g * U_b with those totals held fixed.
    """
    es = evaluator.set
    n_img, n_grp, tau = len(es), es.n_groups or int(es.groups.max()) + 1, 1.0
    if metric == "miou":
        with torch.no_grad():
            logits = [_logits(evaluator, b, es.feats[b : b + 1]) for b in range(n_img)]
            tau = max(temperature * float(torch.cat([z.flatten().double() for z in logits]).std()), 1e-6)
            inter, union = _group_counts(evaluator, logits, tau)
        d_inter, d_union = 100.0 / n_grp / union, -100.0 / n_grp * inter / union**2
    grads = []
    for b in range(n_img):
        x = es.feats[b : b + 1].clone().requires_grad_(True)
        with torch.enable_grad():
            if metric != "miou":
                j = -evaluator.row_loss(b, x).sum() / n_img
            elif es.groups[b] < 0:  # not evaluated by the protocol: no gradient
                j = x.sum() * 0.0
            else:
                i, u = _soft_counts(_logits(evaluator, b, x), es.targets[b], tau)
                g = es.groups[b]
                j = float(d_inter[g]) * i + float(d_union[g]) * u
            (grad,) = torch.autograd.grad(j, x)
        grads.append(grad)
    return torch.cat(grads), tau


def taylor_matrix(
    evaluator: Evaluator, metric: str = "miou", temperature: float = TEMPERATURE
) -> tuple[np.ndarray, float]:
    """Predicted first-order gain in J for every pair, (C, C): M[i, j] - M[i, i] with M = G X^T; and tau."""
    g, tau = objective_gradient(evaluator, metric, temperature)
    x = evaluator.set.feats
    c = x.shape[1]
    gm = g.transpose(0, 1).reshape(c, -1).double()  # (C, B*h*w)
    xm = x.transpose(0, 1).reshape(c, -1).double()
    m = gm @ xm.T
    return (m - m.diagonal()[:, None]).float().cpu().numpy(), tau


def taylor_screen(
    scorer: PairScorer,
    pairs: torch.Tensor,
    k: int,
    on_progress: Callable[[ScoreProgress], None] | None = None,
    cancel: threading.Event | None = None,
    temperature: float = TEMPERATURE,
) -> PairScores:
    """Rank `pairs` by the first-order prediction of the scorer's metric, rescore the best k exactly."""
    t0 = time.perf_counter()
    pred, tau = taylor_matrix(scorer.evaluator, scorer.metric, temperature)
    ij = pairs.numpy()
    order = np.argsort(-pred[ij[:, 0], ij[:, 1]], kind="stable")[:k]
    scores = scorer.score(pairs[torch.from_numpy(np.sort(order))], on_progress=on_progress, cancel=cancel)
    scores.seconds = time.perf_counter() - t0
    # decoder-row cost of the screen itself: forward + backward = 3 rows; the miou stand-in adds a forward
    rows = 3 + (scorer.metric == "miou")
    scores.extra = {"mode": "taylor", "candidates": int(len(order)), "predicted": pred, "tau": tau, "rows": rows}
    return scores


def subset(evalset: EvalSet, idx: list[int]) -> EvalSet:
    """The same images' features, context and GT restricted to `idx` (groups renumbered, -1 kept)."""
    kept = evalset.groups[idx]
    _, renumbered = np.unique(kept[kept >= 0], return_inverse=True)
    groups = np.full(len(idx), -1)
    groups[kept >= 0] = renumbered
    return EvalSet(
        [evalset.names[i] for i in idx],
        evalset.feats[idx],
        evalset.context.take(idx),
        [evalset.metas[i] for i in idx],
        [evalset.targets[i] for i in idx],
        groups,
        task=evalset.task,
    )


def halving_screen(
    scorer: PairScorer,
    pairs: torch.Tensor,
    start_images: int = 2,
    keep: float = 0.25,
    on_progress: Callable[[ScoreProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> PairScores:
    """Successive halving over images; survivors get exact scores on the whole set."""
    t0 = time.perf_counter()
    ev = scorer.evaluator
    n = len(ev.set)
    order = list(range(n))  # images join in dataset order, so rounds are reproducible
    alive, m = pairs, max(1, min(start_images, n))
    rounds, estimate = [], np.full((ev.channels, ev.channels), np.nan, np.float32)
    while m < n and len(alive) > 1:
        part = Evaluator(ev.backend, subset(ev.set, order[:m]), ev.mask_choice, ev.rows, ev.precision)
        sub = PairScorer(part, scorer.metric)
        s = sub.score(alive, cancel=cancel)
        ij = alive.numpy()
        gains = s.gain[ij[:, 0], ij[:, 1]]
        estimate[ij[:, 0], ij[:, 1]] = gains  # the latest-round estimate of every pair still in play
        tb = s.tiebreak[ij[:, 0], ij[:, 1]]
        rank = np.lexsort((ij[:, 1], ij[:, 0], -tb, -gains))
        survivors = max(1, int(np.ceil(len(alive) * keep)))
        rounds.append({"images": m, "pairs": int(len(alive)), "kept": survivors})
        alive = alive[torch.from_numpy(np.sort(rank[:survivors]))]
        m *= 2
    final = scorer.score(alive, on_progress=on_progress, cancel=cancel)
    final.seconds = time.perf_counter() - t0
    final.extra = {"mode": "halving", "rounds": rounds, "survivors": int(len(alive)), "estimate": estimate}
    return final


@dataclass
class ModeReport:
    """One search mode measured against the exact scan of the same pairs and images."""

    mode: str
    overlap: int  # pairs of the exact top N this mode's top N also holds
    top_n: int
    spearman: float  # rank correlation of the mode's screening estimate with exact gains, on its survivors
    scored: int  # pairs scored exactly
    best_miou: float  # best-subset mIoU of the mode's own top N (search set)
    baseline_miou: float
    seconds: float
    cost: float  # decoder rows relative to the exact scan (a forward + backward pass counts as 3 rows)
    time_share: float = float("nan")  # measured seconds relative to the exact scan's (counted work vs clock)

    def row(self) -> dict:
        """A flat dict for tables, JSON and CSV."""
        return {**asdict(self), "overlap": f"{self.overlap}/{self.top_n}"}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two score vectors (NaN for fewer than 2 values)."""
    if len(a) < 2:
        return float("nan")
    ra, rb = np.argsort(np.argsort(a, kind="stable")), np.argsort(np.argsort(b, kind="stable"))
    return float(np.corrcoef(ra, rb)[0, 1])


def compare_modes(
    scorer: PairScorer,
    pairs: torch.Tensor,
    top_n: int,
    candidates: int = 512,
    halving_start: int = 2,
    halving_keep: float = 0.25,
    temperature: float = TEMPERATURE,
    exact: PairScores | None = None,
    exact_combos: CombinationResult | None = None,
    on_stage: Callable[[str], None] | None = None,
    on_progress: Callable[[ScoreProgress], None] | None = None,
    cancel: threading.Event | None = None,
    on_combos: Callable[[int, int], None] | None = None,
) -> list[ModeReport]:
    """Run taylor and halving on `pairs` and measure each against the exact scan (pass `exact` to reuse one).

    `on_stage(name)` announces each stage; `on_progress` gets pair-scoring blocks and `on_combos(done, total)`
    the combination stages' progress.

    Every mode's own top N then goes through the combination stage, so `best_miou` is what a user
    of that mode would get; `exact_combos` (that exact search's own combination stage) is reused
    when it covers the same top N.
    """
    say = on_stage or (lambda _s: None)
    ev = scorer.evaluator
    n_img = len(ev.set)
    full = len(pairs) * n_img
    if exact is None:
        say("exact scan")
        exact = scorer.score(pairs, on_progress=on_progress, cancel=cancel)
    ij = pairs.numpy()
    missing = int(np.isnan(exact.gain[ij[:, 0], ij[:, 1]]).sum())
    if missing:
        raise ValueError(f"the exact scores lack {missing} of the pairs to compare; score them all first.")
    exact_top = {(p.source, p.target) for p in top_pairs(exact, top_n)[0]}

    def report(
        mode: str,
        scores: PairScores,
        seconds: float,
        rows: float,
        estimate: np.ndarray | None,
        known: CombinationResult | None = None,
    ) -> ModeReport:
        top, _ = top_pairs(scores, top_n)
        found = {(p.source, p.target) for p in top}
        combos = known if known and {q for c in known.rows for q in c.pairs} == found else None
        if combos is None:
            say(f"{mode}: combinations of its top {top_n}")
            combos = search_combinations(ev, top, scorer.baseline(), scorer.metric, on_combos, cancel)
        alive = ij[np.isfinite(scores.gain[ij[:, 0], ij[:, 1]])]
        rho = (
            1.0
            if estimate is None
            else spearman(estimate[alive[:, 0], alive[:, 1]], exact.gain[alive[:, 0], alive[:, 1]])
        )
        return ModeReport(
            mode,
            len(found & exact_top),
            len(exact_top),
            rho,
            int(len(alive)),
            combos.best.miou if combos.best else combos.baseline_miou,
            combos.baseline_miou,
            seconds,
            rows / full,
        )

    out = [report("exact", exact, exact.seconds, full, None, exact_combos)]
    say("taylor screening")
    tay = taylor_screen(scorer, pairs, candidates, on_progress, cancel, temperature)
    rows = (tay.extra["candidates"] + tay.extra["rows"]) * n_img
    out.append(report("taylor", tay, tay.seconds, rows, tay.extra["predicted"]))
    say("successive halving")
    hal = halving_screen(scorer, pairs, halving_start, halving_keep, on_progress, cancel)
    rows = sum(r["pairs"] * r["images"] for r in hal.extra["rounds"]) + hal.extra["survivors"] * n_img
    out.append(report("halving", hal, hal.seconds, rows, hal.extra["estimate"]))
    # Rows are counted work; seconds are this machine's clock (small screening batches run at another rate
    # than the full scan's): both are reported, side by side, so neither passes for the other.
    return [replace(r, time_share=r.seconds / out[0].seconds if out[0].seconds > 0 else float("nan")) for r in out]
