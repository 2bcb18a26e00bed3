"""Dataset layouts: the ways a dataset's files can be arranged, each registered by the task whose targets it holds.

A layout says how a folder is recognised and read into samples (`read`), how its targets are checked once
read (`check`), and how it reads in messages (`words`). The task modules register theirs (segmentation's
images/ + masks/ and PerSeg, classification's class folders and CSV, depth's images/ + depth/); this layer
only registers images without targets, which serve any task. `datasets.open_dataset` tries them in `order`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..registry import Registry
from .images import IMAGE_EXTS

HIDDEN = (".", "__MACOSX")  # folder-name prefixes no layout reads (system and archive leftovers)


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


@dataclass(frozen=True)
class Folder:
    """The folder a layout is asked to read: its `root`, the folder every file must stay inside (`base`), and
    how messages name it (`where`)."""

    root: Path
    base: Path
    where: str

    def child(self, *names: str) -> Path | None:
        """The sub-folder called one of `names` (any case), or None."""
        return child(self.root, *names)

    def subdirs(self) -> list[Path]:
        """Its visible sub-folders, sorted."""
        return subdirs(self.root)


Read = tuple[list[Sample], tuple[str, ...]]  # the samples, and the class names (classification's; else ())


@dataclass(frozen=True)
class Layout:
    """One arrangement of a dataset's files (module doc). `read` returns None for a folder not in this layout."""

    name: str
    words: str  # how it reads in messages: "images/ + masks/"; "{}" takes the first class folders' names
    read: Callable[[Folder], Read | None]
    check: Callable[[list[Sample], str], list[str]] = lambda samples, where: []  # raises on a bad target; warns
    order: int = 0  # where it is tried: a layout that needs named folders before one that takes loose files
    protocol: str = "image"  # the mIoU protocol its community uses (PerSeg: per object)
    labelled: bool = True  # its samples carry targets (False: images only, which serve any task)
    expected: str = ""  # what a user should give, for the message when no layout reads a folder (default: words)
    marks: tuple[str, ...] = ()  # sub-folder names that make a folder a dataset root, not a wrapper to descend

    @property
    def hint(self) -> str:
        """Its files as the message for an unrecognised folder names them."""
        return self.expected or self.words


LAYOUTS: Registry[Layout] = Registry("dataset layout", order=lambda layout: layout.order)


def register(layout: Layout) -> Layout:
    """Make a layout available to `open_dataset` (a task module registers the layouts of its targets)."""
    return LAYOUTS.add(layout.name, layout)


def child(folder: Path, *names: str) -> Path | None:
    """The sub-folder of `folder` called one of `names` (any case), or None."""
    wanted = {n.lower() for n in names}
    for p in sorted(folder.iterdir()):
        if p.is_dir() and p.name.lower() in wanted:
            return p
    return None


def subdirs(folder: Path) -> list[Path]:
    """The visible sub-folders of `folder`, sorted (system and archive leftovers left out)."""
    return [p for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(HIDDEN)]


def utf8_name(p: Path) -> None:
    """Refuse a file name that is not valid UTF-8 (it could not be shown, logged or written to a run file)."""
    try:
        p.name.encode("utf-8")
    except UnicodeEncodeError:
        shown = p.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise DataError(
            f"{p.parent.name}/{shown}: the file name is not valid UTF-8 (made on another system?); rename it."
        ) from None


def files(folder: Path, exts: tuple[str, ...]) -> dict[str, Path]:
    """The visible files of `folder` with one of `exts`, by stem (two files of one stem are refused)."""
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in exts and not p.name.startswith("."):
            utf8_name(p)
            if p.stem in out:
                raise DataError(
                    f"{folder.name}/: two files share the name '{p.stem}' ({out[p.stem].name}, {p.name}); "
                    "keep one file per name."
                )
            out[p.stem] = p
    return out


def pair(
    images: dict[str, Path], targets: dict[str, Path], where: str, what: str = "mask"
) -> list[tuple[str, Path, Path]]:
    """(name, image, target file) per image, matched by name (an image without a target, or the reverse, is refused)."""
    no_target = sorted(set(images) - set(targets))
    no_image = sorted(set(targets) - set(images))
    if no_target:
        raise DataError(
            f"{where}: {len(no_target)} image(s) have no {what} with the same name, e.g. "
            f"{', '.join(no_target[:5])}; add the {what}s or remove those images."
        )
    if no_image:
        raise DataError(
            f"{where}: {len(no_image)} {what}(s) have no image with the same name, e.g. "
            f"{', '.join(no_image[:5])}; add the images or remove those {what}s."
        )
    return [(stem, images[stem], targets[stem]) for stem in sorted(images)]


def paired_folders(targets: str, exts: tuple[str, ...], what: str) -> Callable[[Folder], Read | None]:
    """A layout's reader for images/ beside a `targets`/ folder of one file per image, matched by name."""

    def read(folder: Folder) -> Read | None:
        images, found = folder.child("images"), folder.child(targets)
        if images is None or found is None:
            return None
        pairs = pair(files(images, IMAGE_EXTS), files(found, exts), f"images/ vs {targets}/", what)
        return [Sample(s, i, t, s) for s, i, t in pairs], ()

    return read


def _unlabelled(folder: Folder) -> Read | None:
    images = folder.child("images") or folder.root
    return [Sample(s, p, None, s) for s, p in files(images, IMAGE_EXTS).items()], ()


UNLABELLED = register(
    Layout("images", "images without targets", _unlabelled, order=1000, labelled=False, marks=("images",))
)


def root_marks() -> tuple[str, ...]:
    """Every registered layout's root-marking sub-folder names (a dataset root is not descended as a wrapper)."""
    return tuple(dict.fromkeys(mark for layout in LAYOUTS.values() for mark in layout.marks))
