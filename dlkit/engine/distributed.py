"""Data-parallel training on torch.distributed: one process per device, launched by torchrun.

`torchrun --nproc_per_node=N -m dlkit train RECIPE ...` (or across nodes with --nnodes) sets
WORLD_SIZE/RANK/LOCAL_RANK; dlkit then joins the process group (NCCL on CUDA, Gloo on CPU), shards
the training batches with a DistributedSampler, and lets only rank 0 write the run directory.
A plain `dlkit train` is a world of one and none of this runs.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def enabled() -> bool:
    return world_size() > 1


def setup(timeout: float = 1800) -> None:
    """Join the process group; a collective that waits longer than `timeout` seconds fails the job."""
    if enabled() and not dist.is_initialized():
        from datetime import timedelta

        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank())
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout))


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def broadcast(value):
    """Rank 0's `value` (any picklable object made by dlkit itself) on every process."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def any_true(flag: bool) -> bool:
    """True on every process when it is True on any: ranks agree on stopping."""
    if not dist.is_initialized():
        return flag
    value = torch.tensor([1.0 if flag else 0.0])
    if dist.get_backend() == "nccl":
        value = value.cuda()
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over all processes (itself when not distributed)."""
    if not dist.is_initialized():
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / dist.get_world_size()


def total(value: torch.Tensor) -> torch.Tensor:
    """The sum of a tensor over all processes (itself when not distributed)."""
    if not dist.is_initialized():
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def teardown() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
