"""Every registered recipe — the built-in ones and a plug-in installed as its own package — goes through
the same loop a user would: info, check, a tiny train, evaluate, predict from the run alone; with the
eval.json contract, inference-safe overrides, and nothing written into the working directory."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, expect_user_error

from dlkit.registry import recipe_names

# Small budgets that keep each recipe's tiny train to seconds on two CPU cores.
FAST = {
    "vision-classification": ["train.epochs=1"],
    "vision-detection": ["train.epochs=1"],
    "nlp-sentiment": ["train.epochs=1"],
    "nlp-translation": ["train.epochs=1", "generate.num_beams=1"],
    "tabular-fraud": ["train.epochs=1"],
    "finance-forecasting": ["train.epochs=2"],
    "medical-imaging": ["train.epochs=1"],
    "vision-face": ["train.epochs=1"],
    "drug-property": ["train.epochs=1"],
    "nlp-chat": [
        "train.epochs=1",
        "train.max_steps=30",
        "data.max_val_examples=16",
        "generate.max_new_tokens=24",
    ],
    "toy-points": ["train.epochs=3"],
}
PLUGIN = "toy-points"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    """The toy plug-in, pip-installed into a folder of its own and put on the path (entry points included)."""
    target = tmp_path_factory.mktemp("plugin")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(ROOT / "tests" / "plugin"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    yield target
    sys.path.remove(str(target))


def _recipes() -> list[str]:
    return sorted(set(recipe_names()) | {PLUGIN})


def test_plugin_is_found_through_the_entry_point(cli, plugin_path):
    res = cli("recipes", "--json")
    assert res.code == 0, res.err
    names = [r["name"] for r in json.loads(res.out)]
    assert PLUGIN in names and "vision-classification" in names


@pytest.mark.parametrize("name", _recipes())
def test_every_recipe_end_to_end(name, cli, plugin_path, tmp_path, monkeypatch):
    from dlkit.registry import get_recipe

    cls = get_recipe(name)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    work.chmod(0o555)  # read-only for a normal user; for root the emptiness check below still holds
    try:
        info = cli("info", name, "--json")
        assert info.code == 0, info.err
        monitor = json.loads(info.out)["monitor"]

        check = cli("check", name, "--json")
        assert check.code == 0, check.err
        assert json.loads(check.out)["fatal"] == 0

        run = tmp_path / "run"
        res = cli("train", name, "--out", run, "--json", *FAST[name])
        assert res.code == 0, res.err
        trained = json.loads(res.out)
        _check_eval(trained, monitor)
        assert json.loads((run / "eval.json").read_text())["metrics"] == trained["metrics"]

        res = cli("evaluate", run, "device=cpu", "data.batch_size=4", "--json")
        assert res.code == 0, res.err
        evaluated = json.loads(res.out)
        _check_eval(evaluated, monitor)
        assert set(evaluated["baselines"]) == set(trained["baselines"])
        for base, values in trained["baselines"].items():  # fitted baselines come back from the run's state
            assert evaluated["baselines"][base][monitor] == pytest.approx(values[monitor], rel=1e-4, abs=1e-4)
        assert evaluated["metrics"][monitor] == pytest.approx(trained["metrics"][monitor], rel=1e-4, abs=1e-4)

        expect_user_error(cli("evaluate", run, "model.name=other"), "model.name", "cannot be changed")

        moved = tmp_path / "elsewhere" / "run"  # predict needs the run directory and the inputs only
        shutil.move(run, moved)
        inputs = [str(p if Path(p).is_absolute() else ROOT / p) for p in cls.sample_inputs]
        assert inputs, f"{name} names no sample_inputs"
        out = tmp_path / "out" / "preds.jsonl"
        res = cli("predict", moved, *inputs, "device=cpu", "--output", out, "--json")
        assert res.code == 0, res.err
        summary = json.loads(res.out)
        lines = out.read_text().splitlines()
        assert summary["count"] == len(lines) > 0
        assert all(isinstance(json.loads(line), dict) for line in lines)
        if summary["outputs_dir"]:
            assert Path(summary["outputs_dir"]).parent == out.parent
        expect_user_error(cli("predict", moved, *inputs, "model.name=other"), "model.name")
    finally:
        work.chmod(0o755)
    assert list(work.iterdir()) == [], "a command wrote into the working directory"


def _check_eval(result: dict, monitor: str) -> None:
    """eval.json's shape: metrics, baselines (name -> the same keys), details, a named verdict."""
    assert result["monitor"] == monitor
    metrics, baselines = result["metrics"], result["baselines"]
    assert monitor in metrics and isinstance(metrics[monitor], float)
    assert len(baselines) >= 2, "a trivial and a strong classical baseline"
    for name, values in baselines.items():
        assert set(values) == set(metrics) - {"loss"}, name
    assert isinstance(result["details"], dict)
    assert result["strongest_baseline"] in baselines
    scores = {n: v[monitor] for n, v in baselines.items()}
    best = max(scores.values()) if result["monitor_mode"] == "max" else min(scores.values())
    assert scores[result["strongest_baseline"]] == best
    assert isinstance(result["beats_baseline"], bool)
