"""The Optuna side of `dlkit tune`: storage, samplers, pruners, and the bookkeeping that makes a study
resumable and shareable.

- Storage is any RDB URL; the default is a SQLite file in the study folder. Heartbeats let a worker on
  another machine tell that a trial's process died; a trial left RUNNING by a dead process on this
  machine is caught at once by its pid. Either way it is marked failed and re-queued with the same
  parameters (Optuna's RetryFailedTrialCallback), and the failed copy no longer counts.
- "N trials" means N in all across every worker and every resume: complete, pruned and failed ones
  count; a surplus trial that a race between workers created is marked and dropped before it trains.
- Samplers are re-seeded per trial from (seed, trial number), so a resumed study proposes what an
  uninterrupted one would have.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import optuna
from optuna.samplers import BaseSampler
from optuna.storages import RDBStorage, RetryFailedTrialCallback
from optuna.trial import FrozenTrial, TrialState

from dlkit.errors import UserError
from dlkit.run import alive
from dlkit.tune.space import Dimension, grid

HEARTBEAT_S = 20  # a worker's trial reports it is alive this often
GRACE_S = 90  # a trial silent this long belongs to a dead worker
HOST = socket.gethostname()


class TrialSeeded(BaseSampler):
    """A sampler rebuilt for each trial with the seed (seed, the trial's place in the study, re-queued
    copies not counted): the same study proposes the same trials whether it runs in one go or is
    resumed after a kill, in any process."""

    def __init__(self, make, seed: int):
        self._make, self._seed = make, seed
        self._inner = make(seed)

    def before_trial(self, study, trial) -> None:
        slot = len(slots_before(study.get_trials(deepcopy=False), trial.number))
        self._inner = self._make((self._seed * 100_003 + slot) % 2**31)
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._inner.after_trial(study, trial, state, values)


def make_sampler(strategy: str, dims: list[Dimension], seed: int, trials: int) -> BaseSampler:
    if strategy == "grid":
        return optuna.samplers.GridSampler(grid(dims), seed=seed)
    if strategy == "random":
        return TrialSeeded(lambda s: optuna.samplers.RandomSampler(seed=s), seed)
    startup = max(3, min(10, trials // 3))  # TPE's random start: a third of a small budget, 10 at most
    return TrialSeeded(
        lambda s: optuna.samplers.TPESampler(
            seed=s, n_startup_trials=startup, multivariate=True, constant_liar=True
        ),
        seed,
    )


PRUNERS = ("auto", "median", "hyperband", "none")


def make_pruner(name: str, strategy: str, trials: int):
    """`auto`: median for random and tpe, none for grid (every cell of a grid is meant to be seen)."""
    if name not in PRUNERS:
        raise UserError(f"unknown pruner '{name}'", f"use one of: {', '.join(PRUNERS)}")
    if name == "auto":
        name = "none" if strategy == "grid" else "median"
    if name == "median":  # judged from the 2nd validation check, once a few trials have finished
        return optuna.pruners.MedianPruner(n_startup_trials=max(2, min(5, trials // 4)), n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    return optuna.pruners.NopPruner()


def open_storage(url: str) -> RDBStorage:
    import inspect
    import warnings

    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    # Optuna 4.9 renamed the callback a heartbeat calls for a dead worker's trial
    names = inspect.signature(RDBStorage.__init__).parameters
    callback = (
        "heartbeat_stale_trial_callback"
        if "heartbeat_stale_trial_callback" in names
        else "failed_trial_callback"
    )
    for attempt in range(3):  # workers that start together may race to create the tables
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # heartbeats are marked experimental
                return RDBStorage(
                    url,
                    engine_kwargs=kwargs,
                    heartbeat_interval=HEARTBEAT_S,
                    grace_period=GRACE_S,
                    **{callback: retry_trial},
                )
        except ImportError as exc:
            raise UserError(
                f"storage '{safe_url(url)}' needs a database driver ({exc})",
                "pip install psycopg2-binary (PostgreSQL)",
            ) from None
        except Exception as exc:  # noqa: BLE001 - a database that refuses is a user's to fix
            if attempt == 2:
                raise UserError(
                    f"cannot open storage '{safe_url(url)}': {exc}",
                    "check the URL, the server and the credentials",
                ) from None
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")


def safe_url(url: str) -> str:
    """The URL with any password hidden (for messages and the JSON result)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return url.split("@")[-1]


def retry_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    """A trial whose process died: queue its parameters again and drop what its run folder holds."""
    import warnings

    retry = getattr(
        optuna.storages, "RetryHeartbeatStaleTrialCallback", RetryFailedTrialCallback
    )  # 4.9 rename
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # marked experimental
        retry()(study, trial)
    run = trial.user_attrs.get("run")
    if run and trial.user_attrs.get("host") == HOST:
        shutil.rmtree(run, ignore_errors=True)


def fail_dead_local(study: optuna.Study) -> int:
    """RUNNING trials of a process on this machine that no longer exists: failed and re-queued now
    (a heartbeat would catch them too, after GRACE_S)."""
    count = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        pid = attrs.get("pid")
        if attrs.get("host") != HOST or not pid or pid == os.getpid() or alive(pid):
            continue
        if abandon(study, trial):
            count += 1
    return count


def abandon(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Mark a RUNNING trial failed (it was interrupted, it did not fail) and re-queue it."""
    storage = study._storage
    if storage.get_trial(trial._trial_id).state == TrialState.FAIL:  # Optuna failed it on Ctrl-C
        retry_trial(study, storage.get_trial(trial._trial_id))
        return True
    try:
        storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False  # another worker got there first
    retry_trial(study, storage.get_trial(trial._trial_id))
    return True


def replaced(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of trials that were re-queued (their retries stand in for them)."""
    return {n for t in trials for n in t.system_attrs.get("retry_history", ())}


def counted(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials that make up the study: not re-queued copies, not surplus, not still waiting."""
    gone = replaced(trials)
    return [
        t
        for t in trials
        if t.number not in gone and not t.user_attrs.get("surplus") and t.state != TrialState.WAITING
    ]


def slots_before(trials: list[FrozenTrial], number: int) -> list[FrozenTrial]:
    """The trials numbered before `number` that hold a place in the study (queued retries included)."""
    gone = replaced(trials)
    return [
        t for t in trials if t.number < number and t.number not in gone and not t.user_attrs.get("surplus")
    ]


def is_surplus(trials: list[FrozenTrial], number: int, budget: int) -> bool:
    """True when the trials numbered before `number` already fill the budget."""
    return len(slots_before(trials, number)) >= budget


def check_setup(study: optuna.Study, setup: dict) -> None:
    """The first worker records what the study searches; a later one (a resume, another machine) must
    ask for the same, or the trials would not be comparable."""
    had = study.user_attrs.get("setup")
    if had is None:
        study.set_user_attr("setup", setup)
        return
    differing = [k for k in setup if had.get(k) != setup[k]]
    if differing:
        raise UserError(
            f"study '{study.study_name}' was started with a different {', '.join(differing)}",
            "resume it with the same recipe, space, strategy, data and overrides, or start another (--study)",
        )


def folder_taken(folder: Path) -> bool:
    return any(folder.glob("trial-*"))
