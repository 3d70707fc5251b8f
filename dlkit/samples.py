"""Every recipe's sample set, found the same way from a source checkout and from an installed wheel.

Recipes name their sample data and inputs relative to the project root
("sample_data/tabular_fraud/transactions.csv"), so a clone runs with no setup. The wheel ships that
folder as the package `dlkit_samples` (pyproject maps it onto sample_data/), so after `pip install dlkit`
the same names resolve to the installed copy and `dlkit train vision-classification` works from any
directory. `dlkit sample RECIPE` copies a recipe's set into a folder the user can look at and edit.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from dlkit.errors import UserError
from dlkit.version import checkout

PREFIX = "sample_data"  # recipe attributes start with it; the wheel calls the folder dlkit_samples


def installed_root() -> Path | None:
    """Where the wheel put sample_data/ (site-packages/dlkit_samples), or None when it is not installed."""
    spec = importlib.util.find_spec("dlkit_samples")
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


def is_sample_name(name: str) -> bool:
    parts = Path(name).parts
    return len(parts) > 1 and parts[0] == PREFIX


def locate(name: str) -> Path | None:
    """What a relative name means when it is not in the current directory: the checkout's file (a
    clone), else for a sample_data/ name the installed copy (a wheel); None when neither has it."""
    rel = Path(name).expanduser()
    if rel.is_absolute():
        return None
    root = checkout()
    if root is not None and (root / rel).exists():
        return root / rel
    installed = installed_root()
    if installed is not None and is_sample_name(name) and installed.joinpath(*rel.parts[1:]).exists():
        return installed.joinpath(*rel.parts[1:])
    return None


def resolve_input(item: str) -> str:
    """A predict input as given, unless it is a sample name missing here: then the sample's own copy
    (so README's `dlkit predict RUN sample_data/...` works after a plain pip install)."""
    if not is_sample_name(item) or Path(item).exists():
        return item
    found = locate(item)
    return str(found) if found else item


def sample_source(cls) -> tuple[Path, Path]:
    """(what `dlkit sample` copies, the recipe's data path relative to the copy). A built-in recipe's
    set is its whole sample_data/<folder>/ (data, inputs, README); a plug-in's is its sample path."""
    name = cls.sample_data
    parts = Path(name).parts
    source = Path(*parts[:2]) if is_sample_name(name) else Path(name).expanduser()
    found = source if source.exists() else locate(str(source))
    if found is None:
        raise UserError(
            f"the sample data of '{cls.name}' ({name}) is not installed",
            "reinstall dlkit (`pip install --force-reinstall dlkit`) or pass --data PATH to your own data",
        )
    inside = Path(*parts[2:]) if is_sample_name(name) else Path(found.name if found.is_file() else ".")
    return found.absolute(), inside


def describe_sample(cls) -> dict:
    """Where the recipe's sample set is, its data path and its top-level layout; nothing is written."""
    source, inside = sample_source(cls)
    folder = source.is_dir()
    return {
        "recipe": cls.name,
        "source": str(source),
        "data": str(source / inside if folder else source),
        "layout": layout(source) if folder else [source.name],
    }


def copy_sample(cls, out: Path) -> dict:
    """Copy the recipe's sample set into `out` (new or empty); the files appear only once all are copied."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(
            f"'{out}' already exists and is not an empty folder; nothing was written",
            "give a new or empty folder with --out DIR",
        )
    source, inside = sample_source(cls)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if source.is_dir():
            shutil.copytree(source, partial, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            partial.mkdir()
            inputs = [locate_any(name) for name in cls.sample_inputs]
            for f in {source, *(p for p in inputs if p is not None and p.is_file())}:
                shutil.copy2(f, partial / f.name)
        if out.exists():
            out.rmdir()
        partial.rename(out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    return {
        "recipe": cls.name,
        "out": str(out),
        "files": len(files),
        "data": str(out / inside),
        "layout": layout(out),
    }


def locate_any(name: str) -> Path | None:
    """A sample input as a path: as given when it exists, else through `locate`."""
    return Path(name) if Path(name).exists() else locate(name)


def layout(folder: Path) -> list[str]:
    """The top of a folder, one entry a line: `train/ (360 files)`, `transactions.csv`."""
    lines = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            count = sum(1 for p in entry.rglob("*") if p.is_file())
            lines.append(f"{entry.name}/ ({count} files)")
        else:
            lines.append(entry.name)
    return lines
