"""The command line's verbs: each a few lines around an engine, runs or report call, printing what it found."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from ..bundled import bundled
from ..engine import AblationRow, Callbacks, Session, SessionConfig, ablate, compare_search_modes, run_search
from ..engine.ablate import VERDICT_RULE, VERDICTS
from ..engine.confidence import MIN_GROUPS
from ..engine.distributed import setup as setup_distributed
from ..engine.distributed import teardown as teardown_distributed
from ..engine.features import FeatureCache
from ..engine.provenance import search_key
from ..errors import RedundancyError
from ..io import ensure_folder
from ..logs import configure, incident
from ..models import REGISTRY
from ..models._registry import DEMO_DIR
from ..replace import Edit
from ..report.summary import ablation_lines, format_seconds, summary_text
from ..runs.apply import apply_run, backend_for_run, open_run_data, run_head
from ..runs.resume import RunState, check_out_folder, claim_run_dir, finished_search, search_lock
from ..runs.rundir import RunDir
from ..runs.writers import read_run, save_ablation, write_comparison, write_run
from ..training.demo import RECIPES, train_and_save
from .estimate import announce, search_seconds
from .parser import TRAIN_FLAGS, TRAIN_OUT, build_parser, parse_edit_flags, search_settings, session_config

RESUMABLE = ("search", "apply", "paper")  # verbs whose saved work a rerun picks up
INTERRUPTED = "interrupted; rerun the same command to resume"

log = logging.getLogger(__name__)
_open_bars: list[tqdm] = []  # every bar this process drew; main closes them before its last line


def _close_bars() -> None:
    """Close the bars still open, so none redraws itself at exit after the command's last line."""
    while _open_bars:
        _open_bars.pop().close()


def _feature_cache(args: argparse.Namespace) -> FeatureCache | None:
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
            _open_bars.append(bar)
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
        print(
            "\nand any timm model as timm:NAME (timm:resnet18, timm:convnext_atto; names: timm.list_models()) or "
            "transformers model as hf:OWNER/NAME, each scored by a head fitted on its features (docs/models.md)"
        )
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
    if session.needs_head:
        say(f"head: {session.cfg.head or 'fitted on the head split when the search set is first encoded'}")
    for w in session.dataset.warnings:
        say(f"warning: {w}")


def _data(data: str | None) -> str | None:
    """--data as given, or, where it names one of the bundled datasets as the README spells them
    (`assets/domains/gray`) and no such folder is here, that bundled folder: the README's commands run anywhere."""
    if not data or Path(data).exists():
        return data
    found = bundled(data)
    if found is None:
        return data
    print(f"--data {data}: using the bundled dataset that ships with redundancy", file=sys.stderr)
    return str(found)


def cmd_search(args: argparse.Namespace) -> int:
    args.data = _data(args.data)
    settings = search_settings(args)  # checked when made, before any distributed set-up
    job = setup_distributed()  # None unless launched by torchrun
    if job and not settings.search_mode.exact:
        raise RedundancyError(f"--mode {settings.mode} runs in one process; launch it without torchrun.")
    cuda = job and torch.cuda.is_available()
    cfg = session_config(args, device=f"cuda:{job.local_rank}") if cuda else session_config(args)
    quiet = job is not None and not job.main  # one rank talks
    out = Path(args.out)
    if not quiet:
        check_out_folder(out)  # before anything is encoded: a folder of the user's own is never written into
    with search_lock(out) if not quiet else contextlib.nullcontext():  # rank 0 holds the folder for all ranks
        session = Session.open(cfg, _feature_cache(args), progress=not quiet)
        say = (lambda _m: None) if quiet else (lambda m: _log(args, m))
        _describe(session, say, f" | rank {job.rank} of {job.world}" if job else "")
        callbacks = Callbacks() if quiet else _bar_callbacks(args)
        pairs = session.channel_pairs(settings)  # a bad channel list fails before anything is encoded
        session.evaluator("search", callbacks.encode)  # encode the search set with its progress bar
        key = search_key(session, settings, pairs)
        rank = job.rank if job else 0
        if job is None and finished_search(RunDir(out), key) and not (args.restart or args.overwrite):
            say(f"{out} already holds this search, finished: nothing to redo (--restart runs it again)")
            if args.json:
                print(json.dumps(RunDir(out).replacements(), indent=2))
            return 0
        if not quiet:  # rank 0 says how long it takes (above an hour: asks first, or warns), then checks and claims
            estimate = search_seconds(session, settings, len(pairs))  # the folder, before any rank writes
            announce(estimate, len(pairs), len(session.search_set), str(session.backend.device), args.yes)
            claim_run_dir(RunDir(out), key, args.overwrite)
            state = RunState(out, key, restart=args.restart, rank=rank)
        if job:
            job.barrier()
        if quiet:
            state = RunState(out, key, rank=rank)
        result = run_search(session, settings, callbacks, state=state, dist=job)
        if job and not job.main:
            teardown_distributed(job)
            return 0
        say(
            f"feature cache: {session.cache_hits} of {len(session.search_set) + len(session.heldout_set)} images "
            "were already encoded"
        )
        write_run(out, result)
        state.finish()
    teardown_distributed(job)
    if args.json:
        print(json.dumps(RunDir(out).replacements(), indent=2))
        return 0
    if session.head:
        print(f"\nhead: {session.head.label}")
    print("\n" + summary_text(result, session.task.metric(result.settings.metric)))
    print(f"run written to {out}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    args.data = _data(args.data)
    settings = search_settings(args)
    if args.out:
        ensure_folder(Path(args.out))  # checked before the comparison runs, not after
    session = Session.open(session_config(args), _feature_cache(args))
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
    print(f"\n{session.backend.weights.label}: baseline {m.show(reports[0].baseline_score)}")
    best = f"best {m.label}"
    head = f"{'mode':<9}{'top-N overlap':>14}{'Spearman':>10}{'scored':>9}{best:>13}{'time':>9}"
    print(head + f"{'time/exact':>12}{'rows/exact':>12}")
    for r in reports:
        print(
            f"{r.mode:<9}{f'{r.overlap}/{r.top_n}':>14}{r.spearman:>10.2f}{r.scored:>9,}{m.value(r.best_score):>13.{m.digits}f}"
            f"{format_seconds(r.seconds):>9}{r.time_share:>12.3f}{r.cost:>12.3f}"
        )
    print("time/exact: measured on this machine; rows/exact: decoder rows counted (a forward + backward = 3 rows)")
    if args.out:
        print(f"written to {Path(args.out) / 'modes.json'} and modes.csv")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    zero_all = args.zero.strip().lower() == "all"
    edits = parse_edit_flags("" if zero_all else args.zero, args.swap, args.replace, args.scale)
    args.data = _data(args.data)
    if args.run:
        config, _ = read_run(Path(args.run), verify=not args.unverified)
        cfg = SessionConfig.recorded(config["config"], device=args.device)
        data = open_run_data(config, args.data)
        head = run_head(Path(args.run), config)
        session = Session(backend_for_run(config, args.device), data, cfg, _feature_cache(args), head)
    else:
        if not args.data:
            raise RedundancyError(
                "ablate needs --data (a dataset folder or .zip) or --run (a finished search's folder)."
            )
        session = Session.open(session_config(args), _feature_cache(args))
    if zero_all:  # the full sweep: every channel zeroed alone
        edits = [Edit("zero", c) for c in range(session.backend.channels)] + edits
    base, rows = ablate(session, edits, plain=args.plain, callbacks=_bar_callbacks(args))
    if args.run:
        save_ablation(Path(args.run), base, rows)
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
    b = session.backend
    print(f"{b.name} | {b.weights.label} | {len(session.search_set)} search images | protocol {session.protocol}")
    print(_ablation_table(session, base, rows, sweep=zero_all))
    return 0


def _ablation_table(session: Session, base: AblationRow, rows: list[AblationRow], sweep: bool) -> str:
    """Table 1 as text: the baseline, then each edit's score, change (with its 95% interval), loss and verdict; the
    zero sweep sorted by the change (the largest first) and counted by verdict."""
    m = session.task.metric()
    d = m.digits
    w = 9 + d  # room for a signed number at the metric's decimals

    header = f"{'edit':<22}{m.label:>{w}}{'change':>{w}}  {'95% interval':<{2 * w}}{'loss':>9}  verdict"
    lines = [header]
    for line in ablation_lines(m, base, rows, sweep):
        if line.change is None:  # the baseline
            lines.append(f"{line.edit:<22}{line.score:>{w}.{d}f}{'':>{w}}  {'':<{2 * w}}{line.loss:>9.4f}")
            continue
        interval = f"{line.lo:+.{d}f} to {line.hi:+.{d}f}"
        lines.append(
            f"{line.edit:<22}{line.score:>{w}.{d}f}{line.change:>+{w}.{d}f}  "
            f"{interval:<{2 * w}}{line.loss:>9.4f}  {line.verdict}"
        )
    if sweep:
        counts = {v: sum(r.verdict == v for r in rows) for v in reversed(VERDICTS["zero"])}
        lines.append(f"{len(rows)} edits, sorted by the change: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    groups = session.evaluator("search").set.n_groups
    few = f": too few to tell (at least {MIN_GROUPS} are needed)" if groups is not None and groups < MIN_GROUPS else ""
    lines.append(f"({VERDICT_RULE}; here {groups} groups of {len(session.search_set)} search images{few})")
    return "\n".join(lines)


def cmd_figures(args: argparse.Namespace) -> int:
    from ..report.figures import render  # matplotlib: loaded for this verb only

    formats = tuple(f.strip().lower() for f in args.format.split(",") if f.strip())
    note = lambda m: print(f"note: {m}", file=sys.stderr)  # noqa: E731
    asked = True if args.consistency else None  # None: drawn where the runs can be compared, else a note
    written = render(args.runs, args.out, formats, verify=not args.unverified, consistent=asked, say=note)
    print(f"{len(written)} files written to {args.out}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from ..report.share import bundle, push

    if args.to:
        out = bundle(Path(args.run), Path(args.to), args.repo)
        print(f"repository content for {args.repo} written to {out} (nothing uploaded)")
        return 0
    print(f"uploaded to {push(Path(args.run), args.repo, args.private)}")
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    from ..report.share import fetch_run

    args.data = _data(args.data)
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
        "metric": res.metric,  # the scores' metric, as in the run files
        "baseline_score": res.baseline_score,
        "patched_score": res.patched_score,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{res.images} patched predictions written to {Path(args.out)} (zip: {res.zip_path})")
        if res.score_text() is not None:
            print(res.score_text())
    return 0


def cmd_train_demo(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else DEMO_DIR if args.replace_shipped else TRAIN_OUT
    if out.resolve() == DEMO_DIR.resolve() and not args.replace_shipped:
        raise RedundancyError(
            f"--out {args.out} is the shipped demo folder: training there replaces the demo models every command "
            "uses; pass --replace-shipped to mean it, or choose another --out."
        )
    given = {f: getattr(args, f) for f, *_ in TRAIN_FLAGS if getattr(args, f) is not None}
    cfg = replace(RECIPES[args.model].defaults, **given)  # checked here: a bad flag stops before any training
    shipped = out.resolve() == DEMO_DIR.resolve()
    train_and_save(cfg, out, keep_better=shipped, force=args.force)
    return 0


def cmd_paper(args: argparse.Namespace) -> int:
    from ..report.paper import DEFAULT, TINY, run_paper  # matplotlib: loaded for this verb only

    report = run_paper(TINY if args.tiny else DEFAULT, args.out, device=args.device, cache=_feature_cache(args))
    print(f"{len(report.tables)} tables, {len(report.figures)} figures: {report.markdown}")
    return 0


def _drop_if_empty(out, fresh: bool) -> None:
    """Remove the --out folder a failed command made, if nothing was written there (saved work stays to resume)."""
    if fresh and Path(out).is_dir() and not any(Path(out).iterdir()):
        Path(out).rmdir()


def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors print one clear line and exit 2."""
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Run the verb parsed flags name; user errors print one clear line and exit 2."""
    log_path = configure(args.verbose - args.quiet)
    verb = {
        "models": cmd_models,
        "search": cmd_search,
        "compare": cmd_compare,
        "ablate": cmd_ablate,
        "apply": cmd_apply,
        "figures": cmd_figures,
        "push": cmd_push,
        "train-demo": cmd_train_demo,
        "paper": cmd_paper,
    }[args.command]
    out = getattr(args, "out", None)
    fresh = out is not None and not Path(out).exists()  # a folder this command makes, gone again if left empty
    try:
        try:
            return verb(args)
        finally:  # before any message below: an open bar would redraw itself at exit, under the last line
            _close_bars()
    except RedundancyError as e:
        _drop_if_empty(out, fresh)
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)  # one line, whatever the message holds
        return 2
    except KeyboardInterrupt:  # Ctrl-C: what was saved stays saved (search, apply and paper resume from it)
        print("\n" + (INTERRUPTED if args.command in RESUMABLE else "interrupted"), file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        sys.stderr.close()
        return 0
    except Exception as e:  # a bug: one line here, the traceback in the log file to attach to a report
        _drop_if_empty(out, fresh)
        ref = incident(log, f"'{args.command}' failed", console=False)
        where = f"the traceback is in {log_path} (ref {ref})" if log_path else f"rerun with -v to see it (ref {ref})"
        print(f"error: unexpected {e.__class__.__name__}: {e}; this is a bug: {where}.", file=sys.stderr)
        return 1
