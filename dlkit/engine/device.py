"""Device choice, mixed precision and moving batches."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch

from dlkit.errors import UserError


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(
            f"device '{name}' is not a device name", "use auto, cpu, cuda, cuda:1 or mps"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device '{name}' was asked for, but CUDA is not available here", "use device=auto")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError("device 'mps' was asked for, but MPS is not available here", "use device=auto")
    return device


def amp_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    """None means full precision. `auto` turns bf16 on where the hardware runs it natively."""
    if setting == "off":
        return None
    if setting == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None
    return torch.bfloat16 if setting == "bf16" else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def has_conv(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.conv._ConvNd) for m in model.modules())


def channels_last(setting: bool | str, model: torch.nn.Module, device: torch.device) -> bool:
    """train.channels_last resolved for this model and device: `auto` turns it on for conv nets on CUDA,
    where tensor-core convolutions want NHWC (on the CPU it mostly costs a layout conversion)."""
    if setting == "auto":
        return device.type == "cuda" and has_conv(model)
    return bool(setting)


def move(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Move every tensor in a (nested) batch; non-blocking so copies overlap with compute on CUDA."""
    if isinstance(batch, torch.Tensor):
        out = batch.to(device, non_blocking=True)
        if channels_last and out.dim() == 4 and out.is_floating_point():
            out = out.contiguous(memory_format=torch.channels_last)
        return out
    if isinstance(batch, dict):
        return {k: move(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move(v, device, channels_last) for v in batch)
    return batch
