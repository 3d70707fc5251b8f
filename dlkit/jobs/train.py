"""`dlkit train`: config, run directory, data, then the shared `train_and_evaluate`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dlkit import console
from dlkit.errors import UserError
from dlkit.jobs.common import build_config, deep_update, is_key_in, prepare_model, resolve_data_path
from dlkit.jobs.evaluation import evaluate_loaded
from dlkit.recipe import Recipe, RecipeData
from dlkit.registry import get_recipe
from dlkit.reproducibility import differences, environment, make_deterministic, manifest_beside
from dlkit.run import CLAIM, Run, default_run_dir, fingerprint


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
    test: bool = True,
):
    """Set the recipe up, fit into `run_dir` (which exists), then on the main process calibrate, save the
    native format and evaluate the test split beside the baselines (eval.json). Returns (FitResult, eval
    dict) — the eval dict is None on the other processes of a distributed run, {} with `test=False`.

    The train command and anything that re-trains (a backtest fold, a tuning trial) share this.
    """
    from dlkit.engine import distributed
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
        monitor=recipe.select or recipe.monitor,
        mode=recipe.select_mode if recipe.select else recipe.monitor_mode,
        collate=recipe.collate,
        train_weights=data.train_weights,
        resume=resume,
        on_epoch_end=on_epoch_end,
        batch_sampler=_batch_sampler(recipe, data),
    )
    main = distributed.is_main()  # asked before teardown: afterwards every process looks like rank 0
    distributed.teardown()
    if not main:  # rank 0 finishes alone
        return result, None
    run.load_best(model)  # the same module: no rebuild, no reload
    _finish_training(run, recipe, data, model)
    if not test:  # a tuning trial selects on validation: the test split stays unseen (report {})
        return result, {}
    return result, evaluate_loaded(run, recipe, data, split="test", model=model)


def _batch_sampler(recipe: Recipe, data: RecipeData) -> Callable | None:
    """The recipe's `train_batches` hook as `(batch_size, generator) -> batches`, when it has one."""
    if type(recipe).train_batches is Recipe.train_batches:
        return None
    return lambda batch_size, generator: recipe.train_batches(data, batch_size, generator)


def _finish_training(run: Run, recipe: Recipe, data: RecipeData, model) -> None:
    """With the best weights: fit post-training parameters on validation, save the native format."""
    from dlkit.engine.device import amp_dtype, channels_last, pick_device
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
            channels_last=channels_last(recipe.cfg["train"]["channels_last"], model, device),
        )
        extra = recipe.calibrate(ids, outputs, data)
        if extra:
            data.state.update(extra)
            run.write_state(data.state)
    if type(recipe).save_native is not Recipe.save_native:
        recipe.save_native(model.cpu(), data.state, run.path / "model")
        model.to(device)


# keys a resume can change: the budget, logging, and where it runs; anything else would be ignored by
# the restored optimizer, schedule, model or data, so it is refused by name
RESUMABLE = (
    "train.epochs",
    "train.max_steps",
    "train.patience",
    "train.log_every",
    "train.val_every",
    "grad_monitor.",
    "device",
    "data.num_workers",
    "threads",
    "data.path",
    "dist.",
    "report.",
    "logging.",
)


def train(
    recipe_name: str,
    data: str | None = None,
    config_file: Path | None = None,
    out: Path | None = None,
    overrides: list[str] | None = None,
    seed: int | None = None,
    resume: bool = False,
    on_epoch_end: Callable | None = None,
    force: bool = False,
    evaluate_test: bool = True,
) -> dict | None:
    """Train a recipe into a run directory; the result summary (None on non-zero distributed ranks).

    `on_epoch_end(epoch, record)` runs after each validation check; returning True stops training there
    (a tuning pruner). `evaluate_test=False` leaves the test split unseen (no eval.json)."""
    from dlkit.engine import distributed

    cls = get_recipe(recipe_name)
    overrides = list(overrides or [])
    if data is not None:
        overrides.append(f"data.path={data}")
    if seed is not None:
        overrides.append(f"seed={seed}")
    if resume:
        run = Run.open(out or _latest_run(recipe_name))
        cfg = _resume_config(cls, run, recipe_name, config_file, overrides)
        if run.complete and cfg["train"]["epochs"] <= run.config()["train"]["epochs"]:
            console.info(f"run '{run.path}' is complete; raise train.epochs to train it further")
            return _finished(run)
    else:
        cfg = cls.resolve_config(build_config(cls, config_file, overrides))
        if cfg["model"]["pretrained"]:  # a bad weights file stops the job before any folder is made
            from dlkit.modeling import read_weights

            read_weights(cfg["model"]["pretrained"])
    if cfg["logging"]["tensorboard"]:  # a missing extra stops the job before any folder is made
        from dlkit.report.tensorboard import require_tensorboard

        require_tensorboard()
    distributed.setup(cfg["dist"]["timeout"])
    main = distributed.is_main()
    if not main:
        console.set_quiet(True)
    if resume:
        run_path = run.path
        if main:
            Run.lock(run_path)  # one resume at a time
    else:  # rank 0 alone claims the folder, before the data load, and tells the others which one
        run_path = Run.claim(out or default_run_dir(recipe_name), next_free=out is None) if main else None
        run_path = Path(distributed.broadcast(str(run_path) if main else None))
    try:
        then = manifest_beside(config_file)  # --config RUN/config.yaml: RUN's manifest, to compare
        result = _train_in(cls, cfg, recipe_name, run_path, resume, force, on_epoch_end, evaluate_test, then)
    except BaseException:
        if main and not resume:
            Run.release(run_path)  # nothing to resume from: leave no half-made run behind
        elif main:
            (run_path / CLAIM).unlink(missing_ok=True)
        raise
    if main:
        Run.unlock(run_path)
    return result


def _resume_config(cls, run: Run, recipe_name: str, config_file, overrides: list[str]) -> dict:
    if run.recipe != recipe_name:
        raise UserError(f"run '{run.path}' was made by recipe '{run.recipe}', not '{recipe_name}'")
    if not run.checkpoint("last").exists():
        raise UserError(f"run '{run.path}' has no checkpoint to resume from", "start a new run instead")
    if config_file is not None:
        raise UserError(
            "--config cannot be combined with --resume", "a resumed run keeps its own config.yaml"
        )
    fixed = [o.split("=", 1)[0] for o in overrides if not is_key_in(o.split("=", 1)[0].strip(), RESUMABLE)]
    if fixed:
        raise UserError(
            f"{', '.join(fixed)} cannot change on --resume (the checkpoint fixes the model, optimizer, "
            "schedule and data)",
            f"keys a resume can change: {', '.join(RESUMABLE)}; start a new run to change the others",
        )
    return build_config(cls, None, overrides, base=run.config())


def _train_in(
    cls,
    cfg: dict,
    recipe_name: str,
    run_path: Path,
    resume: bool,
    force: bool,
    on_epoch_end,
    evaluate_test=True,
    beside: dict | None = None,
):
    from dlkit.engine import budget, distributed
    from dlkit.engine.device import pick_device
    from dlkit.engine.rng import seed_everything
    from dlkit.engine.threads import apply_threads, auto_workers

    main = distributed.is_main()
    run = Run(run_path)
    seed_everything(cfg["seed"])
    threads = apply_threads(cfg["threads"])
    make_deterministic(cfg["deterministic"], pick_device(cfg["device"]).type)
    recipe = cls(cfg)
    data_path = resolve_data_path(cfg["data"]["path"], cls)
    data_print = fingerprint(data_path) if main else None
    if beside and main:  # what would make this run differ from the one whose config.yaml it re-runs
        for line in differences(beside, data_print, environment()):
            console.warn(line)
    if resume and main:
        _check_same_data(run, data_print, force)
    loaded = recipe.load_data(data_path, run.state() if resume else None)
    for note in loaded.notes:
        console.warn(note)
    if not resume:  # recipe.cfg is cfg: sizes the recipe chose from the data land in config.yaml
        deep_update(cfg, recipe.data_config(len(loaded.train)))
    if cfg["data"]["num_workers"] == "auto":  # the number used goes into config.yaml
        cfg["data"]["num_workers"] = auto_workers(loaded.train, cfg["data"]["batch_size"], threads)
    steps = budget.steps_per_epoch(
        len(loaded.train), cfg["data"]["batch_size"], cfg["train"]["grad_accum"], distributed.world_size()
    )
    cfg["train"] = budget.resolve(cfg["train"], steps)  # config.yaml keeps the numbers (recipe.cfg is cfg)
    device = pick_device(cfg["device"])
    if main:  # one writer: rank 0 of a distributed run, or the only process
        run.write_config(cfg)
        if not resume:
            Run.create(run_path)
            run.write_state(loaded.state)
            run.write_manifest(recipe_name, cfg, str(device), data_print, world_size=distributed.world_size())
    distributed.barrier()
    console.info(
        f"[bold]{recipe_name}[/] -> {run.path}  (device {device}, "
        f"{len(loaded.train)} train / {len(loaded.val)} val / {len(loaded.test)} test; "
        f"{cfg['train']['epochs']} epochs of {steps} steps, validated every {cfg['train']['val_every']})"
    )
    started = run.manifest.get("train_seconds", 0) if resume and main else 0
    board = None
    if cfg["logging"]["tensorboard"] and main:
        from dlkit.report.tensorboard import TensorBoardLog

        board = TensorBoardLog(run.path / "tb", recipe.monitor)
        on_epoch_end = board.chain(on_epoch_end)
    try:
        result, report = train_and_evaluate(
            recipe, loaded, run.path, resume=resume, on_epoch_end=on_epoch_end, test=evaluate_test
        )
    finally:
        if board is not None:
            board.close()
    if report is None:
        return None
    summary = {
        "epochs": result.epochs_run,
        "best_epoch": result.best_epoch,
        "train_seconds": round(started + result.seconds, 2),
    }
    run.update_manifest(
        epochs_run=result.epochs_run,
        best_epoch=result.best_epoch,
        train_seconds=summary["train_seconds"],
        stopped_early=result.stopped_early,
        status="complete",
    )
    if cfg["report"]["enabled"]:  # a failure to draw warns; the trained run stands
        from dlkit.report.run_page import after_training

        page = after_training(run.path, recipe, loaded)
        if page is not None:
            summary["report"] = str(page)
    return {"run": str(run.path), **summary, **report}


def _finished(run: Run) -> dict:
    """The summary of a run that already ran to its end (what its train command returned)."""
    import json

    m = run.manifest
    report = json.loads((run.path / "eval.json").read_text()) if (run.path / "eval.json").is_file() else {}
    summary = {
        "epochs": m.get("epochs_run"),
        "best_epoch": m.get("best_epoch"),
        "train_seconds": m.get("train_seconds"),
    }
    return {"run": str(run.path), "complete": True, **summary, **report}


def _check_same_data(run: Run, now: dict, force: bool) -> None:
    then = run.manifest.get("data", {})
    if then.get("sha256") and then["sha256"] != now["sha256"] and not force:
        raise UserError(
            f"the data at '{now['path']}' changed since run '{run.path}' started "
            f"({then.get('files')} -> {now['files']} files)",
            "resume with the same data, or add --force to continue on the changed data",
        )
