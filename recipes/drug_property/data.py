"""Splitting molecules and turning them into batches.

The default split is by Bemis-Murcko scaffold, the honest split of this field: whole scaffold groups go
to one split, largest groups to train, so test molecules have ring systems unseen in training (the
deterministic DeepChem/chemprop rule; no seed involved). `data.split=random` draws molecules at random
(seeded); `data.split=column` keeps the split the data names (a split column or train/val/test files)
and carves a missing val or test out of train by scaffold groups.

A batch is a graph of many molecules: their atoms stacked, edges offset, and `graph` telling each atom's
molecule, so message passing and readout are index_add over flat tensors (no graph library needed).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from dlkit.data.splits import SPLITS, assign_splits, indices


def scaffold_split(scaffolds: list[str], val_fraction: float, test_fraction: float) -> list[str]:
    """A split per molecule: scaffold groups by size (largest first, ties by first appearance) fill
    train up to its share, then val, then test; no scaffold is in two splits."""
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(scaffolds):
        groups.setdefault(s, []).append(i)
    ordered = sorted(groups.values(), key=lambda g: (-len(g), g[0]))
    n = len(scaffolds)
    train_cut, val_cut = (1 - val_fraction - test_fraction) * n, (1 - test_fraction) * n
    out = ["train"] * n
    counts = {"train": 0, "val": 0}
    for group in ordered:
        if counts["train"] + len(group) <= train_cut:
            split = "train"
        elif counts["train"] + counts["val"] + len(group) <= val_cut:
            split = "val"
        else:
            split = "test"
        counts[split] = counts.get(split, 0) + len(group)
        for i in group:
            out[i] = split
    return out


def assign(method: str, given: list[str | None], scaffolds: list[str], cfg: dict) -> dict[str, list[int]]:
    """split -> molecule positions, by `data.split` (scaffold, random or column)."""
    d = cfg["data"]
    if method == "scaffold":
        assigned = scaffold_split(scaffolds, d["val_fraction"], d["test_fraction"])
    elif method == "random":
        assigned = assign_splits([None] * len(given), d["val_fraction"], d["test_fraction"], cfg["seed"])
    else:
        assigned = assign_splits(given, d["val_fraction"], d["test_fraction"], cfg["seed"], groups=scaffolds)
    return indices(assigned)


class MolSet(Dataset):
    """Featurised molecules: graphs, fingerprints, targets ([tasks], NaN = missing) and an id each."""

    def __init__(self, graphs: list[dict], fingerprints: np.ndarray, targets: np.ndarray, ids: list):
        self.graphs, self.ids = graphs, ids
        self.fingerprints = torch.from_numpy(fingerprints)
        self.targets = torch.from_numpy(targets)

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, i: int) -> dict:
        return {
            **self.graphs[i],
            "fingerprint": self.fingerprints[i],
            "target": self.targets[i],
            "id": self.ids[i],
        }


def collate_graphs(items: list[dict]) -> dict:
    """Molecules -> one disconnected graph: atoms [N, F], edges [2, E] (offset per molecule), bonds
    [E, B], graph [N] (each atom's molecule); fingerprints [B, bits] and targets [B, tasks] stacked."""
    sizes = [len(it["atoms"]) for it in items]
    offsets = np.cumsum([0, *sizes[:-1]])
    edges = [torch.as_tensor(it["edges"]) + int(o) for it, o in zip(items, offsets, strict=True)]
    return {
        "atoms": torch.from_numpy(np.concatenate([it["atoms"] for it in items])),
        "edges": torch.cat(edges, dim=1),
        "bonds": torch.from_numpy(np.concatenate([it["bonds"] for it in items])),
        "graph": torch.repeat_interleave(torch.arange(len(items)), torch.as_tensor(sizes)),
        "fingerprint": torch.stack([it["fingerprint"] for it in items]).float(),
        "target": torch.stack([it["target"] for it in items]),
        "id": [it["id"] for it in items],
    }


def split_sizes(sets: dict[str, MolSet]) -> str:
    return " / ".join(f"{len(sets[s]) if s in sets else 0} {s}" for s in SPLITS)
