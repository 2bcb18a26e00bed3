"""The cost table: peak memory, time and trainable parameters of the search vs decoder-only, LoRA and full encoder
fine-tuning, on the same images and device, each measured in a fresh process of its own.

A fresh process per method, so no method inherits another's heap. In it: the model is built and the images are
read, then the peak is reset and the method runs once (the search: encode the images and score the pairs and
subsets; a fine-tuning mode: one epoch over the images at its batch size). On a CPU the peak is the process's
resident-set high-water mark (Linux `VmHWM`, reset through /proc/self/clear_refs), on CUDA torch's peak allocation.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from ...engine import SearchSettings, Session, SessionConfig, run_search
from ...engine.features import FeatureCache
from ...errors import RunError
from ...training.finetune import FinetuneConfig, finetune, search_split
from . import published as P
from .context import Context, domain_path
from .tables import Table

METHODS = {"search": "search (ours)", "decoder": "decoder-only fine-tuning", "lora": "LoRA on the encoder",
           "encoder": "full encoder fine-tuning"}  # fmt: skip
ROOT = Path(__file__).resolve().parents[3]
MB = 2**20


class PeakMemory:
    """The peak memory of what runs inside `with`: (peak bytes, bytes above the start, seconds)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak = self.start = 0
        self.seconds = 0.0

    @staticmethod
    def _status(field: str) -> int:
        return 1024 * int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        else:
            try:
                Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
            except OSError as e:
                raise RunError(f"cannot reset this process's peak memory ({e}); the cost table needs Linux.") from e
            self.start = self._status("VmRSS")
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self.peak = self._status("VmHWM")
        self.seconds = time.perf_counter() - self.t0


def measure(method: str, model: str, data: str, images: int, scope: str, top_n: int, device: str) -> dict:
    """One method's cost on the first `images` of the split (in the calling process: `child` runs it fresh)."""
    with tempfile.TemporaryDirectory() as cache:  # an empty feature cache: the search encodes, as fine-tuning does
        cfg = SessionConfig(model=model, data=data, search_images=images, heldout_images=0, protocol="image",
                            device=device)  # fmt: skip
        session = Session.open(cfg, FeatureCache(cache), progress=False)
        data_arrays = search_split(session) if method != "search" else None
        with PeakMemory(session.backend.device) as meter:
            if method == "search":
                run_search(session, SearchSettings(top_n=top_n, sources=scope, targets=scope))
                trainable = 0
            else:
                trainable = finetune(session.backend, *data_arrays, FinetuneConfig(mode=method, epochs=1)).trainable
    return {"method": method, "trainable": trainable, "peak_mb": meter.peak / MB, "rise_mb": (meter.peak -
            meter.start) / MB, "seconds": meter.seconds, "device": str(session.backend.device)}  # fmt: skip


def child() -> None:
    """A measuring process: a job (JSON, `measure`'s keywords) on stdin, its result as JSON on stdout's last line."""
    torch.set_num_threads(int(os.environ.get("REDUNDANCY_COST_THREADS", torch.get_num_threads())))
    print(json.dumps(measure(**json.loads(sys.stdin.read()))))


def _spawn(job: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    code = "from redundancy.report.paper.cost import child; child()"
    proc = subprocess.run([sys.executable, "-c", code], input=json.dumps(job), capture_output=True, text=True,
                          env=env, timeout=3600)  # fmt: skip
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise RunError(f"the cost measurement of {job['method']} failed: {last}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cost_table(ctx: Context) -> Table:
    """Every method's cost on the same images of the fine-tuning domain, each in its own process."""
    s = ctx.size
    t = Table(
        "cost",
        f"Cost: peak memory and trainable parameters ({s.ft_model}, {s.cost_images} images of {s.ft_domain})",
        ["source", "method", "trainable parameters", "peak memory (GB)", "above the loaded model (GB)", "seconds",
         "device"],
        digits={"peak memory (GB)": 3, "above the loaded model (GB)": 3},
    )  # fmt: skip
    for method, name in METHODS.items():
        ctx.check()
        ctx.log(f"cost: {name} on {s.cost_images} images" + (", in a fresh process" if s.fresh_processes else ""))
        job = {"method": method, "model": s.ft_model, "data": str(domain_path("segment", s.ft_domain)),
               "images": s.cost_images, "scope": s.scope, "top_n": s.top_n, "device": ctx.device}  # fmt: skip
        r = _spawn(job) if s.fresh_processes else measure(**job)
        rise = r["rise_mb"] / 1024 if s.fresh_processes else None  # one process: an earlier method set the peak
        t.add(name, r["trainable"], r["peak_mb"] / 1024, rise, r["seconds"], r["device"])
    for name, gb, thousands in P.COST.values():
        t.add(name, thousands * 1000, gb, None, None, "GPU (SAM ViT-B)", paper=True)
    t.notes.append(
        "Search: encode the images and score the pairs and subsets of the report's scope; fine-tuning: one epoch over "
        "the same images (batch 8). Peak: the process's resident-set high-water mark on a CPU (model, data and "
        "Python included), torch's peak allocation on a GPU; 'above the loaded model' subtracts what the process held "
        "before the method started. The paper's numbers are GPU memory of SAM ViT-B runs."
        + (
            ""
            if s.fresh_processes
            else " At this size every method runs in one process, whose high-water mark the first method set: the "
            "peaks overlap and 'above the loaded model' is not measured ('-'). The default size measures each method "
            "in a fresh process."
        )
    )
    return t
