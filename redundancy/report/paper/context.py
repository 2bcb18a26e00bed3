"""What every measurement of a report shares: its size, its work folder, the feature cache, a log and a cancel;
and the one way a report opens a session and searches it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...bundled import DOMAINS, TASK_DOMAINS
from ...engine import SearchResult, SearchSettings, Session, SessionConfig, run_search
from ...engine.features import FeatureCache
from ...errors import Cancelled
from .sizes import PaperSize


def domain_path(task: str, domain: str) -> Path:
    """A bundled target domain: segmentation's assets/domains/<d>, classify / depth's assets/task_domains/."""
    return DOMAINS / domain if task == "segment" else TASK_DOMAINS / task / domain


@dataclass
class Context:
    """A report run's shared state."""

    size: PaperSize
    work: Path  # fine-tuned checkpoints and other intermediate files (not part of the report)
    cache: FeatureCache
    log: Callable[[str], None]
    cancel: threading.Event | None = None
    device: str = "auto"

    def check(self) -> None:
        """Stop between measurements once cancelled."""
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("the paper report was cancelled")

    def open(self, model: str, data: Path, seed: int = 0, finetuned: Path | None = None, **fields) -> Session:
        """A session on a bundled domain; the segmentation protocol is `image` (per-image mean: per-image intervals)."""
        self.check()
        cfg = SessionConfig(model=model, data=str(data), seed=seed, finetuned=str(finetuned) if finetuned else None,
                            device=self.device, **fields)  # fmt: skip
        return Session.open(cfg, self.cache, progress=False)

    def search(self, session: Session, scope: str, top_n: int, metric: str | None = None) -> SearchResult:
        """The paper's search on `session` over sources = targets = `scope`."""
        self.check()
        settings = SearchSettings(metric=metric, top_n=top_n, sources=scope, targets=scope)
        return run_search(session, settings, cancel=self.cancel)


@dataclass
class SegRun:
    """One segmentation search of the report: model (and fine-tune), domain, its session and result."""

    model: str
    domain: str
    session: Session
    result: SearchResult
    finetune: str = "none"

    @property
    def held(self) -> dict:
        return self.result.heldout

    @property
    def gain(self) -> float:
        return self.held["patched_score"] - self.held["baseline_score"]

    @property
    def search_gain(self) -> float:
        c = self.result.combos
        return (c.best.score if c.best else c.baseline_score) - c.baseline_score


def seg_run(ctx: Context, model: str, domain: str, finetuned: Path | None = None, finetune: str = "none") -> SegRun:
    """Search `model` (with a fine-tune over it) on segmentation domain `domain` at the report's size."""
    s = ctx.size
    session = ctx.open(model, domain_path("segment", domain), 0, finetuned, search_images=s.search_images,
                       heldout_images=s.heldout_images, protocol="image")  # fmt: skip
    ctx.log(f"searching {model}{'' if finetune == 'none' else f' + {finetune} fine-tune'} on {domain}")
    return SegRun(model, domain, session, ctx.search(session, s.scope, s.top_n), finetune)


def span(lo: float, hi: float) -> str:
    """An interval as a table cell: "+0.71 to +2.59"."""
    return f"{lo:+.2f} to {hi:+.2f}"


def unspan(cell: str | None) -> tuple[float, float] | None:
    """A `span` cell back as (lo, hi); None for a cell without an interval ("-" or empty)."""
    lo, sep, hi = (cell or "").partition(" to ")
    return (float(lo), float(hi)) if sep else None


def interval(conf: dict | None) -> str:
    """A gain's 95% interval record as a table cell, "-" without one."""
    return span(conf["lo"], conf["hi"]) if conf else "-"
