"""What `dlkit batch` shows: a live table at a terminal, one line per finished job elsewhere, and the
summary table at the end. Quiet under --json (the record goes to stdout instead)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from rich.live import Live
from rich.markup import escape
from rich.table import Table

from dlkit import console

STYLE = {
    "done": "green",
    "cached": "green",
    "running": "cyan",
    "failed": "bold red",
    "skipped": "yellow",
    "stopped": "yellow",
    "not run": "dim",
    "pending": "dim",
    "would run": "cyan",
}


class BatchView:
    def __init__(self, jobs, records: dict[str, dict]):
        self.jobs, self.records = jobs, records
        self._live: Live | None = None
        self._told: dict[str, str] = {}

    @contextlib.contextmanager
    def live(self) -> Iterator[None]:
        if not console.show_progress():
            yield
            return
        with Live(self._table(), console=console.err, refresh_per_second=4, transient=True) as live:
            self._live = live
            try:
                yield
            finally:
                self._live = None

    def refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._table())
            return
        for name, r in self.records.items():  # no live table: one line per change worth telling
            if r["status"] in ("pending", "cached") or self._told.get(name) == r["status"]:
                continue
            self._told[name] = r["status"]
            console.info(f"[{STYLE[r['status']]}]{r['status']:>8}[/] {escape(name)}{_detail(r)}")

    def print_summary(self, out: Path) -> None:
        if console.is_quiet():
            return
        console.err.print(self._table())
        console.info(f"record: {out / 'batch.json'}; logs: {out / 'logs'}")

    @staticmethod
    def print_plan(jobs, records: dict[str, dict]) -> None:
        """One block per expanded job: its name, status, what it waits for and its command line."""
        if console.is_quiet():
            return
        for job in jobs:
            r = records[job.name]
            needs = f", after {', '.join(job.needs)}" if job.needs else ""
            console.err.print(
                f"[bold]{escape(job.name)}[/] ([{STYLE[r['status']]}]{r['status']}[/]{escape(needs)})"
            )
            console.err.print(f"  {escape(r['command'])}")
        console.info(f"{len(jobs)} jobs; nothing was run (--dry-run)")

    def _table(self) -> Table:
        table = Table("job", "status", "time", "metric", "run / note")
        for column in table.columns:
            column.overflow = "fold"
        now = time.time()
        for job in self.jobs:
            r = self.records[job.name]
            if r["status"] == "running":
                took = now - r["started"]
            else:
                took = r["duration_s"]
            note = r["reason"] if r["status"] not in ("done", "running") else r["run"]
            table.add_row(
                escape(job.name),
                f"[{STYLE.get(r['status'], '')}]{r['status']}[/]",
                f"{took:.1f}s" if took is not None else "",
                _metric(r),
                escape(str(note or "")),
            )
        return table


def _metric(r: dict) -> str:
    if r["metric"] is None:
        return ""
    value = r["metric"]
    return f"{r['monitor']} {value:.4g}" if isinstance(value, float) else f"{r['monitor']} {value}"


def _detail(r: dict) -> str:
    parts = [f"{r['duration_s']:.1f}s"] if r["duration_s"] is not None else []
    if r["metric"] is not None:
        parts.append(_metric(r))
    if r["reason"]:
        parts.append(r["reason"])
    return f"  ({escape('; '.join(parts))})" if parts else ""
