"""Forecast metrics in original units, all `torchmetrics.Metric`s: MAE, RMSE and sMAPE from the library;
MASE, directional accuracy and interval coverage as small subclasses with synced states.

Every metric takes `preds` (B, H, Q): the forecast (Q = 1) or p10/p50/p90 (Q = 3, sorted), and `target`
(B, H, 3): truth, last observed value and the series' MASE scale (`windows.pack_target`).

Sums are kept in float64 (float32 where Apple's MPS, which has no float64, may be the device) and results
are rounded to float32, so a score does not depend on how the windows were batched.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import (
    MeanAbsoluteError,
    MeanSquaredError,
    Metric,
    SymmetricMeanAbsolutePercentageError,
)
from torchmetrics.utilities import dim_zero_cat

ACCUMULATE = torch.float32 if torch.backends.mps.is_available() else torch.float64


def forecast_metrics(state: dict) -> dict:
    """MAE, RMSE, sMAPE and MASE of the point forecast; direction for change targets; interval coverage."""
    point = 1 if state["quantiles"] else 0
    out = {
        "mae": PointMAE(point),
        "rmse": PointRMSE(point),
        "smape": PointSMAPE(point),
        "mase": MASE(point),
    }
    if state["transform"] != "level":
        out["directional_accuracy"] = DirectionalAccuracy(point)
    if state["quantiles"]:
        out["coverage_80"] = Coverage()
    return out


class _PointForecast:
    """Feeds a library metric the point forecast (`preds[..., point]`) and the truth (`target[..., 0]`)."""

    def __init__(self, point: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.point = point
        self.set_dtype(ACCUMULATE)

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        super().update(preds[..., self.point].to(ACCUMULATE), target[..., 0].to(ACCUMULATE))

    def compute(self) -> torch.Tensor:
        return super().compute().float()


class PointMAE(_PointForecast, MeanAbsoluteError):
    """Mean absolute error over every (window, step)."""


class PointRMSE(_PointForecast, MeanSquaredError):
    """Root mean squared error over every (window, step)."""

    def __init__(self, point: int = 0, **kwargs):
        super().__init__(point, squared=False, **kwargs)


class PointSMAPE(_PointForecast, SymmetricMeanAbsolutePercentageError):
    """Symmetric MAPE as torchmetrics defines it: mean of 2|y - f| / (|y| + |f|), a fraction in [0, 2]."""


class MASE(Metric):
    """Mean absolute error scaled by the series' in-sample (seasonal) naive error, over every (window, step).

    Also keeps each window's mean scaled error, so `eval_details` can test two forecasts of the same
    windows against each other (Diebold-Mariano).
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, point: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.point = point
        self.add_state("total", torch.tensor(0.0, dtype=ACCUMULATE), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("window_errors", [], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        truth, point = target[..., 0].to(ACCUMULATE), preds[..., self.point].to(ACCUMULATE)
        errors = (truth - point).abs() / target[..., 2].to(ACCUMULATE)
        self.total += errors.sum()
        self.count += errors.numel()
        self.window_errors.append(errors.mean(1))

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp_min(1)).float()

    def errors(self) -> np.ndarray:
        """Each window's mean scaled error, in the order the windows were seen."""
        if not self.window_errors:
            return np.zeros(0)
        return dim_zero_cat(self.window_errors).detach().cpu().double().numpy()


class DirectionalAccuracy(Metric):
    """Share of (window, step) cells where the forecast moves from the last value the way the truth did;
    cells where the truth did not move are left out. A 'no change' forecast scores 0."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, point: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.point = point
        self.add_state("hits", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        truth, last = target[..., 0].float(), target[..., 1].float()
        moved = truth != last
        hit = torch.sign(preds[..., self.point].float() - last) == torch.sign(truth - last)
        self.hits += (hit & moved).sum()
        self.count += moved.sum()

    def compute(self) -> torch.Tensor:
        return self.hits.float() / self.count.clamp_min(1)


class Coverage(Metric):
    """Share of (window, step) cells whose truth lies inside [p10, p90]: 0.8 when the interval is honest."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("inside", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        truth = target[..., 0].float()
        self.inside += ((preds[..., 0] <= truth) & (truth <= preds[..., -1])).sum()
        self.count += truth.numel()

    def compute(self) -> torch.Tensor:
        return self.inside.float() / self.count.clamp_min(1)
