"""Sharding the search over processes launched by torchrun (NCCL on GPUs, gloo on CPU).

Every rank scores every world-th pair (and combination); results are gathered so that each rank
holds the full matrices, and rank 0 writes the run directory. Decoder calls have a fixed shape,
so a pair's score does not depend on which rank scored it: the merged result equals a single
process run (same device kind and thread count).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    """This process's place in a torchrun job."""

    rank: int
    world: int
    local_rank: int

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, items: torch.Tensor | np.ndarray):
        """Every world-th item, starting at this rank."""
        return items[self.rank :: self.world]

    def merge(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """Combine per-rank arrays that are NaN where a rank did not compute (first finite value wins)."""
        gathered: list = [None] * self.world
        dist.all_gather_object(gathered, [np.asarray(a) for a in arrays])
        out = []
        for k in range(len(arrays)):
            merged = gathered[0][k].copy()
            for part in gathered[1:]:
                merged = np.where(np.isnan(merged), part[k], merged)
            out.append(merged)
        return out

    def barrier(self) -> None:
        dist.barrier()


def setup() -> Dist | None:
    """Join the torchrun job described by the environment (None when not launched by torchrun)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), local)


def teardown(d: Dist | None) -> None:
    if d is not None and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
