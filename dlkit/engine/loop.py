"""The training loop: `fit` over a small `TrainState`, one `train_one_epoch`, and the checks (saving.py writes
and restores the checkpoints).

The loop reads the loss back to the host only every `train.log_every` steps and at each validation
check, so the device is never stalled by logging. A check comes every `train.val_every` optimizer
steps and at the end of every epoch (budget.py resolves `auto`); each writes a line in metrics.jsonl
and an atomic `last` checkpoint (plus `best` when the monitored metric improved). A checkpoint taken
within an epoch records how many batches were done, and a resume skips them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from dlkit import console
from dlkit.engine import budget, checkpoint, distributed
from dlkit.engine.device import amp_dtype, autocast, channels_last, has_conv, move, pick_device
from dlkit.engine.grad_monitor import GradientMonitor
from dlkit.engine.inference import evaluate
from dlkit.engine.loaders import make_loader
from dlkit.engine.optim import build_optimizer, build_scheduler
from dlkit.engine.progress import TrainProgress
from dlkit.engine.saving import flushed, load_checkpoint, save_checkpoint
from dlkit.errors import JobError

Step = Callable[[torch.nn.Module, dict, str], dict]
LOSS_HINT = "lower train.lr, keep train.grad_clip on, or set train.amp=off"


@dataclass
class FitResult:
    best_epoch: float  # where the best check was, in epochs (a whole number at an epoch's end)
    best_value: float | None
    epochs_run: float
    stopped_early: bool
    seconds: float
    steps: int = 0


class EarlyStopping:
    """Counts validation checks without improvement; `floor` steps must pass before it may stop."""

    def __init__(self, patience: int, mode: str, floor: int = 0):
        self.patience, self.mode, self.floor = patience, mode, floor
        self.best: float | None = None
        self.best_epoch: float = 0
        self.bad_checks = 0

    def update(self, value: float, epoch: float) -> bool:
        """Record a check's value at `epoch` (in epochs done); True when it is the best so far."""
        better = self.best is None or (value > self.best if self.mode == "max" else value < self.best)
        if better and math.isfinite(value):
            self.best, self.best_epoch, self.bad_checks = value, epoch, 0
            return True
        self.bad_checks += 1
        return False

    def should_stop(self, step: int) -> bool:
        return self.patience > 0 and self.bad_checks >= self.patience and step >= self.floor

    def state(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_checks": self.bad_checks}

    def load(self, state: dict) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.bad_checks = state.get("bad_checks", state.get("bad_epochs", 0))


@dataclass
class TrainState:
    """Everything one training run carries from step to step, and what a checkpoint restores."""

    model: torch.nn.Module
    net: torch.nn.Module  # the model, DDP-wrapped in a distributed run
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    stopper: EarlyStopping
    device: torch.device
    dtype: torch.dtype | None
    channels_last: bool = False  # train.channels_last resolved for this model and device
    scaler: torch.amp.GradScaler | None = None
    grad_monitor: GradientMonitor | None = None
    epoch: int = 0  # the next epoch to run (0-based)
    step: int = 0  # optimizer steps taken
    params: list[torch.Tensor] = field(default_factory=list)
    writer: checkpoint.Writer = field(default_factory=checkpoint.Writer)  # checkpoints, in the background


def _l1_penalty(params: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([p.abs().sum() for p in params if p.dim() > 1]).sum()


def _scalar_metrics(values: dict) -> dict[str, float]:
    return {k: v for k, v in values.items() if isinstance(v, float)}


def _check_finite(value: float, where: str) -> None:
    if not math.isfinite(value):
        raise JobError(f"the training loss became {value} {where}", LOSS_HINT)


def build_state(model: torch.nn.Module, cfg: dict, steps_per_epoch: int, mode: str) -> TrainState:
    train, gm = cfg["train"], cfg["grad_monitor"]
    device = pick_device(cfg["device"])
    dtype = amp_dtype(train["amp"], device)
    model.to(device)
    nhwc = channels_last(train["channels_last"], model, device)
    if nhwc:
        model.to(memory_format=torch.channels_last)
    if device.type == "cuda" and not cfg["deterministic"] and has_conv(model):
        torch.backends.cudnn.benchmark = True  # time conv kernels once per input shape, keep the fastest
    net = model
    if distributed.enabled():
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    net = _compiled(net) if train["compile"] else net
    optimizer = build_optimizer(model, train)
    return TrainState(
        model=model,
        net=net,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, train, steps_per_epoch),
        stopper=EarlyStopping(train["patience"], mode, budget.patience_floor(train, steps_per_epoch)),
        device=device,
        dtype=dtype,
        channels_last=nhwc,
        scaler=torch.amp.GradScaler(device.type) if dtype is torch.float16 else None,
        grad_monitor=GradientMonitor(model, gm["vanish"], gm["explode"]) if gm["enabled"] else None,
        params=[p for p in model.parameters() if p.requires_grad],
    )


def _compiled(net: torch.nn.Module) -> torch.nn.Module:
    """`train.compile`: the training forward through torch.compile; a graph that cannot be compiled runs
    eagerly (dynamo's suppress_errors), and where compile is unavailable training goes on without it.
    Checkpoints and evaluation keep using the plain module, so saved weights have their usual names."""
    try:
        import torch._dynamo

        torch._dynamo.config.suppress_errors = True
        return torch.compile(net)
    except Exception as exc:  # no compiler backend on this platform or torch build
        console.warn(f"train.compile: torch.compile is not available here ({exc}); training without it")
        return net


def _optimizer_step(state: TrainState, cfg: dict) -> None:
    train, gm = cfg["train"], cfg["grad_monitor"]
    if state.scaler is not None:
        state.scaler.unscale_(state.optimizer)
    monitor = state.grad_monitor
    if monitor is not None and (state.step % gm["every"] == 0 or not monitor.samples):
        monitor.sample()
    if train["grad_clip"]:
        torch.nn.utils.clip_grad_norm_(state.params, train["grad_clip"], foreach=True)
    if state.scaler is not None:
        state.scaler.step(state.optimizer)
        state.scaler.update()
    else:
        state.optimizer.step()
    state.optimizer.zero_grad(set_to_none=True)
    state.scheduler.step()
    state.step += 1


def train_epoch(
    state: TrainState, step: Step, loader: DataLoader, cfg: dict, progress: TrainProgress, skip: int = 0
) -> Iterator[tuple[float, int]]:
    """One pass over the training loader that pauses for a validation check every `train.val_every`
    optimizer steps, at `train.max_steps` and at its end. Yields (mean training loss since the last
    check, over all processes; batches done in this epoch). `skip` batches were done before a resume."""
    train = cfg["train"]
    nhwc, accum, l1 = state.channels_last, max(1, train["grad_accum"]), train["l1"]
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(state.epoch)
    else:
        loader.generator.manual_seed(cfg["seed"] * 1000 + state.epoch)
    state.model.train()
    progress.start_epoch(state.epoch)
    loss_sum = torch.zeros((), device=state.device)
    logged_sum, logged_at, since, seen, batches = 0.0, 0, 0, 0, len(loader)
    for batch in loader:
        if seen < skip:  # the same order as before the resume: the sampler is seeded by epoch
            seen += 1
            continue
        batch = move(batch, state.device, nhwc)
        with autocast(state.device, state.dtype):
            loss = step(state.net, batch, "train")["loss"]
        if l1 > 0:
            loss = loss + l1 * _l1_penalty(state.params)
        scaled = loss / accum if accum > 1 else loss
        (state.scaler.scale(scaled) if state.scaler is not None else scaled).backward()
        loss_sum += loss.detach()
        seen += 1
        since += 1
        check = False
        if seen % accum == 0 or seen == batches:
            _optimizer_step(state, cfg)
            check = _capped(state, train) or math.ceil(seen / accum) % train["val_every"] == 0
        if since % train["log_every"] == 0:
            total = distributed.mean(loss_sum).item()  # the only host sync; every rank sees the same
            value = (total - logged_sum) / (since - logged_at)
            logged_sum, logged_at = total, since
            _check_finite(value, f"at epoch {state.epoch + 1}, step {state.step}")
            progress.update(seen, value)
        if check and seen < batches:
            yield _mean_loss(loss_sum, since, state), seen
            state.model.train()  # the check left it in eval mode
            loss_sum.zero_()
            logged_sum, logged_at, since = 0.0, 0, 0
            if _capped(state, train):
                return
    yield _mean_loss(loss_sum, since, state), seen


def _mean_loss(loss_sum: torch.Tensor, count: int, state: TrainState) -> float:
    mean = distributed.mean(loss_sum / max(1, count)).item()
    _check_finite(mean, f"in epoch {state.epoch + 1} (before step {state.step})")
    return mean


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
    on_epoch_end: Callable[[int, dict], bool | None] | None = None,
    batch_sampler: Callable | None = None,
) -> FitResult:
    """Train `model` with `step(model, batch, stage)`, validating at every check (budget.py); best and
    last checkpoints. `on_epoch_end(epoch, record)` runs after each check (record: its metrics.jsonl line)
    and may return True to stop training after it (a tuning pruner);
    `batch_sampler(batch_size, generator)`, when given, makes the training batches (see make_loader)."""
    loader = make_loader(
        train_set, cfg, shuffle=True, collate=collate, weights=train_weights, batch_sampler=batch_sampler
    )
    val_loader = make_loader(val_set, cfg, shuffle=False, collate=collate, shard=True)
    steps = math.ceil(len(loader) / max(1, cfg["train"]["grad_accum"]))
    cfg = {**cfg, "train": budget.resolve(cfg["train"], steps)}
    train = cfg["train"]
    state = build_state(model, cfg, steps, mode)
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    skip = load_checkpoint(state, run_dir) if resume else 0
    main, batches = distributed.is_main(), len(loader)
    seen = batches  # batches done in the current epoch
    started = time.perf_counter()
    done = state.stopper.should_stop(state.step) or _capped(state, train)
    with TrainProgress(train["epochs"], batches, monitor, enabled=main) as progress, flushed(state.writer):
        while state.epoch < train["epochs"] and not done:
            check_start = time.perf_counter()
            for train_loss, seen in train_epoch(state, step, loader, cfg, progress, skip):
                done = _check(
                    state,
                    step,
                    val_loader,
                    metrics,
                    cfg,
                    run_dir,
                    monitor,
                    progress,
                    train_loss,
                    seen,
                    batches,
                    check_start,
                    on_epoch_end,
                )
                check_start = time.perf_counter()
                if done:
                    break
            skip = 0
            if seen == batches:
                state.epoch += 1
    stopped = state.stopper.should_stop(state.step) and (state.epoch < train["epochs"] or seen < batches)
    if stopped and main:
        console.info(f"early stop: no better val {monitor} for {state.stopper.patience} checks")
    partial = 0 if seen == batches else seen / batches
    return FitResult(
        best_epoch=state.stopper.best_epoch,
        best_value=state.stopper.best,
        epochs_run=_epochs(state.epoch, partial),
        stopped_early=stopped,
        seconds=time.perf_counter() - started,
        steps=state.step,
    )


def _epochs(whole: int, part: float) -> float:
    return whole if not part else round(whole + part, 3)


def _capped(state: TrainState, train: dict) -> bool:
    return bool(train["max_steps"]) and state.step >= train["max_steps"]


def _check(
    state: TrainState,
    step: Step,
    val_loader: DataLoader,
    metrics: dict,
    cfg: dict,
    run_dir: Path,
    monitor: str,
    progress: TrainProgress,
    train_loss: float,
    seen: int,
    batches: int,
    started: float,
    on_epoch_end: Callable[[int, dict], bool | None] | None,
) -> bool:
    """One validation check: metrics, the log line, checkpoints, progress. True when training should stop."""
    train, main = cfg["train"], distributed.is_main()
    values = evaluate(
        state.model, step, val_loader, metrics, state.device, state.dtype, state.channels_last, "val"
    )
    if monitor not in values:
        raise JobError(f"the recipe's monitored metric '{monitor}' is not among {sorted(values)}")
    at = state.epoch + 1 if seen == batches else _epochs(state.epoch, seen / batches)
    record = {
        "epoch": at,
        "step": state.step,
        "train_loss": train_loss,
        **{f"val_{k}": v for k, v in _scalar_metrics(values).items()},
        "lr": state.optimizer.param_groups[0]["lr"],
        "seconds": round(time.perf_counter() - started, 3),
    }
    improved = state.stopper.update(values[monitor], at)
    if state.grad_monitor is not None:
        figures, warnings = state.grad_monitor.summary()
        record["grad"] = figures
        if warnings:
            record["grad_warnings"] = warnings
        for w in warnings if main else ():
            console.warn(f"epoch {at}: {w}")
    if main:  # one writer: rank 0 of a distributed run, or the only process
        save_checkpoint(state, run_dir, record, monitor, values[monitor], improved, seen, batches)
    distributed.barrier()
    metric_text = f"val {monitor} {values[monitor]:.4f}" + (" *" if improved else "")
    where = f"epoch {at}/{train['epochs']}" if seen == batches else f"epoch {at:.2f}/{train['epochs']}"
    progress.checked(
        f"{where}  step {state.step}  loss {train_loss:.4f}  {metric_text}  {record['seconds']:.1f}s",
        metric_text,
        seen,
    )
    asked = on_epoch_end is not None and bool(on_epoch_end(state.epoch, record))  # True: stop here
    return distributed.any_true(state.stopper.should_stop(state.step) or _capped(state, train) or asked)
