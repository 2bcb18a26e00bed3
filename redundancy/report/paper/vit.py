"""The DINOv2 table: the DINOv2 demo model's classification and depth on its target domains, baseline vs the found
set on held-out images, over several split seeds (each seed: another head split, search set and held-out set)."""

from __future__ import annotations

from dataclasses import dataclass

from ...engine.confidence import Interval, paired
from ...replace import pair_text
from ...tasks import get_task, task_names
from . import published as P
from .context import Context, domain_path
from .tables import Table, spread


@dataclass
class VitRun:
    """One search of the DINOv2 demo model: its held-out numbers per metric, as a user reads them."""

    task: str
    domain: str
    seed: int
    metrics: dict[str, tuple[float, float, Interval | None, bool]]  # name -> (baseline, +ours, gain CI, higher?)
    search_gain: float  # of the searched metric, oriented (positive is better)
    pairs: list[tuple]


def vit_runs(ctx: Context) -> list[VitRun]:
    """Every (task, domain, seed) search of the report's size, each measured on its held-out set in every metric."""
    s = ctx.size
    out = []
    for task, domains in (("classify", s.classify_domains), ("depth", s.depth_domains)):
        for domain in domains:
            for seed in s.vit_seeds:
                session = ctx.open(s.vit_model, domain_path(task, domain), seed, search_images=s.vit_search_images,
                                   heldout_images=s.vit_heldout_images, head_images=s.vit_head_images)  # fmt: skip
                ctx.log(f"searching {s.vit_model} on {task}/{domain}, split seed {seed}")
                r = ctx.search(session, s.scope_of(task), s.vit_top_n)
                held = session.evaluator("heldout")
                stats = held.set_stats([[], r.best_pairs])
                metrics = {}
                for m in session.task.metrics:
                    score = held.summarize(stats, m.name)[0]
                    groups = held.per_group(stats, m.name)
                    metrics[m.name] = (m.value(score[0]), m.value(score[1]), paired(groups[0], groups[1]),
                                       m.higher_is_better)  # fmt: skip
                if task == "depth":  # the paper's "MSE" column: the task's loss (mean squared error, m^2)
                    mse = held.summarize(stats)[1]
                    metrics["mse"] = (float(mse[0]), float(mse[1]), None, False)
                c = r.combos
                out.append(VitRun(task, domain, seed, metrics, (c.best.score if c.best else c.baseline_score)
                                  - c.baseline_score, r.best_pairs))  # fmt: skip
    return out


def vit_table(runs: list[VitRun], model: str) -> Table:
    """Per task, domain and metric: baseline and +ours (means over seeds), the improvement's mean and spread, and in
    how many seeds its 95% interval lies above 0 (helps) or below 0 (hurts)."""
    t = Table(
        "dinov2",
        f"DINOv2 classification and depth: {model}, baseline vs +ours on held-out images (mean over split seeds)",
        ["source", "model", "task", "domain", "metric", "seeds", "baseline", "+ours", "improvement",
         "spread (std)", "seeds helped", "seeds hurt", "search-set gain"],
        digits={"baseline": 4, "+ours": 4, "improvement": 4, "spread (std)": 4, "search-set gain": 4},
    )  # fmt: skip
    decimals = {m.name: m.digits for name in task_names() for m in get_task(name).metrics}  # a row: its metric's
    summary = []
    for task, domain in dict.fromkeys((r.task, r.domain) for r in runs):
        mine = [r for r in runs if (r.task, r.domain) == (task, domain)]
        for k, name in enumerate(mine[0].metrics):
            vals = [r.metrics[name] for r in mine]
            sign = 1 if vals[0][3] else -1
            gain, std = spread([sign * (v[1] - v[0]) for v in vals])
            cis = [v[2] for v in vals if v[2] is not None]
            helped = sum(ci.lo > 0 for ci in cis) if cis else None
            hurt = sum(ci.hi < 0 for ci in cis) if cis else None
            search = spread([r.search_gain for r in mine])[0] if k == 0 else None
            t.add(model, task, domain, name, len(mine), spread([v[0] for v in vals])[0],
                  spread([v[1] for v in vals])[0], gain, std, helped, hurt, search,
                  digits=decimals.get(name))  # fmt: skip
            if k == 0:
                summary.append(f"{task}/{domain} ({name}): helped in {helped}, hurt in {hurt} of {len(mine)} seeds")
    for size, numbers in P.DINOV2.items():
        for name, (before, after) in numbers.items():
            task, data = ("classify", "CIFAR") if name == "accuracy" else ("depth", "NYUv2")
            better = after - before if name in ("accuracy", "delta1") else before - after
            given = max(len(repr(v).partition(".")[2]) for v in (before, after))  # the decimals the paper gives
            t.add(f"DINOv2 {size}", task, data, name, None, before, after, better, None, None, None, None, paper=True,
                  digits=given)  # fmt: skip
    t.notes.append(
        "Searched metric first per domain (accuracy; RMSE for depth, the others measured on the same found set). "
        "Improvement: positive is better (lower RMSE, AbsRel, MSE; higher accuracy, delta1). 'helped' / 'hurt': seeds "
        "whose held-out gain has a 95% bootstrap interval above / below 0. " + "; ".join(summary) + ". Heads are "
        "fitted on each seed's head split. Pairs found: "
        + "; ".join(
            f"{r.task}/{r.domain} seed {r.seed}: {' '.join(pair_text(p) for p in r.pairs) or 'none'}" for r in runs[:4]
        )
        + (" ..." if len(runs) > 4 else "")  # fmt: skip
    )
    return t
