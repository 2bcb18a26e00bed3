"""A finished run as figures read it (`Run`): its files, checked, and what a figure needs to say about them.

Arrays a run holds are checked on load: a truncated or replaced file is one RunError naming it, not a traceback
from numpy. `consistency_problem` says when runs' channel numbers cannot be compared (other model, width or block).
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..bundled import weights_notice
from ..errors import RunError
from ..runs.rundir import RunDir
from ..tasks import SEGMENT, Metric, get_task
from .gains import best_gain_per_source


@dataclass
class Run:
    """Everything a figure may read from one run directory."""

    path: Path
    config: dict
    replacements: dict
    topn: dict
    gain: np.ndarray  # (C, C), NaN where unscored
    combos: list[dict]
    ablation: dict | None
    preview: dict | None

    @classmethod
    def load(cls, path: str | Path, verify: bool = True) -> Run:
        """A run's files; a run whose files no longer match their manifest is refused unless not `verify`."""
        rd = RunDir(path)
        if verify:
            rd.verify()
        config = rd.config()
        return cls(
            rd.path,
            config,
            rd.replacements(),
            rd.topn(),
            _read_array(rd, "pair_scores.npy", rd.pair_scores, (config["channels"],) * 2),
            rd.combinations(),
            rd.ablation(),
            _read_array(rd, "preview.npz", rd.preview),
        )

    @property
    def channel_space(self) -> tuple[str, int, int | None]:
        """(model, channels, encoder block): runs compare channel numbers only where all three agree."""
        return self.config["model"], self.config["channels"], self.config["config"].get("layer")

    @property
    def metric(self) -> Metric:
        """The score the run's numbers are in (mIoU for segmentation; accuracy, RMSE, ... for DINOv2 tasks)."""
        return get_task(self.config.get("task", SEGMENT)).metric(self.config.get("search", {}).get("metric"))

    def axis(self, delta: bool = False) -> str:
        """Axis label for scores (or gains) in the run's metric."""
        m = self.metric
        if delta:  # gains are oriented: positive is better, so a lower-is-better metric shows its decrease
            return f"Δ {m.label} (points)" if m.percent else f"{m.label} {'gain' if m.higher_is_better else 'decrease'}"
        return f"{m.label} (%)" if m.percent else m.label

    @property
    def label(self) -> str:
        """Short name in cross-run figures: the dataset's folder name (the run folder says nothing about the data)."""
        return Path(self.config["data"]["path"]).name

    @property
    def notice(self) -> str | None:
        """The warning the run's figures carry: random weights, or a demo model's own label (None: a checkpoint)."""
        return weights_notice(self.config["weights"])

    def caption(self) -> str:
        """Provenance line every figure's sidecar carries."""
        c = self.config
        return (
            f"model {c['model']}; weights: {c['weights']['label']}; dataset {self.label} "
            f"(sha256 {c['data']['sha256'][:12]}); search set {len(c['data']['search_set'])} images; "
            f"seed {c['config']['seed']}; prompt {c['config']['prompt']}; protocol {c['protocol']}; "
            f"metric {c.get('search', c['config'])['metric']}; run {self.path.name}"
        )

    def best_gain_as_source(self) -> np.ndarray:
        """(C,) best gain when channel i is replaced by anything (NaN if never scored)."""
        return best_gain_per_source(self.gain)

    def effective_score(self) -> np.ndarray:
        """(C,) how much a channel matters: mIoU lost when it is zeroed (zero sweep in ablation.json),
        else how useful it is as a copy (mean positive gain it gives other channels)."""
        zeroed = {
            int(k.split()[1]): v["delta_score"]
            for k, v in (self.ablation or {}).get("edits", {}).items()
            if k.startswith("zero ")
        }
        if zeroed:
            return np.array([-zeroed.get(c, np.nan) for c in range(self.gain.shape[0])])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # channels never used as a target: NaN
            return np.nanmean(np.clip(self.gain, 0, None), axis=0)


def _read_array(rd: RunDir, name: str, read: Callable[[], Any], shape: tuple[int, ...] | None = None) -> Any:
    """A run's array file, or one RunError naming it where it is damaged (truncated, wrong shape, not an array)."""
    try:
        value = read()
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        problem = f"cannot be read ({e.__class__.__name__}: {' '.join(str(e).split())[:120]})"
    else:
        if shape is None or getattr(value, "shape", None) == shape:
            return value
        problem = f"holds shape {getattr(value, 'shape', None)}, not the run's {shape}"
    raise RunError(
        f"{rd.path}: {name} {problem}; the file is damaged (truncated or replaced): restore it or rerun the search."
    )


def consistency_problem(runs: list[Run]) -> str | None:
    """Why the runs' channel numbers cannot be compared (None where every run has the same model, channel count
    and encoder block: channel 19 of one is channel 19 of the others)."""
    spaces = {r.channel_space for r in runs}
    if len(spaces) < 2:
        return None
    shown = "; ".join(
        sorted(f"{m}, {c} channels" + (f", block {b}" if b is not None else ", encoder output") for m, c, b in spaces)
    )
    return (
        f"the runs are of different models, channel counts or encoder blocks ({shown}), so their channel numbers "
        "name unrelated channels; compare runs of one model at one block"
    )
