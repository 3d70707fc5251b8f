"""What `dlkit tune` shows and leaves behind: the live trials table, each trial's log, trials.csv,
best.yaml and the PNG plots (Optuna's matplotlib visualisations)."""

from __future__ import annotations

import contextlib
import csv
import math
import warnings
from pathlib import Path

from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from dlkit import console
from dlkit.atomic import atomic_write_text

STATE = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}
COLOUR = {"complete": "green", "pruned": "yellow", "failed": "red", "running": "cyan", "waiting": "dim"}
SHOWN = 20  # rows of the live table (the newest trials)


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def seconds(trial: FrozenTrial) -> float | None:
    return round(trial.duration.total_seconds(), 1) if trial.duration is not None else None


@contextlib.contextmanager
def trial_log(path: Path):
    """Send a trial's own output (the train job's lines and warnings) to its log file, not the screen."""
    path.parent.mkdir(parents=True, exist_ok=True)
    saved, quiet = console.err, console.is_quiet()
    with open(path, "a", encoding="utf-8") as fh:
        console.err = Console(file=fh, highlight=False, soft_wrap=True, width=120)
        console.set_quiet(False)
        try:
            yield
        finally:
            console.err = saved
            console.set_quiet(quiet)


class TrialsView:
    """A live table at a terminal; one line per finished trial otherwise; nothing under --json."""

    def __init__(self, title: str, monitor: str, mode: str, keys: list[str], budget: int):
        self.title, self.monitor, self.mode, self.keys, self.budget = title, monitor, mode, keys, budget
        self.screen = console.err
        self.live: Live | None = None
        self.printed: set[int] = set()

    def __enter__(self) -> TrialsView:
        if console.show_progress():
            self.live = Live(Table(), console=self.screen, refresh_per_second=2, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def refresh(self, trials: list[FrozenTrial]) -> None:
        if self.live is not None:
            self.live.update(self.table(trials))
        elif not console.is_quiet():
            for t in trials:
                if t.state.is_finished() and t.number not in self.printed:
                    self.printed.add(t.number)
                    self.screen.print(self._line(t))

    def mark_seen(self, trials: list[FrozenTrial]) -> None:
        """Trials finished before this process started are in the table, not printed line by line."""
        self.printed |= {t.number for t in trials if t.state.is_finished()}

    def table(self, trials: list[FrozenTrial]) -> Table:
        done = [t for t in trials if t.state.is_finished()]
        best = best_trial(trials, self.mode)
        head = f"{self.title}: {len(done)}/{self.budget} trials"
        if best is not None:
            head += f", best val {self.monitor} {fmt(best.value)} (trial {best.number})"
        table = Table(title=head, title_justify="left")
        for name in ("trial", "state", f"val {self.monitor}", *self.keys, "seconds"):
            table.add_column(name, justify="right" if name != "state" else "left")
        for t in trials[-SHOWN:]:
            state = STATE[t.state]
            table.add_row(
                str(t.number),
                f"[{COLOUR[state]}]{state}[/]",
                fmt(t.value) if t.value is not None else "-",
                *(escape(fmt(t.params[k])) if k in t.params else "-" for k in self.keys),
                fmt(seconds(t)) if seconds(t) is not None else "-",
            )
        return table

    def _line(self, t: FrozenTrial) -> str:
        state = STATE[t.state]
        value = f"val {self.monitor} {fmt(t.value)}" if t.value is not None else ""
        params = " ".join(f"{k}={fmt(v)}" for k, v in t.params.items())
        error = f"  ({t.user_attrs['error']})" if "error" in t.user_attrs else ""
        took = f"  {seconds(t)}s" if seconds(t) is not None else ""
        return escape(f"trial {t.number:>3}  {state:<8} {value}  {params}{took}{error}")


def best_trial(trials: list[FrozenTrial], mode: str) -> FrozenTrial | None:
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    if not done:
        return None
    key = (lambda t: t.value) if mode == "max" else (lambda t: -t.value)
    return max(done, key=key)


def write_csv(path: Path, trials: list[FrozenTrial], keys: list[str]) -> None:
    """One row per trial (params_KEY columns, as Optuna's trials_dataframe names them)."""
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(
        ["number", "state", "value", *(f"params_{k}" for k in keys), "seconds", "run", "host", "error"]
    )
    for t in trials:
        writer.writerow(
            [
                t.number,
                STATE[t.state],
                "" if t.value is None else t.value,
                *(t.params.get(k, "") for k in keys),
                seconds(t) or "",
                t.user_attrs.get("run", ""),
                t.user_attrs.get("host", ""),
                t.user_attrs.get("error", ""),
            ]
        )
    atomic_write_text(path, buf.getvalue())


def write_best(path: Path, trial: FrozenTrial, recipe: str, monitor: str, study: str) -> None:
    """The best trial's resolved config, re-runnable as `dlkit train RECIPE --config best.yaml`."""
    params = ", ".join(f"{k}={fmt(v)}" for k, v in trial.params.items())
    head = (
        f"# best trial of study '{study}': trial {trial.number}, val {monitor} {fmt(trial.value)}\n"
        f"# parameters: {params}\n"
        f"# re-run: dlkit train {recipe} --config {path.name}\n"
    )
    atomic_write_text(path, head + trial.user_attrs["config"])


def write_plots(folder: Path, study, trials: list[FrozenTrial], keys: list[str]) -> list[str]:
    """metric by trial, and parameter importances (with >= 2 complete trials and > 1 parameter)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.visualization.matplotlib import plot_optimization_history, plot_param_importances

    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    made = []
    plots = [("history.png", lambda: plot_optimization_history(study))]
    if len(complete) >= 2 and len(keys) > 1:
        plots.append(
            (
                "importances.png",
                lambda: plot_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0)),
            )
        )
    for name, draw in plots if complete else ():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                ax = draw()
            fig = ax.figure
            fig.set_size_inches(8, 5)
            fig.tight_layout()
            fig.savefig(folder / name, dpi=100)
            plt.close(fig)
            made.append(str(folder / name))
        except Exception as exc:  # noqa: BLE001 - a plot is a nicety: the study stands without it
            console.warn(f"could not draw {name}: {type(exc).__name__}: {exc}")
    return made
