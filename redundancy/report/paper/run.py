"""`redundancy paper`: every table of the paper regenerated on this repository's demo models, into one folder:
report.md, one CSV per table, the figures (PNG) and paper.json (when, where, how long, what)."""

from __future__ import annotations

import datetime
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ...engine.features import FeatureCache
from ...engine.provenance import cpu_name
from ...errors import RunError
from ...io import atomic_write, ensure_folder, write_json
from ...models import get_spec
from ...models._device import resolve_device
from . import figures
from .context import Context, seg_run
from .cost import cost_table
from .finetuned import finetune_runs, finetune_table
from .segment import consistency_table, main_table, pairs_table, table1, zero_sweep
from .sizes import PaperSize
from .tables import Table
from .vit import vit_runs, vit_table

MARKER = "paper.json"  # a folder holding it is a report this command wrote (and may write again)
STAGES = ("main results", "number of pairs", "zero sweeps", "on top of fine-tuning", "cost", "DINOv2")
ORDER = ("table1_single_channel", "main_results", "finetuned", "cost", "pairs_vs_score", "dinov2", "consistency")


@dataclass
class PaperReport:
    """A written report: its folder, tables (in the paper's order), figure files and record."""

    out: Path
    tables: list[Table]
    figures: list[Path]
    record: dict

    @property
    def markdown(self) -> Path:
        return self.out / "report.md"


def hardware() -> str:
    """This machine in a few words: CPU model and cores (and the GPU), torch version."""
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{os.cpu_count()}-core {cpu_name()} CPU{gpu}, torch {torch.__version__.split('+')[0]}"


def check_out(out: Path) -> Path:
    """The report folder: new, empty, or an earlier report of this command (refused otherwise, nothing written)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise RunError(f"{out} holds files that are not a paper report; give a new or empty folder for --out.")
    return ensure_folder(out)  # created and writable (a read-only one is refused before any table is measured)


def run_paper(
    size: PaperSize,
    out: str | Path,
    log: Callable[[str], None] = print,
    cancel: threading.Event | None = None,
    on_stage: Callable[[str, int, int], None] | None = None,
    device: str = "auto",
    cache: FeatureCache | None = None,
) -> PaperReport:
    """Measure every table at `size` and write the report to `out`; `on_stage(name, k, total)` as stages begin."""
    resolve_device(device)  # an unknown or absent device is refused before the folder is made
    out = check_out(out)
    with tempfile.TemporaryDirectory(prefix="paper-work-") as work:  # fine-tuned checkpoints: not part of the report
        ctx = Context(size, Path(work), cache or FeatureCache(), log, cancel, device)
        return _run(ctx, out, on_stage)


def _run(ctx: Context, out: Path, on_stage: Callable[[str, int, int], None] | None) -> PaperReport:
    size, log = ctx.size, ctx.log
    started: list[float] = []  # when each stage began

    def stage(k: int):
        started.append(time.perf_counter())
        if on_stage:
            on_stage(STAGES[k], k, len(STAGES))
        log(f"[{k + 1}/{len(STAGES)}] {STAGES[k]}")

    stage(0)
    runs = [seg_run(ctx, m, d) for m in size.seg_models for d in size.seg_domains]
    tables = {"main_results": main_table(runs)}
    stage(1)
    tables["pairs_vs_score"] = pairs_table(runs)
    stage(2)
    first = [r for r in runs if r.model == size.seg_models[0]]
    sweeps = {r.domain: zero_sweep(ctx, r) for r in first}
    tables["table1_single_channel"] = table1(first[0], sweeps[first[0].domain])
    tables["consistency"] = consistency_table(sweeps, runs)
    stage(3)
    base = next(r for r in runs if (r.model, r.domain) == (size.ft_model, size.ft_domain))
    tables["finetuned"] = finetune_table(base, finetune_runs(ctx, base))
    stage(4)
    tables["cost"] = cost_table(ctx)
    stage(5)
    tables["dinov2"] = vit_table(vit_runs(ctx), size.vit_model)
    started.append(time.perf_counter())
    seconds = {name: round(b - a, 1) for name, a, b in zip(STAGES, started, started[1:])}
    ordered = [tables[k] for k in ORDER]
    drawn = _figures(out, tables, {d: [r.delta_score for r in rows] for d, (_, rows) in sweeps.items()}, first[0].model)
    record = {
        "date": datetime.date.today().isoformat(),
        "hardware": hardware(),
        "size": asdict(size),
        "seconds": {**seconds, "total": round(time.perf_counter() - started[0], 1)},
        "models": {m: get_spec(m).description for m in (*size.seg_models, size.vit_model)},
        "tables": {t.key: f"{t.key}.csv" for t in ordered},
        "figures": [p.name for p in drawn],
    }
    for t in ordered:
        atomic_write(out / f"{t.key}.csv", t.csv())
    atomic_write(out / "report.md", markdown(ordered, record))
    write_json(out / MARKER, record)
    log(f"report written to {out / 'report.md'} in {record['seconds']['total']:.0f} s")
    return PaperReport(out, ordered, drawn, record)


def _figures(out: Path, tables: dict[str, Table], sweeps: dict[str, list[float]], model: str) -> list[Path]:
    """Each table's figure, named after it (and noted on the table)."""
    drawers = {
        "main_results": figures.main_results,
        "finetuned": figures.finetuned,
        "pairs_vs_score": figures.pairs,
        "cost": figures.cost,
        "dinov2": figures.dinov2,
    }
    paths = []
    with figures.styled():
        for key, draw in drawers.items():
            paths.append(figures.save(draw(tables[key]), out / f"{key}.png"))
            tables[key].figure = paths[-1].name
        paths.append(figures.save(figures.zero_sweep(sweeps, model), out / "zero_sweep.png"))
        tables["table1_single_channel"].figure = tables["consistency"].figure = paths[-1].name
    return paths


def markdown(tables: list[Table], record: dict) -> str:
    """The report: what was measured where and when, then each table with its notes and figure."""
    s = record["size"]
    cmd = "redundancy paper --out DIR" + (" --tiny" if s["name"] == "tiny" else "")
    head = [
        "# The paper's tables, regenerated on this repository's demo models",
        "",
        f"Measured {record['date']} on {record['hardware']} by `{cmd}` ({s['name']} size, "
        f"{record['seconds']['total'] / 60:.1f} min). Every number in a row marked *measured here* was measured by "
        "that run; rows in italics marked *paper* are the paper's own numbers (arXiv 2504.08915) on real SAM, SAM2 "
        "and DINOv2 and other data: shown for the shape of each result, not comparable in level.",
        "",
        "> The models are **demo models trained by this repository** on synthetic data: not SAM, not SAM2, not "
        "DINOv2. Their target domains are synthetic shifts of their training data (`assets/domains`, "
        "`assets/task_domains`).",
        "",
        *(f"- `{m}`: {d}" for m, d in record["models"].items()),
        "",
    ]
    body = []
    for k, t in enumerate(tables, 1):
        body += [f"## {k}. {t.title}", "", t.markdown(), ""]
        if t.figure:
            body += [f"![{t.title}]({t.figure})", ""]
    took = ", ".join(f"{k} {v:.0f} s" for k, v in record["seconds"].items())
    return "\n".join(head + body + [f"Time per stage: {took}.", ""])


def read_report(folder: str | Path) -> dict:
    """A written report's record (paper.json), or one line saying the folder holds none."""
    path = Path(folder) / MARKER
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RunError(f"{folder} holds no paper report ({e.__class__.__name__}); run `redundancy paper` first.") from e
