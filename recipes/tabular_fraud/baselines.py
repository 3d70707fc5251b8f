"""The baselines, scored by the core with the model's own metrics: `prevalence` (every row alike, so
AUPRC = the fraud rate; every row flagged), `logistic_regression` and `gradient_boosting` (trees, see
trees.py) on the same cleaned features, fitted on train, each with its threshold chosen on validation by
the model's rule, kept in the state as JSON."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from dlkit_recipes.tabular_fraud.data import TableSet
from dlkit_recipes.tabular_fraud.threshold import choose_threshold, on_threshold
from dlkit_recipes.tabular_fraud.trees import fit_trees, tree_scores

FITTED = ("logistic_regression", "gradient_boosting")  # the baselines fitted into the state


def linear_inputs(numeric: torch.Tensor, categorical: torch.Tensor, cardinalities: list[int]) -> np.ndarray:
    """Numeric features plus one-hot embedded categoricals: what a linear model (and a tree) sees."""
    blocks = [numeric.numpy()]
    for i, card in enumerate(cardinalities):
        blocks.append(np.eye(card, dtype=np.float32)[categorical[:, i].numpy()])
    return np.concatenate(blocks, axis=1)


def logreg_scores(params: dict, inputs: np.ndarray) -> np.ndarray:
    logits = inputs.astype(np.float64) @ np.asarray(params["coef"]) + params["intercept"]
    return 1 / (1 + np.exp(-logits))


SCORERS = {"logistic_regression": logreg_scores, "gradient_boosting": tree_scores}


def _fit_logreg(x: np.ndarray, y: np.ndarray) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=500, random_state=0)  # lbfgs draws nothing; seeded all the same
    with warnings.catch_warnings():  # a baseline that is not fully converged is still a fair baseline
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    return {"coef": model.coef_[0].astype(float).tolist(), "intercept": float(model.intercept_[0])}


def fit_baselines(train: TableSet, val: TableSet, cardinalities: list[int], rule: dict) -> dict:
    """name -> its parameters and the threshold chosen on validation by `rule` (the model's rule)."""
    x_train = linear_inputs(train.numeric, train.categorical, cardinalities)
    x_val = linear_inputs(val.numeric, val.categorical, cardinalities)
    y_train, y_val = train.labels.numpy(), val.labels.numpy()
    fitted = {
        "logistic_regression": _fit_logreg(x_train, y_train),
        "gradient_boosting": fit_trees(x_train, y_train, x_val, y_val),
    }
    for name, params in fitted.items():
        chosen = choose_threshold(SCORERS[name](params, x_val), y_val, **rule) if len(val) else {}
        params["threshold"] = chosen.get("threshold", 0.5)
    return fitted


def predictors(state: dict, cardinalities: list[int], threshold: float) -> dict:
    """name -> batch -> {'preds', 'target'}, with each baseline's decisions put on the model's `threshold`
    (ranking metrics unchanged), so precision, recall and F1 are each at the baseline's own threshold."""

    def prevalence(batch: dict) -> dict:
        n = len(batch["label"])
        scores = torch.full((n,), float(state["prevalence"]))
        return {"preds": on_threshold(scores, 0.0, threshold), "target": batch["label"]}

    def fitted(name: str):
        params = state[name]

        def predict(batch: dict) -> dict:
            inputs = linear_inputs(batch["numeric"], batch["categorical"], cardinalities)
            scores = torch.from_numpy(SCORERS[name](params, inputs))
            return {"preds": on_threshold(scores, params["threshold"], threshold), "target": batch["label"]}

        return predict

    return {"prevalence": prevalence, **{name: fitted(name) for name in FITTED if name in state}}
