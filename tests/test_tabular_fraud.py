"""tabular-fraud: train -> evaluate -> predict on the sample transactions, the threshold, the imbalance
options, `dlkit check`, and every bad input of the issue (exit 2, a message naming the thing)."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from dlkit import console, jobs

SAMPLE = ROOT / "sample_data" / "tabular_fraud" / "transactions.csv"
FAST = ["train.epochs=2", "train.log_every=5"]


def _generator():
    spec = importlib.util.spec_from_file_location("make_tf", ROOT / "sample_data" / "make_tabular_fraud.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """3,000 messy transactions at 5% fraud, made by the sample-data generator."""
    out = tmp_path_factory.mktemp("small_fraud")
    return _generator().generate(out, seed=1, rows=3000, new_rows=40, prevalence=0.05)["transactions"]


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory) -> tuple[Path, dict]:
    """The demo as shipped: default config on the bundled sample data."""
    run = tmp_path_factory.mktemp("fraud_runs") / "sample"
    console.set_quiet(True)
    try:
        result = jobs.train("tabular-fraud", out=run)
    finally:
        console.set_quiet(False)
    return run, result


@pytest.fixture
def quiet():
    """Jobs called directly print nothing (the `cli` fixture resets this for CLI calls)."""
    console.set_quiet(True)
    yield
    console.set_quiet(False)


def _expect_user_error(res, *fragments):
    assert res.code == 2, (res.code, res.err)
    assert "Traceback" not in res.err
    for f in fragments:
        assert f in res.err, res.err


# --- the model on the sample data ---------------------------------------------------------------
def test_sample_data_auprc_far_above_prevalence_and_at_least_logistic_regression(sample_run):
    run, result = sample_run
    metrics, baseline = result["metrics"], result["baseline"]
    assert result["monitor"] == "average_precision" and result["beats_baseline"] is True
    assert metrics["average_precision"] > 5 * baseline["average_precision"]
    assert metrics["average_precision"] >= baseline["logreg_average_precision"]
    assert (
        baseline["recall"] == 1.0 and baseline["auroc"] == 0.5
    )  # prevalence: score everyone alike, flag all
    assert {"auroc", "precision", "recall", "f1", "recall_at_precision_90", "threshold"} <= set(metrics)
    assert sum(map(sum, metrics["confusion_matrix"])) == result["examples"]
    assert json.loads((run / "eval.json").read_text())["metrics"] == metrics


def test_threshold_chosen_on_validation_is_stored_and_used(sample_run):
    run, result = sample_run
    state = json.loads((run / "preprocess/state.json").read_text())
    assert 0 < state["threshold"] < 1 and state["threshold_choice"]["rule"] == "max_f1"
    assert result["metrics"]["threshold"] == pytest.approx(state["threshold"])
    (tn, fp), (fn, tp) = result["metrics"]["confusion_matrix"]
    assert result["metrics"]["precision"] == pytest.approx(tp / (tp + fp))


def test_state_holds_the_fitted_cleaning_as_json(sample_run):
    run, _ = sample_run
    state = json.loads((run / "preprocess/state.json").read_text())
    steps = {e["step"]: e for e in state["cleaning_report"]}
    assert steps["exact duplicate rows removed"]["count"] == 200
    assert steps["typed id"]["columns"] == ["transaction_id"] and "currency" in state["dropped_columns"]
    assert steps["frequency encoded"]["columns"] == ["merchant_id"]
    assert "timestamp__hour" in state["features"] and "amount__missing" in state["features"]
    assert state["counts"]["train"]["fraud"] > 150 and 0.01 < state["prevalence"] < 0.02


def test_evaluate_rebuilds_everything_from_the_run(cli, sample_run, tmp_path):
    run, result = sample_run
    res = cli("evaluate", run, "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["metrics"] == result["metrics"]
    labelled = tmp_path / "more.csv"
    pd.read_csv(SAMPLE).iloc[-3000:].to_csv(labelled, index=False)
    res = cli("evaluate", run, "--data", labelled, "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["examples"] == 3000


def test_predict_returns_the_same_rows_with_score_and_is_fraud(cli, sample_run, tmp_path):
    run, _ = sample_run
    new = SAMPLE.parent / "new_transactions.csv"
    out = tmp_path / "scored.csv"
    res = cli("predict", run, new, "--output", out)
    assert res.code == 0, res.err
    rows = list(csv.DictReader(out.open()))
    original = list(csv.DictReader(new.open()))
    assert len(rows) == len(original)
    assert list(rows[0]) == list(original[0]) + ["score", "is_fraud"]
    assert rows[3]["transaction_id"] == original[3]["transaction_id"]
    threshold = json.loads((run / "preprocess/state.json").read_text())["threshold"]
    assert all((float(r["score"]) > threshold) == (r["is_fraud"] == "True") for r in rows)
    assert any(r["is_fraud"] == "True" for r in rows)


def test_predict_in_chunks_and_from_parquet_gives_the_same_scores(cli, sample_run, tmp_path, monkeypatch):
    import dlkit_recipes.tabular_fraud as recipe

    run, _ = sample_run
    new = SAMPLE.parent / "new_transactions.csv"
    whole = [json.loads(line) for line in cli("predict", run, new).out.splitlines()]
    monkeypatch.setattr(recipe, "PREDICT_CHUNK_ROWS", 7)
    parquet = tmp_path / "new.parquet"
    pd.read_csv(new).to_parquet(parquet)
    for source in (new, parquet):
        res = cli("predict", run, source)
        assert res.code == 0, res.err
        records = [json.loads(line) for line in res.out.splitlines()]
        assert [r["score"] for r in records] == [r["score"] for r in whole]
    assert whole[0]["account_age_days"] is None or isinstance(whole[0]["account_age_days"], (int, float))


def test_predict_input_missing_a_training_column_is_named(cli, sample_run, tmp_path):
    run, _ = sample_run
    bad = tmp_path / "no_country.csv"
    pd.read_csv(SAMPLE.parent / "new_transactions.csv").drop(columns=["country"]).to_csv(bad, index=False)
    _expect_user_error(cli("predict", run, bad), "no column 'country'", "trained on", "no_country.csv")


def test_predict_extra_columns_are_ignored_with_a_note(cli, sample_run, tmp_path):
    run, _ = sample_run
    extra = tmp_path / "extra.csv"
    pd.read_csv(SAMPLE.parent / "new_transactions.csv").assign(cashier="bob").to_csv(extra, index=False)
    res = cli("predict", run, extra)
    assert res.code == 0, res.err
    assert "ignored column(s) the model was not trained on: cashier" in res.err
    assert json.loads(res.out.splitlines()[0])["cashier"] == "bob"


def test_labelled_input_keeps_its_label_beside_the_prediction(cli, sample_run, tmp_path):
    run, _ = sample_run
    labelled = tmp_path / "labelled.csv"
    pd.read_csv(SAMPLE).head(50).to_csv(labelled, index=False)
    first = json.loads(cli("predict", run, labelled).out.splitlines()[0])
    assert first["is_fraud_input"] in (0, 1) and isinstance(first["is_fraud"], bool)


# --- threshold logic ---------------------------------------------------------------------------
def test_threshold_rules():
    from dlkit_recipes.tabular_fraud import choose_threshold

    scores = np.array([0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    labels = np.array([0, 0, 0, 1, 0, 0, 1, 1, 0, 1])
    best = choose_threshold(scores, labels, "max_f1", 0.9)
    flagged = scores > best["threshold"]
    f1 = 2 * (flagged & (labels == 1)).sum() / (flagged.sum() + labels.sum())
    assert f1 == pytest.approx(best["val_f1"]) == 0.75 and best["threshold"] == pytest.approx(0.55)
    precise = choose_threshold(scores, labels, "precision", 0.6)  # best recall with precision >= 0.6
    assert precise["threshold"] == pytest.approx(0.55) and precise["val_recall"] == 0.75
    sensitive = choose_threshold(scores, labels, "recall", 1.0)
    assert sensitive["threshold"] == pytest.approx(0.25) and sensitive["val_recall"] == 1.0
    unreachable = choose_threshold(scores, labels, "precision", 1.01)
    assert "used the best F1" in unreachable["note"] and unreachable["threshold"] == best["threshold"]
    assert choose_threshold(scores, np.zeros(10, int), "max_f1", 0.9)["threshold"] == 0.5


def test_target_precision_rule_and_a_split_column(small, tmp_path, quiet):
    frame = pd.read_csv(small).drop_duplicates()
    frame["split"] = np.where(frame.index % 5 == 0, "test", np.where(frame.index % 5 == 1, "val", "train"))
    with_splits = tmp_path / "with_splits.csv"
    frame.to_csv(with_splits, index=False)
    result = jobs.train(
        "tabular-fraud",
        data=str(with_splits),
        out=tmp_path / "run",
        overrides=FAST + ["threshold.rule=precision", "threshold.target=0.5"],
    )
    state = json.loads((tmp_path / "run/preprocess/state.json").read_text())
    choice = state["threshold_choice"]
    assert choice["rule"] == "precision >= 0.5"
    assert choice["val_precision"] >= 0.5 or "note" in choice
    assert result["metrics"]["threshold"] == pytest.approx(state["threshold"])
    assert state["counts"]["test"]["rows"] == (frame["split"] == "test").sum() == result["examples"]
    assert "split" not in " ".join(state["features"])


# --- imbalance options -------------------------------------------------------------------------
@pytest.mark.parametrize("imbalance", ["weighted_loss", "sampling", "focal", "none"])
def test_imbalance_options_set_loss_and_sampling_weights(small, imbalance):
    from dlkit_recipes.tabular_fraud import TabularFraud

    from dlkit.modeling import FocalLoss

    cfg = jobs.build_config(TabularFraud, None, [f"imbalance={imbalance}"])
    recipe = TabularFraud(cfg)
    data = recipe.load_data(small)
    recipe.build_model(data.state)
    positives = data.train.labels.numpy() == 1
    expected_weight = np.sqrt((~positives).sum() / positives.sum())
    assert data.state["pos_weight"] == pytest.approx(expected_weight, rel=1e-3)
    if imbalance == "sampling":
        weights = np.array(data.train_weights)
        assert np.allclose(weights[positives], data.state["pos_weight"]) and (weights[~positives] == 1).all()
    else:
        assert data.train_weights is None
    assert isinstance(recipe.loss, FocalLoss) == (imbalance == "focal")
    weight = getattr(recipe.loss, "weight", None)
    assert (weight is not None and float(weight[1]) == pytest.approx(data.state["pos_weight"])) == (
        imbalance == "weighted_loss"
    )


@pytest.mark.parametrize("imbalance", ["sampling", "focal"])  # weighted_loss trains in `sample_run`
def test_sampling_and_focal_loss_learn(small, tmp_path, imbalance, quiet):
    result = jobs.train(
        "tabular-fraud", data=str(small), out=tmp_path / "run", overrides=FAST + [f"imbalance={imbalance}"]
    )
    assert result["metrics"]["auroc"] > 0.6


def test_embeddings_and_other_cleaning_options_train(small, tmp_path, quiet):
    result = jobs.train(
        "tabular-fraud",
        data=str(small),
        out=tmp_path / "run",
        overrides=FAST
        + [
            "clean.categorical=embedding",
            "clean.scaling=robust",
            "clean.outliers=zscore",
            "model.depth=3",
            "model.batch_norm=false",
            "model.activation=gelu",
            "model.init=kaiming",
        ],
    )
    state = json.loads((tmp_path / "run/preprocess/state.json").read_text())
    assert not any(f.startswith("merchant_category=") for f in state["features"])
    assert result["metrics"]["auroc"] > 0.6


# --- dlkit check ---------------------------------------------------------------------------------
def test_check_finds_each_planted_problem_in_the_sample_data(cli):
    res = cli("check", "tabular-fraud", "--json")
    assert res.code == 0, res.err
    found = {f["check"]: f for f in json.loads(res.out)["findings"]}
    assert found["label column"]["severity"] == "ok"
    assert (
        "amount 206" in found["missing values"]["message"] and "device" in found["missing values"]["message"]
    )
    assert (
        found["duplicates"]["severity"] == "warning"
        and "200 exact duplicate" in found["duplicates"]["message"]
    )
    assert found["conflicting labels"]["severity"] == "warning"
    assert "currency" in found["constant columns"]["message"]
    assert (
        "amount" in found["outliers"]["message"] and "distance_from_home_km" in found["outliers"]["message"]
    )
    assert "id: transaction_id" in found["column types"]["message"]
    assert "train: 0 " in found["class balance"]["message"] and found["class balance"]["severity"] == "ok"
    assert "train/test leakage" in found


def test_check_reports_rows_shared_by_train_and_test_files(cli, small, tmp_path):
    frame = pd.read_csv(small).drop_duplicates()
    folder = tmp_path / "splits"
    folder.mkdir()
    frame.iloc[:2000].to_csv(folder / "train.csv", index=False)
    pd.concat([frame.iloc[2000:], frame.iloc[:25]]).to_csv(folder / "test.csv", index=False)
    res = cli("check", "tabular-fraud", "--data", folder, "--json")
    assert res.code == 0, res.err
    leak = {f["check"]: f for f in json.loads(res.out)["findings"]}["train/test leakage"]
    assert leak["severity"] == "warning" and "test row(s)" in leak["message"]
    assert int(leak["message"].split()[0]) >= 25  # and the rows whose label was flipped


def test_check_names_an_unreadable_file(cli, small, tmp_path):
    folder = tmp_path / "splits"
    folder.mkdir()
    pd.read_csv(small).to_csv(folder / "train.csv", index=False)
    (folder / "test.csv").write_bytes(b"amount,is_fraud\n\xff\xfe1,0\n")
    res = cli("check", "tabular-fraud", "--data", folder, "--json")
    _expect_user_error(res, "fatal problem")
    unreadable = [f for f in json.loads(res.out)["findings"] if f["severity"] == "fatal"]
    assert "test.csv" in unreadable[0]["message"] and "data.encoding" in unreadable[0]["fix"]


def test_check_exits_2_on_a_fatal_problem(cli, small, tmp_path):
    bad = tmp_path / "bad.csv"
    pd.read_csv(small).assign(amount=lambda f: f["amount"].astype(object).where(f.index != 9, "lots")).to_csv(
        bad, index=False
    )
    res = cli("check", "tabular-fraud", "--data", bad)
    _expect_user_error(res, "fatal problem", "non-numeric values")


# --- bad input: exit 2, a message naming the thing -------------------------------------------------
def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_label_column_missing_names_the_columns_there_are(cli, small, tmp_path):
    bad = tmp_path / "nolabel.csv"
    pd.read_csv(small).rename(columns={"is_fraud": "fraud_flag"}).to_csv(bad, index=False)
    _expect_user_error(
        cli("train", "tabular-fraud", "--data", bad),
        "no label column 'is_fraud'",
        "fraud_flag",
        "transaction_id",
    )
    res = cli("check", "tabular-fraud", "--data", bad, "--json")
    _expect_user_error(res, "fatal problem")
    label = {f["check"]: f for f in json.loads(res.out)["findings"]}["label column"]
    assert label["severity"] == "fatal" and "fraud_flag" in label["message"] and "data.label" in label["fix"]


def test_label_with_more_than_two_values(cli, small, tmp_path):
    bad = tmp_path / "three.csv"
    pd.read_csv(small).assign(is_fraud=lambda f: f.index % 3).to_csv(bad, index=False)
    _expect_user_error(
        cli("train", "tabular-fraud", "--data", bad), "label column 'is_fraud'", "has 3 values", "exactly two"
    )


def test_an_all_missing_column(cli, small, tmp_path):
    bad = tmp_path / "empty_col.csv"
    pd.read_csv(small).assign(promo_code=np.nan).to_csv(bad, index=False)
    _expect_user_error(
        cli("train", "tabular-fraud", "--data", bad),
        "column 'promo_code'",
        "no values at all",
        "clean.types.promo_code=drop",
    )


def test_a_non_numeric_value_in_a_numeric_column(cli, small, tmp_path):
    bad = tmp_path / "text_in_numbers.csv"
    frame = pd.read_csv(small)
    frame["amount"] = frame["amount"].astype(object)
    frame.loc[41, "amount"] = "12 EUR"
    frame.to_csv(bad, index=False)
    _expect_user_error(
        cli("train", "tabular-fraud", "--data", bad),
        "column 'amount'",
        "row 42",
        "'12 EUR'",
        "clean.types.amount=categorical",
    )


def test_an_empty_file(cli, tmp_path):
    _expect_user_error(cli("train", "tabular-fraud", "--data", _write(tmp_path, "empty.csv", "")), "is empty")
    _expect_user_error(
        cli("check", "tabular-fraud", "--data", _write(tmp_path, "header.csv", "a,is_fraud\n")),
        "no data rows",
    )


def test_a_csv_with_ragged_rows(cli, tmp_path):
    text = "amount,country,is_fraud\n" + "".join(f"{i},DE,{i % 2}\n" for i in range(20)) + "5,DE,0,extra\n"
    _expect_user_error(
        cli("train", "tabular-fraud", "--data", _write(tmp_path, "ragged.csv", text)),
        "line 22 has 4 fields",
        "header has 3",
    )


def test_unknown_model_and_split_values(cli, small, tmp_path):
    _expect_user_error(cli("train", "tabular-fraud", "--data", small, "model.name=xgboost"), "model.name=mlp")
    bad = tmp_path / "splits.csv"
    pd.read_csv(small).assign(split="train").assign(
        split=lambda f: f["split"].where(f.index != 4, "holdout")
    ).to_csv(bad, index=False)
    _expect_user_error(cli("train", "tabular-fraud", "--data", bad), "row 5", "'holdout'", "train, val, test")
