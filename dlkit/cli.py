"""The `dlkit` command: one small function per command; parse, call a job, print.

Heavy imports (torch, timm, transformers) happen inside the jobs, so `dlkit --help` stays instant.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import typer

from dlkit import console
from dlkit.errors import DlkitError

app = typer.Typer(
    name="dlkit",
    help="From a folder of data to a trained, evaluated, exported deep-learning model.\n\n"
    "Start with `dlkit recipes`, then `dlkit train RECIPE` (it trains on the recipe's sample data).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JSON = typer.Option(False, "--json", help="Print one machine-readable JSON result on stdout.")


def _version(value: bool) -> None:
    if value:
        from dlkit.version import version_line

        typer.echo(version_line())
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    pass


@app.command("recipes")
def recipes_cmd(json_out: bool = JSON) -> None:
    """List recipes: name, task, default model and sample data."""
    from rich.table import Table

    from dlkit.registry import recipe_meta, recipe_names

    console.set_quiet(json_out)
    rows = []
    for name in recipe_names():
        try:
            meta = recipe_meta(name)  # light: torch stays unloaded for recipes that ship RECIPE_META
        except Exception as exc:  # a broken plug-in must not hide the others
            reason = str(exc) if isinstance(exc, DlkitError) else f"{type(exc).__name__}: {exc}"
            console.warn(f"recipe '{name}' cannot be loaded: {reason}")
            continue
        rows.append({**meta, "name": name})
    if json_out:
        console.emit_json(rows)
        return
    table = Table("recipe", "task", "default model", "sample data", "description")
    for r in rows:
        table.add_row(r["name"], r["task"], r["default_model"], r["sample_data"], r["description"])
    console.err.print(table)


@app.command("info")
def info_cmd(
    recipe: str = typer.Argument(..., help="Recipe name, e.g. vision-classification."), json_out: bool = JSON
) -> None:
    """Show a recipe's full default config as YAML, one documented key per line."""
    from dlkit.config import defaults, merge_schema, render_yaml
    from dlkit.defaults import SHARED
    from dlkit.registry import recipe_defaults

    meta, changes = recipe_defaults(recipe)  # light: torch stays unloaded for recipes with recipe_config
    schema = merge_schema(SHARED, changes)
    if json_out:
        console.emit_json({"recipe": recipe, "monitor": meta["monitor"], "config": defaults(schema)})
        return
    typer.echo(f"# {meta['name']}: {meta['description']}")
    typer.echo(f"# task: {meta['task']}; monitored metric: {meta['monitor']}\n")
    typer.echo(render_yaml(schema))


@app.command("check")
def check_cmd(
    recipe: str = typer.Argument(..., help="Recipe name, e.g. tabular-fraud."),
    overrides: list[str] | None = typer.Argument(None, help="Config overrides, as for train."),
    data: str | None = typer.Option(None, "--data", help="Data file or folder (default: the sample data)."),
    config: Path | None = typer.Option(None, "--config", help="YAML config file."),
    json_out: bool = JSON,
) -> None:
    """Pre-flight report on the data before training; exit 2 if a problem is fatal."""
    from dlkit import jobs
    from dlkit.errors import UserError

    console.set_quiet(json_out)
    result = jobs.check(recipe, data, config, overrides or [])
    if json_out:
        console.emit_json(result)
    if result["fatal"]:
        raise UserError(f"{result['fatal']} fatal problem(s) in '{result['data']}'; fix them before training")


@app.command("train", context_settings={"allow_extra_args": False})
def train_cmd(
    recipe: str = typer.Argument(..., help="Recipe name, e.g. vision-classification."),
    overrides: list[str] | None = typer.Argument(
        None, help="Config overrides: train.epochs=3 model.name=resnet18"
    ),
    data: str | None = typer.Option(None, "--data", help="Data file or folder (default: the sample data)."),
    config: Path | None = typer.Option(None, "--config", help="YAML config file (e.g. a run's config.yaml)."),
    out: Path | None = typer.Option(None, "--out", help="Run directory (default runs/RECIPE/TIMESTAMP)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (same as seed=N)."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run in --out (or the latest) from its last checkpoint."
    ),
    force: bool = typer.Option(
        False, "--force", help="With --resume: continue even though the data changed since the run began."
    ),
    json_out: bool = JSON,
) -> None:
    """Train a recipe; writes a run directory with config, checkpoints, metrics and eval.json."""
    from dlkit import jobs

    console.set_quiet(json_out)
    result = jobs.train(recipe, data, config, out, overrides or [], seed, resume, force=force)
    if result is None:  # a non-zero rank of a distributed run: rank 0 reports
        return
    if json_out:
        console.emit_json(result)
    else:
        console.info(f"run saved in [bold]{result['run']}[/]")


@app.command("evaluate")
def evaluate_cmd(
    run: Path = typer.Argument(..., help="Run directory made by `dlkit train`."),
    overrides: list[str] | None = typer.Argument(
        None, help="Inference-safe overrides: device=cpu data.batch_size=8 (not model or training keys)."
    ),
    data: str | None = typer.Option(None, "--data", help="New labelled data to evaluate on (all of it)."),
    json_out: bool = JSON,
) -> None:
    """Metrics on the run's test split (or on new labelled data), beside every baseline."""
    from dlkit import jobs

    console.set_quiet(json_out)
    result = jobs.evaluate(run, data, overrides or [])
    if json_out:
        console.emit_json(result)


@app.command("predict")
def predict_cmd(
    run: Path = typer.Argument(..., help="Run directory made by `dlkit train`."),
    inputs: list[str] = typer.Argument(
        ...,
        help="Files, folders (or CSV files, per recipe) to predict on, then any inference-safe "
        "overrides such as device=cpu or predict.chunk_size=256.",
    ),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Write to F.jsonl, F.csv or F.tsv (default: JSONL on stdout); side files go to F_outputs/.",
    ),
    backend: str = typer.Option(
        "torch",
        "--backend",
        help="torch, or onnx: the graph of `dlkit export RUN` in ONNX Runtime on the CPU (same records).",
    ),
    json_out: bool = JSON,
) -> None:
    """Predictions for new inputs, as JSONL (default, on stdout), CSV or TSV, streamed chunk by chunk."""
    from dlkit import jobs

    console.set_quiet(json_out)
    paths, overrides = jobs.split_overrides(run, inputs)
    if not paths:
        from dlkit.errors import UserError

        raise UserError(
            "no inputs to predict on", "give files, folders or texts, then any key=value overrides"
        )
    stream = None if (json_out or output is not None) else jobs.print_records
    result = jobs.predict(run, paths, output, overrides, on_records=stream, backend=backend)
    if json_out:
        console.emit_json(result)


@app.command("batch")
def batch_cmd(
    file: Path = typer.Argument(..., help="YAML file of jobs (see README: Batch jobs)."),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for batch.json, logs, runs (default: <file stem>.batch/ beside the file)."
    ),
    parallel: int | None = typer.Option(
        None, "--parallel", "-p", help="Jobs at once (default 1, or one per --gpus); CPU threads are shared."
    ),
    gpus: str | None = typer.Option(None, "--gpus", help="GPU ids, one per worker: --gpus 0,1."),
    fail_fast: bool = typer.Option(False, "--fail-fast", help="Stop everything at the first failed job."),
    rerun: bool = typer.Option(False, "--rerun", help="Run every job, even ones already done."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the expanded jobs; run nothing."),
    json_out: bool = JSON,
) -> None:
    """Run many train/evaluate/predict jobs from a YAML file; a failed job does not stop the others."""
    from dlkit.errors import JobError
    from dlkit.jobs.batch import batch

    console.set_quiet(json_out)
    result = batch(file, out, parallel, gpus, fail_fast, rerun, dry_run)
    if json_out:
        console.emit_json(result)
    if result["failed"]:
        n, total = len(result["failed"]), len(result["jobs"])
        raise JobError(
            f"{n} of {total} jobs failed: {', '.join(result['failed'])}",
            f"see their logs in {Path(result['folder']) / 'logs'}",
        )


@app.command("new-recipe")
def new_recipe_cmd(
    name: str = typer.Argument(..., help="Recipe name, e.g. my-sensors (lower case, digits, dashes)."),
    task: str = typer.Option("classification", "--task", help="classification or regression."),
    folder: Path = typer.Option(
        ..., "--dir", help="Folder to create the package in (new or empty; dlkit never writes into the cwd)."
    ),
    json_out: bool = JSON,
) -> None:
    """Scaffold a plug-in recipe package that installs with pip and trains on its own sample data."""
    from dlkit.scaffold import new_recipe

    console.set_quiet(json_out)
    result = new_recipe(name, task, folder)
    if json_out:
        console.emit_json(result)
    else:
        console.info(f"created [bold]{result['folder']}[/]; next:\n  " + "\n  ".join(result["next"]))


class Interrupted(BaseException):
    """Raised from the SIGINT/SIGTERM handler, past Typer (which would swallow KeyboardInterrupt)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum, frame) -> None:
    raise Interrupted(signum)


def _prefix() -> str:
    """'[rank N] ' in a distributed run, so a failure on any process is told apart."""
    return f"[rank {os.environ['RANK']}] " if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""


def main() -> None:
    import signal

    from dlkit.engine.threads import quiet_waiting

    quiet_waiting()  # before anything loads torch: its OpenMP reads the setting once
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _run_app()
    finally:  # main() may be called in-process (tests, notebooks): give the signals back
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_app() -> None:
    import signal

    from dlkit.run import ACTIVE

    try:
        app()
    except DlkitError as exc:
        console.error(_prefix() + str(exc))
        sys.exit(exc.exit_code)
    except (Interrupted, KeyboardInterrupt) as exc:
        name = "terminated" if getattr(exc, "signum", None) == signal.SIGTERM else "interrupted"
        hint = "nothing was written"
        if ACTIVE and any((ACTIVE[0] / "checkpoints").glob("*.safetensors")):
            recipe = json.loads((ACTIVE[0] / "manifest.json").read_text()).get("recipe", "RECIPE")
            hint = (
                "the run keeps its last checkpoint; continue with: "
                f"dlkit train {recipe} --out {ACTIVE[0]} --resume"
            )
        elif ACTIVE:
            hint = "no checkpoint was written yet, so the unfinished run directory was removed"
        console.error(f"{_prefix()}{name}; {hint}")
        sys.exit(143 if name == "terminated" else 130)
    except Exception as exc:  # a bug, not a user mistake: say so briefly, full trace on request
        if os.environ.get("DLKIT_DEBUG"):
            traceback.print_exc()
        console.error(f"{_prefix()}{type(exc).__name__}: {exc}\n  (set DLKIT_DEBUG=1 for the traceback)")
        sys.exit(1)


from dlkit import cli_tools  # noqa: E402, F401  (registers export, report, chat, tune, sample)

if __name__ == "__main__":
    main()
