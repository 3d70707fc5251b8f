"""The baselines, scored by the core with the model's own metrics: `mean` (every molecule gets the
training mean of each task: its positive share for a binary task, so AUROC 0.5) and `fingerprint_forest`,
the field's strong classical peer: a random forest per task on the 2048-bit Morgan fingerprints, fitted
on train and kept in the state as JSON node tables (`dlkit.data.trees`), so `dlkit evaluate RUN`
re-scores it from the run alone."""

from __future__ import annotations

import numpy as np
import torch

from dlkit.data.trees import decision_tree_table, leaf_values

TREES = 100
MIN_LEAF = 2  # leaves of at least two molecules: half the nodes of fully grown trees, same accuracy here
# features tried per split: sqrt of the bits for classification (scikit-learn's default) and a third for
# regression (Breiman's p/3, R randomForest's default) instead of all 2048 bits: on the sample the
# lipophilicity forest is both better (R2 0.60 vs 0.57) and fitted in a third of the time
MAX_FEATURES = {"classification": "sqrt", "regression": 1 / 3}


def fit_forest(
    fingerprints: np.ndarray, targets: np.ndarray, kinds: list[str], seed: int
) -> list[list[dict]]:
    """Per task, the trees of a random forest fitted on the training molecules that have a value."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    forests = []
    for j, kind in enumerate(kinds):
        seen = ~np.isnan(targets[:, j])
        x, y = fingerprints[seen], targets[seen, j]
        classify = kind == "classification"
        if classify and len(np.unique(y)) < 2:  # one class only: a constant forest of one leaf
            forests.append(
                [{"feature": [-1], "threshold": [0.0], "left": [0], "right": [0], "value": [float(y[0])]}]
            )
            continue
        cls = RandomForestClassifier if classify else RandomForestRegressor
        model = cls(
            n_estimators=TREES,
            min_samples_leaf=MIN_LEAF,
            max_features=MAX_FEATURES["classification" if classify else "regression"],
            n_jobs=1,
            random_state=seed,
        )
        model.fit(x, y.astype(int) if classify else y)
        forests.append(
            [decision_tree_table(tree.tree_, positive_share=classify) for tree in model.estimators_]
        )
    return forests


def forest_predict(forests: list[list[dict]], fingerprints: np.ndarray) -> np.ndarray:
    """[molecules, tasks]: each task's mean over its trees (P(active), or the value)."""
    out = np.zeros((len(fingerprints), len(forests)), dtype=np.float64)
    for j, trees in enumerate(forests):
        out[:, j] = np.mean([leaf_values(tree, fingerprints) for tree in trees], axis=0)
    return out


def predictors(state: dict) -> dict:
    """name -> batch -> {'preds', 'target'} in the model's form ([molecules, tasks], original units)."""
    means = torch.tensor([t["train_mean"] for t in state["tasks"]], dtype=torch.float32)

    def mean(batch: dict) -> dict:
        target = batch["target"]
        return {"preds": means.expand(len(target), -1).clone(), "target": target}

    def forest(batch: dict) -> dict:
        scores = forest_predict(state["fingerprint_forest"], batch["fingerprint"].numpy())
        return {"preds": torch.from_numpy(scores).float(), "target": batch["target"]}

    found = {"mean": mean}
    if "fingerprint_forest" in state:
        found["fingerprint_forest"] = forest
    return found
