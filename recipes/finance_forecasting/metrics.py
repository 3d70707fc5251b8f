"""Forecast metrics in original units, used like torchmetrics Metrics: MAE, RMSE, sMAPE, MASE, direction,
interval coverage."""

from __future__ import annotations

import math

import numpy as np
import torch


def forecast_metrics(state: dict) -> dict:
    """MAE, RMSE, sMAPE and MASE of the point forecast; direction for change targets; interval coverage."""
    point = 1 if state["quantiles"] else 0
    out = {
        "mae": ForecastMetric("mae", point),
        "rmse": ForecastMetric("rmse", point),
        "smape": ForecastMetric("smape", point),
        "mase": MASE(point),
    }
    if state["transform"] != "level":
        out["directional_accuracy"] = ForecastMetric("direction", point)
    if state["quantiles"]:
        out["coverage_80"] = ForecastMetric("coverage", point)
    return out


class ForecastMetric:
    """One error measure over every (window, step) in original units, used like a torchmetrics Metric.

    `preds` is (B, H, Q) (Q = 1, or p10/p50/p90); `target` is (B, H, 3): truth, last observed value and the
    series' MASE scale.
    """

    def __init__(self, kind: str, point: int = 0):
        self.kind, self.point = kind, point
        self.reset()

    def reset(self) -> None:
        self.total, self.count = 0.0, 0

    def to(self, device) -> ForecastMetric:
        return self

    def _values(self, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        truth, last, scale = target.double().unbind(-1)
        p = preds[..., self.point].double()
        if self.kind == "mae":
            return (truth - p).abs()
        if self.kind == "rmse":
            return (truth - p) ** 2
        if self.kind == "smape":
            denom = truth.abs() + p.abs()
            return torch.where(
                denom > 0, 200 * (truth - p).abs() / denom.clamp_min(1e-12), torch.zeros_like(p)
            )
        if self.kind == "mase":
            return (truth - p).abs() / scale
        if self.kind == "coverage":
            return ((preds[..., 0] <= truth) & (truth <= preds[..., -1])).double()
        moved = truth != last
        hit = (torch.sign(p - last) == torch.sign(truth - last)).double()
        return hit[moved]

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        values = self._values(preds.detach().cpu(), target.detach().cpu())
        self.total += float(values.sum())
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        mean = self.total / max(1, self.count)
        return torch.tensor(math.sqrt(mean) if self.kind == "rmse" else mean)


class MASE(ForecastMetric):
    """MASE, keeping each window's error and the naive forecast's error for the significance test."""

    def __init__(self, point: int = 0):
        super().__init__("mase", point)

    def reset(self) -> None:
        super().reset()
        self.model_err: list[torch.Tensor] = []
        self.naive_err: list[torch.Tensor] = []

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        super().update(preds, target)
        preds, target = preds.detach().cpu(), target.detach().cpu()
        truth, last, scale = target.double().unbind(-1)
        self.model_err.append(self._values(preds, target).mean(1))
        self.naive_err.append(((truth - last).abs() / scale).mean(1))

    @property
    def windows(self) -> int:
        return sum(len(e) for e in self.model_err)

    def errors(self) -> tuple[np.ndarray, np.ndarray]:
        return torch.cat(self.model_err).numpy(), torch.cat(self.naive_err).numpy()
