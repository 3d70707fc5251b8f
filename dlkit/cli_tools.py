"""The commands around a trained run (export, report, chat), tuning and sample data: registered on the
same `app` as the core commands in dlkit/cli.py, which imports this module once `app` exists."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from dlkit import console
from dlkit.cli import JSON, Interrupted, app


@app.command("export")
def export_cmd(
    run: Path = typer.Argument(..., help="Run directory made by `dlkit train`."),
    fmt: str = typer.Option(
        "onnx", "--format", "-f", help="onnx, torchscript, or native (timm / Hugging Face / torchvision)."
    ),
    opset: int = typer.Option(17, "--opset", help="ONNX opset version."),
    dynamic_batch: bool = typer.Option(
        False, "--dynamic-batch", help="ONNX graph takes any batch size (default: one example per call)."
    ),
    quantize: str | None = typer.Option(
        None, "--quantize", help="int8: also quantise the ONNX weights (dynamic int8); predict uses it."
    ),
    tolerance: float | None = typer.Option(
        None,
        "--tolerance",
        help="Largest relative difference of the outputs vs PyTorch (default 1e-3; 0.25 with int8).",
    ),
    min_agreement: float | None = typer.Option(
        None,
        "--min-agreement",
        help="Smallest share of equal final predictions (default 0.99; 0.9 with int8).",
    ),
    data: str | None = typer.Option(
        None, "--data", help="Labelled data for the parity check (default: the run's data, test split)."
    ),
    json_out: bool = JSON,
) -> None:
    """Write RUN/exported/FORMAT/ (graph, fitted state, export.json) and check parity against PyTorch on
    the test split: exit 1 (files kept, marked failed) when the outputs differ beyond the tolerance."""
    from dlkit.export.job import export

    console.set_quiet(json_out)
    result = export(run, fmt, opset, dynamic_batch, quantize, tolerance, min_agreement, data)
    if json_out:
        console.emit_json(result)


@app.command("report")
def report_cmd(
    runs: list[str] = typer.Argument(
        ...,
        help="A run directory, a tuning study folder, or several runs to compare; then any "
        "inference-safe overrides for a run's page, e.g. device=cpu report.show_faces=true.",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Folder for a comparison page (default: compare-<names>/ beside the first run). "
        "A run's page always goes to RUN/report/, a study's to STUDY/report/.",
    ),
    json_out: bool = JSON,
) -> None:
    """HTML report with plots: RUN/report/index.html; several runs -> a comparison page."""
    from dlkit.report import report

    console.set_quiet(json_out)
    paths = [Path(r) for r in runs if "=" not in r or Path(r).exists()]
    result = report(paths, out, [r for r in runs if "=" in r and not Path(r).exists()])
    if json_out:
        console.emit_json(result)
    else:
        typer.echo(result["report"])


@app.command("chat")
def chat_cmd(
    run: Path = typer.Argument(..., help="Run directory of a dialogue recipe (nlp-chat)."),
    overrides: list[str] | None = typer.Argument(
        None, help="Inference-safe overrides: generate.strategy=sample generate.temperature=0.7 device=cpu."
    ),
    json_out: bool = typer.Option(
        False, "--json", help="Answer each input line with a JSON line {prompt, response} on stdout."
    ),
) -> None:
    """Talk to a trained chatbot: an interactive session at a terminal (/reset starts over, /exit or Ctrl-D
    leaves); from a pipe, one reply per input line on stdout (`echo hi | dlkit chat RUN`)."""
    from dlkit.jobs.chat import chat

    console.set_quiet(json_out)
    chat(run, overrides or [], json_lines=json_out)


@app.command("tune")
def tune_cmd(
    recipe: str = typer.Argument(..., help="Recipe name, e.g. tabular-fraud."),
    overrides: list[str] | None = typer.Argument(
        None, help="Config overrides every trial shares: train.max_steps=200 data.batch_size=64."
    ),
    space: Path | None = typer.Option(
        None, "--space", help="YAML search space over config keys (start from --example-space)."
    ),
    example_space: bool = typer.Option(
        False, "--example-space", help="Print a commented starting space for RECIPE and exit."
    ),
    strategy: str = typer.Option(
        "tpe", "--strategy", help="grid (every combination), random, or tpe (Bayesian; Optuna's TPE)."
    ),
    trials: int | None = typer.Option(
        None,
        "--trials",
        help="Trials in the study in all, across resumes and workers (default 20; grid: its size).",
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", help="Start no new trial after this many seconds (the same command resumes)."
    ),
    pruner: str = typer.Option(
        "auto",
        "--pruner",
        help="Stop hopeless trials early: auto (median; none for grid), median, hyperband, none.",
    ),
    data: str | None = typer.Option(None, "--data", help="Data file or folder (default: the sample data)."),
    study: str | None = typer.Option(None, "--study", help="Study name (default: SPACE-STRATEGY)."),
    storage: str | None = typer.Option(
        None,
        "--storage",
        help="Optuna RDB URL shared by workers, e.g. postgresql://user:pw@host/db "
        "(default: a SQLite file in the study folder).",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Study folder: trials, trials.csv, best.yaml, plots (default runs/RECIPE/STUDY)."
    ),
    json_out: bool = JSON,
) -> None:
    """Search hyperparameters: each trial is a run directory, chosen by its validation metric; the best
    trial alone is evaluated on test. Re-run the same command to resume; point workers at one --storage."""
    from dlkit.errors import UserError

    console.set_quiet(json_out)
    if example_space:
        from dlkit.jobs import schema_for
        from dlkit.registry import get_recipe
        from dlkit.tune.space import example_space as render

        cls = get_recipe(recipe)
        typer.echo(render(cls, schema_for(cls)), nl=False)
        return
    if space is None:
        raise UserError(
            "dlkit tune needs --space FILE",
            f"start from: dlkit tune {recipe} --example-space > /tmp/space.yaml (then edit it)",
        )
    from dlkit.tune.job import tune

    try:
        result = tune(
            recipe, space, strategy, trials, timeout, data, study, storage, out, overrides or [], pruner
        )
    except (
        Interrupted,
        KeyboardInterrupt,
    ) as exc:  # the study resumes; the trial's run is not one to --resume
        import signal

        from dlkit.run import ACTIVE

        ACTIVE.clear()
        term = getattr(exc, "signum", None) == signal.SIGTERM
        console.error(
            f"{'terminated' if term else 'interrupted'}; finished trials are kept and the interrupted one "
            "is queued again: run the same command to resume the study"
        )
        sys.exit(143 if term else 130)
    if json_out:
        console.emit_json(result)


@app.command("sample")
def sample_cmd(
    recipe: str = typer.Argument(..., help="Recipe name, e.g. tabular-fraud."),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="New or empty folder to copy the sample set into (default: only show where it is and its "
        "layout; dlkit never writes into the cwd).",
    ),
    json_out: bool = JSON,
) -> None:
    """Show a recipe's sample data set, or copy it with --out DIR: the layout to copy for your own data."""
    from dlkit.registry import get_recipe
    from dlkit.samples import copy_sample, describe_sample

    console.set_quiet(json_out)
    cls = get_recipe(recipe)
    if out is None:
        result = describe_sample(cls)
        head = f"the {cls.name} sample set is in {result['source']}"
        tail = f"copy it with: dlkit sample {cls.name} --out DIR"
    else:
        result = copy_sample(cls, out)
        head = f"wrote the {cls.name} sample set ({result['files']} files) to {result['out']}"
        tail = f"check it with: dlkit check {cls.name} --data {result['data']}"
    if json_out:
        console.emit_json(result)
    else:
        console.info("\n  ".join([head, *result["layout"]]) + f"\n{tail}")
