"""redundancy: parameter-free adaptation of SAM-style models by channel replacement (arXiv 2504.08915)."""

__version__ = "0.1.0"
