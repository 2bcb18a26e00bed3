"""Datasets on disk, in any registered layout (`layouts`: each task registers the layouts of its targets).

Any of them may come as a .zip (`archives`). Every file a dataset names stays inside its folder, links
resolved (docs/security.md). Which task a layout's targets serve is the tasks' knowledge
(`tasks.task_for`); here a layout is only a way files are arranged.
"""

from __future__ import annotations

import hashlib
import random
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from ..io import env_number
from ..io import sha256_file as file_sha256
from .archives import extract_cached, extract_zip, nested_archives
from .images import IMAGE_EXTS, check_image, path_too_long
from .layouts import LAYOUTS, Folder, Layout, Sample, child, root_marks, subdirs

MAX_IMAGES = env_number("REDUNDANCY_MAX_IMAGES", 5_000)  # per dataset
# Files only a search of this tool writes into its run folder (a finished one, one under way); the run files are
# runs/rundir.py's (a layer above, so named here; tests/data/test_datasets.py holds the two together).
RUN_MARKERS = ("pair_scores.npy", "state/manifest.json")


@dataclass
class Dataset:
    """An ordered list of samples plus where they came from."""

    root: Path
    layout: str  # a registered layout's name (`layouts.LAYOUTS`)
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
        layout = LAYOUTS.get(self.layout)
        return layout.words.format(names) if layout else self.layout

    @property
    def default_protocol(self) -> str:
        """mIoU protocol the dataset's community uses (its layout's: pooled per object for PerSeg, else per image)."""
        layout = LAYOUTS.get(self.layout)
        return layout.protocol if layout else "image"

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


def _find_root(path: Path) -> Path:
    """Descend through single wrapper folders (as zips often have) to the dataset root."""
    for _ in range(3):
        if child(path, *root_marks()):
            return path
        folders = subdirs(path)
        files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
        if len(folders) == 1 and not any(f.suffix.lower() in IMAGE_EXTS + (".csv",) for f in files):
            path = folders[0]
        else:
            break
    return path


def _scan(folder: Folder, require_masks: bool, zipped: bool = False) -> tuple[Layout, list[Sample], tuple[str, ...]]:
    """(layout, samples, class names) of the dataset in `folder`: the first registered layout that reads it."""
    if not any(layout.labelled for layout in LAYOUTS.values()):
        raise RuntimeError("no labelled dataset layouts are registered: import redundancy.tasks first")
    if folder.child("images") is None:  # a folder of datasets is refused before class folders could read it
        _refuse_datasets_folder(folder.subdirs(), folder.where, zipped)
    for layout in LAYOUTS.values():
        if layout.labelled or not require_masks:
            found = layout.read(folder)
            if found is not None:
                return layout, *found
    expected = "; ".join(layout.hint for layout in LAYOUTS.values() if layout.labelled)
    raise DataError(f"{folder.where}: no dataset layout found. Expected {expected}." + nested_archives(folder.root))


def looks_like_data(folder: Path) -> bool:
    """Whether a folder holds images (directly, in class folders or in a layout's folders): a dataset, for the
    message of a step that wanted something else there. Never raises."""

    def has_images(d: Path) -> bool:
        return any(p.is_file() and p.suffix.lower() in IMAGE_EXTS for p in d.iterdir())

    try:
        return has_images(folder) or any(has_images(d) for d in subdirs(folder)) or _looks_like_dataset(folder)
    except OSError:
        return False


def _looks_like_dataset(folder: Path) -> bool:
    """Whether a folder is a dataset of its own (a layout's folders inside, or datasets inside it), not a class."""
    if child(folder, "images", "annotations", "masks"):
        return True
    return any(child(d, "images", "annotations", "masks") for d in subdirs(folder))


def _refuse_datasets_folder(folders: list[Path], where: str, zipped: bool) -> None:
    """A folder that holds datasets (e.g. the repository's assets/) is not class folders nor images: say so."""
    datasets = sorted(d.name for d in folders if _looks_like_dataset(d))
    if datasets:
        listed = ", ".join(d + "/" for d in datasets[:4]) + (", ..." if len(datasets) > 4 else "")
        one = f"zip one of them on its own, e.g. {datasets[0]}/" if zipped else f"give one, e.g. {where}/{datasets[0]}"
        raise DataError(f"{where} is a folder of datasets ({listed}), not one dataset; {one}.")


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
    layout, samples, classes = _scan(Folder(root, base, where), require_masks, zipped=archive is not None)
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
    return Dataset(root, layout.name, samples, layout.check(samples, where), classes)


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
