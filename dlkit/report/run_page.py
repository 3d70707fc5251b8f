"""One run's page: the shared sections, then the recipe's own sections drawn from the test split."""

from __future__ import annotations

from pathlib import Path

from dlkit import console
from dlkit.errors import UserError
from dlkit.recipe import Recipe, RecipeData
from dlkit.report import shared
from dlkit.report.page import Section, write_page
from dlkit.run import Run


def recipe_sections(
    run: Run, recipe: Recipe, data: RecipeData | None, folder: Path, model=None
) -> list[Section]:
    """The recipe hook's sections over the test split, with the run's best weights (or `model`)."""
    from dlkit.engine.device import pick_device
    from dlkit.jobs.common import load_best
    from dlkit.report.tested import HeldOutBatches

    if type(recipe).report_sections is Recipe.report_sections:
        return []
    if data is None:
        data, reason = _test_data(run, recipe)
        if data is None:
            return [Section(f"{recipe.name}: test-split sections", alerts=[reason])]
    if model is None:
        model, device = load_best(run, recipe, data.state)
    else:
        device = pick_device(recipe.cfg["device"])
    evaluation = shared.read_eval(run) or {}
    return recipe.report_sections(data, HeldOutBatches(recipe, data, model, device), evaluation, folder)


def _test_data(run: Run, recipe: Recipe) -> tuple[RecipeData | None, str]:
    """The run's test split, read with its fitted state as `dlkit evaluate` does; or why it cannot be."""
    from dlkit.jobs.common import resolve_data_path

    try:
        path = resolve_data_path(recipe.cfg["data"]["path"], type(recipe))
        data = recipe.load_data(path, run.state())
        recipe.setup(data.state, fresh=False)
    except UserError as exc:
        return None, f"the recipe's sections need the run's test data, which cannot be read: {exc.message}"
    return data, ""


def build(
    run_path: Path,
    recipe: Recipe | None = None,
    data: RecipeData | None = None,
    model=None,
    overrides: list[str] | None = None,
) -> Path:
    """Write RUN/report/index.html (and its PNGs); the page's path.

    A training job passes its recipe, data and model so nothing is read twice; `dlkit report` passes
    none and reads them from the run, as `dlkit evaluate` would.
    """
    from dlkit.jobs.common import open_run

    run = Run.open(run_path)
    if recipe is None:
        run, recipe = open_run(run.path, list(overrides or []))
    folder = run.path / "report"
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.png"):  # figures of an earlier report that this one may not redraw
        old.unlink()
    checks = shared.read_checks(run.path / "metrics.jsonl")
    result = shared.read_eval(run)
    monitor = (result or {}).get("monitor", recipe.monitor)
    mode = (result or {}).get("monitor_mode", recipe.monitor_mode)
    sections = [
        shared.summary(run),
        shared.final_metrics(result),
        shared.curves(
            checks, monitor, mode, folder, (recipe.select, recipe.select_mode) if recipe.select else None
        ),
        shared.gradients(checks, folder),
    ]
    sections += recipe_sections(run, recipe, data, folder, model)
    sections += [shared.cleaning(run.state()), shared.config(run)]
    verdict = (result or {}).get("beats_baseline")
    subtitle = f"{recipe.name} · {run.path.name} · " + (
        "no verdict"
        if verdict is None
        else ("beats the strongest baseline" if verdict else "does not beat the strongest baseline")
    )
    return write_page(folder / "index.html", f"dlkit report: {run.path.name}", subtitle, sections)


def after_training(run_path: Path, recipe: Recipe, data: RecipeData) -> Path | None:
    """The report at the end of `dlkit train`: a failure to draw warns and never fails the run."""
    try:
        path = build(run_path, recipe, data)
    except Exception as exc:  # noqa: BLE001 - a report is a convenience; the trained run must stand
        console.warn(
            f"the report could not be written ({type(exc).__name__}: {exc}); try `dlkit report {run_path}`"
        )
        return None
    console.info(f"report: [bold]{path}[/]")
    return path
