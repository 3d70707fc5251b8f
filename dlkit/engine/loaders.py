"""Data loaders: shuffled (or weighted) training batches, in-order evaluation batches, sharded under DDP."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset, WeightedRandomSampler

from dlkit.engine import distributed
from dlkit.engine.threads import auto_workers, resolve_threads
from dlkit.errors import UserError


def make_loader(
    dataset: Dataset,
    cfg: dict,
    shuffle: bool,
    collate=None,
    weights: list[float] | None = None,
    shard: bool = False,
    batch_sampler=None,
) -> DataLoader:
    """Shuffling (or weighted sampling) draws from the loader's generator, reseeded each epoch by `fit`.

    In a distributed run each process gets its own shard of training batches through a
    DistributedSampler; `shard=True` shards an evaluation loader the same way (in order; the sampler
    repeats a few examples so every process gets as many), and the metrics gather across processes.

    `batch_sampler(batch_size, generator)`, when given for a training loader, makes the batches
    (lists of indices, e.g. P identities x K images for metric learning) from that same generator.
    """
    generator = torch.Generator().manual_seed(cfg["seed"]) if shuffle else None
    if shuffle and isinstance(dataset, IterableDataset):
        return _stream_loader(dataset, cfg, collate, generator, weights, batch_sampler)
    if shuffle and batch_sampler is not None:
        if distributed.enabled():
            raise UserError(
                "this recipe's own batch sampler is not supported in distributed training yet",
                "train in one process",
            )
        return DataLoader(
            dataset,
            batch_sampler=batch_sampler(cfg["data"]["batch_size"], generator),
            collate_fn=collate,
            generator=generator,
            **_worker_options(dataset, cfg),
        )
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
        collate_fn=collate,
        generator=generator,
        **_worker_options(dataset, cfg),
    )


def _stream_loader(dataset, cfg: dict, collate, generator, weights, batch_sampler) -> DataLoader:
    """Training rows streamed from data larger than memory (an IterableDataset with `__len__` and
    `shuffle_with(generator)`): the dataset shuffles itself, within a buffer, from the loader's generator,
    which `fit` reseeds each epoch. It reads in the main process (each worker would read every row) and
    in one process: no sampler can draw from it."""
    if weights is not None or batch_sampler is not None or distributed.enabled():
        raise UserError(
            "streamed training data (larger than memory) is read in order by one process: weighted "
            "sampling, a recipe's batch sampler and distributed training need it in memory",
            "train in one process without weighted sampling, or raise the recipe's streaming limit",
        )
    dataset.shuffle_with(generator)
    return DataLoader(
        dataset,
        batch_size=cfg["data"]["batch_size"],
        collate_fn=collate,
        generator=generator,
        num_workers=0,
        pin_memory=torch.cuda.is_available(),
    )


def _worker_options(dataset: Dataset, cfg: dict) -> dict:
    """Worker processes (`data.num_workers`, auto: see threads.auto_workers), kept alive across epochs
    so they start once; pinned host memory on CUDA so batch copies can overlap with compute."""
    workers = cfg["data"]["num_workers"]
    if workers == "auto":
        workers = auto_workers(
            dataset, cfg["data"]["batch_size"], resolve_threads(cfg.get("threads", "auto"))
        )
    return {
        "num_workers": workers,
        "persistent_workers": workers > 0,
        "pin_memory": torch.cuda.is_available(),
    }
