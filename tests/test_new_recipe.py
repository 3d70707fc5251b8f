"""`dlkit new-recipe`: the scaffold installs with pip, is listed, trains, evaluates and predicts on its
own sample data, and its own test passes; a broken plug-in is named and breaks nothing else."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest
from conftest import expect_user_error

PIP = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]


@pytest.fixture(scope="module")
def scaffolds(tmp_path_factory):
    """A classification and a regression scaffold, pip-installed into a folder of their own."""
    from dlkit.scaffold import new_recipe

    root = tmp_path_factory.mktemp("scaffolds")
    made = {task: new_recipe(f"demo-{task}", task, root / task) for task in ("classification", "regression")}
    target = root / "site"
    done = subprocess.run(
        [*PIP, "--target", str(target), *(m["folder"] for m in made.values())], capture_output=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    yield made, target
    sys.path.remove(str(target))


def test_the_scaffold_is_listed(cli, scaffolds):
    res = cli("recipes", "--json")
    assert res.code == 0, res.err
    names = {r["name"] for r in json.loads(res.out)}
    assert {"demo-classification", "demo-regression", "tabular-fraud"} <= names


@pytest.mark.parametrize("task, key", [("classification", "label"), ("regression", "value")])
def test_the_scaffold_trains_evaluates_and_predicts(cli, scaffolds, tmp_path, task, key):
    made, _ = scaffolds
    name = f"demo-{task}"
    run = tmp_path / "run"
    res = cli("train", name, "--out", run, "train.epochs=3", "--json")
    assert res.code == 0, res.err
    trained = json.loads(res.out)
    assert trained["monitor"] in trained["metrics"] and len(trained["baselines"]) == 2

    res = cli("evaluate", run, "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["metrics"] == trained["metrics"]

    sample = f"{made[task]['folder']}/dlkit_demo_{task}/sample.csv"
    out = tmp_path / "preds.jsonl"
    res = cli("predict", run, sample, "--output", out, "--json")
    assert res.code == 0, res.err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == json.loads(res.out)["count"] == 240 and key in records[0]


def test_the_scaffolds_own_test_passes(scaffolds):
    made, target = scaffolds
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(target), os.environ.get("PYTHONPATH")])),
    }
    tests = f"{made['classification']['folder']}/tests"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", tests],
        capture_output=True,
        text=True,
        env=env,
        cwd=made["classification"]["folder"],
    )
    assert done.returncode == 0, done.stdout[-3000:]


def test_bad_names_and_folders_are_refused(cli, tmp_path):
    expect_user_error(cli("new-recipe", "My_Recipe", "--dir", tmp_path / "a"), "My_Recipe", "dashes")
    expect_user_error(cli("new-recipe", "tabular-fraud", "--dir", tmp_path / "b"), "already installed")
    expect_user_error(cli("new-recipe", "ok-name", "--task", "ranking", "--dir", tmp_path / "c"), "ranking")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep.txt").write_text("mine")
    expect_user_error(cli("new-recipe", "ok-name", "--dir", tmp_path / "d"), "not empty")


@pytest.fixture
def broken_plugins(tmp_path):
    """Two broken plug-ins registered the way pip would: one fails to import, one lacks methods."""
    site = tmp_path / "site"
    dist = site / "dlkit_broken-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: dlkit-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[dlkit.recipes]\nbroken-import = dlkit_broken_gone:Gone\nbroken-method = dlkit_broken:Incomplete\n"
    )
    (site / "dlkit_broken.py").write_text(
        "from dlkit.recipe import Recipe\n\n\nclass Incomplete(Recipe):\n"
        "    name = task = description = default_model = sample_data = 'x'\n\n"
        "    def load_data(self, path, state=None, evaluate_all=False): ...\n"
    )
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    yield
    sys.path.remove(str(site))
    sys.modules.pop("dlkit_broken", None)


def test_a_broken_plugin_is_named_and_breaks_nothing_else(cli, broken_plugins):
    res = cli("recipes", "--json")
    assert res.code == 0, res.err
    assert "tabular-fraud" in {r["name"] for r in json.loads(res.out)}
    err = " ".join(res.err.split())
    assert "broken-import" in err and "dlkit_broken_gone" in err
    assert "broken-method" in err and "step" in err and "metrics" in err

    expect_user_error(cli("train", "broken-method"), "broken-method", "does not define", "build_model")
    expect_user_error(cli("info", "broken-import"), "broken-import", "cannot be imported")
    assert cli("info", "tabular-fraud", "--json").code == 0
