"""A training run's checkpoints as the loop uses them: writing one at each check (in the background, see
checkpoint.Writer), waiting for the writes when training ends, and restoring the last one on resume
(trimming the log to it). The file format itself is checkpoint.py's."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from dlkit import console
from dlkit.atomic import atomic_write_text
from dlkit.engine import checkpoint, distributed, rng

if TYPE_CHECKING:
    from dlkit.engine.loop import TrainState


def save_checkpoint(
    state: TrainState,
    run_dir: Path,
    record: dict,
    monitor: str,
    value: float,
    improved: bool,
    batch: int,
    batches: int,
):
    """Log the check, then write `last` (and `best`) atomically; a resume trims log lines past `last`.
    `batch` of `batches` in the current epoch are done (all of them at an epoch's end)."""
    with open(run_dir / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps(record) + "\n")
    meta = {
        "epoch": state.epoch,
        "batch": batch,
        "batches": batches,
        "step": state.step,
        "scheduler": state.scheduler.state_dict(),
        "early_stopping": state.stopper.state(),
        "monitor": monitor,
        "value": value,
        "scaler": state.scaler.state_dict() if state.scaler is not None else None,
    }
    rng_meta, rng_tensors = rng.capture()
    ckpt_dir = run_dir / "checkpoints"
    last = ckpt_dir / "last.safetensors"
    meta["rng"] = rng_meta
    tensors, meta_json = checkpoint.snapshot(state.model, meta, state.optimizer, rng_tensors)

    def write() -> None:
        checkpoint.write(last, tensors, meta_json)
        if improved:
            checkpoint.copy(last, ckpt_dir / "best.safetensors")

    state.writer.submit(write)


def load_checkpoint(state: TrainState, run_dir: Path) -> int:
    """Restore a run's `last` checkpoint into `state` (weights, optimizer, schedule, RNG, early
    stopping); the batches of the current epoch already done (0 when the checkpoint ended an epoch)."""
    ckpt_dir = run_dir / "checkpoints"
    if distributed.is_main():
        # left by a kill in the middle of a write: ours (.NAME.tmp-PID) and safetensors' own (.tmpXXXXXX)
        for stale in ckpt_dir.glob(".*tmp*"):
            stale.unlink()
    # a damaged `last` (a disk fault, not a kill: writes are atomic) falls back to `best`
    _, meta, rest = checkpoint.load_full(
        [ckpt_dir / "last.safetensors", ckpt_dir / "best.safetensors"], state.model, state.optimizer
    )
    state.scheduler.load_state_dict(meta["scheduler"])
    state.stopper.load(meta["early_stopping"])
    if state.scaler is not None and meta.get("scaler"):
        state.scaler.load_state_dict(meta["scaler"])
    rng.restore(meta["rng"], rest)
    batch = meta.get("batch", 0)
    within = 0 < batch < meta.get("batches", 0)
    state.epoch, state.step = meta["epoch"] + (0 if within else 1), meta["step"]
    if distributed.is_main():
        _truncate_log(run_dir / "metrics.jsonl", state.step)
    distributed.barrier()
    where = f"{batch} batches into epoch {state.epoch + 1}" if within else f"after epoch {state.epoch}"
    console.info(f"resuming {where} (step {state.step})")
    return batch if within else 0


def _truncate_log(log_path: Path, last_step: int) -> None:
    """On resume keep only complete lines for the checks the checkpoint covers (up to its step)."""
    if not log_path.exists():
        return
    kept = []
    for line in log_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("step", 0) <= last_step:
            kept.append(line)
    atomic_write_text(log_path, "".join(f"{line}\n" for line in kept))


@contextlib.contextmanager
def flushed(writer: checkpoint.Writer) -> Iterator[None]:
    """Every checkpoint handed to `writer` is on disk when training ends, however it ends."""
    try:
        yield
    except BaseException:
        try:
            writer.wait()
        except Exception as exc:  # the error in flight matters more; still say the write failed
            console.warn(f"a checkpoint write failed too: {exc}")
        raise
    writer.wait()
