"""toy-points: a whole dlkit recipe in one small file (two interleaved half-moons, an MLP).

It shows what a plug-in needs: read and split data with dlkit's split stage, build a model, one step,
torchmetrics metrics, named baselines, and predict from raw inputs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from dlkit.config import opt
from dlkit.data.splits import assign_splits, indices, parse_split_column
from dlkit.errors import UserError
from dlkit.recipe import Recipe, RecipeData

SAMPLE = Path(__file__).resolve().parent / "points.csv"


class Points(Dataset):
    def __init__(self, xy: torch.Tensor, labels: torch.Tensor, ids: list[str]):
        self.xy, self.labels, self.ids = xy, labels, ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        return {"xy": self.xy[i], "label": self.labels[i], "id": self.ids[i]}


def _read(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise UserError(f"'{path}' is not a readable CSV ({exc})") from None
    missing = [c for c in ("x", "y") if c not in frame.columns]
    if missing:
        raise UserError(f"'{path}' has no column {missing[0]!r}", "the header must name x and y")
    return frame


class ToyPoints(Recipe):
    name = "toy-points"
    task = "two-class points"
    description = "A plug-in example: classify points in the plane with a small MLP."
    default_model = "mlp"
    sample_data = str(SAMPLE)
    sample_inputs = (str(SAMPLE),)

    @classmethod
    def config(cls) -> dict:
        return {
            "model": {"hidden": opt(32, "hidden units")},
            "train": {"epochs": 20, "lr": 1e-2},
            "data": {"batch_size": 32},
            "loss": {"name": opt("cross_entropy", "training loss", ["cross_entropy"])},
        }

    def load_data(self, path: Path, state: dict | None = None, evaluate_all: bool = False) -> RecipeData:
        frame = _read(path)
        if "label" not in frame.columns:
            raise UserError(f"'{path}' has no 'label' column")
        if state is None:
            state = {"classes": sorted(frame["label"].astype(str).unique().tolist())}
        labels = frame["label"].astype(str).map({c: i for i, c in enumerate(state["classes"])})
        if labels.isna().any():
            row = int(labels[labels.isna()].index[0]) + 2
            raise UserError(f"'{path}' row {row}: label not seen in training")
        given = (
            parse_split_column(frame["split"], str(path)) if "split" in frame.columns else [None] * len(frame)
        )
        d = self.cfg["data"]
        split = (
            ["test"] * len(frame)
            if evaluate_all
            else assign_splits(
                given, d["val_fraction"], d["test_fraction"], self.cfg["seed"], labels=labels.tolist()
            )
        )
        xy = torch.tensor(frame[["x", "y"]].to_numpy(), dtype=torch.float32)
        y = torch.tensor(labels.to_numpy(), dtype=torch.long)
        sets = {
            s: Points(xy[idx], y[idx], [f"row {i + 2}" for i in idx]) if idx else None
            for s, idx in indices(split).items()
        }
        if "counts" not in state and sets["train"] is not None:
            state["counts"] = torch.bincount(sets["train"].labels, minlength=len(state["classes"])).tolist()
            state["centroids"] = [
                sets["train"].xy[sets["train"].labels == k].mean(0).tolist()
                for k in range(len(state["classes"]))
            ]
        return RecipeData(sets["train"], sets["val"], sets["test"], state)

    def setup(self, state: dict, fresh: bool) -> None:
        self.loss = nn.CrossEntropyLoss()

    def build_model(self, state: dict) -> nn.Module:
        h = self.cfg["model"]["hidden"]
        return nn.Sequential(
            nn.Linear(2, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, len(state["classes"]))
        )

    def step(self, model: nn.Module, batch: dict, stage: str) -> dict:
        logits = model(batch["xy"])
        return {"loss": self.loss(logits, batch["label"]), "preds": logits.float(), "target": batch["label"]}

    def metrics(self, state: dict) -> dict:
        from torchmetrics.classification import MulticlassAccuracy

        return {"accuracy": MulticlassAccuracy(len(state["classes"]), average="micro")}

    def baselines(self, data: RecipeData) -> dict:
        prior = torch.tensor(data.state["counts"], dtype=torch.float32)
        centroids = torch.tensor(data.state["centroids"])

        def majority(batch: dict) -> dict:
            return {"preds": prior.expand(len(batch["label"]), -1), "target": batch["label"]}

        def nearest_centroid(batch: dict) -> dict:
            return {"preds": -torch.cdist(batch["xy"], centroids), "target": batch["label"]}

        return {"majority_class": majority, "nearest_centroid": nearest_centroid}

    def read_inputs(self, inputs: list[str], state: dict) -> Dataset:
        frames = [_read(Path(p)) for p in inputs]
        frame = pd.concat(frames, ignore_index=True)
        xy = torch.tensor(frame[["x", "y"]].to_numpy(), dtype=torch.float32)
        return Points(xy, torch.full((len(frame),), -1), [f"row {i + 2}" for i in range(len(frame))])

    def predict_step(self, model: nn.Module, batch: dict) -> dict:
        return {"probs": model(batch["xy"]).float().softmax(-1)}

    def to_records(self, ids: list, outputs: dict, state: dict) -> list[dict]:
        probs = outputs["probs"]
        return [
            {"id": i, "label": state["classes"][int(p.argmax())], "score": round(float(p.max()), 6)}
            for i, p in zip(ids, probs, strict=True)
        ]
