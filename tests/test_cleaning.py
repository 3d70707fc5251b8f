"""The shared cleaning stage: each step, fitted on train only, saved as JSON and re-applied identically."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dlkit.config import resolve
from dlkit.data.cleaning import (
    CLEAN_OPTIONS,
    CleaningPipeline,
    binary_target,
    conflicting_labels,
    drop_exact_duplicates,
    drop_missing_labels,
    duplicate_groups,
)
from dlkit.data.column_kinds import column_types
from dlkit.data.features import Report
from dlkit.data.scaling import apply_scaler, fit_scaler
from dlkit.errors import UserError


def options(**changes) -> dict:
    return resolve(CLEAN_OPTIONS, None, changes)


def table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """One column of every kind, with missing values, outliers and rare categories."""
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3, 1.2, n)
    amount[rng.random(n) < 0.05] = np.nan
    score = rng.normal(50, 5, n)
    score[:3] = [1e6, -1e6, 5e5]
    city = rng.choice(["paris", "lyon", "nice"], n).astype(object)
    city[:4] = ["brest", "brest", "metz", None]
    return pd.DataFrame(
        {
            "row_id": [f"r{i:05d}" for i in range(n)],
            "amount": amount,
            "score": score,
            "visits": rng.poisson(3, n),
            "city": city,
            "shop": [f"s{int(v)}" for v in rng.zipf(1.3, n) % 200],
            "online": rng.choice(["yes", "no"], n),
            "when": pd.date_range("2024-01-01", periods=n, freq="3h").strftime("%Y-%m-%d %H:%M"),
            "note": [f"customer said item {i} arrived late again" for i in range(n)],
            "currency": "EUR",
            "label": rng.integers(0, 2, n),
        }
    )


def fit(frame: pd.DataFrame, **changes) -> CleaningPipeline:
    return CleaningPipeline.fit(frame, options(**changes), exclude=["label"])


def column(pipeline: CleaningPipeline, name: str) -> dict:
    return next(c for c in pipeline.columns if c["name"] == name)


def feature(pipeline: CleaningPipeline, frame: pd.DataFrame, name: str) -> np.ndarray:
    return pipeline.transform(frame).numeric[:, pipeline.feature_names.index(name)]


def test_column_types_are_inferred_and_overridden():
    frame = table()
    kinds = column_types(frame, [c for c in frame.columns if c != "label"], options(), "t")
    assert kinds == {
        "row_id": "id",
        "amount": "numeric",
        "score": "numeric",
        "visits": "numeric",
        "city": "categorical",
        "shop": "categorical",
        "online": "boolean",
        "when": "datetime",
        "note": "text",
        "currency": "constant",
    }
    kinds = column_types(
        frame, ["visits", "note"], options(types={"visits": "categorical", "note": "drop"}), "t"
    )
    assert kinds == {"visits": "categorical", "note": "drop"}
    pipeline = fit(frame)
    assert "row_id" not in pipeline.input_columns and "currency" not in pipeline.input_columns
    dropped = {e["step"]: e for e in pipeline.report}
    assert dropped["typed id"]["columns"] == ["row_id"] and "dropped" in dropped["typed constant"]["detail"]


def test_an_all_missing_column_is_refused_by_name():
    frame = table()
    frame["empty"] = np.nan
    with pytest.raises(UserError, match="column 'empty' .* no values at all") as err:
        fit(frame)
    assert "clean.types.empty=drop" in err.value.hint
    assert "empty" not in fit(frame, types={"empty": "drop"}).input_columns


def test_a_non_numeric_value_in_a_numeric_column_names_the_row():
    frame = table()
    frame["score"] = frame["score"].astype(object)
    frame.loc[17, "score"] = "n/a?"
    with pytest.raises(UserError, match=r"column 'score' .* row 18 holds 'n/a\?'"):
        fit(frame)
    pipeline = fit(table())
    later = table(seed=1)
    later["amount"] = later["amount"].astype(object)
    later.loc[5, "amount"] = "12,50"
    with pytest.raises(UserError, match="column 'amount' .* row 6 holds '12,50'"):
        pipeline.transform(later)


@pytest.mark.parametrize("strategy", ["median", "mean", "constant"])
def test_missing_numbers_are_imputed_with_an_indicator(strategy):
    frame = table()
    pipeline = fit(
        frame, impute_numeric=strategy, fill_value=-1.0, skew_threshold=None, outliers="none", scaling="none"
    )
    observed = frame["amount"].dropna()
    expected = {"median": observed.median(), "mean": observed.mean(), "constant": -1.0}[strategy]
    assert column(pipeline, "amount")["fill"] == pytest.approx(expected, rel=1e-5)
    missing = frame["amount"].isna().to_numpy()
    assert np.allclose(feature(pipeline, frame, "amount")[missing], expected, rtol=1e-5)
    assert (feature(pipeline, frame, "amount__missing") == missing).all()
    assert "amount__missing" not in fit(frame, missing_indicators=False).feature_names


def test_missing_categories_become_their_own_category_or_the_most_frequent():
    frame = table()
    assert column(fit(frame), "city")["fill"] == "__missing__"
    assert column(fit(frame, impute_categorical="most_frequent"), "city")["fill"] == frame["city"].mode()[0]


def test_rows_without_label_are_dropped_and_counted():
    frame = table()
    frame.loc[[3, 8], "label"] = np.nan
    kept, dropped = drop_missing_labels(frame, "label")
    assert dropped == 2 and len(kept) == len(frame) - 2 and kept["label"].notna().all()


def test_exact_duplicates_are_removed_and_conflicting_labels_counted():
    frame = table()
    flipped = frame.iloc[[0, 1]].assign(label=lambda f: 1 - f["label"])
    frame = pd.concat([frame, frame.iloc[[5, 6, 7]], flipped], ignore_index=True)
    deduped, removed = drop_exact_duplicates(frame)
    assert removed == 3 and len(deduped) == len(frame) - 3
    features = [c for c in frame.columns if c != "label"]
    assert conflicting_labels(deduped, "label", features) == 4  # two pairs disagree


def test_identical_rows_are_kept_by_default_and_grouped():
    assert options()["drop_duplicates"] is False  # repeated discrete rows are real observations
    frame = table().drop(columns=["row_id", "label"])
    assert duplicate_groups(frame, np.ones(len(frame), dtype=bool)) is None  # nothing to group
    frame = pd.concat([frame, frame.iloc[[5, 5, 9]]], ignore_index=True)
    pool = np.ones(len(frame), dtype=bool)
    groups = duplicate_groups(frame, pool)
    assert groups[5] == groups[-2] == groups[-3] and groups[9] == groups[-1] and groups[5] != groups[9]
    assert len(set(groups.tolist())) == len(frame) - 3
    pool[-3:] = False  # only the rows to be split count
    assert duplicate_groups(frame, pool) is None


@pytest.mark.parametrize("method", ["iqr", "zscore", "none"])
def test_outliers_are_clipped_to_bounds_learnt_on_train(method):
    train, later = table(), table(seed=1)
    later.loc[0, "score"] = 1e9
    pipeline = fit(train, outliers=method, skew_threshold=None, scaling="none")
    clip = column(pipeline, "score")["clip"]
    values = feature(pipeline, later, "score")
    if method == "none":
        assert clip is None and values[0] == pytest.approx(1e9)
        return
    low, high = clip
    observed = train["score"].to_numpy()
    if method == "iqr":
        q1, q3 = np.percentile(observed, [25, 75])
        assert [low, high] == pytest.approx([q1 - 3 * (q3 - q1), q3 + 3 * (q3 - q1)])
        assert 20 < low < 50 < high < 80  # the planted +-1e6 did not widen them
    else:
        assert [low, high] == pytest.approx(
            [observed.mean() - 4 * observed.std(), observed.mean() + 4 * observed.std()]
        )
    assert values.max() == pytest.approx(high) and values[0] == pytest.approx(high)
    assert any(e["step"] == f"outliers clipped ({method})" and e["count"] == 3 for e in pipeline.report)


def test_rare_categories_are_grouped_and_unseen_ones_map_to_other():
    train = table()
    pipeline = fit(train, rare_min_count=5)
    cats = column(pipeline, "city")["categories"]
    assert "brest" not in cats and "metz" not in cats and "other" in cats
    later = table(seed=1)
    later.loc[0, "city"] = "marseille"
    assert feature(pipeline, later, "city=other")[0] == 1.0
    assert feature(pipeline, train, "city=other")[:3].tolist() == [1.0, 1.0, 1.0]


def test_datetime_parts_become_features():
    frame = table()
    pipeline = fit(frame, scaling="none")
    stamps = pd.to_datetime(frame["when"])
    assert np.array_equal(feature(pipeline, frame, "when__hour"), stamps.dt.hour.to_numpy(dtype=np.float32))
    assert np.array_equal(
        feature(pipeline, frame, "when__weekday"), stamps.dt.day_of_week.to_numpy(dtype=np.float32)
    )
    assert {"when__hour", "when__weekday", "when__month"} <= set(pipeline.feature_names)
    assert "when__day" in fit(frame, datetime_parts=["day"]).feature_names
    with pytest.raises(UserError, match="unknown part 'week'"):
        fit(frame, datetime_parts=["week"])


def test_skewed_positive_columns_are_log_transformed():
    frame = table()
    pipeline = fit(frame, outliers="none", scaling="none")
    assert column(pipeline, "amount")["log"] and not column(pipeline, "score")["log"]
    present = frame["amount"].notna().to_numpy()
    assert np.allclose(
        feature(pipeline, frame, "amount")[present], np.log1p(frame["amount"][present]), rtol=1e-5
    )
    assert not column(fit(frame, skew_threshold=None), "amount")["log"]


def test_high_cardinality_categoricals_are_frequency_encoded():
    frame = table()
    pipeline = fit(frame, max_categories=5, rare_min_count=2, scaling="none")
    shop = column(pipeline, "shop")
    assert shop["encoding"] == "frequency" and "shop__frequency" in pipeline.feature_names
    top = frame["shop"].value_counts().index[0]
    row = int(np.flatnonzero(frame["shop"] == top)[0])
    assert feature(pipeline, frame, "shop__frequency")[row] == pytest.approx((frame["shop"] == top).mean())
    assert column(pipeline, "city")["encoding"] == "onehot"


def test_categoricals_as_one_hot_or_embedding_indices():
    frame = table()
    onehot = fit(frame)
    block = onehot.transform(frame).numeric[:, [n.startswith("city=") for n in onehot.feature_names]]
    assert (block.sum(axis=1) == 1).all()
    embedded = fit(frame, categorical="embedding")
    features = embedded.transform(frame)
    assert not any(n.startswith("city=") for n in embedded.feature_names)
    assert features.categorical.shape == (len(frame), len(embedded.cardinalities))
    cats = column(embedded, "city")["categories"]
    assert features.categorical[10, 0] == cats.index(frame.loc[10, "city"]) + 1  # 0 is kept for unseen


def test_free_text_becomes_its_length():
    frame = table()
    assert np.array_equal(
        feature(fit(frame, scaling="none", outliers="none", skew_threshold=None), frame, "note__length"),
        frame["note"].str.len().to_numpy(dtype=np.float32),
    )


@pytest.mark.parametrize("method", ["standard", "robust", "minmax"])
def test_scaling_is_fitted_on_train_only(method):
    train = table()
    later = train.assign(visits=train["visits"] + 10)
    pipeline = fit(train, scaling=method, outliers="none")
    on_train, on_later = feature(pipeline, train, "visits"), feature(pipeline, later, "visits")
    raw = train["visits"].to_numpy(dtype=np.float64)
    expected = {
        "standard": (raw.mean(), raw.std()),
        "robust": (np.median(raw), np.subtract(*np.percentile(raw, [75, 25]))),
        "minmax": (raw.min(), raw.max() - raw.min()),
    }[method]
    assert column(pipeline, "visits")["scale"] == pytest.approx(list(expected))
    assert np.allclose(on_later - on_train, 10 / expected[1], atol=1e-4)  # later data shifted, not re-fitted


def test_scaler_params_are_two_numbers_and_degenerate_spread_is_one():
    values = np.array([2.0, 2.0, 2.0], dtype=np.float32)
    assert fit_scaler(values, "standard") == [2.0, 1.0]
    assert apply_scaler(values.copy(), [2.0, 1.0]).tolist() == [0.0, 0.0, 0.0]


def test_fitted_pipeline_is_json_and_reapplies_identically_in_chunks():
    train, later = table(), table(seed=2)
    pipeline = fit(train)
    state = json.loads(json.dumps(pipeline.to_state()))
    reloaded = CleaningPipeline.from_state(state)
    whole = pipeline.transform(later)
    again = reloaded.transform(later)
    chunks = [reloaded.transform(later.iloc[i : i + 97]) for i in range(0, len(later), 97)]
    assert np.array_equal(whole.numeric, again.numeric)
    assert np.array_equal(whole.numeric, np.concatenate([c.numeric for c in chunks]))
    assert reloaded.feature_names == pipeline.feature_names and whole.numeric.dtype == np.float32
    assert not np.isnan(whole.numeric).any()


def test_missing_input_column_is_named():
    pipeline = fit(table())
    with pytest.raises(UserError, match="has no column 'city', which the model was trained on"):
        pipeline.transform(table().drop(columns=["city"]), "'new.csv'")


def test_binary_target_picks_the_positive_class_and_refuses_more_than_two_values():
    labels, classes = binary_target(pd.Series([0, 1, 1, 0, 0], name="y"), None, "t")
    assert classes == ["0", "1"] and labels.tolist() == [0, 1, 1, 0, 0]
    _, classes = binary_target(pd.Series(["ok", "ok", "chargeback"], name="y"), None, "t")
    assert classes == ["ok", "chargeback"]  # no yes/true/1 word: the rarer value is positive
    with pytest.raises(UserError, match="label column 'y' in t has 3 values"):
        binary_target(pd.Series(["a", "b", "c"], name="y"), None, "t")
    with pytest.raises(UserError, match="data.positive='maybe'"):
        binary_target(pd.Series(["a", "b"], name="y"), "maybe", "t")


def test_report_lists_what_was_done_to_which_columns():
    report = Report()
    report.add("exact duplicate rows removed", "all columns", 3)
    pipeline = CleaningPipeline.fit(table(), options(), ["label"], report=report)
    steps = {e["step"] for e in pipeline.report}
    assert {
        "exact duplicate rows removed",
        "typed numeric",
        "missing values imputed",
        "log1p (skewed)",
        "datetime parts",
        "one-hot encoded",
        "scaled (standard, fitted on train)",
    } <= steps
    json.dumps(pipeline.report)
