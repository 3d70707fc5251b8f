"""Which dlkit this is: the package version and, when it runs from a git checkout, the commit.

`dlkit --version` and every run's manifest.json carry both, so a result can be traced to the code that
made it. An installed wheel has no commit (None); a checkout says `1a2b3c4`, or `1a2b3c4+dirty` when
files differ from that commit. Without git, or outside a work tree, the commit is simply None.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path

from dlkit import __version__


def checkout() -> Path | None:
    """The project root when dlkit is imported from a source checkout (pip install -e .), else None."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() else None


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20, check=True
    )
    return done.stdout.strip()


@functools.cache
def git_commit() -> str | None:
    """Short hash of the checkout's HEAD, `+dirty` when tracked or new (not ignored) files differ."""
    root = checkout()
    if root is None or not (root / ".git").exists():  # .git is a folder, or a file in a worktree
        return None
    try:
        head = _git(root, "rev-parse", "--short", "HEAD")
        dirty = _git(root, "status", "--porcelain")
    except (OSError, subprocess.SubprocessError):  # no git, not a work tree, an unsafe owner...
        return None
    return head + ("+dirty" if dirty else "") if head else None


def version_line() -> str:
    """`dlkit 0.1.0 (commit 1a2b3c4+dirty) from /path/to/dlkit (python 3.11.7)`: what --version prints."""
    commit = git_commit()
    where = Path(__file__).resolve().parent
    return (
        f"dlkit {__version__}"
        + (f" (commit {commit})" if commit else "")
        + f" from {where} (python {platform.python_version()})"
    )
