"""Command line `python -m redundancy models|search|compare|ablate|apply|figures|push`: a shell over the pipeline."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

from .apply import apply_run, backend_for_run, open_run_data
from .confidence import describe
from .demo import DEMO_BASES, DEMO_DIR, TrainConfig, train_and_save
from .distributed import setup as setup_distributed
from .distributed import teardown as teardown_distributed
from .errors import RedundancyError
from .export import read_run, save_ablation, write_comparison, write_run
from .io import ensure_folder
from .metrics import PROTOCOLS
from .models import REGISTRY
from .models.base import MASK_CHOICES
from .pipeline import (
    Callbacks,
    SearchSettings,
    Session,
    SessionConfig,
    ablate,
    compare_search_modes,
    format_seconds,
    run_search,
    search_key,
)
from .prompts import PROMPT_MODES
from .replace import Edit, pair_text, parse_edits
from .resume import RunState, check_out_folder, claim_run_dir, search_lock
from .rundir import RunDir
from .score import PRECISIONS
from .screen import MODES, TEMPERATURE
from .select import SELECT_MODES
from .tasks import ALL_METRICS, TASK_TYPES, TASKS, Metric


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="sam_vit_b", help="registry name (see `models`)")
    p.add_argument(
        "--checkpoint",
        help="weights instead of the official download: a local file (.pt/.pth/.safetensors; transformers SamModel "
        "files too), hf://OWNER/REPO[/FILE][@REVISION], or 'hub' for the registry's Hub copy (see `models`)",
    )
    p.add_argument(
        "--finetuned",
        help="your fine-tuned weights over the base: full, decoder-only or LoRA (peft adapters too), a file or hf://",
    )
    p.add_argument("--random-init", action="store_true", help="seeded random weights (pipeline tests only)")
    p.add_argument("--seed", type=int, default=0, help="seed for random weights and the search-set split")
    p.add_argument(
        "--data",
        help="dataset folder or .zip: images/+masks/ or PerSeg (segment), class folders or a CSV of image,label "
        "(classify), images/+depth/ (depth)",
    )
    p.add_argument("--task", choices=TASKS, help="segment (SAM, SAM2), classify or depth (DINOv2); default: the data's")
    p.add_argument(
        "--head",
        help="classify / depth: a head state dict (weight, bias) over the model's tokens; default: fit one on a "
        "separate head split of the data",
    )
    p.add_argument("--head-images", type=int, help="images in that head split (default: a third of the data)")
    p.add_argument(
        "--layer",
        type=int,
        help="replace channels at the output of this encoder block (0-based; SAM's ViT, DINOv2's ViT, SAM2's Hiera "
        "trunk; its width, e.g. 768 for SAM ViT-B) and re-run the blocks after it per candidate; default: the "
        "encoder output, as the paper",
    )
    p.add_argument("--search-images", type=int, default=50, help="images in the search set (paper: 50)")
    p.add_argument("--heldout-images", type=int, help="cap on held-out images evaluated (default: all)")
    p.add_argument("--prompt", default="none", choices=PROMPT_MODES, help="prompts from GT")
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        help="mIoU: image (per-image mean), perseg (pooled per object) or persam (PerSAM's eval_miou.py: "
        "as perseg without each object's 00 reference image); default: the dataset's own",
    )
    p.add_argument(
        "--mask",
        dest="mask_choice",
        default="single",
        choices=MASK_CHOICES,
        help="single-mask output, or the multimask output with the best predicted IoU",
    )
    p.add_argument(
        "--metric",
        choices=ALL_METRICS,
        help="what pair gains measure: "
        + "; ".join(f"{name}: {', '.join(t().metric_names)}" for name, t in TASK_TYPES.items())
        + " (default: the task's first)",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--batch-rows", dest="rows", type=int, help="decoder rows per call (default per device)")
    p.add_argument(
        "--precision",
        default="fp32",
        choices=tuple(PRECISIONS),
        help="decoder matrix products in fp32 (default) or bfloat16 autocast, for GPUs with bf16 units "
        "(unmeasured here; several times slower on CPUs without them); metrics stay fp32",
    )
    p.add_argument("--cache", help="feature cache folder (default $REDUNDANCY_CACHE or ~/.cache/redundancy)")
    p.add_argument("--json", action="store_true", help="print a machine-readable result on stdout")


def _add_scope(p: argparse.ArgumentParser) -> None:
    """Which pairs to score and how screening modes work (search and compare)."""
    p.add_argument("--top-n", type=int, default=10, help="pairs kept for the 2^N - 1 combination stage")
    p.add_argument("--sources", default="auto", help="channels that may be replaced: auto|all|every:K|0-31,40")
    p.add_argument(
        "--targets",
        default="auto",
        help="channels that may be copied (same syntax); auto = all on GPU, every 8th on CPU",
    )
    p.add_argument("--candidates", type=int, default=512, help="taylor: pairs rescored exactly")
    p.add_argument(
        "--taylor-temperature",
        type=float,
        default=TEMPERATURE,
        help="taylor with --metric miou: soft-mIoU sigmoid temperature as a fraction of the logits' std",
    )
    p.add_argument("--halving-start", type=int, default=2, help="halving: images in the first round")
    p.add_argument("--halving-keep", type=float, default=0.25, help="halving: fraction kept per round")


class DEFAULTS(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows each option's default, where it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or action.default is argparse.SUPPRESS:
            return action.help or ""
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m redundancy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add = functools.partial(sub.add_parser, formatter_class=DEFAULTS)  # subparsers do not inherit it
    m = add("models", help="list the model registry")
    m.add_argument("--json", action="store_true", help="print the registry as JSON")

    s = add("search", help="score channel pairs, pick the top N, search their combinations")
    _add_common(s)
    _add_scope(s)
    s.add_argument(
        "--mode",
        default="exact",
        choices=MODES,
        help="exact (the paper) or a screening mode that scores only promising pairs exactly",
    )
    s.add_argument(
        "--select",
        default="search",
        choices=SELECT_MODES,
        help="search: the best subset on the search set (the paper); cv: N and the subset chosen by k-fold "
        "cross-validation on the search set, with an estimate of the gain on unseen images; greedy: the set grown "
        "one pair at a time from a larger pool, its size chosen by cross-validation (cv, greedy: mode exact)",
    )
    s.add_argument("--folds", type=int, default=5, help="select cv / greedy: folds of the search set")
    s.add_argument(
        "--alphas",
        help="soft replacement: alphas in (0, 1) scored besides 1, e.g. 0.25,0.5,0.75; pair (i, j, a) makes "
        "channel i (1 - a) X_i + a X_j; each pair keeps its best alpha (select cv / greedy: chosen per fold)",
    )
    s.add_argument("--pool", type=int, help="select greedy: candidate pairs (default 4 x top N)")
    s.add_argument("--out", required=True, help="run directory to write (an interrupted run there resumes)")
    s.add_argument("--restart", action="store_true", help="discard the unfinished search saved in --out")
    s.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a finished run of other settings in --out (everything it owns is removed first)",
    )

    c = add(
        "compare",
        help="exact vs taylor vs halving on the same pairs: top-N overlap, rank correlation, mIoU, time",
    )
    _add_common(c)
    _add_scope(c)
    c.add_argument("--out", help="folder for modes.json and modes.csv")

    a = add(
        "ablate",
        help="baseline and single edits (Table 1): --zero 6,216 --swap 1:2 --replace 3:7",
    )
    _add_common(a)
    a.add_argument("--run", help="take model, data and split from a finished run")
    a.add_argument("--zero", default="", help="channels to zero, one edit each: 6,216 (or 'all': the full sweep)")
    a.add_argument("--swap", default="", help="pairs to swap, one edit each: 1:2,5:9")
    a.add_argument("--replace", default="", help="i:j makes channel i a copy of channel j: 3:7")
    a.add_argument("--scale", default="", help="i:s multiplies channel i by s (0 zeroes it): 6:0.5,216:2")
    a.add_argument("--plain", action="store_true", help="use the unbatched reference path (one call per image)")
    a.add_argument("--unverified", action="store_true", help="use a --run whose files do not match its manifest")

    f = add(
        "figures",
        help="publication figures (PNG 300 dpi, SVG, PDF) from one or more run dirs",
    )
    f.add_argument("runs", nargs="+", help="run directories (several: adds the cross-dataset consistency figure)")
    f.add_argument("--format", default="png,svg,pdf", help="comma list of png, svg, pdf")
    f.add_argument("--out", required=True, help="folder for the figures and their caption .txt files")
    f.add_argument("--unverified", action="store_true", help="draw runs whose files do not match their manifest")

    p = add("apply", help="apply a run's replacement set to images and write the patched predictions")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="a finished run directory (its replacements.json and model)")
    src.add_argument(
        "--replacements", help="a shared set: a run folder, or hf://OWNER/REPO[@REVISION] as `push` uploads it"
    )
    p.add_argument("--checkpoint", help="the run's weights file where its recorded path is not on this machine")
    p.add_argument("--data", required=True, help="images to predict: a folder or .zip, with masks for mIoU or without")
    p.add_argument("--out", required=True, help="folder for masks/, baseline_masks/, overlays/ and predictions.zip")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--cache", help="feature cache folder (default $REDUNDANCY_CACHE or ~/.cache/redundancy)")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")
    p.add_argument("--unverified", action="store_true", help="use a run that is unfinished or whose files changed")
    p.add_argument("--protocol", choices=PROTOCOLS, help="mIoU protocol for the report (default: the run's)")

    u = add("push", help="share a finished run on the Hugging Face Hub: run files, figures and a model card")
    u.add_argument("run", help="a finished run directory")
    u.add_argument("repo", help="OWNER/REPO on the Hub (created if needed; your token: HF_TOKEN or `hf auth login`)")
    u.add_argument("--private", action="store_true", help="create the repository as private")
    u.add_argument("--to", help="write the repository's content to this folder instead of uploading (to check it)")

    t = add(
        "train-demo",
        help="train a demo model (sam_tiny / sam2_tiny classes) on synthetic shapes: not SAM",
    )
    defaults = TrainConfig()
    t.add_argument("--model", default=defaults.base, choices=DEMO_BASES, help="architecture to train")
    t.add_argument("--steps", type=int, default=defaults.steps, help="optimizer steps (cosine schedule)")
    t.add_argument("--batch", type=int, default=defaults.batch, help="source images per step")
    t.add_argument("--lr", type=float, default=defaults.lr, help="peak AdamW learning rate")
    t.add_argument("--seed", type=int, default=defaults.seed, help="seed of the weights and the image stream")
    t.add_argument("--eval-every", type=int, default=defaults.eval_every, help="steps between source-mIoU checks")
    t.add_argument("--out", default=str(DEMO_DIR), help="folder for <model>_demo.pt and models.json")
    return parser


def parse_edit_flags(zero: str, swap: str, replace: str, scale: str = "") -> list[Edit]:
    """Edits from the ablate flags, in flag order (range checks happen against the model)."""
    flags = (("zero", zero), ("swap", swap), ("replace", replace), ("scale", scale))
    return [e for kind, text in flags for e in parse_edits(kind, text)]


def _fields(cls: type, args: argparse.Namespace, **override) -> dict:
    """The dataclass `cls`'s fields among the parsed flags (unset flags keep the class defaults)."""
    given = {k: v for k, v in vars(args).items() if k in cls.__dataclass_fields__ and v is not None}
    return {**given, **override}


def _config(args: argparse.Namespace, **override) -> SessionConfig:
    return SessionConfig(**_fields(SessionConfig, args, **override))


def _settings(args: argparse.Namespace) -> SearchSettings:
    return SearchSettings(**_fields(SearchSettings, args))


def _feature_cache(args: argparse.Namespace):
    from .features import FeatureCache

    return FeatureCache(args.cache) if getattr(args, "cache", None) else None


def _log(args: argparse.Namespace, msg: str) -> None:
    print(msg, file=sys.stderr if args.json else sys.stdout)


def _bar_callbacks(args: argparse.Namespace) -> Callbacks:
    """tqdm bars on stderr; each bar closes itself when its stage completes."""
    bars: dict[str, tqdm] = {}

    def step(name: str, unit: str, done: int, total: int) -> None:
        bar = bars.get(name)
        if bar is None or bar.total != total or done < bar.n:
            # The first report comes after the first block of work: it is the bar's start, so the rate
            # counts only what follows (not "11244 img/s" for a block that took seconds).
            bar = bars[name] = tqdm(
                total=total, initial=done, desc=name, unit=unit, file=sys.stderr, dynamic_ncols=True
            )
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return Callbacks(
        encode=lambda d, t: step("encoding", "img", d, t),
        pairs=lambda ev: step("scoring pairs", "pair", ev.done, ev.total),
        combos=lambda d, t: step("combinations", "set", d, t),
        edits=lambda d, t: step("ablating", "edit", d, t),
        log=lambda m: _log(args, m),
    )


def cmd_models(args: argparse.Namespace) -> int:
    rows = [
        {
            "name": s.name,
            "family": s.family,
            "tasks": list(s.tasks),
            "description": s.description,
            "url": s.url,
            "hub": s.hub and f"hf://{s.hub}",
        }
        for s in REGISTRY.values()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['name']:<18} {'/'.join(r['tasks']):<15} {r['description']}")
    return 0


def _describe(session: Session, say: Callable[[str], None], extra: str = "") -> None:
    """The model, weights, device and data split of a session, as log lines."""
    b = session.backend
    say(f"model {b.name} | {b.weights.label} | device {b.device}{extra} | task {session.task.name}")
    head = f"head split {len(session.head_set)}, " if session.head_set is not None else ""
    say(
        f"data {session.dataset.root} ({session.dataset.layout}, {len(session.dataset)} images): {head}search set "
        f"{len(session.search_set)}, held-out {len(session.heldout_set)}, protocol {session.protocol}"
    )
    if session.task.name != "segment":
        say(f"head: {session.cfg.head or 'fitted on the head split when the search set is first encoded'}")
    for w in session.dataset.warnings:
        say(f"warning: {w}")


def _require_data(args: argparse.Namespace) -> None:
    if not args.data:
        raise RedundancyError("--data is required: a dataset folder or .zip (try assets/sample).")


def cmd_search(args: argparse.Namespace) -> int:
    _require_data(args)
    settings = _settings(args)  # checked when made, before any distributed set-up
    job = setup_distributed()  # None unless launched by torchrun
    if job and settings.mode != "exact":
        raise RedundancyError(f"--mode {settings.mode} runs in one process; launch it without torchrun.")
    cfg = _config(args, device=f"cuda:{job.local_rank}") if job and torch.cuda.is_available() else _config(args)
    quiet = job is not None and not job.main  # one rank talks
    out = Path(args.out)
    check_out_folder(out)  # before anything is encoded: a folder of the user's own is never written into
    with search_lock(out) if not quiet else contextlib.nullcontext():  # rank 0 holds the folder for all ranks
        session = Session.open(cfg, _feature_cache(args), progress=not quiet)
        say = (lambda _m: None) if quiet else (lambda m: _log(args, m))
        _describe(session, say, f" | rank {job.rank} of {job.world}" if job else "")
        callbacks = Callbacks() if quiet else _bar_callbacks(args)
        pairs = session.channel_pairs(settings)  # a bad channel list fails before anything is encoded
        session.evaluator("search", callbacks.encode)  # encode the search set with its progress bar
        key = search_key(session, settings, pairs)
        claim_run_dir(RunDir(out), key, args.overwrite)
        state = RunState(out, key, restart=args.restart, rank=job.rank if job else 0)
        result = run_search(session, settings, callbacks, state=state, dist=job)
        if job and not job.main:
            teardown_distributed(job)
            return 0
        say(
            f"feature cache: {session.cache_hits} of {len(session.search_set) + len(session.heldout_set)} images "
            "were already encoded"
        )
        write_run(out, session, result)
        state.finish()
    teardown_distributed(job)
    repl = json.loads((out / "replacements.json").read_text())
    if args.json:
        print(json.dumps(repl, indent=2))
        return 0
    c, m = result.combos, session.task.metric(result.settings.metric)
    if session.head:
        print(f"\nhead: {session.head.label}")
    print(
        f"\n{session.backend.weights.label}: baseline {m.show(c.baseline_miou)} on {result.search_images} search images"
    )
    print(
        "top pairs (source <- target[@alpha], gain):",
        ", ".join(f"{pair_text(p.pair)} {p.gain:+.4g}" for p in result.top),
    )
    if c.best:
        print(
            f"best set: {' '.join(pair_text(p) for p in c.best.pairs)}  {m.show(c.best.miou)} "
            f"({_delta(m, c.baseline_miou, c.best.miou)})"
        )
        if result.confidence and result.confidence["best"]:
            print(f"  gain on the search set: {_interval(result.confidence['best'], m)}")
    else:
        print("best set: empty (no subset of the top pairs beat the baseline)")
    if result.selection:
        cv = result.selection
        print(
            f"{cv['select']} selection, {cv['folds']}-fold cross-validated: N = {cv['chosen_n']} (held-out gain "
            "per N: " + ", ".join(f"{g:+.3g}" for g in cv["curve"]) + ")"
        )
        print(f"  cross-validated gain on unseen {cv['unit']}s at N = {cv['best_n']}: {_interval(cv['estimate'], m)}")
        if not cv["chosen_n"]:
            print("  within noise: no set is chosen (the empty set leaves the model as it is)")
    if result.heldout:
        h = result.heldout
        print(f"held-out ({h['images']} images): {m.show(h['baseline_miou'])} -> {m.show(h['patched_miou'])}")
        print(f"  gain on held-out images: {_interval(h['confidence'], m)}")
    print(f"run written to {out}")
    return 0


def _delta(m: Metric, before: float, after: float) -> str:
    """'+0.41' for a score a user reads as it is; for a lower-is-better one, its own change ('-0.0160')."""
    d = m.value(after) - m.value(before)
    return f"{d:+.2f}" if m.percent else f"{d:+.4f}"


def _interval(conf: dict, m: Metric) -> str:
    """A confidence record as one line, in the metric's units (a lower-is-better metric: its decrease)."""
    what = "" if m.higher_is_better else f" ({m.label} decrease)"
    return describe(conf, "+.2f" if m.percent else "+.4f") + what


def cmd_compare(args: argparse.Namespace) -> int:
    _require_data(args)
    settings = _settings(args)
    if args.out:
        ensure_folder(Path(args.out))  # checked before the comparison runs, not after
    session = Session.open(_config(args), _feature_cache(args))
    say = lambda m: _log(args, m)  # noqa: E731
    _describe(session, say)
    cb = _bar_callbacks(args)
    cb.log = lambda m: say(f"- {m}")
    reports = compare_search_modes(session, settings, callbacks=cb)
    if args.out:
        write_comparison(Path(args.out), session, settings, reports)
    if args.json:
        print(json.dumps([r.row() for r in reports], indent=2))
        return 0
    m = session.task.metric(settings.metric)
    print(f"\n{session.backend.weights.label}: baseline {m.show(reports[0].baseline_miou)}")
    best = f"best {m.label}"
    head = f"{'mode':<9}{'top-N overlap':>14}{'Spearman':>10}{'scored':>9}{best:>13}{'time':>9}"
    print(head + f"{'time/exact':>12}{'rows/exact':>12}")
    for r in reports:
        print(
            f"{r.mode:<9}{f'{r.overlap}/{r.top_n}':>14}{r.spearman:>10.2f}{r.scored:>9,}{m.value(r.best_miou):>13.4g}"
            f"{format_seconds(r.seconds):>9}{r.time_share:>12.3f}{r.cost:>12.3f}"
        )
    print("time/exact: measured on this machine; rows/exact: decoder rows counted (a forward + backward = 3 rows)")
    if args.out:
        print(f"written to {Path(args.out) / 'modes.json'} and modes.csv")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    zero_all = args.zero.strip().lower() == "all"
    edits = parse_edit_flags("" if zero_all else args.zero, args.swap, args.replace, args.scale)
    if args.run:
        config, _ = read_run(Path(args.run), verify=not args.unverified)
        cfg = SessionConfig.recorded(config["config"], device=args.device)
        data = open_run_data(config, args.data)
        session = Session(backend_for_run(config, args.device), data, cfg, _feature_cache(args))
        if RunDir(args.run).head():
            session.use_head(RunDir(args.run).head(), config.get("head"))
    else:
        if not args.data:
            raise RedundancyError("--data (or --run) is required.")
        session = Session.open(_config(args), _feature_cache(args))
    if zero_all:  # the full sweep: every channel zeroed alone
        edits = [Edit("zero", c) for c in range(session.backend.channels)] + edits
    base, rows = ablate(session, edits, plain=args.plain, callbacks=_bar_callbacks(args))
    if args.run:
        save_ablation(Path(args.run), base, rows)
    label = session.backend.weights.label
    if args.json:
        print(
            json.dumps(
                {
                    **session.header(),
                    "protocol": session.protocol,
                    "images": len(session.search_set),
                    "baseline": vars(base),
                    "edits": [vars(r) for r in rows],
                },
                indent=2,
            )
        )
        return 0
    m = session.task.metric()
    print(f"{session.backend.name} | {label} | {len(session.search_set)} search images | protocol {session.protocol}")
    print(f"{'edit':<22}{m.label:>10}{'delta':>10}{'loss':>10}")
    for r in [base, *rows]:
        print(f"{r.edit:<22}{m.value(r.miou):>10.4g}{m.value(r.miou) - m.value(base.miou):>+10.4f}{r.loss:>10.4f}")
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    from .figures import render

    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    written = render(args.runs, args.out, formats, verify=not args.unverified)
    print(f"{len(written)} files written to {args.out}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from .share import bundle, push

    if args.to:
        out = bundle(Path(args.run), Path(args.to), args.repo)
        print(f"repository content for {args.repo} written to {out} (nothing uploaded)")
        return 0
    print(f"uploaded to {push(Path(args.run), args.repo, args.private)}")
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    from .features import FeatureCache
    from .share import fetch_run

    cache = FeatureCache(args.cache) if args.cache else None
    run = Path(args.run) if args.run else fetch_run(args.replacements)
    backend = None
    if args.checkpoint:
        config, _ = read_run(run, verify=not args.unverified)
        config = {**config, "config": {**config["config"], "checkpoint": args.checkpoint}}
        backend = backend_for_run(config, args.device)
    res = apply_run(
        run,
        Path(args.data),
        Path(args.out),
        args.device,
        cache,
        extract_to=Path(args.out) / "_data",
        backend=backend,
        verify=not args.unverified,
        protocol=args.protocol,
    )
    summary = {
        "images": res.images,
        "zip": str(res.zip_path),
        "pairs": [list(p) for p in res.pairs],
        "metric": res.metric,
        f"baseline_{res.metric}": res.baseline_miou,
        f"patched_{res.metric}": res.patched_miou,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{res.images} patched predictions written to {Path(args.out)} (zip: {res.zip_path})")
        if res.baseline_miou is not None:
            print(f"{res.metric_label} {res.baseline_miou:.4g} -> {res.patched_miou:.4g} with {len(res.pairs)} pairs")
    return 0


def cmd_train_demo(args: argparse.Namespace) -> int:
    cfg = TrainConfig(args.model, args.steps, args.batch, args.lr, seed=args.seed, eval_every=args.eval_every)
    train_and_save(cfg, args.out)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors print one clear line and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        return {
            "models": cmd_models,
            "search": cmd_search,
            "compare": cmd_compare,
            "ablate": cmd_ablate,
            "apply": cmd_apply,
            "figures": cmd_figures,
            "push": cmd_push,
            "train-demo": cmd_train_demo,
        }[args.command](args)
    except RedundancyError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)  # one line, whatever the message holds
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        sys.stderr.close()
        return 0
