"""All terminal output goes through here: humans read stderr, machines read one JSON on stdout."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

err = Console(stderr=True, highlight=False, soft_wrap=True)  # never break a path across lines
_quiet = False


def set_quiet(quiet: bool) -> None:
    """Quiet mode (``--json``): no progress bars and no chatter, only warnings and errors."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


def show_progress() -> bool:
    """Live progress bars only for a person at a terminal, never under --json or CI."""
    return not _quiet and err.is_terminal and not os.environ.get("CI")


def info(message: str) -> None:
    if not _quiet:
        err.print(message)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}")


def error(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}")


def emit_json(result: Any) -> None:
    sys.stdout.write(json.dumps(result, default=str) + "\n")
    sys.stdout.flush()
