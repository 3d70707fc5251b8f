"""Evaluation and prediction passes: the same precision and memory format for both."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import DataLoader

from dlkit.engine import distributed
from dlkit.engine.device import autocast, move

Step = Callable[..., dict]


def to_python(value) -> float | list:
    if not isinstance(value, torch.Tensor):
        return float(value)
    value = value.detach().cpu()
    return float(value) if value.numel() == 1 and value.dim() == 0 else value.tolist()


def _batch_size(target) -> int:
    if isinstance(target, torch.Tensor):
        return len(target) if target.dim() else 1
    return len(target) if hasattr(target, "__len__") else 1


@torch.inference_mode()
def evaluate(
    model: torch.nn.Module,
    step: Step,
    loader: DataLoader,
    metrics: dict,
    device: torch.device,
    dtype: torch.dtype | None = None,
    channels_last: bool = False,
    stage: str = "val",
) -> dict:
    """Mean loss and every metric over a loader; scalars as floats, matrices as nested lists.

    In a distributed run with a sharded loader the loss is summed over processes and the metrics
    gather their states themselves (torchmetrics syncs on compute).
    """
    model.eval()
    for m in metrics.values():
        m.reset()
        m.to(device)
    total = torch.zeros((), device=device, dtype=torch.float64)
    count = 0
    for batch in loader:
        batch = move(batch, device, channels_last)
        with autocast(device, dtype):
            out = step(model, batch, stage)
        n = _batch_size(out["target"])
        total += out["loss"].double() * n
        count += n
        for m in metrics.values():
            m.update(out["preds"], out["target"])
    count_all = distributed.total(torch.tensor(float(count), device=device, dtype=torch.float64))
    values = {"loss": (distributed.total(total) / count_all.clamp_min(1)).item()}
    for name, m in metrics.items():
        values[name] = to_python(m.compute())
    return values


def chunk_batches(cfg: dict) -> int:
    """Batches per predict chunk: `predict.chunk_size` examples, in whole batches (at least one)."""
    return max(1, cfg["predict"]["chunk_size"] // cfg["data"]["batch_size"])


@torch.inference_mode()
def predict_chunks(
    model: torch.nn.Module,
    predict_step: Step,
    loader: DataLoader,
    device: torch.device,
    dtype: torch.dtype | None = None,
    channels_last: bool = False,
    batches_per_chunk: int = 16,
) -> Iterator[tuple[list, dict]]:
    """Run `predict_step` over a loader and yield (ids, outputs) every `batches_per_chunk` batches.

    Tensor outputs are joined on the CPU as float32; list outputs (strings, box sets) are extended.
    """
    model.eval()
    ids: list = []
    outputs: dict[str, list] = {}
    tensors: set[str] = (
        set()
    )  # keys returned as one tensor per batch (joined); lists are extended as they are
    done = 0
    for batch in loader:
        batch_ids = batch.pop("id")  # a tensor of ids becomes Python numbers (a 0-d tensor each: ~500 B)
        ids.extend(batch_ids.tolist() if isinstance(batch_ids, torch.Tensor) else batch_ids)
        with autocast(device, dtype):
            out = predict_step(model, move(batch, device, channels_last))
        for k, v in out.items():
            if isinstance(v, torch.Tensor):
                tensors.add(k)
                outputs.setdefault(k, []).append(v.float().cpu())
            else:
                outputs.setdefault(k, []).extend(v)
        done += 1
        if done % batches_per_chunk == 0:
            yield ids, _join(outputs, tensors)
            ids, outputs = [], {}
    if ids:
        yield ids, _join(outputs, tensors)


def _join(outputs: dict[str, list], tensors: set[str]) -> dict:
    return {k: torch.cat(v) if k in tensors else v for k, v in outputs.items()}


def predict(model, predict_step: Step, loader: DataLoader, device: torch.device, **kw) -> tuple[list, dict]:
    """All of `predict_chunks` at once (for calibration on the validation split)."""
    ids: list = []
    parts: dict[str, list] = {}
    for chunk_ids, out in predict_chunks(model, predict_step, loader, device, **kw):
        ids.extend(chunk_ids)
        for k, v in out.items():
            parts.setdefault(k, []).append(v)
    joined = {
        k: torch.cat(v) if isinstance(v[0], torch.Tensor) else [x for part in v for x in part]
        for k, v in parts.items()
    }
    return ids, joined
