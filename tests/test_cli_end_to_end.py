"""The real CLI, train -> evaluate -> predict, on small data in seconds."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import yaml
from conftest import SAMPLE_VISION, TINY
from safetensors import safe_open


def test_help_is_fast_and_does_not_import_torch():
    code = (
        "import sys\nfrom dlkit.cli import main\nsys.argv=['dlkit','--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "NO-TORCH" in done.stderr
    assert "train" in done.stdout and "predict" in done.stdout


def test_recipes_lists_builtin_recipe_through_entry_points(cli):
    res = cli("recipes", "--json")
    assert res.code == 0
    rows = json.loads(res.out)
    vision = next(r for r in rows if r["name"] == "vision-classification")
    assert vision["default_model"] == "resnet10t"
    assert vision["sample_data"] == "sample_data/vision_classification"


def test_info_yaml_is_documented_and_reusable_as_config(cli, tmp_path):
    res = cli("info", "vision-classification")
    assert res.code == 0
    assert "epochs: 15" in res.out and "# (int) passes over the training data" in res.out
    cfg = yaml.safe_load(res.out)
    assert cfg["model"]["name"] == "resnet10t"
    as_json = json.loads(cli("info", "vision-classification", "--json").out)["config"]
    assert as_json == cfg


def test_train_evaluate_predict(cli, tiny_images, tmp_path):
    run = tmp_path / "run"
    res = cli(
        "train",
        "vision-classification",
        "--data",
        tiny_images,
        "--out",
        run,
        "--json",
        "train.epochs=2",
        *TINY,
    )
    assert res.code == 0, res.err
    result = json.loads(res.out)
    assert result["run"] == str(run) and result["epochs"] == 2

    for name in (
        "config.yaml",
        "manifest.json",
        "preprocess/state.json",
        "metrics.jsonl",
        "eval.json",
        "checkpoints/last.safetensors",
        "checkpoints/best.safetensors",
    ):
        assert (run / name).is_file(), name
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["recipe"] == "vision-classification" and manifest["seed"] == 0
    assert len(manifest["data"]["sha256"]) == 64 and manifest["data"]["files"] == 72
    assert manifest["device"] == "cpu" and "torch" in manifest
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert {"train_loss", "val_accuracy", "val_macro_f1", "lr", "grad"} <= set(lines[0])
    assert lines[0]["grad"]["layers"]
    eval_json = json.loads((run / "eval.json").read_text())
    assert eval_json["baseline"]["accuracy"] > 0
    assert len(eval_json["metrics"]["confusion_matrix"]) == 6
    assert "top5_accuracy" in eval_json["metrics"]
    # the checkpoint holds the full training state, as tensors + JSON, no pickle
    with safe_open(str(run / "checkpoints/last.safetensors"), "pt") as fh:
        keys = list(fh.keys())
        meta = json.loads(fh.metadata()["dlkit"])
    assert any(k.startswith("model.") for k in keys) and any(k.startswith("optim.") for k in keys)
    assert "rng.torch" in keys and meta["epoch"] == 1 and "early_stopping" in meta and "scheduler" in meta
    # the resolved config re-runs as --config
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["train"]["epochs"] == 2 and cfg["data"]["path"] == str(tiny_images)

    res = cli("evaluate", run, "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["metrics"]["accuracy"] == eval_json["metrics"]["accuracy"]

    res = cli("predict", run, tiny_images / "test" / "star", tiny_images / "test" / "ring" / "ring_0011.png")
    assert res.code == 0, res.err
    records = [json.loads(line) for line in res.out.splitlines()]
    assert len(records) == 3
    assert records[0]["label"] in {"circle", "square", "triangle", "cross", "star", "ring"}
    assert len(records[0]["top_k"]) == 5 and abs(sum(t["prob"] for t in records[0]["top_k"]) - 1) < 0.2

    out_csv = tmp_path / "preds.csv"
    res = cli("predict", run, tiny_images / "test", "--output", out_csv)
    assert res.code == 0, res.err
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 12 and {"path", "label", "score", "top_k"} <= set(rows[0])


def test_evaluate_on_new_labelled_data_uses_all_of_it(cli, tiny_images, flat_images, tmp_path):
    run = tmp_path / "run"
    assert (
        cli(
            "train", "vision-classification", "--data", flat_images, "--out", run, "train.epochs=1", *TINY
        ).code
        == 0
    )
    state = json.loads((run / "preprocess/state.json").read_text())
    assert sum(state["counts"].values()) == 72  # one folder split into train/val/test, stratified
    res = cli("evaluate", run, "--data", tiny_images / "test", "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["examples"] == 12


def test_default_training_beats_majority_baseline_on_sample_data(cli, tmp_path):
    """The demo as shipped (default config, sample data): far above the majority class."""
    run = tmp_path / "run"
    res = cli("train", "vision-classification", "--out", run, "--json")
    assert res.code == 0, res.err
    result = json.loads(res.out)
    assert result["metrics"]["accuracy"] > 0.6 > 0.17 > result["baseline"]["accuracy"]
    assert result["beats_baseline"] is True
    assert result["examples"] == len(list((SAMPLE_VISION / "test").rglob("*.png")))


def test_check_reports_and_fails_on_fatal(cli, tiny_images, tmp_path):
    res = cli("check", "vision-classification", "--data", tiny_images, "--json")
    assert res.code == 0, res.err
    found = {f["check"]: f for f in json.loads(res.out)["findings"]}
    assert found["data readable"]["severity"] == "ok" and "class balance" in found
    (tmp_path / "empty").mkdir()
    res = cli("check", "vision-classification", "--data", tmp_path / "empty")
    assert res.code == 2 and "is empty" in res.err and "fatal" in res.err
