"""`dlkit tune`: check the space and the config, then run trials (each an ordinary run directory) until
the study holds N of them, selecting on the monitored validation metric; at the end trials.csv,
best.yaml, plots, and the best trial's test metrics, computed once."""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path

import yaml

from dlkit import console
from dlkit.errors import DlkitError, JobError, UserError
from dlkit.extras import require

DEFAULT_TRIALS = 20


class Surplus(Exception):
    """A trial created after the study already had its N trials (a race between workers)."""


def tune(
    recipe_name: str,
    space: Path,
    strategy: str = "tpe",
    trials: int | None = None,
    timeout: float | None = None,
    data: str | None = None,
    study_name: str | None = None,
    storage: str | None = None,
    out: Path | None = None,
    overrides: list[str] | None = None,
    pruner: str = "auto",
) -> dict:
    """Run (or resume, or join) a study; the summary of every trial it holds and the best one."""
    optuna = require("optuna", "tune")
    from dlkit.config import flat_keys
    from dlkit.jobs.common import build_config, resolve_data_path, schema_for
    from dlkit.registry import get_recipe
    from dlkit.run import fingerprint
    from dlkit.tune import study as st
    from dlkit.tune.space import grid_size, load_space, space_spec

    cls = get_recipe(recipe_name)
    schema = schema_for(cls)
    dims = load_space(Path(space), schema, strategy)
    given = list(overrides or []) + ([f"data.path={data}"] if data is not None else [])
    _no_conflict([d.key for d in dims], given)
    cfg = build_config(cls, None, given)  # every override checked before any trial
    data_path = resolve_data_path(cfg["data"]["path"], cls).resolve()
    fixed = [o for o in given if o.split("=", 1)[0].strip() != "data.path"]
    keys = flat_keys(schema)
    # trials skip the automatic report page (`dlkit report` draws it on demand); best.yaml keeps it on
    quiet = [k for k in ("report.enabled=false",) if k.split("=")[0] in keys and not _set(k, fixed)]
    restore = {k.split("=")[0]: keys[k.split("=")[0]].default for k in quiet}
    trial_overrides = [*fixed, f"data.path={data_path}", *quiet]
    probe = cls(cfg)
    monitor, mode = probe.monitor, probe.monitor_mode

    if trials is not None and trials < 1:
        raise UserError(f"--trials must be at least 1, got {trials}")
    if timeout is not None and timeout <= 0:
        raise UserError(f"--timeout must be above 0 seconds, got {timeout}")
    budget = trials or DEFAULT_TRIALS
    if strategy == "grid":
        cells = grid_size(dims)
        if trials is not None and trials > cells:
            console.info(f"the grid has {cells} cells: running {cells} trials, not {trials}")
        budget = min(trials or cells, cells)
    name = study_name or f"{Path(space).stem}-{strategy}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UserError(
            f"study name '{name}' is not a plain name", "use letters, digits, '.', '_' and '-' (--study NAME)"
        )
    folder = Path(out) if out is not None else Path("runs") / recipe_name / name
    if (folder / "manifest.json").is_file():
        raise UserError(f"'{folder}' is a run directory, not a study folder", "choose another --out")
    folder.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{(folder / 'study.db').resolve()}"

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # dlkit reports trials itself
    study = optuna.create_study(
        storage=st.open_storage(url),
        study_name=name,
        direction="maximize" if mode == "max" else "minimize",
        sampler=st.make_sampler(strategy, dims, cfg["seed"], budget),
        pruner=st.make_pruner(pruner, strategy, budget),
        load_if_exists=True,
    )
    if not study.get_trials(deepcopy=False) and st.folder_taken(folder) and storage is None:
        raise UserError(
            f"'{folder}' holds trial folders but no study '{name}'",
            "choose another --out or --study (or remove the old trials)",
        )
    setup = {
        "recipe": recipe_name,
        "strategy": strategy,
        "space": space_spec(dims),
        "overrides": sorted(fixed),
        "data": fingerprint(data_path)["sha256"],
    }
    st.check_setup(study, setup)
    st.fail_dead_local(study)

    runner = _Runner(study, recipe_name, dims, trial_overrides, folder, budget, monitor, mode)
    runner.restore = restore
    title = f"study {name} ({strategy})"
    keys_ = [d.key for d in dims]
    from dlkit.tune.output import TrialsView

    started = time.monotonic()
    stopped = None
    with TrialsView(title, monitor, mode, keys_, budget) as view:
        runner.view = view
        view.mark_seen(st.counted(study.get_trials(deepcopy=False)))
        view.refresh(st.counted(study.get_trials(deepcopy=False)))
        while True:
            if timeout is not None and time.monotonic() - started >= timeout:
                stopped = "timeout"
                break
            st.fail_dead_local(study)
            if len(st.counted(study.get_trials(deepcopy=False))) >= budget:
                break
            runner.run_one()
    return _summary(study, runner, url, folder, name, strategy, stopped, keys_)


def _set(override: str, given: list[str]) -> bool:
    key = override.split("=", 1)[0]
    return any(o.split("=", 1)[0].strip() == key for o in given)


def _no_conflict(keys: list[str], given: list[str]) -> None:
    both = [k for k in keys if any(o.split("=", 1)[0].strip() == k for o in given)]
    if both:
        raise UserError(
            f"{', '.join(both)} is both searched (in the space) and fixed (key=value)",
            "drop it from one of them",
        )


def _literal(value) -> str:
    """A value as a key=value override that reads back exactly (strings like 'yes' stay strings)."""
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("...").strip()


class _Runner:
    """Runs one trial at a time through `jobs.train` (test split untouched), reporting each validation
    check to the pruner."""

    def __init__(
        self,
        study,
        recipe: str,
        dims,
        overrides: list[str],
        folder: Path,
        budget: int,
        monitor: str,
        mode: str,
    ):
        self.study, self.recipe, self.dims, self.overrides = study, recipe, dims, overrides
        self.folder, self.budget, self.monitor, self.mode = folder, budget, monitor, mode
        self.view = None
        self.restore: dict = {}
        self.current = None  # the trial this process is running

    def run_one(self) -> None:
        from dlkit.tune import study as st

        try:
            self.study.optimize(self.objective, n_trials=1, catch=(Exception,), gc_after_trial=False)
        except BaseException:  # Ctrl-C, SIGTERM: the trial was interrupted, not failed; queue it again
            if self.current is not None:
                st.abandon(self.study, self.current)
            raise
        finally:
            self.current = None
            self.view.refresh(st.counted(self.study.get_trials(deepcopy=False)))

    def _rerunnable(self, run_dir: Path) -> str:
        """The trial's resolved config, with the keys tune set only to save time back at their values."""
        from dlkit.config import dump_yaml

        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
        for key, value in self.restore.items():
            section, name = key.split(".")
            cfg[section][name] = value
        return dump_yaml(cfg)

    def objective(self, trial) -> float:
        import optuna

        from dlkit import jobs
        from dlkit.run import Run
        from dlkit.tune import study as st
        from dlkit.tune.output import trial_log

        if st.is_surplus(self.study.get_trials(deepcopy=False), trial.number, self.budget):
            trial.set_user_attr("surplus", True)
            raise Surplus(f"the study already has {self.budget} trials")
        self.current = self.study._storage.get_trial(trial._trial_id)
        params = {d.key: d.suggest(trial) for d in self.dims}
        run_dir = (self.folder / f"trial-{trial.number:04d}").resolve()
        for key, value in (("run", str(run_dir)), ("host", st.HOST), ("pid", os.getpid())):
            trial.set_user_attr(key, value)
        self.view.refresh(st.counted(self.study.get_trials(deepcopy=False)))
        progress = _Progress(trial, self.monitor, self.mode)
        with trial_log(self.folder / "logs" / f"trial-{trial.number:04d}.log"):
            try:
                jobs.train(
                    self.recipe,
                    out=run_dir,
                    overrides=[*self.overrides, *(f"{k}={_literal(v)}" for k, v in params.items())],
                    on_epoch_end=progress,
                    evaluate_test=False,
                )
            except DlkitError as exc:
                trial.set_user_attr("error", exc.message)
                console.error(str(exc))
                raise
            except Exception as exc:
                trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
                console.error(f"{type(exc).__name__}: {exc}")
                raise
        trial.set_user_attr("config", self._rerunnable(run_dir))
        state = "pruned" if progress.pruned else "complete"
        Run(run_dir).update_manifest(
            tune={
                "study": self.study.study_name,
                "trial": trial.number,
                "state": state,
                "params": params,
                "value": progress.best,
            }
        )
        if progress.pruned:
            raise optuna.TrialPruned(f"pruned at validation check {progress.checks}")
        if progress.best is None:
            raise JobError(f"no finite validation {self.monitor} in any check")
        return progress.best


class _Progress:
    """The train job's check callback: the monitored validation value to the pruner; True stops the
    trial (pruned) after that check."""

    def __init__(self, trial, monitor: str, mode: str):
        self.trial, self.key, self.mode = trial, f"val_{monitor}", mode
        self.best: float | None = None
        self.checks = 0
        self.pruned = False

    def __call__(self, epoch: int, record: dict) -> bool:
        self.checks += 1
        value = record.get(self.key)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.best is None or (value > self.best if self.mode == "max" else value < self.best):
            self.best = float(value)
        self.trial.report(float(value), self.checks)
        self.pruned = self.trial.should_prune()
        return self.pruned


def _summary(study, runner: _Runner, url: str, folder: Path, name: str, strategy: str, stopped, keys) -> dict:
    from dlkit.tune import study as st
    from dlkit.tune.output import STATE, best_trial, seconds, write_best, write_csv, write_plots

    trials = sorted(st.counted(study.get_trials(deepcopy=False)), key=lambda t: t.number)
    write_csv(folder / "trials.csv", trials, keys)
    plots = write_plots(folder, study, trials, keys)
    counts = {
        s: sum(STATE[t.state] == s for t in trials) for s in ("complete", "pruned", "failed", "running")
    }
    result = {
        "study": name,
        "folder": str(folder),
        "storage": st.safe_url(url),
        "strategy": strategy,
        "monitor": runner.monitor,
        "monitor_mode": runner.mode,
        "budget": runner.budget,
        "counts": counts,
        "stopped": stopped,
        "trials": [
            {
                "number": t.number,
                "state": STATE[t.state],
                "value": t.value,
                "params": t.params,
                "seconds": seconds(t),
                "run": t.user_attrs.get("run"),
                "error": t.user_attrs.get("error"),
            }
            for t in trials
        ],
        "files": {"trials_csv": str(folder / "trials.csv"), "plots": plots},
        "best": None,
    }
    best = best_trial(trials, runner.mode)
    if best is None:
        errors = [t.user_attrs["error"] for t in trials if t.user_attrs.get("error")]
        if counts["failed"] and not counts["complete"] and not counts["running"]:
            raise JobError(
                f"no trial of study '{name}' completed: {counts['failed']} failed"
                + (f" (first error: {errors[0]})" if errors else ""),
                f"see the trial logs in {folder / 'logs'}",
            )
        return result
    write_best(folder / "best.yaml", best, runner.recipe, runner.monitor, name)
    result["files"]["best_yaml"] = str(folder / "best.yaml")
    result["best"] = {
        "number": best.number,
        "value": best.value,
        "params": best.params,
        "run": best.user_attrs.get("run"),
        "test": _test_once(best, folder),
    }
    if counts["running"]:
        console.info(
            f"{counts['running']} trial(s) still running on other workers: this summary is as of now"
        )
    if stopped == "timeout":
        left = runner.budget - len(trials)
        console.info(f"stopped by --timeout with {left} trial(s) to go; the same command resumes the study")
    console.info(
        f"best: trial {best.number}, val {runner.monitor} {best.value:.4f} "
        f"({', '.join(f'{k}={v}' for k, v in best.params.items())})\n"
        f"  {folder / 'trials.csv'}; re-train: dlkit train {runner.recipe} --config {folder / 'best.yaml'}"
    )
    return result


def _test_once(best, folder: Path) -> dict | None:
    """The best trial's test metrics: computed once (eval.json in its run), reused after that."""
    from dlkit import jobs

    run = Path(best.user_attrs.get("run", ""))
    if not (run / "config.yaml").is_file():
        console.info(
            f"the best trial ran on {best.user_attrs.get('host')}; evaluate it there: dlkit evaluate {run}"
        )
        return None
    evaluated = run / "eval.json"
    if evaluated.is_file():
        return json.loads(evaluated.read_text())["metrics"]
    console.info(f"best trial {best.number} on the test split (the only trial that sees it):")
    return jobs.evaluate(run)["metrics"]
