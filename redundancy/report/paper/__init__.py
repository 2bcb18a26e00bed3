"""`redundancy paper`: the paper's tables regenerated offline on the demo models (`run.run_paper`), at the default
size (the committed report) or `--tiny` (seconds). Each measurement module builds its tables; `tables` writes
them; `published` holds the paper's own numbers that are printed beside ours."""

from .run import MARKER, PaperReport, read_report, run_paper
from .sizes import DEFAULT, SIZES, TINY, PaperSize

__all__ = ["DEFAULT", "MARKER", "SIZES", "TINY", "PaperReport", "PaperSize", "read_report", "run_paper"]
