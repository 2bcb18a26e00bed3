"""On top of fine-tuning: the demo model fine-tuned on a target domain's search split here (decoder-only, LoRA on
the encoder; `training.finetune`), the checkpoint loaded through `--finetuned`'s plug-in loader, then searched."""

from __future__ import annotations

from ...models import build_backend
from ...replace import pair_text
from ...training.finetune import FinetuneConfig, FinetuneResult, finetune, save_finetune, search_split
from . import published as P
from .context import Context, SegRun, interval, seg_run
from .tables import Table


def finetune_runs(ctx: Context, base: SegRun) -> list[tuple[FinetuneResult, SegRun]]:
    """Each fine-tuning mode of the report's size on `base`'s model and search split, then the search on it."""
    images, masks = search_split(base.session)
    out = []
    for mode, epochs in ctx.size.ft_epochs:
        ctx.check()
        backend = build_backend(base.model, device=ctx.device, progress=False)
        ctx.log(f"{mode} fine-tuning of {base.model} on {base.domain}'s {len(images)} search images, {epochs} epochs")
        result = finetune(backend, images, masks, FinetuneConfig(mode=mode, epochs=epochs))
        path = save_finetune(ctx.work / f"{base.model}_{base.domain}_{mode}.pt", result)
        out.append((result, seg_run(ctx, base.model, base.domain, path, mode)))
    return out


def finetune_table(base: SegRun, tuned: list[tuple[FinetuneResult, SegRun]]) -> Table:
    """Baseline vs +ours on the fine-tuned models, beside the model without fine-tuning."""
    t = Table(
        "finetuned",
        f"On top of fine-tuning: {base.model} fine-tuned on {base.domain}, then searched (mIoU %, held-out images)",
        ["source", "model", "fine-tuning", "trainable parameters", "epochs", "training s", "baseline", "+ours",
         "additional gain", "95% CI of gain", "search-set gain", "pairs"],
    )  # fmt: skip
    for result, run in [(None, base), *tuned]:
        h = run.held
        t.add(run.model, run.finetune, result.trainable if result else 0, result.config.epochs if result else None,
              result.seconds if result else None, h["baseline_score"], h["patched_score"], run.gain,
              interval(h["confidence"]), run.search_gain,
              " ".join(pair_text(p) for p in run.result.best_pairs) or "none")  # fmt: skip
    for name, before, after in P.FINETUNED:
        if name in P.FINETUNED_MODES.values():
            t.add("SAM ViT-B", name, None, 25, None, before, after, after - before, None, None, None, paper=True)
    gains = [after - before for _, before, after in P.FINETUNED]
    t.notes.append(
        f"Fine-tuning trains on the {len(base.session.search_set)} search images (the labelled split); the held-out "
        "images stay unseen by fine-tuning and search alike. Each checkpoint is loaded through the plug-in loader "
        f"(`--finetuned`). The paper's six fine-tuned baselines gain {min(gains):+.1f} to {max(gains):+.1f}."
    )
    return t
