"""The jobs behind the commands: train, evaluate, predict. The CLI parses; these do the work."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable
from pathlib import Path

from dlkit import console
from dlkit.config import load_yaml, merge_schema, parse_overrides, resolve
from dlkit.defaults import SHARED
from dlkit.errors import UserError
from dlkit.recipe import Recipe
from dlkit.registry import get_recipe
from dlkit.run import Run, default_run_dir, fingerprint

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def schema_for(cls: type[Recipe]) -> dict:
    return merge_schema(SHARED, cls.config())


def build_config(
    cls: type[Recipe], config_file: Path | None, overrides: list[str], base: dict | None = None
) -> dict:
    """shared defaults < recipe defaults < (run config when resuming) < --config file < key=value."""
    schema = schema_for(cls)
    layers = [base or {}, load_yaml(config_file) if config_file else {}]
    merged: dict = {}
    for layer in layers:
        _deep_update(merged, layer)
    return resolve(schema, merged, parse_overrides(overrides))


def _deep_update(into: dict, new: dict) -> None:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _deep_update(into[k], v)
        else:
            into[k] = v


def resolve_data_path(value: str | None, cls: type[Recipe]) -> Path:
    """A path as given, or relative to the project for the bundled sample data."""
    raw = value or cls.sample_data
    path = Path(raw).expanduser()
    if not path.exists() and not path.is_absolute() and (PROJECT_ROOT / path).exists():
        path = PROJECT_ROOT / path
    if not path.exists():
        raise UserError(
            f"data path '{raw}' does not exist", "pass --data PATH to a folder or file of your data"
        )
    return path


def check(
    recipe_name: str,
    data: str | None = None,
    config_file: Path | None = None,
    overrides: list[str] | None = None,
) -> dict:
    """Pre-flight report: the recipe's findings, as a table and a dict; fatal ones are counted."""
    cls = get_recipe(recipe_name)
    cfg = build_config(cls, config_file, list(overrides or []) + ([f"data.path={data}"] if data else []))
    path = resolve_data_path(cfg["data"]["path"], cls)
    findings = cls(cfg).check(path)
    _print_findings(path, findings)
    return {
        "recipe": recipe_name,
        "data": str(path),
        "fatal": sum(f.severity == "fatal" for f in findings),
        "findings": [vars(f) for f in findings],
    }


def _print_findings(path: Path, findings: list) -> None:
    from rich.table import Table

    if console.is_quiet():
        return
    colour = {"ok": "green", "info": "cyan", "warning": "yellow", "fatal": "bold red"}
    table = Table("check", "result", "found", "what to do", title=f"dlkit check: {path}")
    for f in findings:
        table.add_row(f.check, f"[{colour.get(f.severity, 'white')}]{f.severity}[/]", f.message, f.fix)
    console.err.print(table)


def _latest_run(recipe: str) -> Path:
    runs = sorted(
        (p for p in (Path("runs") / recipe).glob("*") if (p / "config.yaml").exists()),
        key=lambda p: p.stat().st_mtime,
    )
    if not runs:
        raise UserError(
            f"no run of '{recipe}' to resume under runs/{recipe}", "pass --out RUN_DIR with --resume"
        )
    return runs[-1]


def _prepare_model(recipe: Recipe, state: dict, train: bool):
    """Build the recipe's model; on a fresh training run apply init and local pretrained weights."""
    from dlkit.modeling import init_weights, load_pretrained

    model = recipe.build_model(state)
    cfg = recipe.cfg["model"]
    if train:
        init_weights(model, cfg["init"], cfg["activation"])
        if cfg["pretrained"]:
            skipped = load_pretrained(model, cfg["pretrained"])
            console.info(
                f"loaded weights from {cfg['pretrained']}"
                + (f" ({len(skipped)} tensors left at init: {', '.join(skipped[:4])}...)" if skipped else "")
            )
    return model


def train(
    recipe_name: str,
    data: str | None = None,
    config_file: Path | None = None,
    out: Path | None = None,
    overrides: list[str] | None = None,
    seed: int | None = None,
    resume: bool = False,
    on_epoch_end: Callable | None = None,
) -> dict | None:
    """Train a recipe into a run directory; the result summary (None on non-zero distributed ranks)."""
    from dlkit.engine import distributed
    from dlkit.engine.device import pick_device
    from dlkit.engine.loop import fit
    from dlkit.engine.rng import seed_everything

    distributed.setup()
    main = distributed.is_main()
    if not main:
        console.set_quiet(True)
    cls = get_recipe(recipe_name)
    overrides = list(overrides or [])
    if data is not None:
        overrides.append(f"data.path={data}")
    if seed is not None:
        overrides.append(f"seed={seed}")
    if resume:
        run = Run.open(out or _latest_run(recipe_name))
        if run.recipe != recipe_name:
            raise UserError(f"run '{run.path}' was made by recipe '{run.recipe}', not '{recipe_name}'")
        if not run.checkpoint("last").exists():
            raise UserError(f"run '{run.path}' has no checkpoint to resume from", "start a new run instead")
        cfg = build_config(cls, config_file, overrides, base=run.config())
        state = run.state()
    else:
        cfg = build_config(cls, config_file, overrides)
        run_path = out or default_run_dir(recipe_name)
        Run.ensure_free(run_path)
        state = None
    seed_everything(cfg["seed"])
    recipe = cls(cfg)
    data_path = resolve_data_path(cfg["data"]["path"], cls)
    loaded = recipe.load_data(data_path, state)
    for note in loaded.notes:
        console.warn(note)
    device = pick_device(cfg["device"])
    if not main:
        distributed.barrier()  # rank 0 creates the run directory first
        run = Run(run.path if resume else run_path)
    elif resume:
        run.write_config(cfg)
    else:
        run = Run.create(run_path)
        run.write_config(cfg)
        run.write_state(loaded.state)
        run.write_manifest(
            recipe_name, cfg, str(device), fingerprint(data_path), world_size=distributed.world_size()
        )
    if main:
        distributed.barrier()
    console.info(
        f"[bold]{recipe_name}[/] -> {run.path}  (device {device}, "
        f"{len(loaded.train)} train / {len(loaded.val)} val / {len(loaded.test)} test)"
    )
    model = _prepare_model(recipe, loaded.state, train=not resume)
    result = fit(
        model,
        recipe.step,
        loaded.train,
        loaded.val,
        recipe.metrics(loaded.state),
        cfg,
        run.path,
        monitor=cls.monitor,
        mode=cls.monitor_mode,
        collate=recipe.collate,
        train_weights=loaded.train_weights,
        resume=resume,
        on_epoch_end=on_epoch_end,
    )
    distributed.teardown()
    if not main:  # rank 0 finishes alone: calibration, native export and the test evaluation
        return None
    run.update_manifest(
        epochs_run=result.epochs_run,
        best_epoch=result.best_epoch,
        train_seconds=round(result.seconds, 2),
        stopped_early=result.stopped_early,
    )
    _finish_training(run, recipe, loaded)
    report = _evaluate_loaded(run, recipe, loaded, split="test")
    return {
        "run": str(run.path),
        "epochs": result.epochs_run,
        "best_epoch": result.best_epoch,
        "train_seconds": round(result.seconds, 2),
        **report,
    }


def _load_best(run: Run, recipe: Recipe, state: dict):
    from dlkit.engine import checkpoint
    from dlkit.engine.device import pick_device

    device = pick_device(recipe.cfg["device"])
    model = _prepare_model(recipe, state, train=False)
    checkpoint.load_weights(run.checkpoint("best"), model)
    return model.to(device), device


def _finish_training(run: Run, recipe: Recipe, loaded) -> None:
    """With the best weights: fit post-training parameters on validation, save the native format."""
    from dlkit.engine.loop import make_loader
    from dlkit.engine.loop import predict as run_predict

    model, device = _load_best(run, recipe, loaded.state)
    if type(recipe).calibrate is not Recipe.calibrate:
        loader = make_loader(loaded.val, recipe.cfg, shuffle=False, collate=recipe.collate)
        ids, outputs = run_predict(model, recipe.predict_step, loader, device)
        extra = recipe.calibrate(ids, outputs, loaded)
        if extra:
            loaded.state.update(extra)
            run.write_state(loaded.state)
    if type(recipe).save_native is not Recipe.save_native:
        recipe.save_native(model.cpu(), loaded.state, run.path / "model")


def _evaluate_loaded(run: Run, recipe: Recipe, loaded, split: str, write: bool = True) -> dict:
    from dlkit.engine.device import amp_dtype
    from dlkit.engine.loop import evaluate, make_loader

    cfg = recipe.cfg
    model, device = _load_best(run, recipe, loaded.state)
    which = run.checkpoint("best")
    loader = make_loader(loaded.test, cfg, shuffle=False, collate=recipe.collate)
    metrics = evaluate(
        model,
        recipe.step,
        loader,
        recipe.metrics(loaded.state),
        device,
        amp_dtype(cfg["train"]["amp"], device),
    )
    baseline = recipe.baseline(loaded)
    monitor = type(recipe).monitor
    better = baseline.pop("beats_baseline", None)  # a recipe may judge more strictly (e.g. a significance test)
    if better is None and monitor in baseline:
        higher = type(recipe).monitor_mode == "max"
        better = metrics[monitor] > baseline[monitor] if higher else metrics[monitor] < baseline[monitor]
    result = {
        "split": split,
        "examples": len(loaded.test),
        "checkpoint": which.name,
        "monitor": monitor,
        "metrics": metrics,
        "baseline": baseline,
        "beats_baseline": None if better is None else bool(better),
    }
    if write:
        run.write_json("eval.json", result)
    _print_eval(result)
    return result


def _print_eval(result: dict) -> None:
    from rich.table import Table

    if console.is_quiet():
        return
    table = Table(title=f"{result['split']} split, {result['examples']} examples ({result['checkpoint']})")
    table.add_column("metric")
    table.add_column("model", justify="right")
    table.add_column("baseline", justify="right")
    for name, value in result["metrics"].items():
        if isinstance(value, float):
            base = result["baseline"].get(name)
            table.add_row(name, f"{value:.4f}", f"{base:.4f}" if isinstance(base, float) else "-")
    console.err.print(table)


def evaluate(run_path: Path, data: str | None = None) -> dict:
    """Test-split metrics from the run's own data, or metrics on all of a new labelled dataset."""
    run = Run.open(run_path)
    cls = get_recipe(run.recipe)
    cfg = build_config(cls, None, [], base=run.config())
    recipe = cls(cfg)
    path = resolve_data_path(data or cfg["data"]["path"], cls)
    loaded = recipe.load_data(path, run.state(), evaluate_all=data is not None)
    for note in loaded.notes:
        console.warn(note)
    if not loaded.test or len(loaded.test) == 0:
        raise UserError(f"no labelled examples to evaluate in '{path}'")
    result = _evaluate_loaded(
        run, recipe, loaded, split="test" if data is None else f"all of {path}", write=data is None
    )
    return {"run": str(run.path), **result}


def predict(run_path: Path, inputs: list[str], output: Path | None = None) -> list[dict]:
    from dlkit.engine.loop import make_loader
    from dlkit.engine.loop import predict as run_predict

    run = Run.open(run_path)
    cls = get_recipe(run.recipe)
    cfg = build_config(cls, None, [], base=run.config())
    recipe = cls(cfg)
    state = run.state()
    dataset = recipe.read_inputs(inputs, state)
    if len(dataset) == 0:
        raise UserError(f"no readable inputs among: {', '.join(inputs)}")
    model, device = _load_best(run, recipe, state)
    ids, outputs = run_predict(
        model, recipe.predict_step, make_loader(dataset, cfg, shuffle=False, collate=recipe.collate), device
    )
    records = recipe.to_records(ids, outputs, state)
    if output is not None:
        write_records(records, output)
        console.info(f"wrote {len(records)} predictions to {output}")
    return records


def write_records(records: list[dict], output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix.lower() == ".csv":
        flat = [
            {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in r.items()} for r in records
        ]
        fields = list(dict.fromkeys(k for r in flat for k in r))
        with open(output, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(flat)
    else:
        with open(output, "w") as fh:
            for r in records:
                fh.write(json.dumps(r) + "\n")


def print_records(records: list[dict]) -> None:
    for r in records:
        sys.stdout.write(json.dumps(r) + "\n")
