"""dlkit's training loop against a hand-written one on a GPU: ResNet-50 at 224 px (bf16 autocast,
channels_last, fused AdamW) in images/s and BERT-base sequence classification at length 128 (bf16) in
sequences/s, each with and without torch.compile. Both loops read the same synthetic in-memory batches
through a pinned-memory DataLoader; the rate is timed over the steps after a warm-up (compile included
in the warm-up), with one device sync at each end, so dlkit's checkpoint at the end is not in it.

    python bench/gpu_check.py [--steps 60] [--dry-run]

`--dry-run` runs tiny versions of both models for a few steps on whatever device there is (a CPU too),
so the script can be checked where no GPU is. Reference (one H100): raw ResNet-50 ~4,000 img/s (~5,600
compiled), BERT-base batch 128 ~2,700 seq/s; target: dlkit within 5% of the raw loop.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class Synthetic(Dataset):
    """`length` examples cycling over a few stored ones; a batch is gathered in one indexing op
    (`__getitems__` + `batched`), so the loader never limits the step rate being compared."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, length: int):
        self.x, self.y, self.length = x, y, length

    def __len__(self) -> int:
        return self.length

    def __getitems__(self, indices: list[int]) -> dict:
        at = torch.tensor(indices) % len(self.y)
        return {"x": self.x[at], "y": self.y[at]}


def batched(batch: dict) -> dict:
    return batch


def as_input(x: torch.Tensor) -> torch.Tensor:
    """Images are stored as uint8 (a quarter of the bytes to copy); both loops scale them on the device."""
    return x.float().div_(255) if x.dtype == torch.uint8 else x


def resnet(tiny: bool, length: int):
    from torchvision.models import resnet18, resnet50

    n, side = (16, 32) if tiny else (512, 224)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, side, side), generator=g, dtype=torch.uint8)
    data = Synthetic(x, torch.randint(0, 1000, (n,), generator=g), length)
    return (resnet18 if tiny else resnet50)(num_classes=1000), data, (4 if tiny else 128), True


def bert(tiny: bool, length: int):
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    config = config if tiny else BertConfig()  # BertConfig() is bert-base
    n, seq = (16, 16) if tiny else (2048, 128)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, config.vocab_size, (n, seq), generator=g)
    data = Synthetic(ids, torch.randint(0, 2, (n,), generator=g), length)
    return _Logits(BertForSequenceClassification(config)), data, (4 if tiny else 128), False


class _Logits(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids):
        return self.model(input_ids=ids).logits


class Timer:
    """Starts after `warmup` steps, stops at the last; one device sync at each end only."""

    def __init__(self, warmup: int, steps: int, device: torch.device):
        self.warmup, self.steps, self.device, self.count = warmup, steps, device, 0
        self.start = self.stop = 0.0

    def tick(self) -> None:
        self.count += 1
        if self.count in (self.warmup, self.steps):
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            if self.count == self.warmup:
                self.start = time.perf_counter()
            else:
                self.stop = time.perf_counter()

    def rate(self, batch: int) -> float:
        return (self.steps - self.warmup) * batch / (self.stop - self.start)


def raw_loop(model, data, batch, conv, device, dtype, compiled, steps, warmup) -> float:
    model = model.to(device)
    if conv:
        model = model.to(memory_format=torch.channels_last)
    net = torch.compile(model) if compiled else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda" or None)
    pin = device.type == "cuda"
    loader = DataLoader(data, batch_size=batch, shuffle=True, pin_memory=pin, collate_fn=batched)
    timer = Timer(warmup, steps, device)
    while timer.count < steps:
        for b in loader:
            x = as_input(b["x"].to(device, non_blocking=True))
            y = b["y"].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = nn.functional.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            timer.tick()
            if timer.count >= steps:
                break
    return timer.rate(batch)


def dlkit_loop(model, data, batch, conv, device, dtype, compiled, steps, warmup) -> float:
    from torchmetrics.classification import MulticlassAccuracy

    from dlkit import console
    from dlkit.config import parse_overrides, resolve
    from dlkit.defaults import SHARED
    from dlkit.engine.loop import fit

    console.set_quiet(True)
    timer = Timer(warmup, steps, device)

    def step(net, b, stage="train"):
        logits = net(as_input(b["x"]))
        if stage == "train":
            timer.tick()
        return {"loss": nn.functional.cross_entropy(logits, b["y"]), "preds": logits, "target": b["y"]}

    amp = "auto" if dtype is None else "bf16"  # auto is off on a CPU
    overrides = [
        f"device={device}",
        f"data.batch_size={batch}",
        f"train.max_steps={steps}",
        "train.epochs=1000",
        f"train.val_every={steps}",
        "train.lr=1e-4",
        "train.grad_clip=null",
        "train.scheduler=none",
        "grad_monitor.enabled=false",
        f"train.amp={amp}",
        f"train.channels_last={str(conv).lower()}",
        f"train.compile={str(compiled).lower()}",
        "train.log_every=50",
    ]
    cfg = resolve(SHARED, None, parse_overrides(overrides))
    val = Synthetic(data.x, data.y, batch)
    classes = 1000 if conv else 2
    with tempfile.TemporaryDirectory() as tmp:
        metrics = {"accuracy": MulticlassAccuracy(classes)}
        fit(model, step, data, val, metrics, cfg, Path(tmp), "accuracy", collate=batched)
    return timer.rate(batch)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--dry-run", action="store_true", help="tiny models, a few steps, any device")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.dry_run:
        args.steps, args.warmup = 6, 2
    elif device.type != "cuda":
        raise SystemExit("no CUDA device: run with --dry-run to check the script on a CPU")
    dtype = torch.bfloat16 if device.type == "cuda" else None
    rows = []
    for name, unit, make in (("resnet50 224px", "img/s", resnet), ("bert-base len128", "seq/s", bert)):
        for compiled in (False, True):
            rates = {}
            for loop in (raw_loop, dlkit_loop):  # the same seeded model for both
                torch.manual_seed(0)
                model, data, batch, conv = make(args.dry_run, args.steps * (4 if args.dry_run else 128))
                rates[loop.__name__] = loop(
                    model, data, batch, conv, device, dtype, compiled, args.steps, args.warmup
                )
                del model
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            rows.append((name, "yes" if compiled else "no", rates["raw_loop"], rates["dlkit_loop"], unit))
    print(f"device: {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu (dry run)'}")
    print(f"{'model':18}{'compile':>8}{'raw':>11}{'dlkit':>11}{'ratio':>8}")
    for name, compiled, raw, ours, unit in rows:
        print(f"{name:18}{compiled:>8}{raw:>11.1f}{ours:>11.1f}{ours / raw:>8.3f}  {unit}")


if __name__ == "__main__":
    main()
