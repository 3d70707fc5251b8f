"""Data loaders: shuffled (or weighted) training batches, in-order evaluation batches, sharded under DDP."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, WeightedRandomSampler

from dlkit.engine import distributed
from dlkit.errors import UserError


def make_loader(
    dataset: Dataset,
    cfg: dict,
    shuffle: bool,
    collate=None,
    weights: list[float] | None = None,
    shard: bool = False,
) -> DataLoader:
    """Shuffling (or weighted sampling) draws from the loader's generator, reseeded each epoch by `fit`.

    In a distributed run each process gets its own shard of training batches through a
    DistributedSampler; `shard=True` shards an evaluation loader the same way (in order; the sampler
    repeats a few examples so every process gets as many), and the metrics gather across processes.
    """
    generator = torch.Generator().manual_seed(cfg["seed"]) if shuffle else None
    sampler = None
    if distributed.enabled() and (shuffle or shard):
        if weights is not None and shuffle:
            raise UserError(
                "weighted sampling is not supported in distributed training yet",
                "use a class-weighted loss instead, or train in one process",
            )
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=cfg["seed"])
    elif shuffle and weights is not None:
        sampler = WeightedRandomSampler(
            weights, num_samples=len(weights), replacement=True, generator=generator
        )
    return DataLoader(
        dataset,
        batch_size=cfg["data"]["batch_size"],
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=cfg["data"]["num_workers"],
        collate_fn=collate,
        generator=generator,
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
    )
