"""`dlkit new-recipe`: a plug-in recipe package that installs with pip and trains on its own sample data.

The templates (in `templates/`, shipped as package data) are real, working code in the shape of the
built-in recipes; only names are filled in, so what a user starts from is what the tests run.
"""

from __future__ import annotations

import random
import re
import string
from importlib.resources import files
from pathlib import Path

from dlkit.errors import UserError

TASKS = {
    # task -> (target column, baselines the test expects, the key a prediction record carries)
    "classification": ("label", ("majority_class", "nearest_centroid"), "label"),
    "regression": ("target", ("train_mean", "linear_regression"), "value"),
}
NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
SAMPLE_ROWS = 240
FEATURES = 4


def new_recipe(name: str, task: str, folder: Path) -> dict:
    """Write the package for recipe `name` into `folder` (new or empty); what was made and what next."""
    from dlkit.registry import recipe_names

    if not NAME.fullmatch(name):
        raise UserError(
            f"recipe name '{name}' is not lower-case words joined by dashes", "for example: my-sensors"
        )
    if task not in TASKS:
        raise UserError(f"unknown task '{task}'", f"--task is one of: {', '.join(TASKS)}")
    if name in recipe_names():
        raise UserError(f"a recipe named '{name}' is already installed", "choose another name")
    folder = Path(folder).expanduser()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UserError(f"'{folder}' already exists and is not empty", "pass --dir to a new folder")
    module = "dlkit_" + name.replace("-", "_")
    target, baselines, record_key = TASKS[task]
    fill = {
        "name": name,
        "task": task,
        "module": module,
        "dist": f"dlkit-{name}",
        "cls": "".join(part.capitalize() for part in name.split("-")),
        "target": target,
        "baseline_names": ", ".join(f'"{b}"' for b in baselines),
        "record_key": record_key,
    }
    layout = {
        "pyproject.toml": "pyproject.toml.tmpl",
        "README.md": "README.md.tmpl",
        f"{module}/__init__.py": "__init__.py.tmpl",
        f"{module}/recipe.py": f"{task}.py.tmpl",
        f"tests/test_{module}.py": "test_recipe.py.tmpl",
    }
    templates = files("dlkit.scaffold") / "templates"
    for path, template in layout.items():
        text = string.Template((templates / template).read_text(encoding="utf-8")).substitute(fill)
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text, encoding="utf-8")
    (folder / module / "sample.csv").write_text(sample_csv(task, target), encoding="utf-8")
    return {
        "recipe": name,
        "folder": str(folder),
        "files": sorted([*layout, f"{module}/sample.csv"]),
        "next": [
            f"pip install --no-deps -e {folder}",
            f"dlkit train {name} --out runs/{name}",
            f"python -m pytest -q {folder / 'tests'}",
        ],
    }


def sample_csv(task: str, target: str, rows: int = SAMPLE_ROWS, seed: int = 0) -> str:
    """A small learnable table: three Gaussian blobs (classification) or a smooth non-linear function
    of the features plus noise (regression), so the MLP has something to beat the baselines on."""
    rng = random.Random(seed)
    names = [f"x{i + 1}" for i in range(FEATURES)]
    lines = [",".join([*names, target])]
    for r in range(rows):
        if task == "classification":
            k = r % 3
            x = [rng.gauss(1.5 * ((k + i) % 3 - 1), 1.0) for i in range(FEATURES)]
            y = ["low", "mid", "high"][k]
        else:
            x = [rng.uniform(-2, 2) for _ in range(FEATURES)]
            y = f"{2 * x[0] - x[1] + x[2] * x[3] + 3 * abs(x[0]) + rng.gauss(0, 0.3):.4f}"
        lines.append(",".join([*(f"{v:.4f}" for v in x), y]))
    return "\n".join(lines) + "\n"
