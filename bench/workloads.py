"""The small models the CPU benchmarks train: an MLP on blobs (from train_overhead.py) and a small CNN on
16x16 images, each with a hand-written loop and dlkit's `fit` over the same data, init and optimizer.

Both loops draw batches the same way (a DataLoader whose generator is seeded `seed * 1000 + epoch` each
epoch, as dlkit's engine does) and record every training loss, so `--check` benchmarks can assert that
dlkit computes exactly the raw loop's losses in fp32 (`lean` settings: no clipping, schedule or decay).
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from train_overhead import DictSet
from train_overhead import make_data as mlp_data
from train_overhead import make_model as mlp_model

BATCH, SEED = 128, 0


def cnn_data(seed: int = 0, n_train: int = 4096, n_val: int = 512):
    """Class-coloured noise images, 3x16x16, 10 classes: learnable, and the same for every loop."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(10, 3, 1, 1, generator=g)

    def draw(n):
        y = torch.randint(0, 10, (n,), generator=g)
        return torch.randn(n, 3, 16, 16, generator=g) + means[y], y

    return draw(n_train), draw(n_val)


def cnn_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


@dataclass
class Workload:
    name: str
    data: object  # (seed, n_train, n_val) -> ((x, y), (x, y))
    model: object  # () -> seeded nn.Module


def mlp_sized(seed: int = 0, n_train: int = 8192, n_val: int = 1024):
    (xt, yt), (xv, yv) = mlp_data(seed)
    return (xt[:n_train], yt[:n_train]), (xv[:n_val], yv[:n_val])


WORKLOADS = {"mlp": Workload("mlp", mlp_sized, mlp_model), "cnn": Workload("cnn", cnn_data, cnn_model)}


def loss_of(model: nn.Module, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    logits = model(batch["x"])
    return nn.functional.cross_entropy(logits, batch["y"]), logits


def train_loader(train) -> DataLoader:
    return DataLoader(DictSet(*train), batch_size=BATCH, shuffle=True, generator=torch.Generator())


def reseed(loader: DataLoader, epoch: int) -> None:
    loader.generator.manual_seed(SEED * 1000 + epoch)


def raw_loop(work: Workload, train, val, epochs: int, lean: bool = True, losses: list | None = None) -> float:
    """The loop a practitioner writes by hand; optimizer steps per second (training and validation)."""
    model = work.model()
    decay = 0.0 if lean else 0.01
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=decay)
    loader, val_loader = train_loader(train), DataLoader(DictSet(*val), batch_size=BATCH)
    total = epochs * len(loader)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    steps, start = 0, time.perf_counter()
    for epoch in range(epochs):
        reseed(loader, epoch)
        model.train()
        for batch in loader:
            loss, _ = loss_of(model, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if not lean:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if not lean:
                sched.step()
            if losses is not None:
                losses.append(loss.item())
            steps += 1
        model.eval()
        with torch.inference_mode():
            for batch in val_loader:
                model(batch["x"]).argmax(-1)
    return steps / (time.perf_counter() - start)


def dlkit_config(epochs: int, lean: bool = True, extra: tuple[str, ...] = ()) -> dict:
    from dlkit.config import parse_overrides, resolve
    from dlkit.defaults import SHARED

    knobs = ["train.grad_clip=null", "grad_monitor.enabled=false", "train.scheduler=none"] if lean else []
    knobs += ["train.weight_decay=0"] if lean else []
    overrides = [f"data.batch_size={BATCH}", f"train.epochs={epochs}", "train.patience=0", "device=cpu"]
    return resolve(SHARED, None, parse_overrides([*overrides, *knobs, *extra]))


def dlkit_loop(
    work: Workload, train, val, epochs: int, lean: bool = True, losses: list | None = None
) -> float:
    """dlkit's `fit` on the same model and data; optimizer steps per second (checks and checkpoints in)."""
    from torchmetrics.classification import MulticlassAccuracy

    from dlkit.engine.loop import fit

    def step(model, batch, stage="train"):
        loss, logits = loss_of(model, batch)
        if losses is not None and stage == "train":
            losses.append(loss.detach().clone())
        return {"loss": loss, "preds": logits, "target": batch["y"]}

    with tempfile.TemporaryDirectory() as tmp:
        result = fit(
            work.model(),
            step,
            DictSet(*train),
            DictSet(*val),
            {"accuracy": MulticlassAccuracy(10, average="micro")},
            dlkit_config(epochs, lean),
            Path(tmp),
            monitor="accuracy",
        )
    if losses is not None:
        losses[:] = [float(v) for v in losses]
    return result.steps / result.seconds
