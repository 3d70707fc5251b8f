"""Expanding `dlkit predict` inputs: files as given, folders into the files they hold that a recipe reads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dlkit.errors import UserError


def expand_inputs(
    inputs: list[str],
    accept: Callable[[Path], bool],
    what: str,
    recursive: bool = True,
    in_folder: Callable[[Path], list[Path]] | None = None,
) -> list[Path]:
    """Paths for predict inputs: a file is kept (refused when `accept` says no), a folder gives its files
    that `accept` takes (or what `in_folder` finds, e.g. DICOM series). `what` reads like "image files".

    A missing input, a file of the wrong kind or no usable file at all is a user error naming the input.
    """
    paths: list[Path] = []
    for raw in inputs:
        p = Path(raw).expanduser()
        if p.is_dir():
            if in_folder is not None:
                found = in_folder(p)
            else:
                pattern = p.rglob("*") if recursive else p.iterdir()
                found = sorted(f for f in pattern if f.is_file() and not f.name.startswith(".") and accept(f))
            if not found:
                raise UserError(f"input folder '{raw}' holds no {what}", f"give {what} or folders of them")
            paths += found
        elif p.is_file():
            if not accept(p):
                raise UserError(f"input '{raw}' is not one of the {what} this recipe reads", f"give {what}")
            paths.append(p)
        else:
            raise UserError(f"input '{raw}' does not exist", f"give {what} or folders of them")
    return paths
