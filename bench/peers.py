"""dlkit against a hand-written loop, Lightning and the Hugging Face Trainer: same model, data, init,
optimizer (AdamW 1e-3, no decay, no clipping, constant lr), batch order and seed; fp32 on the CPU.

Every cell is a fresh process (so peak RSS is that framework's own), run in alternating rounds so drifting
machine load hits all alike; medians of steps/s, the ratio to the raw loop, peak RSS, and the largest
difference between each framework's per-step training losses and the raw loop's (0 = the same numbers).
Each framework also runs its per-epoch validation pass. Lightning and accelerate live in bench/peers/.venv,
made on the first run from bench/peers/requirements.txt (never project dependencies).

    python bench/peers.py [--quick] [--models mlp cnn] [--rounds 3] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FRAMEWORKS = ("raw", "dlkit", "lightning", "hf_trainer")


class Reseeding:
    """The raw loop's batch order for a framework that builds its own epochs: each pass over the loader
    reseeds its generator `seed * 1000 + epoch`, as dlkit's engine does."""

    def __init__(self, loader):
        self.loader, self.epoch = loader, 0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        import workloads

        workloads.reseed(self.loader, self.epoch)
        self.epoch += 1
        return iter(self.loader)


def lightning_loop(work, train, val, epochs: int, losses: list) -> float:
    import lightning as L
    import torch
    import workloads
    from torch.utils.data import DataLoader
    from train_overhead import DictSet

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = work.model()

        def training_step(self, batch, index):
            loss, _ = workloads.loss_of(self.net, batch)
            losses.append(loss.detach().clone())
            return loss

        def validation_step(self, batch, index):
            self.net(batch["x"]).argmax(-1)

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=1e-3, weight_decay=0.0)

    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=True,
    )
    loader = Reseeding(workloads.train_loader(train))
    val_loader = DataLoader(DictSet(*val), batch_size=workloads.BATCH)
    start = time.perf_counter()
    trainer.fit(Module(), loader, val_loader)
    return trainer.global_step / (time.perf_counter() - start)


def hf_trainer_loop(work, train, val, epochs: int, losses: list) -> float:
    import torch
    import workloads
    from torch import nn
    from train_overhead import DictSet
    from transformers import Trainer, TrainingArguments

    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = work.model()

        def forward(self, x, y):
            loss, logits = workloads.loss_of(self.net, {"x": x, "y": y})
            if self.training:
                losses.append(loss.detach().clone())
            return {"loss": loss, "logits": logits}

    loader = Reseeding(workloads.train_loader(train))

    class Raw(Trainer):
        def get_train_dataloader(self):
            return loader

    model = Wrapped()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            num_train_epochs=epochs,
            per_device_train_batch_size=workloads.BATCH,
            per_device_eval_batch_size=workloads.BATCH,
            max_grad_norm=0.0,
            eval_strategy="epoch",
            save_strategy="no",
            logging_strategy="no",
            report_to=[],
            use_cpu=True,
            seed=0,
            disable_tqdm=True,
            remove_unused_columns=False,
            prediction_loss_only=True,
        )
        trainer = Raw(
            model=model,
            args=args,
            train_dataset=DictSet(*train),
            eval_dataset=DictSet(*val),
            optimizers=(opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)),
        )
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    return trainer.state.global_step / seconds


def worker(framework: str, model: str, epochs: int) -> None:
    """One cell in this fresh process: prints steps/s, peak RSS and the per-step losses as JSON."""
    sys.path.insert(0, str(HERE))
    import torch
    import workloads

    from dlkit import console

    console.set_quiet(True)
    torch.use_deterministic_algorithms(True)
    work = workloads.WORKLOADS[model]
    train, val = work.data(0)
    loops = {
        "raw": workloads.raw_loop,
        "dlkit": workloads.dlkit_loop,
        "lightning": lightning_loop,
        "hf_trainer": hf_trainer_loop,
    }
    losses: list = []
    rate = loops[framework](work, train, val, epochs, losses=losses)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"steps_per_s": rate, "rss_mb": rss_mb, "losses": [float(v) for v in losses]}))


def measure(framework: str, model: str, epochs: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", framework, "--models", model, "--epochs", str(epochs)]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if out.returncode:
        raise SystemExit(f"{framework} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"], choices=["mlp", "cnn"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="1 round of 1 epoch")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.models[0], args.epochs)
        return
    sys.path.insert(0, str(HERE))
    from venvs import ensure_venv

    ensure_venv(HERE / "peers" / ".venv", HERE / "peers" / "requirements.txt")
    if args.quick:
        args.rounds, args.epochs = 1, 1
    for model in args.models:
        cells: dict[str, list[dict]] = {f: [] for f in FRAMEWORKS}
        for r in range(args.rounds):
            order = FRAMEWORKS[r % len(FRAMEWORKS) :] + FRAMEWORKS[: r % len(FRAMEWORKS)]
            for framework in order:
                cells[framework].append(measure(framework, model, args.epochs))
                print(
                    f"{model} round {r + 1}: {framework} {cells[framework][-1]['steps_per_s']:.1f}",
                    file=sys.stderr,
                )
        raw = statistics.median(c["steps_per_s"] for c in cells["raw"])
        reference = cells["raw"][0]["losses"]
        print(f"\n{model}: {args.epochs} epoch(s), median of {args.rounds}, fp32 CPU, {os.cpu_count()} cores")
        print(f"{'':12}{'steps/s':>9}{'x raw':>8}{'peak RSS':>10}{'max |loss - raw|':>18}")
        for framework in FRAMEWORKS:
            rate = statistics.median(c["steps_per_s"] for c in cells[framework])
            rss = max(c["rss_mb"] for c in cells[framework])
            losses = cells[framework][0]["losses"]
            diff = (
                max(abs(a - b) for a, b in zip(losses, reference, strict=True))
                if len(losses) == len(reference)
                else float("nan")
            )
            print(f"{framework:12}{rate:9.1f}{rate / raw:8.2f}{rss:8.0f}MB{diff:18.2e}")


if __name__ == "__main__":
    main()
