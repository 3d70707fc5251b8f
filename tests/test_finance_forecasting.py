"""finance-forecasting: beats naive where there is something to learn, says so plainly where there is not
(against the strongest baseline, with a significance test), never lets the future into training, reads
split folders, files and columns, backtests and predicts end to end, and refuses bad input clearly."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torchmetrics
from conftest import ROOT, expect_user_error, train_ok
from dlkit_recipes.finance_forecasting import data as fd
from dlkit_recipes.finance_forecasting import series as ts
from dlkit_recipes.finance_forecasting.baselines import seasonal_trend
from dlkit_recipes.finance_forecasting.config import TRANSFORMS
from dlkit_recipes.finance_forecasting.holt_winters import holt_winters
from dlkit_recipes.finance_forecasting.metrics import forecast_metrics

from dlkit.jobs import build_config
from dlkit.registry import get_recipe

SAMPLE = ROOT / "sample_data" / "finance_forecasting" / "prices.csv"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These nets are tiny: one thread runs them faster, and much faster when other jobs share the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _write(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def monthly_seasonal(path: Path, series: int = 4, months: int = 240, seed: int = 3) -> Path:
    """Trend + yearly cycle + noise, like the MEASURED.md forecasting figure (monthly, horizon 12)."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(series):
        t = np.arange(months)
        y = (
            100
            + rng.uniform(0.2, 0.6) * t
            + rng.uniform(6, 12) * np.sin(2 * np.pi * t / 12 + rng.uniform(0, 6))
            + 3 * np.cos(4 * np.pi * t / 12)
            + rng.normal(0, 1.5, months)
        )
        dates = pd.date_range("2000-01-01", periods=months, freq="MS").strftime("%Y-%m-%d")
        frames.append(pd.DataFrame({"month": dates, "series": f"S{k}", "value": y.round(3)}))
    return _write(path, pd.concat(frames))


def wandering_seasonal(path: Path, months: int = 180, seed: int = 3) -> Path:
    """A random-walk level (with drift) under a yearly cycle: exponential smoothing's home ground, where
    a fixed trend line fitted to a window misses the level's wandering."""
    rng = np.random.default_rng(seed)
    t = np.arange(months)
    level = 100 + np.cumsum(rng.normal(0.3, 1.0, months))
    y = level + 8 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.5, months)
    dates = pd.date_range("2000-01-01", periods=months, freq="MS").strftime("%Y-%m-%d")
    return _write(path, pd.DataFrame({"month": dates, "value": y.round(3)}))


def random_walk(path: Path, n: int = 900, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    y = 100 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    return _write(
        path,
        pd.DataFrame(
            {"Date": pd.bdate_range("2019-01-01", periods=n).strftime("%Y-%m-%d"), "Close": y.round(4)}
        ),
    )


def _recipe(*overrides: str):
    cls = get_recipe("finance-forecasting")
    return cls(build_config(cls, None, list(overrides)))


def _prices(*tickers: str) -> pd.DataFrame:
    prices = pd.read_csv(SAMPLE)
    return prices[prices["ticker"].isin(tickers)] if tickers else prices


BASELINES = {"naive", "seasonal_naive", "drift", "seasonal_trend", "holt_winters"}


# --- stages -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", TRANSFORMS)
def test_target_transforms_invert_exactly(kind):
    y = 50 + np.cumsum(np.random.default_rng(0).normal(0, 1, 200))
    assert np.allclose(ts.from_target(ts.to_target(y, kind), y[0], kind), y, rtol=1e-12, atol=1e-9)
    assert np.allclose(ts.apply_change(y[:-1], ts.change(y[:-1], y[1:], kind), kind), y[1:], rtol=1e-12)


@pytest.mark.parametrize(
    "freq, expected",
    [
        ("D", "D"),
        ("B", "B"),
        ("W-SUN", "W-SUN"),
        ("W-WED", "W-WED"),
        ("MS", "MS"),
        ("ME", "ME"),
        ("QS", "QS"),
        ("h", "h"),
    ],
)
def test_frequency_is_inferred_despite_gaps(freq, expected):
    dates = pd.date_range("2020-01-01", periods=60, freq=freq)
    kept = dates.delete([5, 6, 20])  # gaps must not confuse the inference
    assert ts.infer_frequency([kept]) == expected


def test_weekly_season_is_detected_on_training_part_and_random_walk_has_none():
    t = np.arange(700)
    rng = np.random.default_rng(0)
    weekly = 0.05 * t + 3 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 1, 700)
    assert ts.detect_season([weekly], "D") == 7
    assert ts.detect_season([np.cumsum(rng.normal(0, 1, 700))], "D") == 1


def test_duplicates_off_grid_dates_and_gaps_are_reported_and_filled(tmp_path):
    dates = list(pd.bdate_range("2020-01-01", periods=300).strftime("%Y-%m-%d"))
    values = list(np.linspace(10, 40, 300).round(3))
    del dates[100:104], values[100:104]  # a gap of four business days
    dates += ["2020-01-03", "2020-01-04"]  # a repeated Friday, and a Saturday off the business-day grid
    values += [99.0, 98.0]
    path = _write(tmp_path / "b.csv", pd.DataFrame({"date": dates, "value": values}))
    data = _recipe().load_data(path)
    notes = " | ".join(data.notes)
    assert data.state["frequency"] == "B"
    assert "duplicated date" in notes and "2020-01-03" in notes
    assert "off the B grid" in notes and "2020-01-04" in notes
    assert "filled 4 missing value(s)" in notes


def test_unnamed_series_column_and_day_first_dates_are_recognised(tmp_path):
    dates = pd.date_range("2020-01-01", periods=120).strftime("%d/%m/%Y")
    frame = pd.DataFrame(
        {
            "Day": list(dates) * 2,
            "store": ["north"] * 120 + ["south"] * 120,
            "sales": np.r_[np.arange(120.0), np.arange(120.0) * 2],
        }
    )
    data = _recipe().load_data(_write(tmp_path / "sales.csv", frame))
    assert set(data.state["series"]) == {"north", "south"} and data.state["frequency"] == "D"
    assert data.state["series"]["north"]["train"][0] == "2020-01-01" and not data.notes


def test_metrics_are_torchmetrics_in_original_units():
    """MAE/RMSE/sMAPE are the library's (sMAPE as a fraction in [0, 2]); MASE, direction and coverage are
    synced Metric subclasses; all read the point forecast (p50) of (B, H, Q) against (truth, last, scale)."""
    metrics = forecast_metrics({"quantiles": [0.1, 0.5, 0.9], "transform": "diff"})
    assert all(isinstance(m, torchmetrics.Metric) for m in metrics.values())
    rng = np.random.default_rng(0)
    truth = torch.tensor(100 + rng.normal(0, 2, (8, 5)), dtype=torch.float32)
    point = truth + torch.tensor(rng.normal(0, 1, (8, 5)), dtype=torch.float32)
    preds = torch.stack([point - 1.5, point, point + 1.5], -1)
    scale = torch.full_like(truth, 2.0)
    last = torch.full_like(truth, 100.0)
    for m in metrics.values():
        m.update(preds[:4], torch.stack([truth, last, scale], -1)[:4])
        m.update(preds[4:], torch.stack([truth, last, scale], -1)[4:])
    error = (truth - point).abs()
    assert float(metrics["mae"].compute()) == pytest.approx(float(error.mean()), rel=1e-5)
    assert float(metrics["rmse"].compute()) == pytest.approx(float((error**2).mean().sqrt()), rel=1e-5)
    smape = (2 * error / (truth.abs() + point.abs())).mean()
    assert float(metrics["smape"].compute()) == pytest.approx(float(smape), rel=1e-5)
    assert float(metrics["mase"].compute()) == pytest.approx(float(error.mean() / 2), rel=1e-5)
    assert np.allclose(metrics["mase"].errors(), (error / 2).mean(1).numpy(), rtol=1e-5)
    hits = (torch.sign(point - 100) == torch.sign(truth - 100)).float().mean()
    assert float(metrics["directional_accuracy"].compute()) == pytest.approx(float(hits), rel=1e-5)
    inside = ((point - 1.5 <= truth) & (truth <= point + 1.5)).float().mean()
    assert float(metrics["coverage_80"].compute()) == pytest.approx(float(inside), rel=1e-5)


def test_seasonal_trend_baseline_extrapolates_trend_and_season_exactly():
    t = np.arange(400.0)
    y = 3 + 0.5 * t + 2 * np.sin(2 * np.pi * t / 7) + np.cos(4 * np.pi * t / 7 + 1)
    origins = np.array([50, 123, 399])
    forecast = seasonal_trend(y, origins, 10, 7, 43)
    future = origins[:, None] + np.arange(10)
    truth = 3 + 0.5 * future + 2 * np.sin(2 * np.pi * future / 7) + np.cos(4 * np.pi * future / 7 + 1)
    assert np.allclose(forecast, truth, atol=1e-6)
    assert np.allclose(
        seasonal_trend(y, origins, 3, 1, 20), 3 + 0.5 * (origins[:, None] + np.arange(3)), atol=2
    )


def test_holt_winters_refits_on_the_past_of_each_origin_only():
    """With a fit at every origin it is statsmodels' own Holt-Winters (additive trend and season) fitted on
    the history before that origin; the values from the origin on never change a forecast; a history
    shorter than two seasons, or a flat one, still gets a finite forecast."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    rng = np.random.default_rng(0)
    t = np.arange(150.0)
    y = 50 + 0.2 * t + 5 * np.sin(2 * np.pi * t / 12) + np.cumsum(rng.normal(0, 0.5, 150))
    origins = [120, 130, 140]
    forecast = holt_winters(y, origins, 6, 12, fits=3)
    for row, origin in zip(forecast, origins, strict=True):
        model = ExponentialSmoothing(
            y[:origin], trend="add", seasonal="add", seasonal_periods=12, initialization_method="estimated"
        )
        assert np.allclose(row, model.fit().forecast(6), atol=1e-6)
    poisoned = y.copy()
    poisoned[120:] = 1e6  # only the first origin's history is left intact
    assert np.allclose(holt_winters(poisoned, [120], 6, 12, fits=1), forecast[:1])
    # fewer fits than origins: the last estimate runs forward over the newer values, still past-only
    sparse = holt_winters(y, list(range(100, 140)), 6, 12, fits=4)
    assert sparse.shape == (40, 6) and np.isfinite(sparse).all()
    assert np.allclose(holt_winters(y[:139], list(range(100, 140)), 6, 12, fits=4), sparse)
    assert np.isfinite(holt_winters(y[:30], [20], 6, 12, fits=1)).all()  # under two seasons: no season
    assert np.allclose(holt_winters(np.full(40, 7.0), [30], 6, 12, fits=1), 7.0)


# --- honesty ------------------------------------------------------------------------------------------
def test_seasonal_series_model_beats_naive(cli, tmp_path):
    """Trend + season + noise: the model beats naive and seasonal naive by far, significantly. The series is
    exactly what the seasonal-trend fit and Holt-Winters assume, so one of those classical rivals is the one
    to beat, and the verdict follows its significance test, whichever way it goes. With model.base=auto the
    net would start from the seasonal-trend forecast, which beats the last value on validation."""
    data = monthly_seasonal(tmp_path / "monthly.csv")
    res = cli("train", "finance-forecasting", "--data", data, "--out", tmp_path / "run", "--json")
    assert res.code == 0, res.err
    result = json.loads(res.out)
    mase, baselines = result["metrics"]["mase"], result["baselines"]
    assert set(baselines) == BASELINES and result["monitor"] == "mase"
    assert mase < 1 and mase < 0.5 * baselines["naive"]["mase"]
    assert baselines["seasonal_naive"]["mase"] > mase
    tests = result["details"]["diebold_mariano"]
    assert tests["naive"]["beats"] is True and tests["seasonal_naive"]["beats"] is True
    strongest = result["strongest_baseline"]
    assert strongest == min(baselines, key=lambda n: baselines[n]["mase"])
    assert strongest in ("seasonal_trend", "holt_winters")  # the two classical fits of trend + season
    assert result["beats_baseline"] is tests[strongest]["beats"]
    assert result["details"]["verdict"].startswith("the model")
    state = json.loads((tmp_path / "run" / "preprocess" / "state.json").read_text())
    assert (state["frequency"], state["season"], state["horizon"], state["lookback"]) == ("MS", 12, 12, 36)
    assert state["base"] == "naive"  # the default: the net learns the whole change
    auto = _recipe("model.base=auto").load_data(data).state  # the seasonal-trend fit wins on validation
    assert auto["base"] == "seasonal_trend" and auto["baseline_window"] == state["baseline_window"]


def test_random_walk_is_reported_as_not_beating_naive(cli, tmp_path):
    data = random_walk(tmp_path / "rw.csv")
    res = cli("train", "finance-forecasting", "--data", data, "--out", tmp_path / "run")
    assert res.code == 0, res.err
    assert "does NOT" in res.err and "naive" in res.err
    report = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert report["beats_baseline"] is False and "seasonal_naive" not in report["baselines"]  # no season
    strongest = report["strongest_baseline"]
    assert strongest in ("naive", "drift")
    assert "does NOT" in report["details"]["verdict"] and strongest in report["details"]["verdict"]
    naive = report["details"]["diebold_mariano"]["naive"]
    assert naive["beats"] is False
    assert naive["pvalue"] >= 0.05 or report["metrics"]["mase"] >= report["baselines"]["naive"]["mase"]


def test_holt_winters_is_scored_and_named_strongest_when_it_wins(cli, tmp_path):
    """On a wandering level under a stable cycle, Holt-Winters beats every other baseline; a barely trained
    net that starts from the last value loses to it, and eval.json and the console name it."""
    data = wandering_seasonal(tmp_path / "wander.csv")
    args = ["--data", data, "--out", tmp_path / "run", "train.epochs=1", "model.base=naive"]
    res = cli("train", "finance-forecasting", *args)
    assert res.code == 0, res.err
    result = json.loads((tmp_path / "run" / "eval.json").read_text())
    baselines = result["baselines"]
    assert set(baselines) == BASELINES
    assert result["strongest_baseline"] == "holt_winters"
    assert baselines["holt_winters"]["mase"] < min(
        m["mase"] for n, m in baselines.items() if n != "holt_winters"
    )
    assert result["beats_baseline"] is False and "holt_winters" in res.err
    assert "holt_winters" in result["details"]["verdict"]
    state = json.loads((tmp_path / "run" / "preprocess" / "state.json").read_text())
    assert state["base"] == "naive"  # as configured
    json.dumps(state)  # nothing but JSON in the state


def test_a_planted_leak_cannot_reach_training(tmp_path):
    """Poison every value after the training part (with a gap right at the boundary, to tempt interpolation):
    training windows, scalers, MASE scales and the detected season must not change at all."""
    clean_path = monthly_seasonal(tmp_path / "clean.csv", series=2, months=200)
    frame = pd.read_csv(clean_path)
    recipe = _recipe("data.fill=interpolate")
    clean = recipe.load_data(clean_path)
    poisoned = frame.copy()
    for name, info in clean.state["series"].items():
        rows = poisoned["series"] == name
        boundary = poisoned["month"] == info["train"][1]
        poisoned = poisoned[~(rows & boundary)]  # a gap on the last training step...
        after = (poisoned["series"] == name) & (poisoned["month"] > info["train"][1])
        poisoned.loc[after, "value"] = 1e6  # ...and absurd values right after it
        frame = frame[~(rows & boundary)]
    # the net's starting forecast (model.base=auto) is chosen on validation, as the best epoch is: pinned
    # here, so the windows built from the training part alone are compared
    pinned = ("data.fill=interpolate", "model.base=naive")
    clean = _recipe(*pinned).load_data(_write(tmp_path / "clean.csv", frame))
    leaky = _recipe(*pinned).load_data(_write(tmp_path / "poisoned.csv", poisoned))

    def encodings(state):
        return {
            n: {k: s[k] for k in ("target", "covariates", "mase_scale", "train")}
            for n, s in state["series"].items()
        }

    assert encodings(clean.state) == encodings(leaky.state)
    assert (
        clean.state["season"] == leaky.state["season"] and clean.state["lookback"] == leaky.state["lookback"]
    )
    assert len(clean.train) == len(leaky.train) > 0
    for i in range(len(clean.train)):
        a, b = clean.train[i], leaky.train[i]
        for key in ("past", "future", "target", "truth", "last", "std"):
            assert torch.equal(a[key], b[key]), (i, key)
    horizon = clean.state["horizon"]
    for i in range(len(clean.train)):  # every training target lies inside the training part
        name, last = clean.train[i]["id"].rsplit("@", 1)
        final = pd.Timestamp(last) + pd.DateOffset(months=horizon)
        assert final <= pd.Timestamp(clean.state["series"][name]["train"][1])
    assert leaky.val[0]["truth"].max() == 1e6  # the poison is there, only where it belongs


# --- layouts: split folders, split files, a split column ---------------------------------------------
def _split_by_date(frame: pd.DataFrame, val_start: str, test_start: str, names=("train", "valid", "test")):
    parts = [frame["date"] < val_start, (frame["date"] >= val_start) & (frame["date"] < test_start)]
    parts.append(frame["date"] >= test_start)
    return {name: frame[part] for name, part in zip(names, parts, strict=True)}


def test_split_folders_with_aliases_train_and_evaluate(cli, tmp_path):
    """DATA/train/, DATA/valid/, DATA/test/, each a folder of one table per series: the user's parts."""
    data = tmp_path / "data"
    for ticker in ("ACME", "BOLT"):
        frame = _prices(ticker).drop(columns="ticker")
        for split, part in _split_by_date(frame, "2023-03-01", "2023-08-01").items():
            (data / split).mkdir(parents=True, exist_ok=True)
            _write(data / split / f"{ticker}.csv", part)
    result = train_ok(cli, "finance-forecasting", tmp_path / "run", "--data", data, "train.epochs=1")
    state = json.loads((tmp_path / "run" / "preprocess" / "state.json").read_text())
    assert set(state["series"]) == {"ACME", "BOLT"}
    acme = state["series"]["ACME"]
    assert acme["train"][1] == "2023-02-28" and acme["val"] == ["2023-03-01", "2023-07-31"]
    assert acme["test"] == ["2023-08-01", "2023-12-31"]
    assert set(result["baselines"]) == BASELINES
    res = cli("evaluate", tmp_path / "run", "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["metrics"]["mase"] == pytest.approx(result["metrics"]["mase"])


def test_split_files_and_a_split_column_give_the_same_split(tmp_path):
    frame = _prices("ACME", "CRUX")
    files = tmp_path / "files"
    files.mkdir()
    names = ("train", "dev", "test")
    for split, part in _split_by_date(frame, "2023-05-01", "2023-09-01", names).items():
        _write(files / f"{split}.csv", part)
    labelled = frame.copy()
    labelled["split"] = ""  # empty cells take the part their date falls in
    labelled.loc[labelled["date"] < "2023-01-01", "split"] = "TRAIN"
    labelled.loc[labelled["date"].between("2023-05-01", "2023-05-31"), "split"] = "Validation"
    labelled.loc[labelled["date"] >= "2023-09-01", "split"] = "test"
    column = _write(tmp_path / "labelled.csv", labelled)
    from_files, from_column = _recipe().load_data(files), _recipe().load_data(column)
    assert from_files.state["series"] == from_column.state["series"]
    assert from_files.state["series"]["CRUX"]["val"] == ["2023-05-01", "2023-08-31"]
    assert len(from_files.test) == len(from_column.test) > 0
    assert from_column.state["columns"]["targets"] == ["close"]  # the split column is not a value column


def test_a_missing_test_split_is_carved_from_the_end_and_noted(tmp_path):
    data = tmp_path / "data"
    for split, part in _split_by_date(_prices("ACME"), "2023-06-01", "2099-01-01").items():
        if len(part):
            (data / split).mkdir(parents=True, exist_ok=True)
            _write(data / split / "prices.csv", part)
    loaded = _recipe().load_data(data)
    acme = loaded.state["series"]["ACME"]
    assert (
        acme["val"][0] == "2023-06-01"
        and acme["val"][1] < acme["test"][0]
        and acme["test"][1] == "2023-12-31"
    )
    assert any("no test rows" in note for note in loaded.notes)


def test_split_column_out_of_time_order_is_refused(cli, tmp_path):
    frame = _prices("ACME").copy()
    frame["split"] = np.where(frame["date"] < "2023-06-01", "train", "test")
    frame.loc[frame["date"].between("2022-01-01", "2022-01-31"), "split"] = "val"
    expect_user_error(
        cli("train", "finance-forecasting", "--data", _write(tmp_path / "x.csv", frame)),
        "series 'ACME': rows marked train run to 2023-05-31",
        "rows marked val start at 2022-01-01",
    )
    frame["split"] = np.where(frame["date"] < "2023-06-01", "train", "holdout")
    expect_user_error(
        cli("train", "finance-forecasting", "--data", _write(tmp_path / "y.csv", frame)),
        "split 'holdout' is not a split name",
        "valid",
    )


# --- end to end ---------------------------------------------------------------------------------------
def test_backtest_predict_and_evaluate_end_to_end(cli, tmp_path, monkeypatch):
    data = _write(tmp_path / "prices.csv", _prices("ACME", "BOLT"))
    run = tmp_path / "run"
    res = cli(
        "train",
        "finance-forecasting",
        "--data",
        data,
        "--out",
        run,
        "train.epochs=3",
        "loss.quantiles=true",
        "backtest.folds=2",
        "data.covariates=volume",
    )
    assert res.code == 0, res.err
    assert "backtest fold 2/2" in res.err and "backtest over 2 folds" in res.err
    result = json.loads((run / "eval.json").read_text())
    assert "coverage_80" in result["metrics"] and set(result["baselines"]) == BASELINES
    backtest = json.loads((run / "preprocess" / "state.json").read_text())["backtest"]
    assert [f["fold"] for f in backtest["folds"]] == [1, 2]
    first, second = backtest["folds"]
    assert first["test"][1] < second["test"][0] and first["train"][1] < second["train"][1]
    assert {"mase", "mae", "rmse", "smape"} <= set(backtest["mean"])
    assert set(backtest["baseline_mean"]) == BASELINES and "mase" in backtest["baseline_mean"]["naive"]
    assert all(f["strongest_baseline"] in BASELINES and "naive" in f["pvalues"] for f in backtest["folds"])
    # the last fold ends where the main split does: same test windows, same naive score
    assert second["baselines"]["naive"]["mase"] == pytest.approx(result["baselines"]["naive"]["mase"])

    res = cli("evaluate", run, "--json")
    assert res.code == 0, res.err
    again = json.loads(res.out)
    assert again["metrics"]["mase"] == pytest.approx(result["metrics"]["mase"])
    assert again["baselines"]["seasonal_trend"] == pytest.approx(result["baselines"]["seasonal_trend"])
    assert again["baselines"]["holt_winters"] == pytest.approx(result["baselines"]["holt_winters"])

    history = _write(tmp_path / "history.csv", _prices("ACME").tail(80))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "forecast.csv"
    res = cli("predict", run, history, "--output", out)
    assert res.code == 0, res.err
    rows = list(csv.DictReader(out.open()))
    horizon = 14
    assert len(rows) == horizon and {r["series"] for r in rows} == {"ACME"}
    last = pd.Timestamp(_prices("ACME")["date"].max())
    assert [r["date"] for r in rows] == [
        str((last + pd.Timedelta(days=h)).date()) for h in range(1, horizon + 1)
    ]
    assert all(float(r["p10"]) <= float(r["forecast"]) <= float(r["p90"]) for r in rows)
    assert (tmp_path / "forecast_outputs" / "forecast.png").stat().st_size > 10_000
    assert not any(cwd.iterdir())  # nothing in the working directory

    res = cli("predict", run, history, "--output", tmp_path / "again.jsonl", "predict.plot=false")
    assert res.code == 0, res.err
    assert not (tmp_path / "again_outputs").exists() or not any((tmp_path / "again_outputs").iterdir())

    both = _write(tmp_path / "both.csv", _prices("ACME", "BOLT"))
    chunks = ["predict.chunk_size=1", "data.batch_size=1"]  # one series per chunk: one plot each, none lost
    res = cli("predict", run, both, "--output", tmp_path / "both.jsonl", *chunks)
    assert res.code == 0, res.err
    assert sorted(p.name for p in (tmp_path / "both_outputs").iterdir()) == ["forecast.png", "forecast_2.png"]


def test_default_config_on_sample_data_beats_the_strongest_baseline(cli, tmp_path):
    result = train_ok(cli, "finance-forecasting", tmp_path / "run", "train.epochs=6")
    baselines = result["baselines"]
    assert set(baselines) == BASELINES
    strongest = result["strongest_baseline"]
    assert strongest == min(baselines, key=lambda n: baselines[n]["mase"])
    assert result["metrics"]["mase"] < baselines[strongest]["mase"] < baselines["naive"]["mase"]
    assert result["beats_baseline"] is True
    assert result["details"]["diebold_mariano"][strongest]["pvalue"] < 0.05


@pytest.mark.parametrize("model", ["lstm", "gru", "tcn", "transformer"])
def test_every_model_trains(cli, tmp_path, model):
    data = monthly_seasonal(tmp_path / "m.csv", series=2, months=120)
    res = cli(
        "train",
        "finance-forecasting",
        "--data",
        data,
        "--out",
        tmp_path / "run",
        "--json",
        f"model.name={model}",
        "train.epochs=2",
        "model.hidden=16",
        "data.transform=diff",
    )
    assert res.code == 0, res.err
    metrics = json.loads(res.out)["metrics"]
    assert np.isfinite(metrics["mase"]) and 0 <= metrics["directional_accuracy"] <= 1


def test_check_reports_frequency_season_and_split(cli, tmp_path):
    res = cli("check", "finance-forecasting", "--data", monthly_seasonal(tmp_path / "m.csv"))
    assert res.code == 0, res.err
    assert "frequency MS" in res.err and "season 12" in res.err and "scaling fitted on train only" in res.err


# --- bad input ----------------------------------------------------------------------------------------
def test_no_date_column(cli, tmp_path):
    path = _write(tmp_path / "x.csv", pd.DataFrame({"when": ["a", "b"], "value": [1, 2]}))
    expect_user_error(
        cli("train", "finance-forecasting", "--data", path),
        "no date column",
        "when, value",
        "data.date_column",
    )


def test_unparsable_dates_are_shown(cli, tmp_path):
    dates = list(pd.date_range("2020-01-01", periods=50).strftime("%Y-%m-%d"))
    dates[7], dates[30] = "yesterday", "2020-13-45"
    path = _write(tmp_path / "x.csv", pd.DataFrame({"date": dates, "value": range(50)}))
    expect_user_error(
        cli("train", "finance-forecasting", "--data", path),
        "2 value(s) that are not dates",
        "line 9: 'yesterday'",
        "line 32: '2020-13-45'",
    )


def test_too_few_rows_says_how_many_are_needed(cli, tmp_path):
    dates = pd.date_range("2020-01-01", periods=30).strftime("%Y-%m-%d")
    path = _write(tmp_path / "x.csv", pd.DataFrame({"date": dates, "value": np.arange(30.0)}))
    needed = fd.needed(_recipe().cfg["data"], 20, 7)
    assert needed > 30
    expect_user_error(
        cli("train", "finance-forecasting", "--data", path, "data.lookback=20", "data.horizon=7"),
        "has 30 time steps",
        f"need at least {needed}",
        "lower data.lookback",
    )


def test_non_numeric_values_are_shown(cli, tmp_path):
    values = [str(v) for v in range(60)]
    values[4], values[10] = "$12", "1,234.5"
    path = _write(
        tmp_path / "x.csv", pd.DataFrame({"date": pd.date_range("2020-01-01", periods=60), "price": values})
    )
    expect_user_error(
        cli("train", "finance-forecasting", "--data", path),
        "column 'price' has 2 non-numeric",
        "line 6: '$12'",
        "line 12: '1,234.5'",
    )


def test_series_with_a_single_point(cli, tmp_path):
    frame = pd.DataFrame(
        {
            "date": list(pd.date_range("2020-01-01", periods=100).strftime("%Y-%m-%d")) + ["2020-02-01"],
            "ticker": ["ACME"] * 100 + ["LONE"],
            "close": np.linspace(1, 2, 101),
        }
    )
    path = _write(tmp_path / "x.csv", frame)
    expect_user_error(
        cli("train", "finance-forecasting", "--data", path),
        "series 'LONE' has a single point",
        "2020-02-01",
        "data.skip_short=true",
    )


def test_too_many_backtest_folds_are_refused_before_training(cli, tmp_path):
    data = monthly_seasonal(tmp_path / "m.csv", series=1, months=120)
    expect_user_error(
        cli("train", "finance-forecasting", "--data", data, "--out", tmp_path / "run", "backtest.folds=9"),
        "too short for a 9-fold backtest",
        "lower backtest.folds",
    )
    assert not (tmp_path / "run").exists()
