"""The training loop, evaluation and prediction: plain functions with explicit arguments.

The loop reads the loss back to the host only every `train.log_every` steps and at epoch end, so
the device is never stalled by logging. Every epoch ends with a validation pass, a line in
metrics.jsonl and an atomic `last` checkpoint (plus `best` when the monitored metric improved).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, WeightedRandomSampler

from dlkit import console
from dlkit.atomic import atomic_write_text
from dlkit.engine import checkpoint, distributed, rng
from dlkit.engine.device import amp_dtype, autocast, move, pick_device
from dlkit.engine.grad_monitor import GradientMonitor
from dlkit.engine.optim import build_optimizer, build_scheduler
from dlkit.engine.progress import TrainProgress
from dlkit.errors import JobError, UserError

Step = Callable[[torch.nn.Module, dict], dict]


@dataclass
class FitResult:
    best_epoch: int
    best_value: float | None
    epochs_run: int
    stopped_early: bool
    seconds: float


def make_loader(
    dataset: Dataset, cfg: dict, shuffle: bool, collate=None, weights: list[float] | None = None
) -> DataLoader:
    """Shuffling (or weighted sampling) draws from the loader's generator, reseeded each epoch by `fit`.

    In a distributed run each process gets its own shard through a DistributedSampler instead.
    """
    generator = torch.Generator().manual_seed(cfg["seed"]) if shuffle else None
    sampler = None
    if shuffle and distributed.enabled():
        if weights is not None:
            raise UserError(
                "weighted sampling is not supported in distributed training yet",
                "use a class-weighted loss instead, or train in one process",
            )
        sampler = DistributedSampler(dataset, shuffle=True, seed=cfg["seed"])
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


def _l1_penalty(params: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([p.abs().sum() for p in params]).sum()


class EarlyStopping:
    def __init__(self, patience: int, mode: str):
        self.patience, self.mode = patience, mode
        self.best: float | None = None
        self.best_epoch = -1
        self.bad_epochs = 0

    def update(self, value: float, epoch: int) -> bool:
        """Record an epoch's value; True when it is the best so far."""
        better = self.best is None or (value > self.best if self.mode == "max" else value < self.best)
        if better and math.isfinite(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience

    def state(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load(self, state: dict) -> None:
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]


def _scalar_metrics(values: dict) -> dict[str, float]:
    return {k: v for k, v in values.items() if isinstance(v, float)}


def _truncate_log(log_path: Path, last_epoch: int) -> None:
    """On resume keep only complete lines for epochs (1-based) the checkpoint covers."""
    if not log_path.exists():
        return
    kept = []
    for line in log_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("epoch", 0) <= last_epoch:
            kept.append(line)
    atomic_write_text(log_path, "".join(f"{line}\n" for line in kept))


def _save_epoch(run_dir: Path, record: dict, model, optimizer, meta: dict, improved: bool) -> None:
    """Log the epoch, then write `last` (and `best`) atomically; a resume trims log lines past `last`."""
    with open(run_dir / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps(record) + "\n")
    rng_meta, rng_tensors = rng.capture()
    ckpt_dir = run_dir / "checkpoints"
    checkpoint.save(ckpt_dir / "last.safetensors", model, {**meta, "rng": rng_meta}, optimizer, rng_tensors)
    if improved:
        tmp = ckpt_dir / ".best.safetensors.tmp"
        shutil.copyfile(ckpt_dir / "last.safetensors", tmp)
        tmp.replace(ckpt_dir / "best.safetensors")


def fit(
    model: torch.nn.Module,
    step: Step,
    train_set: Dataset,
    val_set: Dataset,
    metrics: dict,
    cfg: dict,
    run_dir: Path,
    monitor: str,
    mode: str = "max",
    collate=None,
    train_weights: list[float] | None = None,
    resume: bool = False,
    on_epoch_end: Callable[[int, dict], None] | None = None,
) -> FitResult:
    train, gm = cfg["train"], cfg["grad_monitor"]
    device = pick_device(cfg["device"])
    dtype = amp_dtype(train["amp"], device)
    channels_last = train["channels_last"]
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    net = model
    if distributed.enabled():
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    main = distributed.is_main()
    loader = make_loader(train_set, cfg, shuffle=True, collate=collate, weights=train_weights)
    val_loader = make_loader(val_set, cfg, shuffle=False, collate=collate)
    accum = max(1, train["grad_accum"])
    steps_per_epoch = math.ceil(len(loader) / accum)
    optimizer = build_optimizer(model, train)
    scheduler = build_scheduler(optimizer, train, steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type) if dtype is torch.float16 else None
    params = [p for p in model.parameters() if p.requires_grad]
    l1_params = [p for p in params if p.dim() > 1]
    grad_monitor = GradientMonitor(model, gm["vanish"], gm["explode"]) if gm["enabled"] else None
    stopper = EarlyStopping(train["patience"], mode)
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "metrics.jsonl"
    start_epoch, global_step = 0, 0

    if resume:
        for stale in ckpt_dir.glob(".*.tmp*") if main else ():  # left by a kill in the middle of a write
            stale.unlink()
        meta, rest = checkpoint.load_full(ckpt_dir / "last.safetensors", model, optimizer)
        scheduler.load_state_dict(meta["scheduler"])
        stopper.load(meta["early_stopping"])
        if scaler is not None and meta.get("scaler"):
            scaler.load_state_dict(meta["scaler"])
        rng.restore(meta["rng"], rest)
        start_epoch, global_step = meta["epoch"] + 1, meta["step"]
        if main:
            _truncate_log(log_path, meta["epoch"] + 1)
        distributed.barrier()
        console.info(f"resuming after epoch {start_epoch} (step {global_step})")

    started = time.perf_counter()
    epochs_done = start_epoch
    end_epoch = start_epoch if stopper.should_stop else train["epochs"]
    with TrainProgress(train["epochs"], len(loader), monitor, enabled=main) as progress:
        for epoch in range(start_epoch, end_epoch):
            epoch_start = time.perf_counter()
            if isinstance(loader.sampler, DistributedSampler):
                loader.sampler.set_epoch(epoch)
            else:
                loader.generator.manual_seed(cfg["seed"] * 1000 + epoch)
            model.train()
            progress.start_epoch(epoch)
            loss_sum = torch.zeros((), device=device)
            logged_sum, logged_at = 0.0, 0
            batches = len(loader)
            seen = 0
            for batch in loader:
                batch = move(batch, device, channels_last)
                with autocast(device, dtype):
                    loss = step(net, batch)["loss"]
                if train["l1"] > 0:
                    loss = loss + train["l1"] * _l1_penalty(l1_params)
                scaled = loss / accum if accum > 1 else loss
                (scaler.scale(scaled) if scaler is not None else scaled).backward()
                loss_sum += loss.detach()
                seen += 1
                if seen % accum == 0 or seen == batches:
                    if scaler is not None:
                        scaler.unscale_(optimizer)
                    if grad_monitor is not None and (
                        global_step % gm["every"] == 0 or not grad_monitor.samples
                    ):
                        grad_monitor.sample()
                    if train["grad_clip"]:
                        torch.nn.utils.clip_grad_norm_(params, train["grad_clip"], foreach=True)
                    if scaler is not None:
                        scaler.step(optimizer)
                        scaler.update()
                    else:
                        optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    scheduler.step()
                    global_step += 1
                if seen % train["log_every"] == 0:
                    total = loss_sum.item()  # the only host sync, every log_every steps
                    value = (total - logged_sum) / (seen - logged_at)
                    logged_sum, logged_at = total, seen
                    if not math.isfinite(value):
                        raise JobError(
                            f"the training loss became {value} at epoch {epoch + 1}, step {global_step}",
                            "lower train.lr, keep train.grad_clip on, or set train.amp=off",
                        )
                    progress.update(seen, value)
            train_loss = distributed.mean(loss_sum / max(1, seen)).item()
            if not math.isfinite(train_loss):
                raise JobError(
                    f"the training loss became {train_loss} in epoch {epoch + 1}",
                    "lower train.lr, keep train.grad_clip on, or set train.amp=off",
                )
            values = evaluate(model, step, val_loader, metrics, device, dtype, channels_last)
            record = {
                "epoch": epoch + 1,
                "step": global_step,
                "train_loss": train_loss,
                **{f"val_{k}": v for k, v in _scalar_metrics(values).items()},
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": round(time.perf_counter() - epoch_start, 3),
            }
            if monitor not in values:
                raise JobError(f"the recipe's monitored metric '{monitor}' is not among {sorted(values)}")
            improved = stopper.update(values[monitor], epoch)
            if grad_monitor is not None:
                figures, warnings = grad_monitor.summary()
                record["grad"] = figures
                if warnings:
                    record["grad_warnings"] = warnings
                for w in warnings if main else ():
                    console.warn(f"epoch {epoch + 1}: {w}")
            if main:  # one writer: rank 0 of a distributed run, or the only process
                meta = {
                    "epoch": epoch,
                    "step": global_step,
                    "scheduler": scheduler.state_dict(),
                    "early_stopping": stopper.state(),
                    "monitor": monitor,
                    "value": values[monitor],
                    "scaler": scaler.state_dict() if scaler is not None else None,
                }
                _save_epoch(run_dir, record, model, optimizer, meta, improved)
            distributed.barrier()
            metric_text = f"val {monitor} {values[monitor]:.4f}" + (" *" if improved else "")
            progress.end_epoch(
                f"epoch {epoch + 1}/{train['epochs']}  loss {train_loss:.4f}  {metric_text}  "
                f"{record['seconds']:.1f}s",
                metric_text,
            )
            epochs_done = epoch + 1
            if on_epoch_end is not None:
                on_epoch_end(epoch, record)
            if stopper.should_stop:
                if main:
                    console.info(f"early stop: no better val {monitor} for {stopper.patience} epochs")
                break
    return FitResult(
        best_epoch=stopper.best_epoch + 1,
        best_value=stopper.best,
        epochs_run=epochs_done,
        stopped_early=stopper.should_stop and epochs_done < train["epochs"],
        seconds=time.perf_counter() - started,
    )


def _to_python(value) -> float | list:
    if not isinstance(value, torch.Tensor):
        return float(value)
    value = value.detach().cpu()
    return float(value) if value.numel() == 1 and value.dim() == 0 else value.tolist()


@torch.inference_mode()
def evaluate(
    model: torch.nn.Module,
    step: Step,
    loader: DataLoader,
    metrics: dict,
    device: torch.device,
    dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> dict:
    """Mean loss and every metric over a loader; scalars as floats, matrices as nested lists."""
    model.eval()
    for m in metrics.values():
        m.reset()
        m.to(device)
        if hasattr(m, "sync_on_compute"):  # every process evaluates the whole set: nothing to gather
            m.sync_on_compute = m._to_sync = False
    total = torch.zeros((), device=device, dtype=torch.float64)
    count = 0
    for batch in loader:
        batch = move(batch, device, channels_last)
        with autocast(device, dtype):
            out = step(model, batch)
        n = len(out["target"]) if hasattr(out["target"], "__len__") else 1
        total += out["loss"].double() * n
        count += n
        for m in metrics.values():
            m.update(out["preds"], out["target"])
    values = {"loss": (total / max(1, count)).item()}
    for name, m in metrics.items():
        values[name] = _to_python(m.compute())
    return values


@torch.inference_mode()
def predict(model: torch.nn.Module, predict_step: Step, loader: DataLoader, device: torch.device):
    """Run `predict_step` over a loader; returns (ids, outputs joined along the batch).

    Tensor outputs are concatenated on the CPU; list outputs (strings, per-image box sets) are extended.
    """
    model.eval()
    ids: list = []
    outputs: dict[str, list] = {}
    for batch in loader:
        ids.extend(batch.pop("id"))
        out = predict_step(model, move(batch, device))
        for k, v in out.items():
            if isinstance(v, torch.Tensor):
                outputs.setdefault(k, []).append(v.float().cpu())
            else:
                outputs.setdefault(k, []).extend(v)
    return ids, {k: torch.cat(v) if v and isinstance(v[0], torch.Tensor) else v for k, v in outputs.items()}
