"""The test evaluation: the model and every named baseline scored with the recipe's own metrics, the
recipe's details, and a verdict against the strongest baseline. Also `dlkit evaluate`."""

from __future__ import annotations

from pathlib import Path

from dlkit import console
from dlkit.errors import UserError
from dlkit.jobs.common import load_best, open_run, resolve_data_path
from dlkit.recipe import Recipe, RecipeData
from dlkit.run import Run


def score_baselines(recipe: Recipe, data: RecipeData, loader) -> tuple[dict[str, dict], dict[str, dict]]:
    """Each named baseline predictor over the test loader: (its Metric objects, its values)."""
    from dlkit.engine.inference import to_python

    predictors = recipe.baselines(data)
    metrics = {name: recipe.metrics(data.state) for name in predictors}
    for batch in loader:
        for name, predict in predictors.items():
            out = predict(batch)
            for m in metrics[name].values():
                m.update(out["preds"], out["target"])
    values = {name: {k: to_python(m.compute()) for k, m in ms.items()} for name, ms in metrics.items()}
    return metrics, values


def judge(
    recipe: Recipe, metrics: dict, baselines: dict[str, dict], details: dict
) -> tuple[bool | None, str | None]:
    """(beats the strongest baseline?, its name): better on the monitored metric, and the recipe agrees."""
    monitor, higher = recipe.monitor, recipe.monitor_mode == "max"
    scored = {n: v[monitor] for n, v in baselines.items() if isinstance(v.get(monitor), float)}
    if not scored or not isinstance(metrics.get(monitor), float):
        return None, None
    strongest = (max if higher else min)(scored, key=scored.get)
    best = scored[strongest]
    better = metrics[monitor] > best if higher else metrics[monitor] < best
    return bool(better and recipe.confirm_win(details, strongest)), strongest


def evaluate_loaded(
    run: Run, recipe: Recipe, data: RecipeData, split: str, write: bool = True, model=None
) -> dict:
    """The test evaluation of `model` (else the run's best weights), its baselines and the verdict."""
    from dlkit.engine.device import amp_dtype, channels_last, pick_device
    from dlkit.engine.inference import evaluate
    from dlkit.engine.loaders import make_loader

    cfg = recipe.cfg
    if model is None:
        model, device = load_best(run, recipe, data.state)
    else:
        device = pick_device(cfg["device"])
    loader = make_loader(data.test, cfg, shuffle=False, collate=recipe.collate)
    model_metrics = recipe.metrics(data.state)
    dtype = amp_dtype(cfg["train"]["amp"], device)
    values = evaluate(
        model,
        recipe.step,
        loader,
        model_metrics,
        device,
        dtype,
        channels_last(cfg["train"]["channels_last"], model, device),
        "test",
    )
    base_metrics, baselines = score_baselines(recipe, data, loader)
    details = recipe.eval_details(data, model_metrics, base_metrics)
    beats, strongest = judge(recipe, values, baselines, details)
    result = {
        "split": split,
        "examples": len(data.test),
        "checkpoint": run.checkpoint("best").name,
        "monitor": recipe.monitor,
        "monitor_mode": recipe.monitor_mode,
        "metrics": values,
        "baselines": baselines,
        "strongest_baseline": strongest,
        "beats_baseline": beats,
        "details": details,
    }
    if write:
        run.write_json("eval.json", result)
    print_eval(result)
    return result


def verdict_text(result: dict) -> str | None:
    monitor, strongest = result["monitor"], result["strongest_baseline"]
    if strongest is None:
        return None
    mine, theirs = result["metrics"][monitor], result["baselines"][strongest][monitor]
    figures = f"{monitor} {mine:.4f} vs {theirs:.4f}"
    if result["beats_baseline"]:
        return f"the model beats the strongest baseline, {strongest} ({figures})"
    better = mine > theirs if result["monitor_mode"] == "max" else mine < theirs
    if better:
        return (
            f"the model scores better than the strongest baseline, {strongest} ({figures}), but not "
            "significantly (see details in eval.json): do not count on it beating the baseline"
        )
    return (
        f"the baseline {strongest} wins ({figures}): the model does NOT beat it. Use the baseline, or try "
        "more training steps (train.min_steps=...), another model or a pretrained checkpoint "
        "(dlkit info RECIPE lists the keys)"
    )


def print_eval(result: dict) -> None:
    from rich.table import Table

    if console.is_quiet():
        return
    names = list(result["baselines"])
    table = Table(title=f"{result['split']} split, {result['examples']} examples ({result['checkpoint']})")
    table.add_column("metric")
    table.add_column("model", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for metric, value in result["metrics"].items():
        if not isinstance(value, float):
            continue
        cells = [result["baselines"][n].get(metric) for n in names]
        table.add_row(
            metric + (" *" if metric == result["monitor"] else ""),
            f"{value:.4f}",
            *(f"{c:.4f}" if isinstance(c, float) else "-" for c in cells),
        )
    console.err.print(table)
    text = verdict_text(result)
    if text:
        (console.info if result["beats_baseline"] else console.warn)(text)


def evaluate(run_path: Path, data: str | None = None, overrides: list[str] | None = None) -> dict:
    """Test-split metrics from the run's own data, or metrics on all of a new labelled dataset."""
    run, recipe = open_run(run_path, list(overrides or []))
    cls = type(recipe)
    path = resolve_data_path(data or recipe.cfg["data"]["path"], cls)
    loaded = recipe.load_data(path, run.state(), evaluate_all=data is not None)
    for note in loaded.notes:
        console.warn(note)
    if not loaded.test or len(loaded.test) == 0:
        raise UserError(f"no labelled examples to evaluate in '{path}'")
    recipe.setup(loaded.state, fresh=False)
    # eval.json is the run's own record: rewritten only by a plain re-evaluation of its test split
    plain = data is None and not overrides
    result = evaluate_loaded(
        run, recipe, loaded, split="test" if data is None else f"all of {path}", write=plain
    )
    return {"run": str(run.path), **result}
