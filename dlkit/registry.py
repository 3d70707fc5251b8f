"""Recipes are found through the `dlkit.recipes` entry-point group, built-in ones included."""

from __future__ import annotations

import difflib
from importlib.metadata import entry_points

from dlkit.errors import UserError
from dlkit.recipe import Recipe

GROUP = "dlkit.recipes"
ATTRIBUTES = ("name", "task", "description", "default_model", "sample_data")  # what `dlkit recipes` shows


def recipe_names() -> list[str]:
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def get_recipe(name: str) -> type[Recipe]:
    found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not found:
        names = recipe_names()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"installed recipes: {', '.join(names) or 'none'}"
        raise UserError(f"unknown recipe '{name}'", hint)
    if len({ep.value for ep in found}) > 1:
        sources = ", ".join(ep.value for ep in found)
        raise UserError(f"recipe '{name}' is registered twice ({sources}); uninstall one of the packages")
    source = found[0].value
    try:
        cls = found[0].load()
    except Exception as exc:  # a broken plug-in is named, and breaks no other recipe
        raise UserError(
            f"recipe '{name}' ({source}) cannot be imported: {type(exc).__name__}: {exc}",
            "fix or uninstall the package that provides it",
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Recipe)):
        raise UserError(f"entry point '{name}' = {source} is not a dlkit Recipe subclass")
    missing = sorted(cls.__abstractmethods__) + [a for a in ATTRIBUTES if not hasattr(cls, a)]
    if missing:
        raise UserError(
            f"recipe '{name}' ({source}) does not define {', '.join(missing)}",
            "see dlkit/recipe.py for the hooks a recipe implements",
        )
    return cls
