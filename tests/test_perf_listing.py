"""`dlkit info` reads a recipe's default config without importing torch (dlkit/registry.py), and says the
same as the recipe class would."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from importlib.metadata import EntryPoint

import pytest

from dlkit.config import defaults, merge_schema, opt
from dlkit.defaults import SHARED
from dlkit.recipe import Recipe
from dlkit.registry import get_recipe, recipe_defaults, recipe_names

# Every bundled recipe has a light config module (recipes/<r>/config.py).
LIGHT = sorted(recipe_names())

INFO = """
import json, sys
from dlkit.cli import main
shown = {}
for name in sys.argv[1:]:
    sys.argv = ["dlkit", "info", name, "--json"]
    try:
        main()
    except SystemExit:
        pass
heavy = [m for m in ("torch", "pandas", "transformers", "sklearn") if m in sys.modules]
print(json.dumps(heavy), file=sys.stderr)
"""


def test_info_reads_the_config_without_importing_torch():
    out = subprocess.run([sys.executable, "-c", INFO, *LIGHT], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stderr.strip().splitlines()[-1]) == []
    shown = [json.loads(line) for line in out.stdout.splitlines()]
    assert [s["recipe"] for s in shown] == LIGHT
    for s in shown:  # what the recipe class itself gives: its defaults and its instance's monitor
        cls = get_recipe(s["recipe"])
        config = defaults(merge_schema(SHARED, cls.config()))
        assert s["config"] == config
        assert s["monitor"] == cls(config).monitor


@pytest.mark.parametrize("name", recipe_names())
def test_light_config_is_the_recipe_config(name):
    meta, changes = recipe_defaults(name)
    cls = get_recipe(name)
    # Options compare by default, type, help and choices: `dlkit info` prints the same documented YAML
    assert merge_schema(SHARED, changes) == merge_schema(SHARED, cls.config())
    assert meta["monitor"] == cls(defaults(merge_schema(SHARED, changes))).monitor
    assert {a: meta[a] for a in ("name", "task", "description")} == {
        a: getattr(cls, a) for a in ("name", "task", "description")
    }
    package = sys.modules[cls.__module__.rpartition(".")[0]]
    assert (name in LIGHT) == hasattr(package, "recipe_config")


def test_plugin_without_light_config_shows_its_info_from_the_class(cli, monkeypatch):
    module = types.ModuleType("heavy_plugin")

    class Heavy(Recipe):
        name, task, description = "heavy", "segmentation or classification", "a plug-in with no light config"
        default_model, sample_data = "cnn", "data"
        load_data = build_model = step = metrics = baselines = read_inputs = predict_step = to_records = None

        @classmethod
        def config(cls) -> dict:
            return {"task": opt("classification", "what to learn", ["classification", "segmentation"])}

        def __init__(self, cfg: dict):
            super().__init__(cfg)
            self.monitor = "auroc" if cfg["task"] == "classification" else "dice"

    Heavy.__abstractmethods__ = frozenset()
    module.Heavy = Heavy
    monkeypatch.setitem(sys.modules, "heavy_plugin", module)
    point = EntryPoint("heavy", "heavy_plugin:Heavy", "dlkit.recipes")
    monkeypatch.setattr("dlkit.registry.entry_points", lambda group: [point])
    res = cli("info", "heavy", "--json")
    assert res.code == 0, res.err
    shown = json.loads(res.out)
    assert shown["monitor"] == "auroc" and shown["config"]["task"] == "classification"
    res = cli("info", "heavy")
    assert res.code == 0, res.err
    assert "# heavy: a plug-in with no light config" in res.out
    assert "monitored metric: auroc" in res.out
    assert "task: classification" in res.out and "[classification|segmentation]" in res.out
