"""Per-task metrics with missing targets masked: AUROC and AUPRC for a binary task; RMSE, MAE, R² and
Spearman for a regression task; and `score`, the monitored aggregate: the mean over tasks of AUROC
(classification) and R² (regression), both 'higher is better, 1 is perfect'.

Each metric keeps the (prediction, target) pairs of its task (torchmetrics list states, so DDP gathers
them) and computes once at the end; a task whose split holds no value, or a single class, scores NaN and
is left out of `score`.
"""

from __future__ import annotations

import math

import torch
from torchmetrics import Metric
from torchmetrics.functional import mean_absolute_error, mean_squared_error, r2_score, spearman_corrcoef
from torchmetrics.functional.classification import binary_auroc, binary_average_precision

CLASSIFICATION = {"auroc": binary_auroc, "auprc": binary_average_precision}
REGRESSION = {
    "rmse": lambda p, t: mean_squared_error(p, t).sqrt(),
    "mae": mean_absolute_error,
    "r2": r2_score,
    "spearman": spearman_corrcoef,
}
HEADLINE = {"classification": "auroc", "regression": "r2"}  # what `score` averages


def _score(kind: str, name: str, preds: torch.Tensor, target: torch.Tensor) -> float:
    if kind == "classification":
        if len(target) == 0 or target.min() == target.max():
            return math.nan
        return float(CLASSIFICATION[name](preds, target.long()))
    if len(target) < 2:
        return math.nan
    return float(REGRESSION[name](preds.double(), target.double()))


class TaskMetrics(Metric):
    """One named measure of one task (`column`), or the `score` aggregate over all tasks (column None)."""

    full_state_update = False

    def __init__(self, kinds: list[str], column: int | None, name: str):
        super().__init__()
        self.kinds, self.column, self.name = kinds, column, name
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        self.preds.append(preds.detach().float().reshape(len(preds), -1))
        self.target.append(target.detach().float().reshape(len(target), -1))

    def compute(self) -> torch.Tensor:
        preds, target = _cat(self.preds), _cat(self.target)
        columns = range(len(self.kinds)) if self.column is None else [self.column]
        values = []
        for j in columns:
            seen = ~torch.isnan(target[:, j])
            kind = self.kinds[j]
            name = HEADLINE[kind] if self.column is None else self.name
            values.append(_score(kind, name, preds[seen, j].cpu(), target[seen, j].cpu()))
        defined = [v for v in values if not math.isnan(v)]
        return torch.tensor(sum(defined) / len(defined) if defined else math.nan, dtype=torch.float64)


def _cat(parts) -> torch.Tensor:
    return torch.cat(parts) if isinstance(parts, list) else parts


def task_metrics(tasks: list[str], kinds: list[str]) -> dict:
    """`score` plus `{task}_{measure}` for each task (just `{measure}` when there is one task)."""
    out: dict = {"score": TaskMetrics(kinds, None, "score")}
    for j, (task, kind) in enumerate(zip(tasks, kinds, strict=True)):
        for name in CLASSIFICATION if kind == "classification" else REGRESSION:
            out[name if len(tasks) == 1 else f"{task}_{name}"] = TaskMetrics(kinds, j, name)
    return out
