"""The real CLI, train -> evaluate -> predict, on small data in seconds."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import SAMPLE_VISION, TINY, train_ok
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
    assert "epochs: auto" in res.out and "# (int or auto) passes over the training data" in res.out
    assert "lr: 0.005" in res.out  # the recipe's own default over the shared one
    cfg = yaml.safe_load(res.out)
    assert cfg["model"]["name"] == "resnet10t"
    as_json = json.loads(cli("info", "vision-classification", "--json").out)["config"]
    assert as_json == cfg


def _copy_tree(src, dst):
    shutil.copytree(src, dst)
    return dst


def _sizes(cli, data) -> dict[str, int]:
    """`dlkit check`'s split sizes for DATA (reads and splits it as training would)."""
    res = cli("check", "vision-classification", "--data", data, "--json")
    assert res.code == 0, res.err
    found = {f["check"]: f for f in json.loads(res.out)["findings"]}
    readable = found["data readable"]
    assert readable["severity"] == "ok", readable
    return {split: int(n) for n, split in re.findall(r"(\d+) (train|val|test)", readable["message"])}


def _write_csv(path, rows, split_column=True):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "split"] if split_column else ["path", "label"])
        writer.writerows(rows)
    return path


def test_train_evaluate_predict(cli, tiny_images, tmp_path):
    run = tmp_path / "run"
    result = train_ok(cli, "vision-classification", run, "--data", tiny_images, "train.epochs=2", *TINY)
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

    # eval.json: the model and both baselines scored by the same metrics on the 12 test images
    eval_json = json.loads((run / "eval.json").read_text())
    assert eval_json["monitor"] == "accuracy" and eval_json["examples"] == 12
    assert len(eval_json["metrics"]["confusion_matrix"]) == 6
    assert "top5_accuracy" in eval_json["metrics"]
    baselines = eval_json["baselines"]
    assert set(baselines) == {"majority_class", "pixel_logreg", "hog_logreg"}
    assert baselines["majority_class"]["accuracy"] == pytest.approx(2 / 12)  # balanced: one class of six
    assert baselines["hog_logreg"]["accuracy"] > baselines["majority_class"]["accuracy"]
    # 12 test images: which logistic regression wins here is chance; the verdict names the best one
    strongest = eval_json["strongest_baseline"]
    assert baselines[strongest]["accuracy"] == max(b["accuracy"] for b in baselines.values())
    assert isinstance(eval_json["beats_baseline"], bool)
    details = eval_json["details"]
    assert details["majority_class"] == "circle"  # a tie in the prior: the first class
    assert sum(c["support"] for c in details["per_class"].values()) == 12
    assert len(details["per_class"]) == 6 and details["hog_logreg"]["train_images"] == 48
    # what evaluate needs was fitted into the state (JSON, no pickle)
    state = json.loads((run / "preprocess/state.json").read_text())
    assert state["class_counts"] == [8] * 6 and len(state["hog_logreg"]["coef"]) == 6

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
    evaluated = json.loads(res.out)
    assert evaluated["metrics"]["accuracy"] == eval_json["metrics"]["accuracy"]
    assert evaluated["baselines"] == baselines

    res = cli("predict", run, tiny_images / "test" / "star", tiny_images / "test" / "ring" / "ring_0011.png")
    assert res.code == 0, res.err
    records = [json.loads(line) for line in res.out.splitlines()]
    assert len(records) == 3
    assert records[0]["label"] in {"circle", "square", "triangle", "cross", "star", "ring"}
    assert len(records[0]["top_k"]) == 5 and abs(sum(t["prob"] for t in records[0]["top_k"]) - 1) < 0.2

    out_csv = tmp_path / "preds.csv"
    res = cli("predict", run, tiny_images / "test", "--output", out_csv, "data.cache=false")
    assert res.code == 0, res.err
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 12 and {"path", "label", "score", "top_k"} <= set(rows[0])
    assert not (run / "predictions").exists()  # no side files for this recipe


def test_evaluate_on_new_labelled_data_uses_all_of_it(cli, tiny_images, flat_images, tmp_path):
    run = tmp_path / "run"
    train_ok(cli, "vision-classification", run, "--data", flat_images, "train.epochs=1", *TINY)
    state = json.loads((run / "preprocess/state.json").read_text())
    assert sum(state["counts"].values()) == 72  # one folder split into train/val/test, stratified
    res = cli("evaluate", run, "--data", tiny_images / "test", "--json")
    assert res.code == 0, res.err
    result = json.loads(res.out)
    assert result["examples"] == 12
    # scored from the state alone
    assert set(result["baselines"]) == {"majority_class", "pixel_logreg", "hog_logreg"}
    # split folders given to evaluate: their test split only
    res = cli("evaluate", run, "--data", tiny_images, "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["examples"] == 12


@pytest.mark.slow
def test_default_training_beats_both_baselines_on_sample_data(cli, tmp_path):
    """The demo as shipped (default config, sample data): above HOG + logistic regression, far above the
    majority class. Slow (a full default training, ~55 s); .ci/run checks the same verdict on the demo it
    runs from the installed wheel."""
    result = train_ok(cli, "vision-classification", tmp_path / "run")
    baselines = result["baselines"]
    assert result["metrics"]["accuracy"] > 0.6 > 0.17 > baselines["majority_class"]["accuracy"]
    assert baselines["hog_logreg"]["accuracy"] > 0.5  # the strong baseline is a real one on this data
    assert result["strongest_baseline"] == "hog_logreg"
    assert result["metrics"]["accuracy"] > baselines["hog_logreg"]["accuracy"]
    assert result["beats_baseline"] is True
    assert result["examples"] == len(list((SAMPLE_VISION / "test").rglob("*.png")))


def test_check_reports_and_fails_on_fatal(cli, tiny_images, tmp_path):
    res = cli("check", "vision-classification", "--data", tiny_images, "--json")
    assert res.code == 0, res.err
    found = {f["check"]: f for f in json.loads(res.out)["findings"]}
    assert found["data readable"]["severity"] == "ok"
    balance = found["class balance"]  # 2 val and 2 test images per class: noisy scores, said so
    assert balance["severity"] == "warning" and "val: circle 2 (16.7%)" in balance["message"]
    assert "train: circle 8" in balance["message"] and "test:" in balance["message"]
    (tmp_path / "empty").mkdir()
    res = cli("check", "vision-classification", "--data", tmp_path / "empty")
    assert res.code == 2 and "is empty" in res.err and "fatal" in res.err


def test_class_missing_from_training_is_fatal_in_check(cli, tiny_images, tmp_path):
    data = _copy_tree(tiny_images, tmp_path / "data")
    shutil.rmtree(data / "train" / "star")
    res = cli("check", "vision-classification", "--data", data, "--json")
    assert res.code == 2
    found = {f["check"]: f for f in json.loads(res.out)["findings"]}
    assert (
        found["class balance"]["severity"] == "fatal"
        and "train: circle 8" in found["class balance"]["message"]
    )
    assert "star" in found["data readable"]["message"]


# --- layouts: split folders, split columns and split files, one alias set -----------------------------
@pytest.mark.parametrize("alias", ["val", "valid", "validation", "dev"])
def test_split_folders_with_any_validation_alias(cli, tiny_images, tmp_path, alias):
    data = tmp_path / "data"
    for split, name in (("train", "train"), ("val", alias), ("test", "test")):
        shutil.copytree(tiny_images / split, data / name)
    assert _sizes(cli, data) == {"train": 48, "val": 12, "test": 12}


def test_missing_test_folder_is_carved_out_of_train_stratified(cli, tiny_images, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_images / "train", data / "Train")
    shutil.copytree(tiny_images / "val", data / "dev")
    assert _sizes(cli, data) == {"train": 42, "val": 12, "test": 6}  # the given val is kept whole
    res = cli("check", "vision-classification", "--data", data, "--json")
    balance = {f["check"]: f for f in json.loads(res.out)["findings"]}["class balance"]["message"]
    assert "test: circle 1 (16.7%), cross 1 (16.7%), ring 1 (16.7%)" in balance  # one of each class
    shutil.rmtree(data / "dev")
    assert _sizes(cli, data) == {"train": 36, "val": 6, "test": 6}  # train only: both carved


def test_csv_split_column_aliases_and_empty_rows_join_the_training_pool(cli, tiny_images, tmp_path):
    rows = []
    for split, value in (("train", "train"), ("val", "dev"), ("test", " Test")):
        for i, p in enumerate(sorted((tiny_images / split).rglob("*.png"))):
            rows.append([p, p.parent.name, "" if split == "train" and i % 2 else value])
    table = _write_csv(tmp_path / "images.csv", rows)
    # every row is used: empty split = train (nothing carved, since val and test are given)
    assert _sizes(cli, table) == {"train": 48, "val": 12, "test": 12}
    # with no val rows at all, val is carved out of the train and empty rows together, stratified
    table = _write_csv(tmp_path / "no_val.csv", [r for r in rows if r[2] != "dev"])
    assert _sizes(cli, table) == {"train": 42, "val": 6, "test": 12}
    table = _write_csv(tmp_path / "plain.csv", [r[:2] for r in rows], split_column=False)
    assert _sizes(cli, table) == {"train": 48, "val": 12, "test": 12}


def test_split_csv_files_in_a_folder(cli, tiny_images, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_images, data / "images")
    for split, name in (("train", "train.csv"), ("val", "valid.csv"), ("test", "test.csv")):
        rows = [
            [p.relative_to(data), p.parent.name] for p in sorted((data / "images" / split).rglob("*.png"))
        ]
        _write_csv(data / name, rows, split_column=False)
    assert _sizes(cli, data) == {"train": 48, "val": 12, "test": 12}
