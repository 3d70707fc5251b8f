"""The two kinds of failure a command can end with, and their exit codes.

A `UserError` is the user's to fix (bad data, a mistyped key, a missing run): it becomes one clear
message and exit code 2, never a traceback. A `JobError` is a failure during a job that was asked
for correctly (a diverged loss, an export whose numbers disagree): exit code 1.
"""

from __future__ import annotations


class DlkitError(Exception):
    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UserError(DlkitError):
    exit_code = 2


class JobError(DlkitError):
    exit_code = 1
