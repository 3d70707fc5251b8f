"""Splits that every recipe shares: random and stratified, reproducible from the seed."""

from __future__ import annotations

import numpy as np

from dlkit.errors import UserError


def stratified_split(
    labels: list,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> tuple[list[int], list[int], list[int]]:
    """Indices for train/val/test keeping each class's share; every class keeps >= 1 training example."""
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise UserError(
            f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction} must be in [0, 1) "
            "and add up to less than 1"
        )
    rng = np.random.default_rng(seed)
    by_class: dict = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    train, val, test = [], [], []
    for label in sorted(by_class, key=str):
        idx = np.array(by_class[label])
        rng.shuffle(idx)
        n = len(idx)
        n_test = int(round(n * test_fraction)) if n >= 3 else 0
        n_val = int(round(n * val_fraction)) if n >= 3 else 0
        n_test = min(n_test, n - 1)
        n_val = min(n_val, n - 1 - n_test)
        test += idx[:n_test].tolist()
        val += idx[n_test : n_test + n_val].tolist()
        train += idx[n_test + n_val :].tolist()
    return sorted(train), sorted(val), sorted(test)


def random_split(
    n: int,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> tuple[list[int], list[int], list[int]]:
    return stratified_split([0] * n, val_fraction, test_fraction, seed)
