"""Apply a found replacement set to new images: the task's patched predictions on disk, scores when GT exists."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data import load_image, open_dataset
from ..engine import SavedHead, Session
from ..engine.evalset import EvalSet, subset_groups
from ..engine.evaluator import Evaluator
from ..engine.features import FeatureCache
from ..engine.session import load_saved_head
from ..errors import RunError
from ..io import ensure_folder, write_json
from ..models import Backend, build_backend
from ..models.layers import at_block, output_backend
from ..replace import check_block, parse_replacements, set_map
from ..tasks import SEGMENT, Stats, get_task
from ..tasks.base import TASKS, Metric
from .rundir import RunDir
from .writers import read_run, write_files

PREVIEWS = 6  # images whose baseline and patched predictions an apply returns as pictures
APPLY_RECORD = "apply.json"  # written last by every apply: a folder holding it is an apply's own output
APPLY_ZIP = "predictions.zip"


def apply_writes() -> tuple[str, ...]:
    """Every name apply may write at the top of its output folder: each task's prediction files, the zip, the record."""
    return (*dict.fromkeys(n for task in TASKS.values() for n in task.outputs), APPLY_ZIP, APPLY_RECORD)


@dataclass(frozen=True)
class ApplyOptions:
    """How predictions are made and scored: the run's (or the session's) prompt, mask choice, task and metric."""

    task: str = SEGMENT
    prompt: str = "none"
    mask_choice: str = "single"
    protocol: str | None = None  # None: the data's own
    rows: int | None = None  # decoder rows per call (None: the device default)
    classes: tuple[str, ...] = ()  # classify: the run's classes, in label order
    metric: str | None = None  # the score to report (None: the task's first)
    seen: tuple[str, ...] = ()  # images the set was found on (the loaded search set): scored apart from the rest

    @classmethod
    def of_run(cls, config: dict, protocol: str | None = None) -> ApplyOptions:
        """The options a run's config.json records (`protocol` overrides the run's)."""
        cfg = config["config"]
        return cls(
            task=config.get("task", SEGMENT), prompt=cfg.get("prompt", "none"),
            mask_choice=cfg.get("mask_choice", "single"), protocol=protocol or config.get("protocol"),
            rows=cfg.get("rows"), classes=tuple(config.get("classes", ())),
            metric=config.get("search", {}).get("metric"),
        )  # fmt: skip

    @classmethod
    def of_session(cls, session: Session, metric: str | None = None, own_data: bool = False) -> ApplyOptions:
        """A live session's options (the app): its task, mask choice, batch size and classes; no prompts. On the
        session's own data (`own_data`) its search images are scored apart from the others."""
        cfg = session.cfg
        seen = tuple(s.name for s in session.search_set.samples) if own_data else ()
        return cls(session.task.name, "none", cfg.mask_choice, None, cfg.rows, session.dataset.classes, metric, seen)


@dataclass
class ApplyResult:
    """Where the predictions went and, with GT, baseline vs patched score (mIoU % for segmentation)."""

    images: int
    zip_path: Path
    baseline_score: float | None  # the task's score as a user reads it (mIoU, accuracy, RMSE, ...)
    patched_score: float | None
    pairs: list[tuple[int, int]]
    metric: str  # the task's metric (its name and label as the task's `Metric` gives them)
    metric_label: str
    digits: int = 2  # decimals its scores are shown with (`Metric.digits`)
    previews: list = field(default_factory=list)  # (picture, caption) of the first images: baseline, then patched
    split: dict = field(default_factory=dict)  # "search" / "other": (images, baseline, patched), scored apart

    def score_text(self) -> str | None:
        """'mIoU 41.67 -> 45.12 (+3.45) with 1 pair', or None where the images had no targets to score against."""
        if self.baseline_score is None or self.patched_score is None:
            return None
        d, n = self.digits, len(self.pairs)
        base, patched = self.baseline_score, self.patched_score
        change = f"{base:.{d}f} -> {patched:.{d}f} ({patched - base:+.{d}f})"
        return f"{self.metric_label} {change} with {n} pair{'' if n == 1 else 's'}"


def backend_for_run(config: dict, device: str = "auto") -> Backend:
    """Rebuild the run's model with the same weights (random seed or checkpoint)."""
    cfg = config["config"]
    backend = build_backend(
        cfg["model"],
        cfg.get("checkpoint"),
        cfg.get("random_init", False),
        cfg.get("seed", 0),
        device,
        finetuned=cfg.get("finetuned"),
    )
    backend = at_block(backend, cfg.get("layer"))  # a set found inside the encoder applies there
    recorded, now = config.get("weights", {}), backend.weights
    state_changed = recorded.get("state_sha256") not in (None, now.state_sha256)  # runs before the hash: label only
    if state_changed or recorded.get("label") != now.label:
        raise RunError(
            f"the run used weights '{recorded.get('label')}' but the files now give '{now.label}' (or other tensors "
            "under the same label); a checkpoint changed since the run. Restore it or rerun the search."
        )
    return backend


def run_head(run: Path, config: dict) -> SavedHead | None:
    """A run's head.pt with the record it must match (None for a model scored by its own decoder: no head recorded)."""
    task = get_task(config.get("task", SEGMENT))
    if "head" not in config:
        return None
    head = RunDir(run).head()
    if head is None:
        raise RunError(f"{run} is a {task.name} run without its head.pt; rerun the search.")
    return SavedHead(head, config.get("head") or {})


def open_run_data(config: dict, data: str | Path | None = None):
    """The dataset a run searched: its recorded (absolute) path, or `data` instead; the content must match."""
    path = data or config["config"]["data"]
    dataset = open_dataset(path)
    recorded = config["data"]["sha256"]
    if dataset.content_hash() != recorded:
        raise RunError(
            f"the data at {path} is not the data this run searched (sha256 {dataset.content_hash()[:12]}..., the run "
            f"recorded {recorded[:12]}...); pass that dataset as the data (CLI: --data)."
        )
    return dataset


def apply_run(
    run: Path,
    data: Path,
    out: Path,
    device: str = "auto",
    cache: FeatureCache | None = None,
    extract_to: Path | None = None,
    backend: Backend | None = None,
    verify: bool = True,
    protocol: str | None = None,
) -> ApplyResult:
    """Predict every image of `data` with a run's replacement set; write the task's predictions and a zip."""
    config, repl = read_run(run, verify)
    backend = backend or backend_for_run(config, device)
    saved = run_head(Path(run), config)
    options = ApplyOptions.of_run(config, protocol)
    if saved is not None:  # the head the search scored with, hash-checked
        encoder = output_backend(backend)
        backend.attach_head(load_saved_head(get_task(options.task), saved, encoder, options.classes)[0])
    return apply_pairs(backend, repl, data, out, options, cache=cache, extract_to=extract_to)


def check_apply_out(out: Path, data: Path) -> None:
    """Refuse an --out where predictions would overwrite files apply did not write: inside the dataset (its masks
    are ground truth), or a folder of other files with the names apply writes."""
    out_abs = out.resolve()
    if data.is_dir() and out_abs.is_relative_to(data.resolve()):
        raise RunError(
            f"--out {out} is inside the dataset folder {data}: predictions there would overwrite its ground truth. "
            "Write them to a folder outside the data."
        )
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file; give a folder for the predictions.")
    if out.is_dir() and not (out / APPLY_RECORD).is_file():
        clash = next((n for n in apply_writes() if (out / n).exists()), None)
        if clash:
            raise RunError(f"--out {out} already holds {clash} that apply did not write; choose a new or empty folder.")
    ensure_folder(out)


def apply_pairs(
    backend: Backend,
    replacements: dict,
    data: Path,
    out: Path,
    options: ApplyOptions | None = None,
    cache: FeatureCache | None = None,
    extract_to: Path | None = None,
) -> ApplyResult:
    """Apply a replacements.json dict to the images of `data` (targets optional) and write the task's predictions
    (`Task.prediction_files`: masks and overlays, a labels CSV, 16-bit depth PNGs with previews) and a zip."""
    options = options or ApplyOptions()
    task = get_task(options.task)
    check_apply_out(Path(out), Path(data))
    pairs = parse_replacements(replacements, "the replacement set", backend.name, backend.channels)
    check_block(replacements, "the replacement set", getattr(backend, "layer", None))  # where it was found
    dataset = open_dataset(data, extract_to=extract_to, require_masks=False)
    task.check_data(dataset, options.classes)
    protocol = options.protocol or dataset.default_protocol
    evalset = EvalSet.build(
        backend, dataset, cache or FeatureCache(), options.prompt, protocol, task=task, mask_choice=options.mask_choice
    )
    ev = Evaluator(backend, evalset, options.rows)
    f, alpha = set_map(pairs, backend.channels)
    patched, baseline = ev.logits(f, alpha=alpha), ev.logits()  # the baseline too, for an external evaluator
    images = [load_image(s.image_path) for s in dataset.samples]
    files = task.prediction_files(evalset.names, images, patched, baseline, options.classes)
    zip_path = write_files(Path(out), files)
    base = after = per_image = None
    split: dict = {}
    m = task.metric(options.metric)
    if all(t is not None for t in evalset.targets):
        stats = ev.set_stats([[], pairs])
        score, _ = ev.summarize(stats, m.name)
        base, after = m.value(float(score[0])), m.value(float(score[1]))
        per_image = task.per_group(stats, np.arange(len(images)), len(images), m.name)  # (2, B): each image alone
        split = split_scores(evalset, stats, options.seen, m)
    previews = []
    for k in range(min(PREVIEWS, len(images))):
        target = task.load_target(dataset.samples[k])
        for v, (output, what) in enumerate(((baseline[k], "baseline"), (patched[k], "patched"))):
            score_k = f" {m.label} {m.value(float(per_image[v, k])):.{m.digits}f}" if per_image is not None else ""
            previews.append((task.prediction_view(images[k], output, target, options.classes),
                             f"{evalset.names[k]} {what}{score_k}"))  # fmt: skip
    write_json(
        Path(out) / APPLY_RECORD,
        {
            "model": backend.name,
            "weights_label": backend.weights.label,
            "task": task.name,
            "data": str(data),
            "images": len(images),
            "pairs": [list(p) for p in pairs],
            "protocol": protocol,
            "metric": m.name,  # the scores' metric, as in the run files
            "baseline_score": base,
            "patched_score": after,
            **({"split": split} if split else {}),
        },
    )
    return ApplyResult(len(images), zip_path, base, after, pairs, m.name, m.label, m.digits, previews, split)


def split_scores(evalset: EvalSet, stats: Stats, seen: tuple[str, ...], m: Metric) -> dict:
    """{"search": (n, baseline, patched), "other": ...}: the scores (as a user reads them) on the images the set
    was found on and on the rest, each pooled as the whole is (per object where the protocol says so); {} unless
    both parts have images."""
    found = np.isin(evalset.names, list(seen))
    if not found.any() or found.all():
        return {}
    out = {}
    for part, keep in (("search", found), ("other", ~found)):
        idx = np.flatnonzero(keep).tolist()  # the groups alone: no copy of the part's features is needed
        groups = subset_groups(evalset.groups, idx)
        score, _ = evalset.task.reduce(Stats(stats.values[:, idx]), groups, None, m.name)
        out[part] = (len(idx), m.value(float(score[0])), m.value(float(score[1])))
    return out
