"""tabular-fraud: train -> evaluate -> predict on the sample transactions, the baselines, the threshold,
the layouts (one table, a split column, split files, split folders), the imbalance options,
`dlkit check`, and every bad input of the issue (exit 2, a message naming the thing)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import ROOT, expect_user_error, load_sample_generator, train_ok

from dlkit import console, jobs
from dlkit.report.shared import kept_step

SAMPLE = ROOT / "sample_data" / "tabular_fraud" / "transactions.csv"
NEW = SAMPLE.parent / "new_transactions.csv"
# smoke runs: two epochs, at the width a sample-sized table gets (auto gives a few thousand rows 32 units)
FAST = ["train.epochs=2", "train.log_every=5", "model.width=128"]
BASELINES = ("prevalence", "logistic_regression", "gradient_boosting")


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """3,000 messy transactions at 5% fraud, made by the sample-data generator."""
    out = tmp_path_factory.mktemp("small_fraud")
    generator = load_sample_generator("tabular_fraud")
    return generator.generate(out, seed=1, rows=3000, new_rows=40, prevalence=0.05)["transactions"]


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


def _recipe(*overrides: str):
    from dlkit_recipes.tabular_fraud import TabularFraud

    return TabularFraud(jobs.build_config(TabularFraud, None, list(overrides)))


def _state(run: Path) -> dict:
    return json.loads((run / "preprocess/state.json").read_text())


# --- the model and its baselines on the sample data ------------------------------------------------
def test_sample_data_auprc_beats_prevalence_and_logistic_regression(sample_run):
    run, result = sample_run
    metrics, baselines = result["metrics"], result["baselines"]
    assert result["monitor"] == "average_precision" and set(baselines) == set(BASELINES)
    strongest = max(baselines, key=lambda name: baselines[name]["average_precision"])
    assert result["strongest_baseline"] == strongest
    assert result["beats_baseline"] is (
        metrics["average_precision"] > baselines[strongest]["average_precision"]
    )
    assert (
        baselines["gradient_boosting"]["average_precision"] > 5 * baselines["prevalence"]["average_precision"]
    )
    assert metrics["average_precision"] > 5 * baselines["prevalence"]["average_precision"]
    assert metrics["average_precision"] >= baselines["logistic_regression"]["average_precision"]
    assert metrics["auroc"] > baselines["logistic_regression"]["auroc"] > 0.8
    prevalence = baselines["prevalence"]  # every row scored alike and flagged
    assert prevalence["recall"] == 1.0 and prevalence["auroc"] == 0.5
    for scores in baselines.values():
        assert set(scores) == set(metrics) - {"loss"}
    assert {"auroc", "precision", "recall", "f1", "recall_at_precision_90"} <= set(metrics)
    assert sum(map(sum, metrics["confusion_matrix"])) == result["examples"]
    saved = json.loads((run / "eval.json").read_text())
    assert saved["metrics"] == metrics and saved["baselines"] == baselines
    assert "logreg" not in json.dumps(saved)


def test_the_best_checkpoint_is_the_lowest_validation_loss_and_the_verdict_stays_on_auprc(sample_run):
    run, result = sample_run
    checks = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    checks = [c for c in checks if "val_loss" in c]
    lowest = min(checks, key=lambda c: c["val_loss"])
    assert result["best_epoch"] == lowest["epoch"]
    assert max(c["val_average_precision"] for c in checks) > 0  # AUPRC is still measured at each check
    report = json.loads((run / "eval.json").read_text())
    assert report["monitor"] == "average_precision" and report["strongest_baseline"] in report["baselines"]
    # the report page circles the check training kept, not the best AUPRC
    kept = next(c for c in checks if c["epoch"] == result["best_epoch"])
    assert kept_step(checks, "loss", "min") == kept["step"]


def test_threshold_chosen_on_validation_is_stored_and_used(sample_run):
    run, result = sample_run
    state = _state(run)
    assert 0 < state["threshold"] < 1 and state["threshold_choice"]["rule"] == "max_f1"
    thresholds = result["details"]["thresholds"]
    assert thresholds["model"] == pytest.approx(state["threshold"])
    assert thresholds["logistic_regression"] == pytest.approx(state["logistic_regression"]["threshold"])
    assert result["details"]["threshold_source"] == "chosen on validation"
    for scores in (result["metrics"], result["baselines"]["logistic_regression"]):
        (tn, fp), (fn, tp) = scores["confusion_matrix"]
        assert scores["precision"] == pytest.approx(tp / (tp + fp))
        assert scores["recall"] == pytest.approx(tp / (tp + fn))


def test_logistic_regression_is_scored_at_its_own_threshold(sample_run):
    """The core scores a baseline with the model's metrics (at the model's threshold): the predictor's
    scores are moved so its own threshold lands there, without changing their order."""
    from dlkit_recipes.tabular_fraud import baselines
    from dlkit_recipes.tabular_fraud.threshold import on_threshold

    scores = torch.rand(2000, generator=torch.Generator().manual_seed(0))
    order = torch.argsort(scores)
    for own, model in ((0.1, 0.6), (0.7, 0.2), (0.35, 0.35)):
        moved = on_threshold(scores, own, model)
        assert torch.equal(moved > model, scores > own)
        # the order is kept: ascending scores stay ascending (two close float32 scores may meet)
        assert bool((moved[order].diff() >= 0).all())
    run, _ = sample_run
    state, recipe = _state(run), _recipe()
    data = recipe.load_data(SAMPLE, state)
    batch = data.test.__getitems__(list(range(len(data.test))))
    out = recipe.baselines(data)["logistic_regression"](batch)
    inputs = baselines.linear_inputs(batch["numeric"], batch["categorical"], [])
    logreg = state["logistic_regression"]
    own = baselines.logreg_scores(logreg, inputs) > logreg["threshold"]
    assert np.array_equal((out["preds"] > state["threshold"]).numpy(), own)


def test_state_holds_the_fitted_cleaning_and_the_baseline_as_json(sample_run):
    run, _ = sample_run
    state = _state(run)
    steps = {e["step"]: e for e in state["cleaning_report"]}
    assert steps["rows with identical features kept, each group in one split"]["count"] >= 200  # planted
    assert steps["typed id"]["columns"] == ["transaction_id"] and "currency" in state["dropped_columns"]
    assert steps["frequency encoded"]["columns"] == ["merchant_id"]
    assert "timestamp__hour" in state["features"] and "amount__missing" in state["features"]
    assert state["counts"]["train"]["fraud"] > 150 and 0.01 < state["prevalence"] < 0.02
    assert len(state["logistic_regression"]["coef"]) == len(state["features"])  # one-hot: one per feature
    trees = state["gradient_boosting"]["trees"]  # plain arrays, predicted in numpy
    assert 1 <= len(trees) <= 100 and 0 < state["gradient_boosting"]["threshold"] < 1
    assert max(max(t["feature"]) for t in trees) < len(state["features"])
    config = (run / "config.yaml").read_text()  # auto sizes resolved from the training rows
    assert "batch_size: 256" in config and "width: 128" in config


def test_boosted_trees_as_arrays_predict_like_scikit_learn():
    from dlkit_recipes.tabular_fraud.trees import fit_trees, tree_scores
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 5)).astype(np.float32)
    x[:, 4] = rng.integers(0, 2, 600)  # a binary feature, as one-hot columns are
    y = ((x[:, 0] * x[:, 1] > 0) & (x[:, 4] == 1)).astype(np.int64)  # an interaction a tree finds
    params = json.loads(json.dumps(fit_trees(x[:400], y[:400], x[400:500], y[400:500])))
    sk = HistGradientBoostingClassifier(max_iter=len(params["trees"]), early_stopping=False, random_state=0)
    expected = sk.fit(x[:400], y[:400]).predict_proba(x[500:])[:, 1]
    assert np.allclose(tree_scores(params, x[500:]), expected, atol=1e-9)
    assert len(params["trees"]) < 100  # cut where the validation loss was lowest


def test_identical_rows_are_kept_in_one_split_or_dropped_on_request(small, quiet):
    frame = pd.read_csv(small).drop(columns=["transaction_id"]).drop_duplicates()
    repeated = frame.iloc[:300]  # discrete features repeat: real observations, 2 more of each
    frame = pd.concat([frame, repeated, repeated], ignore_index=True)
    feature_columns = [c for c in frame.columns if c != "is_fraud"]
    frame["row"] = pd.util.hash_pandas_object(frame[feature_columns], index=False).astype(str)
    data = _recipe("clean.types={row: drop}").load_data(_csv(frame, small.parent / "repeats.csv"))
    splits = {
        s: set(frame["row"].iloc[getattr(data, s).row_numbers.numpy()]) for s in ("train", "val", "test")
    }
    assert sum(len(getattr(data, s)) for s in splits) == len(frame)  # every row kept
    assert not splits["train"] & splits["test"] and not splits["train"] & splits["val"]
    dropped = _recipe("clean.drop_duplicates=true").load_data(small.parent / "repeats.csv")
    assert sum(len(getattr(dropped, s)) for s in ("train", "val", "test")) == len(frame) - 600


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_evaluate_rebuilds_everything_from_the_run(cli, sample_run, tmp_path):
    run, result = sample_run
    res = cli("evaluate", run, "--json")
    assert res.code == 0, res.err
    again = json.loads(res.out)
    assert again["metrics"] == result["metrics"] and again["baselines"] == result["baselines"]
    labelled = tmp_path / "more.csv"
    pd.read_csv(SAMPLE).iloc[-3000:].to_csv(labelled, index=False)
    res = cli("evaluate", run, "--data", labelled, "--json")
    assert res.code == 0, res.err
    default = json.loads(res.out)
    assert default["examples"] == 3000
    res = cli("evaluate", run, "--data", labelled, "--json", "predict.threshold=0.05")
    assert res.code == 0, res.err
    low = json.loads(res.out)
    assert low["details"]["threshold_source"] == "predict.threshold"
    assert low["metrics"]["average_precision"] == default["metrics"]["average_precision"]
    assert low["metrics"]["recall"] >= default["metrics"]["recall"]
    assert sum(low["metrics"]["confusion_matrix"][0]) == sum(default["metrics"]["confusion_matrix"][0])
    assert low["metrics"]["confusion_matrix"][0][1] > default["metrics"]["confusion_matrix"][0][1]
    for name in ("logistic_regression", "gradient_boosting"):
        assert low["baselines"][name] == default["baselines"][name]


# --- predict ------------------------------------------------------------------------------------
def test_predict_returns_the_same_rows_with_score_and_is_fraud(cli, sample_run, tmp_path):
    run, _ = sample_run
    out = tmp_path / "scored.csv"
    res = cli("predict", run, NEW, "--output", out)
    assert res.code == 0, res.err
    rows = list(csv.DictReader(out.open()))
    original = list(csv.DictReader(NEW.open()))
    assert len(rows) == len(original)
    assert list(rows[0]) == list(original[0]) + ["score", "is_fraud"]
    assert rows[3]["transaction_id"] == original[3]["transaction_id"]
    threshold = _state(run)["threshold"]
    assert all((float(r["score"]) > threshold) == (r["is_fraud"] == "True") for r in rows)
    assert any(r["is_fraud"] == "True" for r in rows)
    assert not (tmp_path / "scored_outputs").exists()  # no side files for tables


def test_predict_threshold_can_be_changed_and_other_keys_are_refused(cli, sample_run):
    run, _ = sample_run
    res = cli("predict", run, NEW, "predict.threshold=0.05", "device=cpu")
    assert res.code == 0, res.err
    records = [json.loads(line) for line in res.out.splitlines()]
    assert all(r["is_fraud"] == (r["score"] > 0.05) for r in records)
    default = [json.loads(line) for line in cli("predict", run, NEW).out.splitlines()]
    assert sum(r["is_fraud"] for r in records) > sum(r["is_fraud"] for r in default)
    expect_user_error(cli("predict", run, NEW, "model.width=8"), "model.width")
    expect_user_error(cli("predict", run, NEW, "predict.threshold=1.5"), "predict.threshold=1.5")


def test_predict_streams_chunks_folders_and_parquet_alike(cli, sample_run, tmp_path, monkeypatch):
    from dlkit_recipes.tabular_fraud import predict

    run, _ = sample_run
    whole = [json.loads(line) for line in cli("predict", run, NEW).out.splitlines()]
    monkeypatch.setattr(predict, "PREDICT_CHUNK_ROWS", 7)
    folder = tmp_path / "inputs"
    folder.mkdir()
    frame = pd.read_csv(NEW)
    frame.iloc[:123].to_parquet(folder / "a.parquet")
    frame.iloc[123:].to_csv(folder / "b.csv", index=False)
    for source in (NEW, folder):
        res = cli("predict", run, source, "predict.chunk_size=32", "data.batch_size=16")
        assert res.code == 0, res.err
        records = [json.loads(line) for line in res.out.splitlines()]
        assert [r["score"] for r in records] == [r["score"] for r in whole]
        assert [r["transaction_id"] for r in records] == frame["transaction_id"].tolist()
    assert whole[0]["account_age_days"] is None or isinstance(whole[0]["account_age_days"], (int, float))


def test_to_records_builds_new_rows():
    rows = [{"amount": 5.0, "score": "x"}, {"amount": 7.0}]
    records = _recipe().to_records(rows, {"score": torch.tensor([0.9, 0.1])}, {"threshold": 0.5})
    assert records == [
        {"amount": 5.0, "score": 0.9, "is_fraud": True},
        {"amount": 7.0, "score": 0.1, "is_fraud": False},
    ]
    assert rows == [{"amount": 5.0, "score": "x"}, {"amount": 7.0}]


def test_predict_input_missing_a_training_column_is_named(cli, sample_run, tmp_path):
    run, _ = sample_run
    bad = tmp_path / "no_country.csv"
    pd.read_csv(NEW).drop(columns=["country"]).to_csv(bad, index=False)
    expect_user_error(cli("predict", run, bad), "no column 'country'", "trained on", "no_country.csv")
    late = tmp_path / "late.csv"  # a bad value far down is found while streaming: no half-written output
    frame = pd.read_csv(NEW).astype({"amount": object})
    frame.loc[300, "amount"] = "12 EUR"
    frame.to_csv(late, index=False)
    out = tmp_path / "scored.csv"
    expect_user_error(cli("predict", run, late, "--output", out), "column 'amount'", "row 301", "'12 EUR'")
    assert not out.exists()


def test_predict_extra_columns_are_ignored_with_a_note(cli, sample_run, tmp_path):
    run, _ = sample_run
    extra = tmp_path / "extra.csv"
    pd.read_csv(NEW).assign(cashier="bob").to_csv(extra, index=False)
    res = cli("predict", run, extra)
    assert res.code == 0, res.err
    assert "ignored column(s) the model was not trained on: cashier" in " ".join(res.err.split())
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
    state = _state(tmp_path / "run")
    choice = state["threshold_choice"]
    assert choice["rule"] == "precision >= 0.5"
    assert choice["val_precision"] >= 0.5 or "note" in choice
    assert result["details"]["thresholds"]["model"] == pytest.approx(state["threshold"])
    assert state["counts"]["test"]["rows"] == (frame["split"] == "test").sum() == result["examples"]
    assert "split" not in " ".join(state["features"])


# --- layouts: split column aliases, split files, split folders ----------------------------------
def test_split_column_takes_every_alias_and_assigns_empty_cells(small, quiet):
    frame = pd.read_csv(small).drop_duplicates().reset_index(drop=True)
    names = np.array(["train", "Valid", "dev", "validation", "TEST", "val", "", "train"], dtype=object)
    frame["split"] = names[frame.index % len(names)]
    path = small.parent / "aliases.csv"
    frame.to_csv(path, index=False)
    data = _recipe().load_data(path)
    counts = {s: len(getattr(data, s)) for s in ("train", "val", "test")}
    given = frame["split"].str.lower()
    val, test = given.isin(["valid", "dev", "validation", "val"]).sum(), (given == "test").sum()
    assert val > 0 and test > 0 and (given == "").sum() > 0  # empty cells join train: val and test are given
    assert counts == {"train": len(frame) - val - test, "val": val, "test": test}


def test_split_files_with_an_alias_and_a_test_split_carved_out_stratified(small, tmp_path, quiet):
    frame = pd.read_csv(small).drop_duplicates().reset_index(drop=True)
    folder = tmp_path / "files"
    folder.mkdir()
    frame.iloc[:2400].to_csv(folder / "train.csv", index=False)
    frame.iloc[2400:].to_parquet(folder / "dev.parquet")
    data = _recipe().load_data(folder)
    assert len(data.val) == len(frame) - 2400
    assert len(data.test) == pytest.approx(0.15 * 2400, abs=2)
    assert len(data.train) + len(data.test) == 2400
    rate = frame.iloc[:2400]["is_fraud"].mean()
    assert float(data.test.labels.float().mean()) == pytest.approx(rate, abs=0.01)


def test_split_folders_train_and_evaluate(cli, small, tmp_path):
    """DATA/train/ (a table in two parts), DATA/valid/, DATA/test/: each read as a data folder."""
    frame = pd.read_csv(small).drop_duplicates().reset_index(drop=True)
    data = tmp_path / "folders"
    for split in ("train", "valid", "test"):
        (data / split).mkdir(parents=True)
    frame.iloc[:1000].to_csv(data / "train" / "part-0.csv", index=False)
    frame.iloc[1000:2000].to_parquet(data / "train" / "part-1.parquet")
    frame.iloc[2000:2400].to_csv(data / "valid" / "valid.csv", index=False)
    frame.iloc[2400:].to_csv(data / "test" / "test.csv", index=False)
    result = train_ok(cli, "tabular-fraud", tmp_path / "run", "--data", data, *FAST)
    counts = _state(tmp_path / "run")["counts"]
    assert {s: c["rows"] for s, c in counts.items()} == {"train": 2000, "val": 400, "test": len(frame) - 2400}
    assert result["examples"] == len(frame) - 2400 and set(result["baselines"]) == set(BASELINES)
    assert result["metrics"]["auroc"] > 0.6
    res = cli("evaluate", tmp_path / "run", "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["metrics"] == result["metrics"]
    res = cli("evaluate", tmp_path / "run", "--data", data / "test", "--json")  # new labelled data, a folder
    assert res.code == 0, res.err
    assert json.loads(res.out)["examples"] == len(frame) - 2400


def test_layouts_without_a_train_split_or_with_two_are_refused(cli, small, tmp_path):
    only = tmp_path / "only"
    (only / "val").mkdir(parents=True)
    pd.read_csv(small).to_csv(only / "val" / "v.csv", index=False)
    expect_user_error(cli("train", "tabular-fraud", "--data", only), "no train split", "train/")
    both = tmp_path / "both"
    (both / "train").mkdir(parents=True)
    pd.read_csv(small).to_csv(both / "train" / "t.csv", index=False)
    pd.read_csv(small).to_csv(both / "test.csv", index=False)
    expect_user_error(cli("train", "tabular-fraud", "--data", both), "both split files", "keep one layout")
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    expect_user_error(cli("train", "tabular-fraud", "--data", empty), "holds no table")


# --- imbalance options -------------------------------------------------------------------------
@pytest.mark.parametrize("imbalance", ["weighted_loss", "sampling", "focal", "none"])
def test_imbalance_options_set_loss_and_sampling_weights(small, imbalance, quiet):
    from dlkit.modeling import FocalLoss

    recipe = _recipe(f"imbalance={imbalance}")
    data = recipe.load_data(small)
    recipe.setup(data.state, fresh=True)
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
            "model.wide=true",
        ],
    )
    state = _state(tmp_path / "run")
    assert not any(f.startswith("merchant_category=") for f in state["features"])
    assert result["metrics"]["auroc"] > 0.6
    assert result["baselines"]["logistic_regression"]["auroc"] > 0.6  # one-hot of the embedded columns


def test_wide_path_adds_a_linear_model_of_the_features_to_the_mlp():
    import torch
    from dlkit_recipes.tabular_fraud.model import FraudMLP

    torch.manual_seed(0)
    net = FraudMLP(
        3, [4], depth=2, width=8, act="relu", dropout=0.0, batch_norm=False, embedding_dim=2, wide=True
    )
    net.eval()
    torch.nn.init.zeros_(net.head.weight)  # silence the deep part: what is left is the wide, linear part
    torch.nn.init.zeros_(net.head.bias)
    numeric, categorical = torch.randn(5, 3), torch.randint(0, 4, (5, 1))
    features = torch.cat([numeric, net.embeddings[0](categorical[:, 0])], 1)
    assert torch.allclose(net(numeric, categorical), features @ net.wide.weight.T + net.wide.bias, atol=1e-6)
    assert FraudMLP(3, [4], 2, 8, "relu", 0.0, False, 2).wide is None  # off by default


# --- dlkit check ---------------------------------------------------------------------------------
def test_check_finds_each_planted_problem_in_the_sample_data(cli):
    res = cli("check", "tabular-fraud", "--json")
    assert res.code == 0, res.err
    found = {f["check"]: f for f in json.loads(res.out)["findings"]}
    assert found["label column"]["severity"] == "ok"
    missing = found["missing values"]["message"]
    assert "amount 206" in missing and "device" in missing
    duplicates = found["duplicates"]
    assert duplicates["severity"] == "warning" and "200 exact duplicate" in duplicates["message"]
    assert found["conflicting labels"]["severity"] == "warning"
    assert "currency" in found["constant columns"]["message"]
    outliers = found["outliers"]["message"]
    assert "amount" in outliers and "distance_from_home_km" in outliers
    assert "id: transaction_id" in found["column types"]["message"]
    assert "train: 0 " in found["class balance"]["message"] and found["class balance"]["severity"] == "ok"
    assert "train/test leakage" in found


@pytest.mark.parametrize("layout", ["files", "folders"])
def test_check_reports_rows_shared_by_train_and_test(cli, small, tmp_path, layout):
    frame = pd.read_csv(small).drop_duplicates()
    folder = tmp_path / "splits"
    train, test = folder / "train.csv", folder / "test.csv"
    if layout == "folders":
        train, test = folder / "train" / "rows.csv", folder / "test" / "rows.csv"
    train.parent.mkdir(parents=True, exist_ok=True)
    test.parent.mkdir(parents=True, exist_ok=True)
    frame.iloc[:2000].to_csv(train, index=False)
    pd.concat([frame.iloc[2000:], frame.iloc[:25]]).to_csv(test, index=False)
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
    expect_user_error(res, "fatal problem")
    unreadable = [f for f in json.loads(res.out)["findings"] if f["severity"] == "fatal"]
    assert "test.csv" in unreadable[0]["message"] and "data.encoding" in unreadable[0]["fix"]


def test_check_exits_2_on_a_fatal_problem(cli, small, tmp_path):
    bad = tmp_path / "bad.csv"
    pd.read_csv(small).assign(amount=lambda f: f["amount"].astype(object).where(f.index != 9, "lots")).to_csv(
        bad, index=False
    )
    expect_user_error(cli("check", "tabular-fraud", "--data", bad), "fatal problem", "non-numeric values")


# --- bad input: exit 2, a message naming the thing -------------------------------------------------
def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_label_column_missing_names_the_columns_there_are(cli, small, tmp_path):
    bad = tmp_path / "nolabel.csv"
    pd.read_csv(small).rename(columns={"is_fraud": "fraud_flag"}).to_csv(bad, index=False)
    expect_user_error(
        cli("train", "tabular-fraud", "--data", bad),
        "no label column 'is_fraud'",
        "fraud_flag",
        "transaction_id",
    )
    res = cli("check", "tabular-fraud", "--data", bad, "--json")
    expect_user_error(res, "fatal problem")
    label = {f["check"]: f for f in json.loads(res.out)["findings"]}["label column"]
    assert label["severity"] == "fatal" and "fraud_flag" in label["message"] and "data.label" in label["fix"]


def test_label_with_more_than_two_values(cli, small, tmp_path):
    bad = tmp_path / "three.csv"
    pd.read_csv(small).assign(is_fraud=lambda f: f.index % 3).to_csv(bad, index=False)
    expect_user_error(
        cli("train", "tabular-fraud", "--data", bad), "label column 'is_fraud'", "has 3 values", "exactly two"
    )


def test_an_all_missing_column(cli, small, tmp_path):
    bad = tmp_path / "empty_col.csv"
    pd.read_csv(small).assign(promo_code=np.nan).to_csv(bad, index=False)
    expect_user_error(
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
    expect_user_error(
        cli("train", "tabular-fraud", "--data", bad),
        "column 'amount'",
        "row 42",
        "'12 EUR'",
        "clean.types.amount=categorical",
    )


def test_an_empty_file(cli, tmp_path):
    expect_user_error(cli("train", "tabular-fraud", "--data", _write(tmp_path, "empty.csv", "")), "is empty")
    expect_user_error(
        cli("check", "tabular-fraud", "--data", _write(tmp_path, "header.csv", "a,is_fraud\n")),
        "no data rows",
    )


def test_a_csv_with_ragged_rows(cli, tmp_path):
    text = "amount,country,is_fraud\n" + "".join(f"{i},DE,{i % 2}\n" for i in range(20)) + "5,DE,0,extra\n"
    expect_user_error(
        cli("train", "tabular-fraud", "--data", _write(tmp_path, "ragged.csv", text)),
        "line 22 has 4 fields",
        "header has 3",
    )


def test_unknown_model_and_split_values(cli, small, tmp_path):
    res = cli("train", "tabular-fraud", "--data", small, "model.name=xgboost")
    expect_user_error(res, "model.name", "mlp")
    bad = tmp_path / "splits.csv"
    pd.read_csv(small).assign(split="train").assign(
        split=lambda f: f["split"].where(f.index != 4, "holdout")
    ).to_csv(bad, index=False)
    expect_user_error(
        cli("train", "tabular-fraud", "--data", bad), "row 6", "'holdout'", "val, valid, validation or dev"
    )
