"""The segmentation tables, on the SAM / SAM2 demo models and their target domains: the main results, the number
of replacement pairs, Table 1 (single-channel edits from the zero sweep) and cross-domain consistency."""

from __future__ import annotations

import numpy as np
import torch

from ...engine import AblationRow, ablate, parse_channels
from ...replace import Edit, edit_map, identity_map, pair_text
from . import published as P
from .context import Context, SegRun, interval, span
from .tables import Table

Sweep = tuple[AblationRow, list[AblationRow]]  # (baseline, one row per zeroed channel)


def main_table(runs: list[SegRun]) -> Table:
    """Main results: baseline vs the found set per target domain, held-out and search set, and each model's mean."""
    t = Table(
        "main_results",
        "Main results: baseline vs +ours per target domain (mIoU %, held-out images)",
        ["source", "model", "domain", "search images", "held-out images", "baseline", "+ours", "gain",
         "95% CI of gain", "search-set baseline", "search-set gain", "pairs"],
    )  # fmt: skip
    for model in dict.fromkeys(r.model for r in runs):
        mine = [r for r in runs if r.model == model]
        for r in mine:
            h = r.held
            t.add(model, r.domain, r.result.search_images, h["images"], h["baseline_score"], h["patched_score"],
                  r.gain, interval(h["confidence"]), r.result.combos.baseline_score, r.search_gain,
                  " ".join(pair_text(p) for p in r.result.best_pairs) or "none")  # fmt: skip
        base, ours = (float(np.mean([r.held[k] for r in mine])) for k in ("baseline_score", "patched_score"))
        t.add(model, "average", None, None, base, ours, ours - base, None, None, None, None)
    for key in ("sam", "sam2"):
        name, base, ours = P.MAIN[key]
        t.add(name.split(",")[0], name.split(", ")[1], 50, None, base, ours, ours - base, None, None, None, None,
              paper=True)  # fmt: skip
    helped = sum(r.gain > 0 and r.held["confidence"]["lo"] > 0 for r in runs)
    t.notes.append(
        f"{helped} of {len(runs)} held-out gains have a 95% interval above 0 (bootstrap over held-out images). "
        "The paper's rows are its 9-dataset averages on real SAM ViT-B / SAM2 Hiera-T: another level of model and "
        "data; compare the direction, not the numbers."
    )
    return t


def pairs_table(runs: list[SegRun]) -> Table:
    """Score vs the number of pairs applied: the first k of the top N together, on the search and held-out sets."""
    t = Table(
        "pairs_vs_score",
        "Number of replacement pairs: mIoU % with the top k pairs applied together",
        ["source", "model", "domain", "pairs (k)", "search set, top k", "search set, best subset of k",
         "held-out, top k"],
    )  # fmt: skip
    peaks = []
    for r in runs:
        top = [p.pair for p in r.result.top]
        sets = [top[:k] for k in range(len(top) + 1)]
        search = r.session.evaluator("search")
        held = r.session.evaluator("heldout")
        s_scores = search.summarize(search.set_stats(sets))[0]
        h_scores = held.summarize(held.set_stats(sets))[0]
        rows = r.result.combos.rows
        for k in range(len(sets)):
            best = max((c.score for c in rows if len(c.pairs) == k), default=r.result.combos.baseline_score)
            t.add(r.model, r.domain, k, float(s_scores[k]), float(best), float(h_scores[k]))
        peaks.append(f"{r.model} {r.domain}: k = {int(np.argmax(h_scores))}")
    t.add("SAM ViT-B", "COCO", P.PAIRS_PEAK, None, None, None, paper=True)
    t.notes.append("Held-out score peaks at " + "; ".join(peaks) + f". The paper: its score peaks at {P.PAIRS_PEAK} "
                   "pairs on COCO (no per-k numbers given).")  # fmt: skip
    return t


def zero_sweep(ctx: Context, run: SegRun) -> Sweep:
    """Every channel of the report's sweep scope zeroed alone on `run`'s search set (`engine.ablate`)."""
    ctx.check()
    c = run.session.backend.channels
    channels = parse_channels(ctx.size.sweep, c, run.session.backend.device, "sweep")
    ctx.log(f"zero sweep: {len(channels)} channels of {run.model} on {run.domain}")
    return ablate(run.session, [Edit("zero", k) for k in channels], cancel=ctx.cancel)


def _channel(row: AblationRow) -> int:
    return int(row.edit.split()[1])


# The verdict a Table 1 row's name claims, and what the row is called where its interval says otherwise (a rise or
# fall within noise is not one the paper's wording can claim).
CLAIMS = {"unchanged": "redundant", "improves": "harmful", "lowers": "useful"}
WITHIN_NOISE = {"unchanged": "smallest change", "improves": "largest rise, within noise", "lowers": "fall within noise"}


def table1(run: SegRun, sweep: Sweep) -> Table:
    """Table 1: baseline, and the zeroed channels that leave the score unchanged, improve it, and lower it most."""
    base, rows = sweep
    by_delta = sorted(rows, key=lambda r: r.delta_score)
    picks = [("unchanged", min(rows, key=lambda r: abs(r.delta_score))), ("improves", by_delta[-1])]
    picks += [("lowers", r) for r in by_delta[:3]]
    c = run.session.backend.channels
    held = run.session.evaluator("heldout")
    maps = torch.stack([identity_map(c)] + [edit_map(Edit("zero", _channel(r)), c) for _, r in picks])
    h_scores = held.summarize(held.stats(maps))[0]
    t = Table(
        "table1_single_channel",
        f"Table 1: single-channel edits (zeroed one at a time; mIoU %, {run.model} on {run.domain})",
        ["source", "model", "row", "channel", "search set", "delta", "95% CI of delta", "verdict", "held-out",
         "held-out delta"],
    )  # fmt: skip
    t.add(run.model, "baseline", None, base.score, 0.0, None, None, float(h_scores[0]), 0.0)
    for k, (kind, r) in enumerate(picks, 1):
        h = float(h_scores[k])
        name = kind if r.verdict == CLAIMS[kind] else WITHIN_NOISE[kind]
        t.add(run.model, name, _channel(r), r.score, r.delta_score, span(r.delta_lo, r.delta_hi),
              r.verdict, h, h - float(h_scores[0]))  # fmt: skip
    for kind, channel, miou in P.TABLE1:
        t.add(P.TABLE1_MODEL, kind, channel, miou, None if miou is None else miou - P.TABLE1[0][2], None, None,
              None, None, paper=True)  # fmt: skip
    counts = {v: sum(r.verdict == v for r in rows) for v in ("useful", "redundant", "harmful")}
    t.notes.append(
        f"Of {len(rows)} channels zeroed on {len(run.session.search_set)} search images: "
        + ", ".join(f"{n} {v}" for v, n in counts.items())
        + " (the verdict reads the delta's 95% bootstrap interval over images: below 0 useful, holding 0 "
        "redundant, above 0 harmful). A row is named for what its interval shows: 'improves' only where zeroing "
        "raises the score beyond noise (harmful), 'lowers' only where it lowers it beyond noise (useful). Held-out "
        "columns: the same edit on the held-out images."
    )
    return t


def consistency_table(sweeps: dict[str, Sweep], runs: list[SegRun]) -> Table:
    """Channels that help or hurt on every domain (zero-sweep verdicts), and channels in every domain's best set."""
    domains = list(sweeps)
    model = next(r.model for r in runs if r.domain == domains[0])
    per = {d: {_channel(r): r for r in rows} for d, (_, rows) in sweeps.items()}
    channels = sorted(set.intersection(*(set(p) for p in per.values())))
    t = Table(
        "consistency",
        f"Cross-domain consistency: channels with the same role on every domain ({', '.join(domains)})",
        ["source", "model", "role", "channels", "examples", *(f"mean delta, {d}" for d in domains)],
    )
    roles = (("useful on every domain", "useful", 1), ("harmful on every domain", "harmful", -1),
             ("redundant on every domain", "redundant", 0))  # fmt: skip
    for role, verdict, order in roles:
        found = [k for k in channels if all(per[d][k].verdict == verdict for d in domains)]
        found.sort(key=lambda k, o=order: o * np.mean([per[d][k].delta_score for d in domains]) if o else
                   max(abs(per[d][k].delta_score) for d in domains))  # fmt: skip
        means = [float(np.mean([per[d][k].delta_score for k in found])) if found else None for d in domains]
        t.add(model, role, len(found), " ".join(map(str, found[:10])) or "none", *means)
    for m in dict.fromkeys(r.model for r in runs):
        best = [r.result.best_pairs for r in runs if r.model == m and r.domain in domains]
        for role, side in (("replaced in every domain's best set", 0), ("donor in every domain's best set", 1)):
            common = sorted(set.intersection(*({p[side] for p in b} for b in best))) if best else []
            t.add(m, role, len(common), " ".join(map(str, common)) or "none", *[None] * len(domains))
    t.add("SAM ViT-B", "useful on every domain", len(P.CONSISTENT_USEFUL), " ".join(map(str, P.CONSISTENT_USEFUL)),
          *[None] * len(domains), paper=True)  # fmt: skip
    t.add("SAM ViT-B", "redundant on every domain", len(P.CONSISTENT_REDUNDANT),
          " ".join(map(str, P.CONSISTENT_REDUNDANT)), *[None] * len(domains), paper=True)  # fmt: skip
    t.notes.append(
        f"Verdicts per domain from the zero sweep of {len(channels)} channels (95% interval over each domain's "
        "search images). The paper's channel numbers are SAM ViT-B's: they name other channels than the demo "
        "model's."
    )
    return t
