"""dlkit's training loop against a hand-written PyTorch loop: same model, data, optimizer, one process.

Runs alternate (raw, dlkit, raw, dlkit, ...) so drift in machine load hits both alike, and the
median steps/s of each is compared. Both sides do the same work per epoch: shuffled batches of
training, then a pass over the validation set. By default both clip gradients and follow a cosine
schedule, as dlkit's shipped defaults do; dlkit also samples its gradient monitor and writes
checkpoints and metrics.jsonl every epoch. `--lean` drops clipping and the schedule on both sides
(and dlkit's gradient monitor): the bare loop against the bare engine.

    python bench/train_overhead.py [--rounds 3] [--epochs 3] [--lean]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassAccuracy

from dlkit import console
from dlkit.config import parse_overrides, resolve
from dlkit.defaults import SHARED
from dlkit.engine.loop import fit

N_TRAIN, N_VAL, FEATURES, CLASSES, BATCH = 32768, 4096, 64, 10, 128


class DictSet(TensorDataset):
    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return {"x": x, "y": y}


def make_data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(CLASSES, FEATURES, generator=g) * 1.5

    def draw(n):
        y = torch.randint(0, CLASSES, (n,), generator=g)
        return torch.randn(n, FEATURES, generator=g) + centers[y], y

    return draw(N_TRAIN), draw(N_VAL)


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(FEATURES, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, CLASSES)
    )


def raw_loop(train, val, epochs: int, lean: bool) -> float:
    """The loop a practitioner writes by hand. Returns optimizer steps per second."""
    import math

    model = make_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    loader = DataLoader(DictSet(*train), batch_size=BATCH, shuffle=True)
    val_loader = DataLoader(DictSet(*val), batch_size=BATCH)
    total = epochs * len(loader)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    steps = 0
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for batch in loader:
            loss = nn.functional.cross_entropy(model(batch["x"]), batch["y"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if not lean:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if not lean:
                sched.step()
            steps += 1
        model.eval()
        right = 0
        with torch.inference_mode():
            for batch in val_loader:
                right += int((model(batch["x"]).argmax(-1) == batch["y"]).sum())
    return steps / (time.perf_counter() - start)


def step(model, batch, stage="train"):
    logits = model(batch["x"])
    return {"loss": nn.functional.cross_entropy(logits, batch["y"]), "preds": logits, "target": batch["y"]}


def dlkit_loop(train, val, epochs: int, lean: bool) -> float:
    extra = ["train.grad_clip=null", "grad_monitor.enabled=false", "train.scheduler=none"] if lean else []
    cfg = resolve(
        SHARED,
        None,
        parse_overrides(
            [f"data.batch_size={BATCH}", f"train.epochs={epochs}", "train.patience=0", "device=cpu", *extra]
        ),
    )
    steps_per_epoch = -(-len(train[0]) // BATCH)
    with tempfile.TemporaryDirectory() as tmp:
        result = fit(
            make_model(),
            step,
            DictSet(*train),
            DictSet(*val),
            {"accuracy": MulticlassAccuracy(CLASSES, average="micro")},
            cfg,
            Path(tmp),
            monitor="accuracy",
        )
    return steps_per_epoch * result.epochs_run / result.seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lean", action="store_true", help="turn off clipping, grad monitor and schedule")
    args = parser.parse_args(argv)
    console.set_quiet(True)
    torch.set_num_threads(torch.get_num_threads())
    train, val = make_data()
    raw_loop(train, val, 1, args.lean)  # warm-up: allocator, thread pool, kernels
    raw, ours = [], []
    for r in range(args.rounds):
        raw.append(raw_loop(train, val, args.epochs, args.lean))
        ours.append(dlkit_loop(train, val, args.epochs, args.lean))
        print(f"round {r + 1}: raw {raw[-1]:.1f} steps/s, dlkit {ours[-1]:.1f} steps/s", file=sys.stderr)
    r_med, d_med = statistics.median(raw), statistics.median(ours)
    mode = "lean" if args.lean else "defaults: clip + cosine on both; dlkit also grad monitor, checkpoints"
    print(f"raw loop   {r_med:8.1f} steps/s (median of {args.rounds}; {mode})")
    print(f"dlkit fit  {d_med:8.1f} steps/s")
    print(f"ratio      {d_med / r_med:8.3f}x  (target >= 0.95x)")


if __name__ == "__main__":
    main()
