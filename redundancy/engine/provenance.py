"""What identifies a search and what its run directory records: its fingerprint (everything that changes
its numbers: resume and the manifest compare it), the environment and config.json's content. Built once,
when the search finishes (`search.run_search`), and carried by its result."""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

import torch

from .. import __version__, threads
from .settings import SessionConfig


def fingerprint(parts: object) -> str:
    """sha256 of everything that changes a search's numbers."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def search_key(session, settings, pairs: torch.Tensor) -> str:
    """Fingerprint of everything that changes a search's numbers (for resuming safely)."""
    cfg, st = session.cfg, session.resolve(settings)
    ev = session.evaluator("search")
    return fingerprint(
        {
            "model": session.backend.name,
            **({"layer": cfg.layer} if cfg.layer is not None else {}),
            "weights": session.backend.weights.key,
            "data": session.dataset.content_hash(),
            "search_set": ev.set.names,
            "prompt": cfg.prompt,
            "protocol": session.protocol,
            "mask": cfg.mask_choice,
            "metric": st.metric,
            "top_n": st.top_n,
            "rows": ev.rows,
            "precision": cfg.precision,
            **({"compile": True} if cfg.compile else {}),  # older keys stay valid
            "device": session.backend.device.type,
            "pairs": hashlib.sha256(pairs.numpy().tobytes()).hexdigest(),
            "mode": [st.mode, *(st.option(o.name) for o in st.search_mode.options)],
            **({"select": [st.select, st.folds, st.pool]} if st.select != "search" else {}),
            **({"alphas": list(st.alpha_grid)} if st.alpha_grid else {}),
        }
    )


def environment() -> dict:
    """Versions that can change numbers, for config.json."""
    from importlib.metadata import version

    return {
        "redundancy": __version__,
        "torch": torch.__version__,
        "cpu_threads": {"torch": torch.get_num_threads(), **threads.CHOSEN},
        "segment_anything": version("segment-anything"),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo; elsewhere what `platform` knows)."""
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    names = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")]
    return names[0] if names else (platform.processor() or platform.machine())


def machine(device: torch.device | str = "cpu") -> str:
    """Where a measurement ran, in a few words: the GPU's name, or the CPU model with its torch threads."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({cpu_name()}, {torch.get_num_threads()} threads)"


def _absolute_paths(cfg: SessionConfig) -> dict:
    """The config's file paths made absolute, so a run can be reused from any working directory."""
    paths = ("data", "checkpoint", "finetuned", "head")
    return {k: str(Path(v).resolve()) for k in paths if (v := getattr(cfg, k)) and not str(v).startswith("hf://")}


def record(session, settings, pairs: torch.Tensor, timings: dict) -> dict:
    """config.json's content: the session ("config") and search ("search") settings, what they resolved to, the
    data, the channel scope, the decoder batches, timings and the environment."""
    ev = session.evaluator("search")
    return {
        **session.header(),
        "config": {**session.cfg.to_dict(), **_absolute_paths(session.cfg)},
        "search": settings.to_dict(),
        "protocol": session.protocol,
        "data": {
            "path": str(session.dataset.root.resolve()),
            "layout": session.dataset.layout,
            "sha256": session.dataset.content_hash(),
            "images": len(session.dataset),
            "search_set": [s.name for s in session.search_set.samples],
            "heldout_images": len(session.heldout_set),
            "warnings": session.dataset.warnings,
        },
        "sources": sorted({int(i) for i in pairs[:, 0]}),
        "targets": sorted({int(j) for j in pairs[:, 1]}),
        "pairs_scored": len(pairs),
        "decoder_rows": ev.rows,  # per call, after any out-of-memory back-off
        "rows_backoff": ev.rows_backoff,
        "feature_cache_hits": session.cache_hits,
        "timings": timings,
        "environment": environment(),
    }
