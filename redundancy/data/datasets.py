"""Datasets on disk: segmentation (folder / PerSeg), classification (class folders / CSV), depth (images + depth).

Any of them may come as a .zip (`archives`). Every file a dataset names stays inside its folder, links
resolved (docs/security.md). Which task a layout's targets serve is the tasks' knowledge
(`tasks.task_for`); here a layout is only a way files are arranged.
"""

from __future__ import annotations

import csv
import hashlib
import random
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from ..io import env_number
from ..io import sha256_file as file_sha256
from .archives import extract_cached, extract_zip, nested_archives
from .images import (
    DEPTH_EXTS,
    IMAGE_EXTS,
    MASK_EXTS,
    check_image,
    image_size,
    load_depth,
    mask_of,
    open_header,
    open_image,
    path_too_long,
    upright_size,
)

MAX_IMAGES = env_number("REDUNDANCY_MAX_IMAGES", 5_000)  # per dataset
# Files only a search of this tool writes into its run folder (a finished one, one under way); the run files are
# runs/rundir.py's (a layer above, so named here; tests/data/test_datasets.py holds the two together).
RUN_MARKERS = ("pair_scores.npy", "state/manifest.json")
LAYOUT_WORDS = {  # how a layout reads in messages
    "folder": "images/ + masks/",
    "perseg": "PerSeg folders Images/ + Annotations/",
    "images": "images without targets",
    "classes": "class folders {} of images, no masks",
    "csv": "a CSV of image,label rows",
    "depth": "images/ + depth/",
}


@dataclass(frozen=True)
class Sample:
    """One image with its target: a mask or depth map file (`mask_path`) or a class index (`label`).

    `group` is the object (PerSeg) or the image itself.
    """

    name: str
    image_path: Path
    mask_path: Path | None
    group: str
    label: int | None = None


@dataclass
class Dataset:
    """An ordered list of samples plus where they came from."""

    root: Path
    layout: str  # "folder" | "perseg" | "images" (no masks) | "classes" | "csv" | "depth"
    samples: list[Sample]
    warnings: list[str] = field(default_factory=list)
    classes: tuple[str, ...] = ()  # classification: class names, index = label
    _hash: str | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def has_masks(self) -> bool:
        return all(s.mask_path is not None for s in self.samples)

    @property
    def described(self) -> str:
        """Its layout in words, for messages: 'class folders cat/, dog/ of images, no masks'."""
        names = ", ".join(c + "/" for c in self.classes[:3]) + (", ..." if len(self.classes) > 3 else "")
        return LAYOUT_WORDS.get(self.layout, self.layout).format(names)

    @property
    def default_protocol(self) -> str:
        """mIoU protocol the dataset's community uses: pooled per object for PerSeg, else per image."""
        return "perseg" if self.layout == "perseg" else "image"

    def content_hash(self) -> str:
        """sha256 over every image and mask file's bytes, in sample order (identifies the data; read once)."""
        if self._hash is None:
            h = hashlib.sha256()
            for s in self.samples:
                h.update(s.name.encode())
                if s.label is not None:
                    h.update(f"|{self.classes[s.label]}".encode())
                for p in (s.image_path, s.mask_path):
                    if p is not None:
                        h.update(file_sha256(p).encode())
            self._hash = h.hexdigest()
        return self._hash

    def subset(self, indices: list[int]) -> Dataset:
        """The samples at `indices`, in that order."""
        return Dataset(self.root, self.layout, [self.samples[i] for i in indices], self.warnings, self.classes)


def _utf8_name(p: Path) -> None:
    """Refuse a file name that is not valid UTF-8 (it could not be shown, logged or written to a run file)."""
    try:
        p.name.encode("utf-8")
    except UnicodeEncodeError:
        shown = p.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise DataError(
            f"{p.parent.name}/{shown}: the file name is not valid UTF-8 (made on another system?); rename it."
        ) from None


def _files(folder: Path, exts: tuple[str, ...]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in exts and not p.name.startswith("."):
            _utf8_name(p)
            if p.stem in out:
                raise DataError(
                    f"{folder.name}/: two files share the name '{p.stem}' ({out[p.stem].name}, {p.name}); "
                    "keep one file per name."
                )
            out[p.stem] = p
    return out


def _child(folder: Path, *names: str) -> Path | None:
    wanted = {n.lower() for n in names}
    for p in sorted(folder.iterdir()):
        if p.is_dir() and p.name.lower() in wanted:
            return p
    return None


def _pair(images: dict[str, Path], masks: dict[str, Path], where: str) -> list[tuple[str, Path, Path]]:
    no_mask = sorted(set(images) - set(masks))
    no_image = sorted(set(masks) - set(images))
    if no_mask:
        raise DataError(
            f"{where}: {len(no_mask)} image(s) have no mask with the same name, e.g. "
            f"{', '.join(no_mask[:5])}; add the masks or remove those images."
        )
    if no_image:
        raise DataError(
            f"{where}: {len(no_image)} mask(s) have no image with the same name, e.g. "
            f"{', '.join(no_image[:5])}; add the images or remove those masks."
        )
    return [(stem, images[stem], masks[stem]) for stem in sorted(images)]


def _find_root(path: Path) -> Path:
    """Descend through single wrapper folders (as zips often have) to the dataset root."""
    for _ in range(3):
        if _child(path, "images", "annotations", "masks"):
            return path
        subdirs = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX"))]
        files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
        if len(subdirs) == 1 and not any(f.suffix.lower() in IMAGE_EXTS + (".csv",) for f in files):
            path = subdirs[0]
        else:
            break
    return path


def _scan_classes(root: Path, class_dirs: list[Path]) -> tuple[list[Sample], tuple[str, ...]]:
    """ImageFolder: <class>/<image>; class names from the folder names, sorted."""
    classes = tuple(d.name for d in class_dirs)
    samples = []
    for k, d in enumerate(class_dirs):
        files = _files(d, IMAGE_EXTS)
        if not files:
            raise DataError(f"class folder '{d.name}/' holds no images; add images of that class or remove the folder.")
        samples += [Sample(f"{d.name}/{stem}", f, None, f"{d.name}/{stem}", k) for stem, f in files.items()]
    return samples, classes


def _scan_csv(table: Path, base: Path) -> tuple[list[Sample], tuple[str, ...]]:
    """A CSV of (image, label) rows with a header; image paths relative to the CSV's folder, inside `base`."""
    try:
        with table.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{table.name}: cannot read this CSV ({e}); save it as UTF-8 text.") from e
    except csv.Error as e:
        raise DataError(
            f"{table.name}: not a CSV of image,label rows ({e}); save one row per image, comma-separated."
        ) from e
    header = [h.strip().lower() for h in rows[0]] if rows else []
    col_img = next((header.index(h) for h in ("image", "path", "file", "filename") if h in header), None)
    col_lab = next((header.index(h) for h in ("label", "class", "category") if h in header), None)
    if col_img is None or col_lab is None:
        raise DataError(
            f"{table.name}: the first row must name the columns, e.g. 'image,label' "
            f"(found {', '.join(rows[0]) if rows else 'nothing'}); "
            "add that header row."
        )
    entries = []
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) <= max(col_img, col_lab) or not row[col_lab].strip():
            raise DataError(f"{table.name} line {n}: needs an image and a label; fill in or delete that line.")
        path = (table.parent / row[col_img].strip()).resolve()
        if not path.is_relative_to(base):  # checked before the file is touched: nothing outside is probed
            raise DataError(
                f"{table.name} line {n}: image '{row[col_img].strip()}' is outside the dataset folder; list images "
                "by paths relative to the CSV, inside the dataset."
            )
        if not path.is_file():
            raise DataError(
                f"{table.name} line {n}: image '{row[col_img].strip()}' does not exist next to the CSV; fix the path."
            )
        entries.append((path, row[col_lab].strip()))
    classes = tuple(sorted({lab for _, lab in entries}))
    index = {c: k for k, c in enumerate(classes)}
    seen: set[str] = set()
    samples = []
    for path, lab in entries:
        folder = table.parent.resolve()
        name = str(path.relative_to(folder if path.is_relative_to(folder) else base))
        if name in seen:
            raise DataError(f"{table.name}: image '{name}' is listed twice; keep one row per image.")
        seen.add(name)
        samples.append(Sample(name, path, None, name, index[lab]))
    return samples, classes


def _scan(
    root: Path, require_masks: bool, base: Path, where: str, zipped: bool = False
) -> tuple[str, list[Sample], tuple[str, ...]]:
    """(layout, samples, class names) of the dataset at `root` (inside `base`, the folder the user gave, or the
    folder a zip was extracted to; `where` names it in messages)."""
    layout, samples = _scan_masks(root, require_masks, where, zipped)
    if layout != "classify":
        return layout, samples, ()
    tables = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    if len(tables) > 1:
        raise DataError(
            f"{where}: {len(tables)} CSV files ({', '.join(t.name for t in tables)}); "
            "keep the one of (image, label) rows."
        )
    if tables:
        return "csv", *_scan_csv(tables[0], base)
    dirs = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith((".", "__MACOSX"))]
    return "classes", *_scan_classes(root, dirs)


def looks_like_data(folder: Path) -> bool:
    """Whether a folder holds images (directly, in class folders or in a layout's folders): a dataset, for the
    message of a step that wanted something else there. Never raises."""

    def has_images(d: Path) -> bool:
        return any(p.is_file() and p.suffix.lower() in IMAGE_EXTS for p in d.iterdir())

    try:
        subdirs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX"))]
        return has_images(folder) or any(has_images(d) for d in subdirs) or _looks_like_dataset(folder)
    except OSError:
        return False


def _looks_like_dataset(folder: Path) -> bool:
    """Whether a folder is a dataset of its own (a layout's folders inside, or datasets inside it), not a class."""
    if _child(folder, "images", "annotations", "masks"):
        return True
    subdirs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX"))]
    return any(_child(d, "images", "annotations", "masks") for d in subdirs)


def _refuse_datasets_folder(subdirs: list[Path], where: str, zipped: bool) -> None:
    """A folder that holds datasets (e.g. the repository's assets/) is not class folders nor images: say so."""
    datasets = sorted(d.name for d in subdirs if _looks_like_dataset(d))
    if datasets:
        listed = ", ".join(d + "/" for d in datasets[:4]) + (", ..." if len(datasets) > 4 else "")
        one = f"zip one of them on its own, e.g. {datasets[0]}/" if zipped else f"give one, e.g. {where}/{datasets[0]}"
        raise DataError(f"{where} is a folder of datasets ({listed}), not one dataset; {one}.")


def _scan_masks(root: Path, require_masks: bool, where: str, zipped: bool = False) -> tuple[str, list[Sample]]:
    images_dir = _child(root, "images")
    annotations_dir = _child(root, "annotations")
    masks_dir = _child(root, "masks")
    if images_dir and annotations_dir and any(p.is_dir() for p in images_dir.iterdir()):
        samples = []
        for obj_dir in sorted(p for p in images_dir.iterdir() if p.is_dir()):
            ann_dir = annotations_dir / obj_dir.name
            if not ann_dir.is_dir():
                raise DataError(
                    f"PerSeg layout: Images/{obj_dir.name}/ has no Annotations/{obj_dir.name}/ folder; "
                    "add the masks for this object or remove it."
                )
            pairs = _pair(_files(obj_dir, IMAGE_EXTS), _files(ann_dir, MASK_EXTS), f"object '{obj_dir.name}'")
            samples += [Sample(f"{obj_dir.name}/{s}", i, m, obj_dir.name) for s, i, m in pairs]
        return "perseg", samples
    if images_dir and masks_dir:
        pairs = _pair(_files(images_dir, IMAGE_EXTS), _files(masks_dir, MASK_EXTS), "images/ vs masks/")
        return "folder", [Sample(s, i, m, s) for s, i, m in pairs]
    depth_dir = _child(root, "depth")
    if images_dir and depth_dir:
        pairs = _pair(_files(images_dir, IMAGE_EXTS), _files(depth_dir, DEPTH_EXTS), "images/ vs depth/")
        return "depth", [Sample(s, i, m, s) for s, i, m in pairs]
    subdirs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX"))]
    if not images_dir:
        _refuse_datasets_folder(subdirs, where, zipped)
    has_csv = any(p.suffix.lower() == ".csv" for p in root.iterdir() if p.is_file())
    if has_csv or (not images_dir and len(subdirs) >= 2 and not _files(root, IMAGE_EXTS)):
        return "classify", []  # class folders or a CSV of labels: read by `_scan`
    if not require_masks:
        folder = images_dir or root
        return "images", [Sample(s, p, None, s) for s, p in _files(folder, IMAGE_EXTS).items()]
    raise DataError(
        f"{where}: no dataset layout found. Expected images/ + masks/ folders (matched by file name), "
        "the PerSeg layout Images/<object>/*.jpg + Annotations/<object>/*.png, class folders <class>/*.jpg or a "
        "CSV of image,label rows (classification), or images/ + depth/ (depth)." + nested_archives(root)
    )


def _validate(samples: list[Sample]) -> list[str]:
    """Check every mask against its image; return warnings for masks that look multi-class."""
    warnings = []
    for s in samples:
        with open_header(s.image_path) as im:
            size = upright_size(im)
            turned = size != im.size
        mask_img = open_image(s.mask_path, image=False)
        if mask_img.size != size:
            raise DataError(
                f"{s.name}: mask {s.mask_path.name} is {mask_img.size[0]}x{mask_img.size[1]} but the "
                f"image is {size[0]}x{size[1]}"
                + (" once its EXIF orientation tag is applied (masks go on the upright image)" if turned else "")
                + "; masks must have the same size as their image."
            )
        mask, values = mask_of(s.mask_path, mask_img)
        if values > 1:
            warnings.append(
                f"{s.name}: mask has {values} different foreground values (multi-class?); every non-zero pixel "
                "counts as foreground (docs/data.md). Give one object per mask if that is not meant."
            )
        if not mask.any():
            raise DataError(
                f"{s.name}: mask {s.mask_path.name} is empty (no foreground pixel), so IoU is undefined; "
                "remove this image or fix its mask."
            )
    return warnings


def _validate_depth(samples: list[Sample]) -> list[str]:
    """Check every depth map against its image: same size, at least one valid (non-zero) pixel."""
    for s in samples:
        depth = load_depth(s.mask_path)
        h, w = image_size(s.image_path)
        if depth.shape != (h, w):
            raise DataError(
                f"{s.name}: depth map {s.mask_path.name} is {depth.shape[1]}x{depth.shape[0]} but the image is "
                f"{w}x{h}; "
                "depth maps must have the same size as their image."
            )
        if not (depth > 0).any():
            raise DataError(
                f"{s.name}: depth map {s.mask_path.name} has no valid pixel (all 0), so no error can be measured; "
                "remove this image or fix its depth map."
            )
    return []


def open_dataset(path: str | Path, extract_to: str | Path | None = None, require_masks: bool = True) -> Dataset:
    """Open a folder or .zip dataset, check every sample and return it in sorted order."""
    path = Path(path)
    try:
        return _open(path, extract_to, require_masks)
    except OSError as e:  # scanning a folder nested past the path limit: said as such, never a traceback
        if (too_long := path_too_long(e, path.name or str(path))) is None:
            raise
        raise too_long from None


def _open(path: Path, extract_to: str | Path | None, require_masks: bool) -> Dataset:
    if not path.exists():
        raise DataError(f"{path}: no such file or folder; pass a dataset folder or a .zip of one.")
    archive = path if path.is_file() else None
    if archive is not None and archive.suffix.lower() != ".zip" and not zipfile.is_zipfile(archive):
        raise DataError(f"{path.name} is a file, not a dataset: give a dataset folder or a .zip of one.")
    if archive is not None:
        path = extract_zip(path, Path(extract_to)) if extract_to is not None else extract_cached(path)
    base = path.resolve()
    root = _find_root(path)
    where = str(root) if archive is None else "/".join((archive.name, *root.relative_to(path).parts))
    if any((root / marker).is_file() for marker in RUN_MARKERS):
        raise DataError(
            f"{where} holds a search's results (a run folder of this tool), not a dataset; give the data it searched "
            "(its config.json names it under data.path) or another dataset folder."
        )
    layout, samples, classes = _scan(root, require_masks, base, where, zipped=archive is not None)
    _check_inside(samples, base)
    if not samples:
        raise DataError(
            f"{where}: the dataset holds no images; add images (and masks) and try again." + nested_archives(root)
        )
    if len(samples) > MAX_IMAGES:
        raise DataError(
            f"{where}: {len(samples):,} images is over the limit of {MAX_IMAGES:,}; use a subset "
            "(the search needs ~50) or raise REDUNDANCY_MAX_IMAGES."
        )
    for s in samples:  # unreadable images fail here, naming the file, not half-way through a search
        check_image(s.image_path)
    if layout in ("classes", "csv") and len(classes) < 2:
        raise DataError(
            f"{where}: classification needs at least 2 classes, found {len(classes)}; add the other classes."
        )
    validate = {"depth": _validate_depth, "folder": _validate, "perseg": _validate}.get(layout)
    warnings = validate(samples) if validate else []
    return Dataset(root, layout, samples, warnings, classes)


def _check_inside(samples: list[Sample], base: Path) -> None:
    """Every file a dataset names stays inside its folder once links are resolved (a link out is refused)."""
    for s in samples:
        for p in (s.image_path, s.mask_path):
            if p is not None and not Path(p).resolve().is_relative_to(base):
                raise DataError(
                    f"{s.name}: {Path(p).name} is a link to a file outside the dataset folder; copy the file into "
                    "the dataset instead."
                )


def split(dataset: Dataset, n_search: int, seed: int, what: str = "search") -> tuple[Dataset, Dataset]:
    """Seeded split into (`what` set of n_search samples, the rest); both keep sorted order."""
    n = len(dataset)
    if n_search < 1:
        raise DataError(f"{what} set size must be at least 1 (got {n_search}).")
    if n_search > n:
        raise DataError(
            f"the {what} set asks for {n_search} images but {n} are available; use {n} or fewer {what} images."
        )
    chosen = sorted(random.Random(seed).sample(range(n), n_search))
    rest = [i for i in range(n) if i not in set(chosen)]
    return dataset.subset(chosen), dataset.subset(rest)
