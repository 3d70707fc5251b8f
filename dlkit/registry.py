"""Recipes are found through the `dlkit.recipes` entry-point group, built-in ones included.

Listing recipes should not import torch: a recipe package may say what `dlkit recipes` shows in a
`RECIPE_META` dict (every key of ATTRIBUTES) and export its class lazily, so importing the package
stays cheap (three lines in its `__init__.py`; the class keeps the same attributes, and
tests/test_perf.py and tests/test_perf_listing.py check they agree):

    from dlkit.registry import lazy_exports
    RECIPE_META = {"name": "my-recipe", "task": ..., "description": ..., "default_model": ..., ...}
    __getattr__ = lazy_exports(__name__, MyRecipe="recipe")   # MyRecipe lives in my_package/recipe.py

`dlkit info` likewise reads the default config without torch when the package also exports a light
`recipe_config()` (a module importing nothing heavy, whose dict the recipe's `Recipe.config()` returns:
one source) and names the metric monitored under that config in `RECIPE_META["monitor"]`:

    RECIPE_META = {..., "monitor": "accuracy"}
    __getattr__ = lazy_exports(__name__, MyRecipe="recipe", recipe_config="config")  # my_package/config.py

A plug-in without them works the same, only its listing and `dlkit info` import the class.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points

from dlkit.errors import UserError
from dlkit.recipe import Recipe

GROUP = "dlkit.recipes"
ATTRIBUTES = ("name", "task", "description", "default_model", "sample_data")  # what `dlkit recipes` shows


def recipe_names() -> list[str]:
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def _entry_point(name: str) -> EntryPoint:
    found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not found:
        names = recipe_names()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"installed recipes: {', '.join(names) or 'none'}"
        raise UserError(f"unknown recipe '{name}'", hint)
    if len({ep.value for ep in found}) > 1:
        sources = ", ".join(ep.value for ep in found)
        raise UserError(f"recipe '{name}' is registered twice ({sources}); uninstall one of the packages")
    return found[0]


def recipe_meta(name: str) -> dict[str, str]:
    """What `dlkit recipes` shows (ATTRIBUTES), from the package's RECIPE_META when it has one (torch
    stays unloaded), else from the recipe class itself."""
    ep = _entry_point(name)
    try:
        meta = getattr(importlib.import_module(ep.module), "RECIPE_META", None)
    except Exception:  # a broken package: get_recipe names the problem
        meta = None
    if isinstance(meta, dict) and meta.get("name") == name and all(a in meta for a in ATTRIBUTES):
        return {a: meta[a] for a in ATTRIBUTES}
    cls = get_recipe(name)
    return {a: getattr(cls, a) for a in ATTRIBUTES}


def recipe_defaults(name: str) -> tuple[dict[str, str], dict]:
    """What `dlkit info` shows: the listing attributes plus `monitor`, and the recipe's config changes
    (`Recipe.config()`). Light (torch stays unloaded) when the package exports `recipe_config` and its
    RECIPE_META names the monitor; else from the recipe class, the monitor from an instance (which may
    pick it from the config)."""
    ep = _entry_point(name)
    try:
        package = importlib.import_module(ep.module)
        meta = getattr(package, "RECIPE_META", None)
        light = getattr(package, "recipe_config", None)
    except Exception:  # a broken package: get_recipe names the problem
        meta = light = None
    described = (*ATTRIBUTES, "monitor")
    if isinstance(meta, dict) and meta.get("name") == name and all(a in meta for a in described) and light:
        return {a: meta[a] for a in described}, light()
    from dlkit.config import defaults, merge_schema
    from dlkit.defaults import SHARED

    cls = get_recipe(name)
    changes = cls.config()
    monitor = cls(defaults(merge_schema(SHARED, changes))).monitor  # the instance decides
    return {**{a: getattr(cls, a) for a in ATTRIBUTES}, "monitor": monitor}, changes


def lazy_exports(package: str, **names: str) -> Callable[[str], object]:
    """A module `__getattr__` for `package`: `Name="module"` imports `package.module` and returns its
    `Name` on first use (then keeps it), so importing the package itself loads nothing heavy."""

    def __getattr__(attr: str) -> object:
        if attr not in names:
            raise AttributeError(f"module {package!r} has no attribute {attr!r}")
        value = getattr(importlib.import_module(f"{package}.{names[attr]}"), attr)
        setattr(sys.modules[package], attr, value)
        return value

    return __getattr__


def get_recipe(name: str) -> type[Recipe]:
    ep = _entry_point(name)
    source = ep.value
    try:
        cls = ep.load()
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
