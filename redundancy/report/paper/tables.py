"""A report table: its columns, the rows measured here and the paper's rows beside them, as markdown and CSV."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

import numpy as np

from .published import SOURCE

OURS = "measured here"


@dataclass
class Table:
    """One of the report's tables. Rows are lists of cells (str, int, float or None for "not given"); column 0
    says where a row comes from: `OURS` or the paper (`published.SOURCE`), so the two are never confused."""

    key: str  # the CSV's file stem
    title: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    digits: dict[str, int] = field(default_factory=dict)  # decimals per column (default 2)
    row_digits: list[int | None] = field(default_factory=list)  # a row's own decimals for all its numbers, if set
    figure: str | None = None  # the PNG drawn from it, if any

    def add(self, *cells, paper: bool = False, digits: int | None = None) -> None:
        """A row measured here, or (`paper`) one of the paper's; `digits`: its numbers' decimals (a row of its own
        metric), else each column's."""
        if len(cells) != len(self.columns) - 1:
            raise ValueError(f"{self.key}: {len(cells)} cells for {len(self.columns) - 1} columns")
        self.rows.append([SOURCE if paper else OURS, *cells])
        self.row_digits.append(digits)

    def measured(self) -> list[list]:
        """The rows measured by this run."""
        return [r for r in self.rows if r[0] == OURS]

    def _cell(self, column: str, value, digits: int | None = None) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return (
                "nan" if math.isnan(value) else f"{value:.{self.digits.get(column, 2) if digits is None else digits}f}"
            )
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return str(value)

    def markdown(self) -> str:
        """The table as markdown, its notes below it."""
        lines = [f"| {' | '.join(self.columns)} |", "|" + "---|" * len(self.columns)]
        for row, digits in zip(self.rows, self.row_digits):
            cells = [self._cell(c, v, digits) for c, v in zip(self.columns, row)]
            if row[0] != OURS:
                cells = [f"*{c}*" if c != "-" else c for c in cells]  # the paper's rows in italics
            lines.append(f"| {' | '.join(cells)} |")
        return "\n".join(lines + [""] + [f"- {n}" for n in self.notes])

    def csv(self) -> str:
        """The table as CSV (numbers unformatted, "" for a value not given)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow(["" if v is None else round(v, 6) if isinstance(v, float) else v for v in row])
        return buf.getvalue()


def spread(values: list[float]) -> tuple[float, float]:
    """(mean, population standard deviation) of a list of numbers (0 spread for one)."""
    return float(np.mean(values)), float(np.std(values))
