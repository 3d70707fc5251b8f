"""The `clean.*` keys of the shared cleaning stage (`dlkit.data.cleaning`) and the choices they accept.

Apart from the cleaning code (pandas) so that a recipe's light config module, and with it `dlkit info`,
reads them without importing pandas (see dlkit/registry.py).
"""

from __future__ import annotations

from dlkit.config import opt

DATETIME_PARTS = ("hour", "weekday", "month", "day", "year")
SCALING_METHODS = ("standard", "robust", "minmax", "none")

CLEAN_OPTIONS = {
    "types": opt(
        {},
        "column -> type, overriding the inferred one (numeric, categorical, boolean, datetime, "
        "text, drop), e.g. {zip: categorical, notes: drop}",
        type=dict,
    ),
    "impute_numeric": opt("median", "fill for missing numbers", ["median", "mean", "constant"]),
    "fill_value": opt(0.0, "the fill when impute_numeric=constant"),
    "impute_categorical": opt(
        "constant",
        "fill for missing categories: constant = a 'missing' category of its own",
        ["constant", "most_frequent"],
    ),
    "missing_indicators": opt(True, "add a 0/1 feature per column that had missing values in train"),
    "outliers": opt(
        "iqr", "clip (winsorize) numbers to bounds learnt on train, or leave them", ["iqr", "zscore", "none"]
    ),
    "outlier_iqr_k": opt(3.0, "iqr bounds: quartiles -/+ k x IQR (3 = Tukey's 'far out')"),
    "outlier_z": opt(4.0, "zscore bounds: mean -/+ z x standard deviation"),
    "skew_threshold": opt(
        1.0, "log1p non-negative columns whose skewness is above this (null = never)", nullable=True
    ),
    "rare_min_count": opt(10, "categories seen fewer times in train are grouped into 'other'"),
    "max_categories": opt(30, "categoricals with more categories (after grouping) are frequency-encoded"),
    "categorical": opt(
        "onehot",
        "encoding of the other categoricals: one-hot features or learned embeddings",
        ["onehot", "embedding"],
    ),
    "datetime_parts": opt(
        ["hour", "weekday", "month"],
        f"parts of datetime columns used as features ({', '.join(DATETIME_PARTS)})",
    ),
    "scaling": opt("standard", "scaling of numeric features, fitted on train only", list(SCALING_METHODS)),
    "id_unique_fraction": opt(
        0.95, "text columns with at least this share of distinct values are id-like and dropped"
    ),
    "drop_duplicates": opt(
        False,
        "remove exact duplicate rows before splitting (false: keep them, as real repeated observations, "
        "with every group of rows with identical features inside one split)",
    ),
}
