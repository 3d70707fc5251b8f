"""Walk-forward backtest: per-fold split bounds and the rolling-origin re-training loop."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from dlkit_recipes.finance_forecasting.metrics import forecast_metrics

from dlkit import console
from dlkit.data import timeseries as ts
from dlkit.errors import UserError

if TYPE_CHECKING:  # annotations only: the recipe module imports this one
    from dlkit_recipes.finance_forecasting.recipe import FinanceForecasting, Raw


def fold_bounds(n: int, test_size: int, val_size: int, folds: int, fold: int) -> list[int]:
    """(train end, validation end, test end) of fold `fold` of `folds`: expanding train, then one test block.

    The last fold ends where the series ends, so it matches the main split's test part.
    """
    test_end = n - (folds - 1 - fold) * test_size
    return [test_end - test_size - val_size, test_end - test_size, test_end]


def backtest_bounds(raw: Raw, spec: ts.WindowSpec, data_cfg: dict, folds: int, fold: int) -> dict:
    """Each series' fold bounds; refuses a series whose first fold would have no training window."""
    bounds = {}
    for name, grid in raw.grids.items():
        n = len(grid.dates)
        train_end, val_end = ts.time_split(
            n, data_cfg["val_fraction"], data_cfg["test_fraction"], spec.horizon
        )
        bounds[name] = fold_bounds(n, n - val_end, val_end - train_end, folds, fold)
        if bounds[name][0] < spec.history + spec.horizon:
            raise UserError(
                f"series '{name}' is too short for a {folds}-fold backtest: fold {fold + 1} would train "
                f"on {max(0, bounds[name][0])} steps, fewer than the {spec.history + spec.horizon} one "
                "training window needs",
                "lower backtest.folds or data.test_fraction",
            )
    return bounds


def walk_forward(recipe: FinanceForecasting, raw: Raw, state: dict, folds: int) -> dict:
    """Rolling-origin evaluation: per fold, re-fill gaps and re-fit scaling and season on that fold's past,
    re-train with `dlkit.engine.loop.fit` in a throw-away folder, score its test block beside the baselines.

    Lookback and horizon stay as in `state`, so the folds compare one design over time.
    """
    from dlkit.engine import checkpoint
    from dlkit.engine.device import pick_device
    from dlkit.engine.loop import evaluate, fit, make_loader
    from dlkit.engine.rng import seed_everything
    from dlkit.modeling import init_weights

    cfg, spec, d = recipe.cfg, recipe.spec(state), recipe.cfg["data"]
    device = pick_device(cfg["device"])
    results, quiet = [], console.is_quiet()
    for fold in range(folds):
        bounds = backtest_bounds(raw, spec, d, folds, fold)
        series = recipe.fill_series(raw, bounds)[0]
        season = d["season"] or ts.detect_season(
            [s.y[: bounds[s.name][0]] for s in series], state["frequency"]
        )
        fold_state = {
            **state,
            "season": season,
            "series": {
                s.name: recipe.describe_series(s, bounds[s.name], season, spec.transform) for s in series
            },
        }
        train, val, test = recipe.split_sets(series, fold_state, bounds)
        seed_everything(cfg["seed"] + fold)
        model = recipe.build_model(fold_state)
        init_weights(model, cfg["model"]["init"], cfg["model"]["activation"])
        console.set_quiet(True)
        try:
            with tempfile.TemporaryDirectory(prefix="dlkit-backtest-") as tmp:
                fit(
                    model,
                    recipe.step,
                    train,
                    val,
                    forecast_metrics(fold_state),
                    cfg,
                    Path(tmp),
                    monitor=recipe.monitor,
                    mode=recipe.monitor_mode,
                    collate=recipe.collate,
                )
                checkpoint.load_weights(Path(tmp) / "checkpoints" / "best.safetensors", model)
        finally:
            console.set_quiet(quiet)
        metrics = forecast_metrics(fold_state)
        loader = make_loader(test, cfg, shuffle=False, collate=recipe.collate)
        scores = evaluate(model.to(device), recipe.step, loader, metrics, device)
        baselines = recipe.baseline_values(test, fold_state)
        found = recipe.verdict(metrics["mase"], spec.horizon)
        first = fold_state["series"][series[0].name]
        results.append(
            {
                "fold": fold + 1,
                "train": first["train"],
                "test": first["test"],
                "windows": len(test),
                "season": season,
                "metrics": {k: v for k, v in scores.items() if k != "loss"},
                "baseline": {k: v for k, v in baselines.items() if k != "season"},
                "beats_naive": found["beats_naive"],
                "naive_pvalue": found["naive_pvalue"],
            }
        )
        console.info(
            f"backtest fold {fold + 1}/{folds} (test {first['test'][0]}..{first['test'][1]}): MASE "
            f"{scores['mase']:.3f} vs naive {baselines['mase']:.3f}"
            + ("" if found["beats_naive"] else " -- does not beat naive")
        )
    mean = {k: float(np.mean([r["metrics"][k] for r in results])) for k in results[0]["metrics"]}
    naive = {
        k: float(np.mean([r["baseline"][k] for r in results]))
        for k in results[0]["baseline"]
        if all(k in r["baseline"] for r in results)
    }
    beaten = sum(r["beats_naive"] for r in results)
    (console.info if beaten == folds else console.warn)(
        f"backtest over {folds} folds: mean MASE {mean['mase']:.3f} vs naive {naive['mase']:.3f}; "
        f"the model beats "
        f"naive in {beaten} of {folds} folds"
    )
    return {"folds": results, "mean": mean, "baseline_mean": naive, "folds_beating_naive": beaten}
