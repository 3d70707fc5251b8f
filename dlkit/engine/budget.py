"""Training budgets in optimizer steps: `train.epochs: auto` and `train.val_every: auto` made concrete.

A fixed epoch count gives a few hundred examples a few dozen steps (too few to learn) and a few
million examples hours per run. `auto` asks for at least `train.min_steps` optimizer steps and at
most `train.max_epochs` epochs (always at least one); long epochs are validated (and checkpointed)
every 1000 steps instead of only at their end, so patience, which counts validation checks, still
works. The resolved numbers are written to config.yaml, so a resumed or repeated run does the same.
"""

from __future__ import annotations

import math

from dlkit.errors import UserError

LONG_EPOCH = 1000  # steps: an epoch longer than this is validated every LONG_EPOCH steps


def steps_per_epoch(examples: int, batch_size: int, grad_accum: int = 1, world_size: int = 1) -> int:
    """Optimizer steps in one epoch of `examples` (each process sees its shard, in whole batches)."""
    per_process = math.ceil(examples / max(1, world_size))
    return max(1, math.ceil(math.ceil(per_process / max(1, batch_size)) / max(1, grad_accum)))


def resolve(train: dict, steps: int) -> dict:
    """`train` with `epochs` and `val_every` as numbers, for epochs of `steps` optimizer steps."""
    out = dict(train)
    if out["epochs"] == "auto":
        out["epochs"] = max(1, min(out["max_epochs"], math.ceil(out["min_steps"] / steps)))
    if out["val_every"] == "auto":
        out["val_every"] = min(steps, LONG_EPOCH)
    if out["val_every"] < 1:
        raise UserError(f"train.val_every={out['val_every']} must be at least 1 step", "or set it to auto")
    return out


def total_steps(train: dict, steps: int) -> int:
    """Optimizer steps the whole run plans for (what the lr schedule spans)."""
    planned = train["epochs"] * steps
    return max(1, min(planned, train["max_steps"]) if train["max_steps"] else planned)


def patience_floor(train: dict, steps: int) -> int:
    """Early stopping waits for this many steps: train.min_steps, or half the plan if that is sooner.
    Validation on a few hundred examples is noisy; stopping in the first epochs starves small data."""
    return min(train["min_steps"], total_steps(train, steps) // 2)
