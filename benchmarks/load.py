"""A shared machine's other work, made on purpose: busy processes that keep the CPU loaded while a benchmark runs."""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Iterator


def _spin() -> None:
    while True:
        pass


@contextlib.contextmanager
def cpu_load(processes: int) -> Iterator[None]:
    """`processes` busy processes (a shared machine's other work) while the block runs."""
    busy = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(processes)]
    for p in busy:
        p.start()
    try:
        yield
    finally:
        for p in busy:
            p.terminate()
        for p in busy:
            p.join()
