"""Metric groups: which images a score pools together (each image alone, or an object's images), and which
images a protocol leaves out.

The protocols reduce per-image numbers: `image` averages over images; `perseg` pools each object's images,
then averages over objects; `persam` is PerSAM's own eval_miou.py: as `perseg`, but each object's reference
image (a name containing "00") is not evaluated, and an object left with no evaluated image counts as 0.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

PROTOCOLS = ("image", "perseg", "persam")
PERSAM_REFERENCE = "00"  # PerSAM eval_miou.py's --ref-idx: an image whose path contains it is not evaluated


def group_ids(groups: list[str], protocol: str, names: list[str] | None = None) -> tuple[np.ndarray, int]:
    """(integer group per image, number of groups): each image alone (`image`) or its object.

    Group -1 marks an image that is not evaluated (`persam`: names containing PERSAM_REFERENCE).
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown mIoU protocol '{protocol}'; use one of {', '.join(PROTOCOLS)}.")
    if protocol == "image":
        return np.arange(len(groups)), len(groups)
    kinds, ids = np.unique(np.asarray(groups), return_inverse=True)
    if protocol == "persam":
        ids = np.where([PERSAM_REFERENCE in n for n in names or groups], -1, ids)
    return ids, len(kinds)


def group_onehot(groups: np.ndarray, n_groups: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(one-hot (B, G) of each evaluated image's group, the evaluated images' indices)."""
    n = n_groups or int(groups.max()) + 1
    evaluated = np.flatnonzero(groups >= 0)
    onehot = np.zeros((len(groups), n))
    onehot[evaluated, groups[evaluated]] = 1.0
    return onehot, evaluated


def evaluated(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Stats values (V, B', K) of the evaluated images (group >= 0)."""
    return values[:, groups >= 0] if (groups >= 0).any() else values
