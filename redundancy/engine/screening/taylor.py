"""Taylor screening: a first-order estimate of every pair's gain from one gradient, then the best K scored exactly.

One forward + backward per image gives g = dJ/dX for a smooth stand-in J of the search metric. Replacing
channel i by channel j changes X by (x_j - x_i) on channel i only, so the first-order change of J is
sum_{b,h,w} g_i (x_j - x_i) = M[i, j] - M[i, i] with M = G X^T (C x C, one matrix product). Pairs are
ranked by it and the best K are rescored exactly. J follows the metric the search ranks by: the task's
smooth stand-in where it has one (`Task.smooth_score`: segmentation's soft mIoU, with tau a fraction
`temperature` of the baseline logits' standard deviation), else minus the task's loss. Ranking mIoU gains
by the loss's gradient does not work (measured: 0/10 of the exact top 10); the soft mIoU does.
"""

from __future__ import annotations

import operator
import time
from functools import reduce

import numpy as np
import torch

from ..evaluator import Evaluator
from .base import Option, SearchMode, register

TEMPERATURE = 0.1  # soft-mIoU tau as a fraction of the logits' std (0.05-0.25 measured equally good)
GRADIENT_ROWS = 3  # a forward + backward pass, counted in decoder rows; a smooth stand-in adds a forward


def _outputs(evaluator: Evaluator, b: int, x: torch.Tensor) -> torch.Tensor:
    """Head outputs (1, ...) of search image b from its features x (1, C, h, w)."""
    return evaluator.backend.decode(x, evaluator.set.context.take([b]))


def _pool(evaluator: Evaluator, terms: list[tuple[torch.Tensor, ...]]) -> np.ndarray:
    """Per-image terms summed per metric group (the protocol's pooling), (G, K); unevaluated images left out."""
    es = evaluator.set
    n = es.n_groups or int(es.groups.max()) + 1
    pooled = np.zeros((n, len(terms[0]) if terms else 0))
    for b, t in enumerate(terms):
        if es.groups[b] >= 0:
            pooled[es.groups[b]] += [float(v) for v in t]
    return pooled


def _terms(evaluator: Evaluator, smooth, outputs: list[torch.Tensor], tau: float) -> list[tuple[torch.Tensor, ...]]:
    es = evaluator.set
    return [smooth.terms(o, es.targets[b], evaluator.upscaler(b), tau) for b, o in enumerate(outputs)]


def screening_objective(evaluator: Evaluator, feats: torch.Tensor, metric: str, tau: float) -> float:
    """J for features (B, C, h, w): the task's smooth stand-in for `metric`, or minus the task's mean loss."""
    es = evaluator.set
    smooth = es.task.smooth_score(metric)
    if smooth is None:
        return -float(torch.cat([evaluator.row_loss(b, feats[b : b + 1]) for b in range(len(es))]).mean())
    outputs = [_outputs(evaluator, b, feats[b : b + 1]) for b in range(len(es))]
    return smooth.value(_pool(evaluator, _terms(evaluator, smooth, outputs, tau)))


def objective_gradient(
    evaluator: Evaluator, metric: str, temperature: float = TEMPERATURE
) -> tuple[torch.Tensor, float]:
    """dJ/dX at the unmodified features, (B, C, h, w), and the tau used (J as in `screening_objective`).

    A smooth stand-in pools its terms per group, so its gradient takes two passes: the unmodified outputs
    first (their std sets tau; their pooled terms give the group totals), then per image the backward of
    sum_k weights[g, k] * terms[k] with those totals held fixed.
    """
    es = evaluator.set
    smooth = es.task.smooth_score(metric)
    n_img, tau = len(es), 1.0
    if smooth is not None:
        with torch.no_grad():
            outputs = [_outputs(evaluator, b, es.feats[b : b + 1]) for b in range(n_img)]
            shown = [evaluator.upscaler(b)(o)[0] for b, o in enumerate(outputs)]
            tau = max(temperature * float(torch.cat([z.flatten().double() for z in shown]).std()), 1e-6)
            weights = smooth.weights(_pool(evaluator, _terms(evaluator, smooth, outputs, tau)))
    grads = []
    for b in range(n_img):
        x = es.feats[b : b + 1].clone().requires_grad_(True)
        with torch.enable_grad():
            if smooth is None:
                j = -evaluator.row_loss(b, x).sum() / n_img
            elif es.groups[b] < 0:  # not evaluated by the protocol: no gradient
                j = x.sum() * 0.0
            else:
                terms = smooth.terms(_outputs(evaluator, b, x), es.target(b), evaluator.upscaler(b), tau)
                w = weights[es.groups[b]]
                j = reduce(operator.add, (float(w[k]) * t for k, t in enumerate(terms)))  # terms: never empty
            (grad,) = torch.autograd.grad(j, x)
        grads.append(grad)
    return torch.cat(grads), tau


def taylor_matrix(evaluator: Evaluator, metric: str, temperature: float = TEMPERATURE) -> tuple[np.ndarray, float]:
    """Predicted first-order gain in J for every pair, (C, C): M[i, j] - M[i, i] with M = G X^T; and tau."""
    g, tau = objective_gradient(evaluator, metric, temperature)
    x = evaluator.set.feats
    c = x.shape[1]
    gm = g.transpose(0, 1).reshape(c, -1).double()  # (C, B*h*w)
    xm = x.transpose(0, 1).reshape(c, -1).double()
    m = gm @ xm.T
    return (m - m.diagonal()[:, None]).float().cpu().numpy(), tau


def gradient_rows(task, metric: str | None) -> int:
    """Decoder rows the screen's own gradient pass costs per image (a smooth stand-in: one more forward)."""
    return GRADIENT_ROWS + (task.smooth_score(metric) is not None)


@register
class TaylorMode(SearchMode):
    """Rank every pair by the first-order prediction of the search metric, rescore the best `candidates` exactly."""

    name = "taylor"
    summary = "a gradient's first-order estimate ranks every pair; the best candidates are scored exactly"
    options = (
        Option("candidates", 512, "taylor: pairs rescored exactly", int, lambda v: v >= 1, "a whole number >= 1",
               "Taylor: pairs rescored exactly"),
        Option(
            "taylor_temperature", TEMPERATURE,
            "taylor ranking by a task score: its smooth stand-in's sigmoid temperature, a fraction of the logits' std",
            float,
            lambda v: 0 < v < float("inf"), "a finite number > 0", "Taylor: ranking temperature (x logits' std)",
        ),
    )  # fmt: skip

    def score(self, scorer, pairs, settings, on_progress=None, cancel=None, known=None):
        t0 = time.perf_counter()
        pred, tau = taylor_matrix(scorer.evaluator, scorer.metric, settings.option("taylor_temperature"))
        ij = pairs.numpy()
        order = np.argsort(-pred[ij[:, 0], ij[:, 1]], kind="stable")[: settings.option("candidates")]
        scores = scorer.score(pairs[torch.from_numpy(np.sort(order))], on_progress=on_progress, cancel=cancel)
        scores.seconds = time.perf_counter() - t0
        rows = gradient_rows(scorer.evaluator.set.task, scorer.metric)
        scores.extra = {"mode": self.name, "candidates": int(len(order)), "predicted": pred, "tau": tau, "rows": rows}
        return scores

    def describe(self, n_pairs, settings):
        k = min(settings.option("candidates"), n_pairs)
        return f"taylor screening: rescoring the {k:,} most promising pairs exactly"

    def pair_rows(self, n_pairs, n_images, settings, task):
        scored = min(n_pairs, settings.option("candidates")) * n_images
        return scored + gradient_rows(task, settings.metric) * n_images

    def survivors(self, n_pairs, n_images, settings):
        return min(n_pairs, settings.option("candidates"))

    def rows_used(self, scores, n_images):
        return (scores.extra["candidates"] + scores.extra["rows"]) * n_images

    def estimate(self, scores):
        return scores.extra["predicted"]
