"""Decision trees as plain JSON node tables, walked in numpy: how a recipe keeps a tree baseline (boosted
trees, a random forest) in its run's state and re-scores it at `dlkit evaluate` time without a pickle.

A table is {'feature', 'threshold', 'left', 'right', 'value'}, one entry per node: a row goes left when
its feature is <= the node's threshold; a leaf has feature -1 and carries the value the model adds (a
boosted tree's log-odds step) or averages (a forest tree's mean or positive-class share). Rows have no
missing values and no categorical splits (categoricals arrive one-hot), so that rule is the whole tree.
"""

from __future__ import annotations

import numpy as np

DIGITS = 6  # leaf values and thresholds are rounded to this many decimals: the state stays small


def hist_gradient_boosting_table(nodes: np.ndarray) -> dict:
    """One tree of scikit-learn's HistGradientBoosting* (`model._predictors[i][0].nodes`); its leaf
    values already include the learning rate."""
    leaf = nodes["is_leaf"].astype(bool)
    return {
        "feature": np.where(leaf, -1, nodes["feature_idx"]).astype(int).tolist(),
        "threshold": nodes["num_threshold"].astype(float).tolist(),
        "left": nodes["left"].astype(int).tolist(),
        "right": nodes["right"].astype(int).tolist(),
        "value": nodes["value"].astype(float).tolist(),
    }


def decision_tree_table(tree, positive_share: bool) -> dict:
    """One fitted scikit-learn decision tree (`estimator.tree_`, e.g. of a random forest). Leaves keep the
    mean target (regression) or, with `positive_share`, the share of class 1 (binary classification)."""
    leaf = tree.children_left < 0
    value = tree.value[:, 0, :]
    if positive_share:
        value = value[:, 1] / np.maximum(value.sum(axis=1), 1e-12)
    else:
        value = value[:, 0]
    return {
        "feature": np.where(leaf, -1, tree.feature).astype(int).tolist(),
        "threshold": np.round(np.where(leaf, 0.0, tree.threshold), DIGITS).tolist(),
        "left": np.where(leaf, 0, tree.children_left).astype(int).tolist(),
        "right": np.where(leaf, 0, tree.children_right).astype(int).tolist(),
        "value": np.round(value, DIGITS).tolist(),
    }


def leaf_values(table: dict, inputs: np.ndarray) -> np.ndarray:
    """The value of the leaf each row lands in; all rows walk down the tree together."""
    x = inputs.astype(np.float64, copy=False)
    rows = np.arange(len(x))
    feature, threshold = np.asarray(table["feature"]), np.asarray(table["threshold"])
    left, right = np.asarray(table["left"]), np.asarray(table["right"])
    node = np.zeros(len(x), dtype=np.int64)
    inner = feature[node] >= 0
    while inner.any():
        at = node[inner]
        go_left = x[rows[inner], feature[at]] <= threshold[at]
        node[inner] = np.where(go_left, left[at], right[at])
        inner = feature[node] >= 0
    return np.asarray(table["value"])[node]
