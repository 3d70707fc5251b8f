"""What a quality set is: real public data from a package, prepared into a folder dlkit reads, with a
fixed split that dlkit, its baselines and the hand-written peer all share.

A set module (`sets/<recipe>.py`) lists `SETS`. Each set:
- `prepare(dest)` writes the data under `dest` (explicit train/val/test split: a `split` column,
  split folders or files) and returns the path to pass as `dlkit train RECIPE --data PATH`;
- `handwritten(data, seed)` trains the ~50-line torch model a practitioner would write for this data,
  on the same split, and returns its test score on `metric` (same definition as dlkit's eval.json);
- `metric` names the key in eval.json's `metrics` (and in each baseline's scores), `mode` says
  whether higher (`max`) or lower (`min`) is better.
dlkit runs with its default config: `overrides` stays empty unless the data needs a key the recipe
cannot infer (a column name, a horizon), never a tuning knob.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class QualitySet:
    name: str
    recipe: str
    source: str  # where the data comes from: package and file/function
    metric: str
    mode: str  # "max" or "min"
    prepare: Callable[[Path], Path]
    handwritten: Callable[[Path, int], float]
    overrides: list[str] = field(default_factory=list)
    module: str = ""  # filled in by run.py: the sets/ module the set comes from

    def better(self, a: float, b: float) -> bool:
        return a > b if self.mode == "max" else a < b


def assign_splits(n: int, seed: int = 0, val: float = 0.15, test: float = 0.2) -> list[str]:
    """A fixed pseudo-random train/val/test label per row (the same on every run and machine)."""
    import random

    order = list(range(n))
    random.Random(seed).shuffle(order)
    out = ["train"] * n
    for rank, i in enumerate(order):
        if rank < int(n * test):
            out[i] = "test"
        elif rank < int(n * (test + val)):
            out[i] = "val"
    return out
