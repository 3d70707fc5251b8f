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
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch
    from torch.utils.data import Dataset


@dataclass
class RecipeData:
    """Datasets yield dicts (tensors plus an 'id'); `state` is the fitted preprocessing (JSON-serialisable).

    `train_weights`, when set, gives each training example a sampling weight (e.g. to over-sample a rare
    class); the engine then draws batches with replacement from those weights, reproducibly.
    """

    train: Dataset | None
    val: Dataset | None
    test: Dataset | None
    state: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    train_weights: list[float] | None = None


@dataclass
class Finding:
    """One line of `dlkit check`: what was looked at, how bad it is, what was found, what to do."""

    check: str
    severity: str  # "ok", "info", "warning" or "fatal" (fatal -> exit 2)
    message: str
    fix: str = ""


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
    def build_model(self, state: dict) -> torch.nn.Module: ...

    @abstractmethod
    def step(self, model: torch.nn.Module, batch: dict) -> dict:
        """One batch -> {'loss': scalar tensor, 'preds': ..., 'target': ...} (preds/target feed metrics)."""

    @abstractmethod
    def metrics(self, state: dict) -> dict:
        """Name -> torchmetrics Metric, updated with (preds, target); must include `monitor`."""

    @abstractmethod
    def baseline(self, data: RecipeData) -> dict[str, float]:
        """The naive model's test metrics (majority class, last value...), shown beside the model's.

        eval.json's `beats_baseline` compares the monitored metric with the same key here, unless this
        dict carries its own boolean `beats_baseline` (e.g. a recipe that demands significance).
        """

    @abstractmethod
    def read_inputs(self, inputs: list[str], state: dict) -> Dataset:
        """Raw files/folders/rows for `predict` -> dataset of dicts with an 'id' and model inputs."""

    @abstractmethod
    def predict_step(self, model: torch.nn.Module, batch: dict) -> dict[str, torch.Tensor]: ...

    @abstractmethod
    def to_records(self, ids: list, outputs: dict[str, torch.Tensor], state: dict) -> list[dict]:
        """Turn concatenated predict outputs into one JSON-able record per input."""

    # --- optional hooks ----------------------------------------------------------------------
    def check(self, path: Path) -> list[Finding]:
        """Pre-flight findings for `dlkit check`. The default tries to read and split the data.

        Recipes extend this (call super) with their own checks: schema, missing values, leakage...
        """
        from dlkit.errors import UserError

        try:
            data = self.load_data(path)
        except UserError as exc:
            return [Finding("data readable", "fatal", exc.message, exc.hint or "")]
        sizes = " / ".join(
            f"{len(d) if d is not None else 0} {n}"
            for n, d in (("train", data.train), ("val", data.val), ("test", data.test))
        )
        found = [Finding("data readable", "ok", f"{sizes} examples")]
        found += [Finding("data notes", "warning", note) for note in data.notes]
        return found

    def collate(self, items: list[dict]) -> dict:
        """Batch dataset items; the default stacks tensors and lists everything else (e.g. ids)."""
        from torch.utils.data import default_collate

        return default_collate(items)

    def calibrate(self, ids: list, outputs: dict, data: RecipeData) -> dict:
        """Fit post-training parameters on validation predictions (e.g. a decision threshold).

        Returned keys are merged into the run's state before the final evaluation.
        """
        return {}

    def save_native(self, model: torch.nn.Module, state: dict, folder: Path) -> None:  # noqa: B027
        """Also save the trained model in its library's own format (e.g. Hugging Face) into `folder`."""
