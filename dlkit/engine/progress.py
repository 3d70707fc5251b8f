"""Live progress at a terminal (epochs, steps, ETA, loss, metric); a line per validation check otherwise."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from dlkit import console


class TrainProgress:
    def __init__(self, epochs: int, steps_per_epoch: int, monitor: str, enabled: bool = True):
        self.epochs, self.steps, self.monitor = epochs, steps_per_epoch, monitor
        self.enabled = enabled
        self.live = enabled and console.show_progress()
        self._bar = None
        self._task = None
        self._last = ""

    def __enter__(self) -> TrainProgress:
        if self.live:
            self._bar = Progress(
                TextColumn("[bold]epoch {task.fields[epoch]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("loss {task.fields[loss]}  {task.fields[metric]}"),
                console=console.err,
                transient=False,
            )
            self._bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def start_epoch(self, epoch: int) -> None:
        if self._bar is not None:
            label = f"{epoch + 1}/{self.epochs}"
            self._task = self._bar.add_task("", total=self.steps, epoch=label, loss="-", metric=self._last)

    def update(self, completed: int, loss: float | None = None) -> None:
        if self._bar is not None and self._task is not None:
            fields = {"loss": f"{loss:.4f}"} if loss is not None else {}
            self._bar.update(self._task, completed=completed, **fields)

    def checked(self, line: str, metric_text: str, completed: int) -> None:
        """After a validation check, `completed` batches into the epoch (all of them at its end)."""
        self._last = metric_text
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=completed, metric=metric_text)
        elif self.enabled:
            console.info(line)
