"""finance-forecasting: beats naive where there is something to learn, says so plainly where there is not,
never lets the future into training, backtests and predicts end to end, and refuses bad input clearly."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import ROOT

from dlkit.data import timeseries as ts
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


def _expect_user_error(res, *fragments):
    assert res.code == 2, (res.code, res.err)
    assert "Traceback" not in res.err
    for fragment in fragments:
        assert fragment in res.err, res.err


# --- stages -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ts.TRANSFORMS)
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


# --- honesty ------------------------------------------------------------------------------------------
def test_seasonal_series_model_beats_naive(cli, tmp_path):
    data = monthly_seasonal(tmp_path / "monthly.csv")
    res = cli("train", "finance-forecasting", "--data", data, "--out", tmp_path / "run", "--json")
    assert res.code == 0, res.err
    result = json.loads(res.out)
    assert result["metrics"]["mase"] < 1 and result["metrics"]["mase"] < 0.5 * result["baseline"]["mase"]
    assert result["baseline"]["seasonal_naive_mase"] > result["metrics"]["mase"]
    assert result["baseline"]["beats_naive"] is True and result["beats_baseline"] is True
    assert result["baseline"]["verdict"].startswith("the model beats the naive forecast")
    assert "warning" not in res.err, res.err
    state = json.loads((tmp_path / "run" / "preprocess" / "state.json").read_text())
    assert (state["frequency"], state["season"], state["horizon"], state["lookback"]) == ("MS", 12, 12, 36)


def test_random_walk_is_reported_as_not_beating_naive(cli, tmp_path):
    data = random_walk(tmp_path / "rw.csv")
    res = cli("train", "finance-forecasting", "--data", data, "--out", tmp_path / "run", "--json")
    assert res.code == 0, res.err
    assert "does NOT" in res.err and "naive" in res.err
    report = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert report["baseline"]["beats_naive"] is False and report["beats_baseline"] is False
    assert "does NOT" in report["baseline"]["verdict"]
    assert (
        report["baseline"]["naive_pvalue"] >= 0.05 or report["metrics"]["mase"] >= report["baseline"]["mase"]
    )


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
    clean = _recipe("data.fill=interpolate").load_data(_write(tmp_path / "clean.csv", frame))
    leaky = _recipe("data.fill=interpolate").load_data(_write(tmp_path / "poisoned.csv", poisoned))

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


# --- end to end ---------------------------------------------------------------------------------------
def test_backtest_predict_and_evaluate_end_to_end(cli, tmp_path, monkeypatch):
    data = tmp_path / "prices.csv"
    prices = pd.read_csv(SAMPLE)
    _write(data, prices[prices["ticker"].isin(["ACME", "BOLT"])])
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
    assert "coverage_80" in result["metrics"]
    backtest = json.loads((run / "preprocess" / "state.json").read_text())["backtest"]
    assert [f["fold"] for f in backtest["folds"]] == [1, 2]
    first, second = backtest["folds"]
    assert first["test"][1] < second["test"][0] and first["train"][1] < second["train"][1]
    assert {"mase", "mae", "rmse", "smape"} <= set(backtest["mean"]) and "mase" in backtest["baseline_mean"]

    res = cli("evaluate", run, "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["metrics"]["mase"] == pytest.approx(result["metrics"]["mase"])

    history = tmp_path / "history.csv"
    _write(history, prices[prices["ticker"] == "ACME"].tail(80))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "forecast.csv"
    res = cli("predict", run, history, "--output", out)
    assert res.code == 0, res.err
    rows = list(csv.DictReader(out.open()))
    horizon = 14
    assert len(rows) == horizon and {r["series"] for r in rows} == {"ACME"}
    last = pd.Timestamp(prices[prices["ticker"] == "ACME"]["date"].max())
    assert [r["date"] for r in rows] == [
        str((last + pd.Timedelta(days=h)).date()) for h in range(1, horizon + 1)
    ]
    assert all(float(r["p10"]) <= float(r["forecast"]) <= float(r["p90"]) for r in rows)
    assert (tmp_path / "forecast.png").stat().st_size > 10_000


def test_default_config_on_sample_data_beats_naive(cli, tmp_path):
    res = cli("train", "finance-forecasting", "--out", tmp_path / "run", "--json", "train.epochs=6")
    assert res.code == 0, res.err
    result = json.loads(res.out)
    assert (
        result["metrics"]["mase"] < result["baseline"]["mase"] and result["baseline"]["beats_naive"] is True
    )


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
    _expect_user_error(
        cli("train", "finance-forecasting", "--data", path),
        "no date column",
        "when, value",
        "data.date_column",
    )


def test_unparsable_dates_are_shown(cli, tmp_path):
    dates = list(pd.date_range("2020-01-01", periods=50).strftime("%Y-%m-%d"))
    dates[7], dates[30] = "yesterday", "2020-13-45"
    path = _write(tmp_path / "x.csv", pd.DataFrame({"date": dates, "value": range(50)}))
    _expect_user_error(
        cli("train", "finance-forecasting", "--data", path),
        "2 value(s) that are not dates",
        "line 9: 'yesterday'",
        "line 32: '2020-13-45'",
    )


def test_too_few_rows_says_how_many_are_needed(cli, tmp_path):
    dates = pd.date_range("2020-01-01", periods=30).strftime("%Y-%m-%d")
    path = _write(tmp_path / "x.csv", pd.DataFrame({"date": dates, "value": np.arange(30.0)}))
    needed = _recipe("data.lookback=20", "data.horizon=7")._needed(20, 7)
    assert needed > 30
    _expect_user_error(
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
    _expect_user_error(
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
    _expect_user_error(
        cli("train", "finance-forecasting", "--data", path),
        "series 'LONE' has a single point",
        "2020-02-01",
        "data.skip_short=true",
    )


def test_too_many_backtest_folds_are_refused_before_training(cli, tmp_path):
    data = monthly_seasonal(tmp_path / "m.csv", series=1, months=120)
    _expect_user_error(
        cli("train", "finance-forecasting", "--data", data, "--out", tmp_path / "run", "backtest.folds=9"),
        "too short for a 9-fold backtest",
        "lower backtest.folds",
    )
    assert not (tmp_path / "run").exists()
