"""The recipe contract: what is domain-specific, and nothing else.

A recipe reads its data into datasets (fitting its preprocessing on the training split only),
builds a model, turns a batch into a loss and outputs, names its metrics and a naive baseline, and
turns raw inputs into prediction records. It never touches devices, precision, checkpoints,
schedules or progress: the engine owns those.

This module imports nothing heavy, so listing recipes stays cheap.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

if TYPE_CHECKING:
    import torch
    from torch.utils.data import Dataset


@dataclass
class RecipeData:
    """Datasets yield dicts of tensors; `state` is the fitted preprocessing (JSON-serialisable)."""

    train: Dataset | None
    val: Dataset | None
    test: Dataset | None
    state: dict[str, Any]
    collate: Callable | None = None
    notes: list[str] = field(default_factory=list)


class Recipe(ABC):
    name: ClassVar[str]
    task: ClassVar[str]
    description: ClassVar[str]
    default_model: ClassVar[str]
    sample_data: ClassVar[str]  # relative to the project root, e.g. "sample_data/vision_classification"
    monitor: ClassVar[str] = "accuracy"  # validation metric that picks the best checkpoint
    monitor_mode: ClassVar[str] = "max"

    def __init__(self, cfg: dict):
        self.cfg = cfg

    @classmethod
    def config(cls) -> dict:
        """Recipe defaults: `opt(...)` for new keys, plain values to change a shared default."""
        return {}

    @abstractmethod
    def load_data(self, path: Path, state: dict | None = None, evaluate_all: bool = False) -> RecipeData:
        """Read and split the data. With `state` (from a run) apply it; without, fit it on train.

        `evaluate_all` (new labelled data given to `dlkit evaluate --data`) puts every example in `test`.
        """

    @abstractmethod
    def build_model(self, state: dict) -> torch.nn.Module:
        ...

    @abstractmethod
    def step(self, model: torch.nn.Module, batch: dict) -> dict:
        """One batch -> {'loss': scalar tensor, 'preds': ..., 'target': ...} (preds/target feed metrics)."""

    @abstractmethod
    def metrics(self, state: dict) -> dict:
        """Name -> torchmetrics Metric, updated with (preds, target); must include `monitor`."""

    @abstractmethod
    def baseline(self, data: RecipeData) -> dict[str, float]:
        """The naive model's test metrics (majority class, last value...), shown beside the model's."""

    @abstractmethod
    def read_inputs(self, inputs: list[str], state: dict) -> Dataset:
        """Raw files/folders/rows for `predict` -> dataset of dicts with an 'id' and model inputs."""

    @abstractmethod
    def predict_step(self, model: torch.nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        ...

    @abstractmethod
    def to_records(self, ids: list, outputs: dict[str, torch.Tensor], state: dict) -> list[dict]:
        """Turn concatenated predict outputs into one JSON-able record per input."""

    def describe_eval(self, outputs: dict) -> dict:
        """Optional extra eval.json content; default none."""
        return {}
