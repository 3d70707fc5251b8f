"""Walk-forward backtest: per-fold split bounds, and the rolling-origin loop that re-runs the core's own
train-and-evaluate job on each fold."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from dlkit_recipes.finance_forecasting import data as fd
from dlkit_recipes.finance_forecasting import series as ts

from dlkit import console
from dlkit.errors import UserError
from dlkit.recipe import RecipeData

if TYPE_CHECKING:  # annotations only: the recipe module imports this one
    from dlkit_recipes.finance_forecasting.reading import Raw
    from dlkit_recipes.finance_forecasting.recipe import FinanceForecasting


def fold_bounds(n: int, test_size: int, val_size: int, folds: int, fold: int) -> list[int]:
    """(train end, validation end, test end) of fold `fold` of `folds`: expanding train, then one test block.

    The last fold ends where the series ends, so it matches the main split's test part.
    """
    test_end = n - (folds - 1 - fold) * test_size
    return [test_end - test_size - val_size, test_end - test_size, test_end]


def backtest_bounds(bounds: dict[str, list[int]], history: int, horizon: int, folds: int, fold: int) -> dict:
    """Each series' fold bounds, with the main split's validation and test sizes; refuses a series whose
    first fold would have no training window."""
    out = {}
    for name, (train_end, val_end, n) in bounds.items():
        out[name] = fold_bounds(n, n - val_end, val_end - train_end, folds, fold)
        if out[name][0] < history + horizon:
            raise UserError(
                f"series '{name}' is too short for a {folds}-fold backtest: fold {fold + 1} would train "
                f"on {max(0, out[name][0])} steps, fewer than the {history + horizon} one training "
                "window needs",
                "lower backtest.folds or data.test_fraction",
            )
    return out


def walk_forward(recipe: FinanceForecasting, raw: Raw, bounds: dict, state: dict, folds: int) -> dict:
    """Rolling-origin evaluation: per fold, re-fill gaps and re-fit scaling and season on that fold's past,
    then train and evaluate it with the core's `train_and_evaluate` in a throw-away folder, baselines
    and significance test included.

    Each fold runs a fresh recipe whose config has the backtest off (no nesting) and the seed moved on by
    the fold number. Lookback and horizon stay as in `state`, so the folds compare one design over time.
    """
    from dlkit.engine.rng import seed_everything
    from dlkit.jobs import train_and_evaluate

    d, spec = recipe.cfg["data"], fd.spec(state)
    results, quiet = [], console.is_quiet()
    for fold in range(folds):
        cuts = backtest_bounds(bounds, spec.history, spec.horizon, folds, fold)
        series = fd.fill_series(raw, cuts, d)[0]
        season = d["season"] or ts.detect_season([s.y[: cuts[s.name][0]] for s in series], state["frequency"])
        fold_state = {
            **state,
            "season": season,
            "series": {s.name: fd.describe_series(s, cuts[s.name], season, spec.transform) for s in series},
        }
        fold_state.pop("backtest", None)
        fd.choose_base(series, fold_state, cuts, recipe.cfg["model"]["base"])
        train, val, test = fd.split_sets(series, fold_state, cuts)
        cfg = copy.deepcopy(recipe.cfg)
        cfg["backtest"]["folds"] = 0
        cfg["seed"] = recipe.cfg["seed"] + fold
        job = RecipeData(train, val, test, fold_state, extras={"raw": raw})
        seed_everything(cfg["seed"])
        console.set_quiet(True)
        try:
            with tempfile.TemporaryDirectory(prefix="dlkit-backtest-") as tmp:
                fit, report = train_and_evaluate(type(recipe)(cfg), job, Path(tmp))
        finally:
            console.set_quiet(quiet)
        first = fold_state["series"][series[0].name]
        naive = report["baselines"]["naive"]["mase"]
        strongest = report["strongest_baseline"]
        results.append(
            {
                "fold": fold + 1,
                "train": first["train"],
                "test": first["test"],
                "windows": len(test),
                "season": season,
                "epochs": fit.epochs_run,
                "metrics": {k: v for k, v in report["metrics"].items() if k != "loss"},
                "baselines": report["baselines"],
                "strongest_baseline": strongest,
                "beats_baseline": report["beats_baseline"],
                "pvalues": {n: t["pvalue"] for n, t in report["details"]["diebold_mariano"].items()},
            }
        )
        console.info(
            f"backtest fold {fold + 1}/{folds} (test {first['test'][0]}..{first['test'][1]}): MASE "
            f"{report['metrics']['mase']:.3f} vs naive {naive:.3f}, {strongest} "
            f"{report['baselines'][strongest]['mase']:.3f}"
            + ("" if report["beats_baseline"] else f" -- does not beat {strongest}")
        )
    mean = {k: float(np.mean([r["metrics"][k] for r in results])) for k in results[0]["metrics"]}
    names = [n for n in results[0]["baselines"] if all(n in r["baselines"] for r in results)]
    baseline_mean = {
        n: {k: float(np.mean([r["baselines"][n][k] for r in results])) for k in results[0]["baselines"][n]}
        for n in names
    }
    beaten = sum(bool(r["beats_baseline"]) for r in results)
    best = min(names, key=lambda n: baseline_mean[n]["mase"])
    (console.info if beaten == folds else console.warn)(
        f"backtest over {folds} folds: mean MASE {mean['mase']:.3f} vs naive "
        f"{baseline_mean['naive']['mase']:.3f}, {best} {baseline_mean[best]['mase']:.3f}; the model beats "
        f"the strongest baseline in {beaten} of {folds} folds"
    )
    return {"folds": results, "mean": mean, "baseline_mean": baseline_mean, "folds_beating_baseline": beaten}
