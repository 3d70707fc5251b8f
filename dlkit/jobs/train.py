"""`dlkit train`: config, run directory, data, then the shared `train_and_evaluate`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dlkit import console
from dlkit.errors import UserError
from dlkit.jobs.common import build_config, prepare_model, resolve_data_path
from dlkit.jobs.evaluation import evaluate_loaded
from dlkit.recipe import Recipe, RecipeData
from dlkit.registry import get_recipe
from dlkit.run import Run, default_run_dir, fingerprint


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


def train_and_evaluate(
    recipe: Recipe,
    data: RecipeData,
    run_dir: Path,
    *,
    resume: bool = False,
    on_epoch_end: Callable | None = None,
):
    """Set the recipe up, fit into `run_dir` (which exists), then on the main process calibrate, save the
    native format and evaluate the test split beside the baselines (eval.json). Returns (FitResult, eval
    dict) — the eval dict is None on the other processes of a distributed run.

    The train command and anything that re-trains (a backtest fold, a tuning trial) share this.
    """
    from dlkit.engine import checkpoint, distributed
    from dlkit.engine.loop import fit

    run = Run(run_dir)
    recipe.setup(data.state, fresh=not resume)
    model = prepare_model(recipe, data.state, fresh=not resume)
    result = fit(
        model,
        recipe.step,
        data.train,
        data.val,
        recipe.metrics(data.state),
        recipe.cfg,
        run.path,
        monitor=recipe.monitor,
        mode=recipe.monitor_mode,
        collate=recipe.collate,
        train_weights=data.train_weights,
        resume=resume,
        on_epoch_end=on_epoch_end,
    )
    main = distributed.is_main()  # asked before teardown: afterwards every process looks like rank 0
    distributed.teardown()
    if not main:  # rank 0 finishes alone
        return result, None
    checkpoint.load_weights(run.checkpoint("best"), model)  # the same module: no rebuild, no reload
    _finish_training(run, recipe, data, model)
    return result, evaluate_loaded(run, recipe, data, split="test", model=model)


def _finish_training(run: Run, recipe: Recipe, data: RecipeData, model) -> None:
    """With the best weights: fit post-training parameters on validation, save the native format."""
    from dlkit.engine.device import amp_dtype, pick_device
    from dlkit.engine.inference import predict
    from dlkit.engine.loaders import make_loader

    device = pick_device(recipe.cfg["device"])
    if type(recipe).calibrate is not Recipe.calibrate:
        loader = make_loader(data.val, recipe.cfg, shuffle=False, collate=recipe.collate)
        dtype = amp_dtype(recipe.cfg["train"]["amp"], device)
        ids, outputs = predict(
            model,
            recipe.predict_step,
            loader,
            device,
            dtype=dtype,
            channels_last=recipe.cfg["train"]["channels_last"],
        )
        extra = recipe.calibrate(ids, outputs, data)
        if extra:
            data.state.update(extra)
            run.write_state(data.state)
    if type(recipe).save_native is not Recipe.save_native:
        recipe.save_native(model.cpu(), data.state, run.path / "model")
        model.to(device)


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
    from dlkit.engine import budget, distributed
    from dlkit.engine.device import pick_device
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
        run_path = run.path
    else:
        cfg = cls.resolve_config(build_config(cls, config_file, overrides))
        run_path = out or default_run_dir(recipe_name)
        if main:  # rank 0 alone owns the directory: another rank may look after rank 0 created it
            Run.ensure_free(run_path)
        state = None
    seed_everything(cfg["seed"])
    recipe = cls(cfg)
    data_path = resolve_data_path(cfg["data"]["path"], cls)
    loaded = recipe.load_data(data_path, state)
    for note in loaded.notes:
        console.warn(note)
    steps = budget.steps_per_epoch(
        len(loaded.train), cfg["data"]["batch_size"], cfg["train"]["grad_accum"], distributed.world_size()
    )
    cfg["train"] = budget.resolve(cfg["train"], steps)  # config.yaml keeps the numbers (recipe.cfg is cfg)
    device = pick_device(cfg["device"])
    if not main:
        distributed.barrier()  # rank 0 creates the run directory first
        run = Run(run_path)
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
        f"{len(loaded.train)} train / {len(loaded.val)} val / {len(loaded.test)} test; "
        f"{cfg['train']['epochs']} epochs of {steps} steps, validated every {cfg['train']['val_every']})"
    )
    result, report = train_and_evaluate(recipe, loaded, run.path, resume=resume, on_epoch_end=on_epoch_end)
    if report is None:
        return None
    run.update_manifest(
        epochs_run=result.epochs_run,
        best_epoch=result.best_epoch,
        train_seconds=round(result.seconds, 2),
        stopped_early=result.stopped_early,
    )
    return {
        "run": str(run.path),
        "epochs": result.epochs_run,
        "best_epoch": result.best_epoch,
        "train_seconds": round(result.seconds, 2),
        **report,
    }
