"""Apply a found replacement set to new images: the task's patched predictions on disk, scores when GT exists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .data import Dataset, load_image, open_dataset
from .errors import DataError, RunError
from .export import read_run, write_depths, write_json, write_labels, write_predictions
from .features import FeatureCache
from .io import ensure_folder
from .models import Backend, build_backend
from .models.heads import load_head
from .models.layers import at_block, output_backend
from .replace import parse_replacements, set_map
from .rundir import RunDir
from .score import EvalSet, Evaluator
from .tasks import SEGMENT, Task, get_task


@dataclass
class ApplyResult:
    """Where the predictions went and, with GT, baseline vs patched score (mIoU % for segmentation)."""

    images: int
    zip_path: Path
    baseline_miou: float | None  # the task's score as a user reads it (mIoU, accuracy, RMSE, ...)
    patched_miou: float | None
    pairs: list[tuple[int, int]]
    metric: str = "miou"
    metric_label: str = "mIoU"


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


def open_run_data(config: dict, data: str | Path | None = None) -> Dataset:
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


def attach_run_head(run: Path, config: dict, backend: Backend) -> None:
    """Give a classify / depth run's backend the head the search scored with (its head.pt, hash checked)."""
    head = RunDir(run).head()
    if head is None:
        raise RunError(f"{run} is a {config['task']} run without its head.pt; rerun the search.")
    module, info = load_head(head, config["task"], output_backend(backend), tuple(config.get("classes", ())))
    if info.sha256 != (config.get("head") or {}).get("sha256"):
        raise RunError(f"{head} is not the head this run recorded (its sha256 differs); rerun the search.")
    backend.head = module


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
    task = get_task(config.get("task", SEGMENT))
    if task.name != SEGMENT:
        attach_run_head(Path(run), config, backend)
    cfg = config["config"]
    return apply_pairs(
        backend,
        repl,
        data,
        out,
        cfg.get("prompt", "none"),
        cfg.get("mask_choice", "single"),
        protocol or config.get("protocol"),
        cache,
        extract_to,
        cfg.get("rows"),
        task,
        tuple(config.get("classes", ())),
        config.get("search", {}).get("metric"),
    )


def _check_task_data(dataset: Dataset, task: Task, classes: tuple[str, ...]) -> None:
    """Unlabelled images suit any task; labelled data must be the run's task (and, to classify, its classes)."""
    if dataset.layout == "images":
        return
    if dataset.task != task.name:
        raise DataError(f"this is a {task.name} run but the data is a {dataset.task} dataset; give images of its task.")
    if task.name == "classify" and dataset.classes != classes:
        raise DataError(
            f"the data's classes ({', '.join(dataset.classes[:6])}) are not the run's ({', '.join(classes[:6])}); "
            "use the same class folders, or a folder of unlabelled images."
        )


APPLY_RECORD = "apply.json"  # written last by every apply: a folder holding it is an apply's own output
APPLY_WRITES = ("masks", "baseline_masks", "overlays", "predictions.csv", "depth", "baseline_depth", "previews",
                "predictions.zip", APPLY_RECORD)  # fmt: skip


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
        clash = next((n for n in APPLY_WRITES if (out / n).exists()), None)
        if clash:
            raise RunError(f"--out {out} already holds {clash} that apply did not write; choose a new or empty folder.")
    ensure_folder(out)


def apply_pairs(
    backend: Backend,
    replacements: dict,
    data: Path,
    out: Path,
    prompt: str = "none",
    mask_choice: str = "single",
    protocol: str | None = None,
    cache: FeatureCache | None = None,
    extract_to: Path | None = None,
    rows: int | None = None,
    task: Task | None = None,
    classes: tuple[str, ...] = (),
    metric: str | None = None,
) -> ApplyResult:
    """Apply a replacements.json dict to the images of `data` (targets optional) and write the task's predictions:
    masks and overlays (segment), a labels CSV (classify) or 16-bit depth PNGs with previews (depth)."""
    task = task or get_task(SEGMENT)
    check_apply_out(Path(out), Path(data))
    pairs = parse_replacements(replacements, "the replacement set", backend.name, backend.channels)
    dataset = open_dataset(data, extract_to=extract_to, require_masks=False)
    _check_task_data(dataset, task, classes)
    protocol = protocol or dataset.default_protocol
    evalset = EvalSet.build(backend, dataset, cache or FeatureCache(), prompt, protocol, task=task)
    ev = Evaluator(backend, evalset, mask_choice, rows)
    f, alpha = set_map(pairs, backend.channels)
    patched, baseline = ev.logits(f, alpha=alpha), ev.logits()  # the baseline too, for an external evaluator
    images = [load_image(s.image_path) for s in dataset.samples]
    if task.name == SEGMENT:
        masks, base_masks = ([(z > 0).cpu().numpy() for z in zs] for zs in (patched, baseline))
        zip_path = write_predictions(Path(out), evalset.names, images, masks, base_masks)
    elif task.name == "classify":
        zip_path = write_labels(Path(out), evalset.names, patched, baseline, list(classes))
    else:
        zip_path = write_depths(Path(out), evalset.names, images, patched, baseline)
    base = after = None
    m = task.metric(metric)
    if all(t is not None for t in evalset.targets):
        score, _ = ev.summarize(ev.set_stats([[], pairs]), m.name)
        base, after = m.value(float(score[0])), m.value(float(score[1]))
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
            "metric": m.name,
            f"baseline_{m.name}": base,
            f"patched_{m.name}": after,
        },
    )
    return ApplyResult(len(images), zip_path, base, after, pairs, m.name, m.label)
