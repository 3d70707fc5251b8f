"""Optimizers and learning-rate schedules (warmup + cosine / step / one-cycle), all step-based."""

from __future__ import annotations

import math

import torch

from dlkit.engine.budget import total_steps


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weight matrices and kernels only; biases and norm scales stay unpenalised."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: torch.nn.Module, train: dict) -> torch.optim.Optimizer:
    groups = param_groups(model, train["weight_decay"])
    if train["optimizer"] == "sgd":
        return torch.optim.SGD(
            groups, lr=train["lr"], momentum=train["momentum"], nesterov=train["momentum"] > 0
        )
    on_cuda = all(p.is_cuda for g in groups for p in g["params"])
    return torch.optim.AdamW(groups, lr=train["lr"], fused=on_cuda or None)  # one kernel per step on CUDA


def lr_factor(step: int, total: int, train: dict, steps_per_epoch: int) -> float:
    """Multiplier of the peak lr at optimizer step `step` (0-based) of `total`."""
    name = train["scheduler"]
    if name == "onecycle":
        warm = max(1, int(total * (train["warmup"] or 0.3)))
    else:
        warm = int(total * train["warmup"])
    if step < warm:
        return (step + 1) / warm
    if name == "none":
        return 1.0
    if name == "step":
        epoch = step // max(1, steps_per_epoch)
        return train["step_gamma"] ** (epoch // max(1, train["step_every"]))
    progress = min(1.0, (step - warm) / max(1, total - warm))
    floor = 0.0 if name == "onecycle" else 0.01
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, train: dict, steps_per_epoch: int):
    total = total_steps(train, steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total, train, steps_per_epoch)
    )
