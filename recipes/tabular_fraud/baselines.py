"""The baselines, scored by the core with the model's own metrics: `prevalence` (every row alike, so
AUPRC = the fraud rate; every row flagged) and `logistic_regression` on the same cleaned features,
fitted on train, its threshold chosen on validation by the model's rule, kept in the state as JSON."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from dlkit_recipes.tabular_fraud.data import TableSet
from dlkit_recipes.tabular_fraud.threshold import choose_threshold, on_threshold


def linear_inputs(numeric: torch.Tensor, categorical: torch.Tensor, cardinalities: list[int]) -> np.ndarray:
    """Numeric features plus one-hot embedded categoricals: what a linear model sees."""
    blocks = [numeric.numpy()]
    for i, card in enumerate(cardinalities):
        blocks.append(np.eye(card, dtype=np.float32)[categorical[:, i].numpy()])
    return np.concatenate(blocks, axis=1)


def logreg_scores(params: dict, inputs: np.ndarray) -> np.ndarray:
    logits = inputs.astype(np.float64) @ np.asarray(params["coef"]) + params["intercept"]
    return 1 / (1 + np.exp(-logits))


def fit_logreg(train: TableSet, val: TableSet, cardinalities: list[int], rule: dict) -> dict:
    """Coefficients, intercept, and the threshold chosen on validation by `rule` (the model's rule)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=500)
    with warnings.catch_warnings():  # a baseline that is not fully converged is still a fair baseline
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(linear_inputs(train.numeric, train.categorical, cardinalities), train.labels.numpy())
    params = {"coef": model.coef_[0].astype(float).tolist(), "intercept": float(model.intercept_[0])}
    if len(val) == 0:
        return {**params, "threshold": 0.5}
    scores = logreg_scores(params, linear_inputs(val.numeric, val.categorical, cardinalities))
    return {**params, "threshold": choose_threshold(scores, val.labels.numpy(), **rule)["threshold"]}


def predictors(state: dict, cardinalities: list[int], threshold: float) -> dict:
    """name -> batch -> {'preds', 'target'}, with each baseline's decisions put on the model's `threshold`
    (ranking metrics unchanged), so precision, recall and F1 are each at the baseline's own threshold."""
    logreg = state["logistic_regression"]

    def prevalence(batch: dict) -> dict:
        n = len(batch["label"])
        scores = torch.full((n,), float(state["prevalence"]))
        return {"preds": on_threshold(scores, 0.0, threshold), "target": batch["label"]}

    def logistic_regression(batch: dict) -> dict:
        inputs = linear_inputs(batch["numeric"], batch["categorical"], cardinalities)
        scores = torch.from_numpy(logreg_scores(logreg, inputs))
        return {"preds": on_threshold(scores, logreg["threshold"], threshold), "target": batch["label"]}

    return {"prevalence": prevalence, "logistic_regression": logistic_regression}
