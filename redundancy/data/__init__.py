"""Data: datasets on disk (and in zips), their images, masks and depth maps, prompts, pictures, synthetic domains."""

from .archives import extract_cached, extract_zip
from .datasets import Dataset, Sample, open_dataset, split
from .images import IMAGE_EXTS, image_size, load_depth, load_image, load_mask

__all__ = [
    "IMAGE_EXTS",
    "Dataset",
    "Sample",
    "extract_cached",
    "extract_zip",
    "image_size",
    "load_depth",
    "load_image",
    "load_mask",
    "open_dataset",
    "split",
]
