"""vision-classification: the pixel logistic-regression baseline and the orientation-safe defaults."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch
from conftest import TINY
from dlkit_recipes.vision_classification import VisionClassification
from dlkit_recipes.vision_classification.data import transform

from dlkit.jobs.common import build_config


def _blobs(root, per_split=(16, 6, 6), seed=0):
    """Two classes told apart only by where a small bright bar sits inside one 8-pixel cell: a linear model
    on 8x8-averaged pixels sees it, HOG pooled over that cell (same edges, same brightness) hardly does."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in zip(("train", "val", "test"), per_split, strict=True):
        for label, cols in (("left", slice(9, 12)), ("right", slice(12, 15))):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(n):
                img = rng.normal(100, 20, (32, 32))
                img[9:15, cols] += 100
                Image.fromarray(img.clip(0, 255).astype(np.uint8), mode="L").save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def blob_run(tmp_path_factory):
    """A one-epoch run on the blob data, trained through the real CLI (module-scoped: trained once)."""
    from dlkit import console
    from dlkit.cli import main

    tmp = tmp_path_factory.mktemp("blobs")
    data, run = _blobs(tmp / "data"), tmp / "run"
    argv = sys.argv
    sys.argv = ["dlkit", "train", "vision-classification", "--data", str(data), "--out", str(run), "--json"]
    sys.argv += ["train.epochs=1", *TINY]
    console.set_quiet(False)
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, f"train failed with exit code {exc.code}"
    finally:
        sys.argv = argv
    return data, run


def test_pixel_logreg_is_fitted_into_json_state_and_scored(blob_run):
    _, run = blob_run
    state = json.loads((run / "preprocess/state.json").read_text())
    fitted = state["pixel_logreg"]
    assert fitted["grid"] in (8, 16) and len(fitted["coef"]) == 2 and len(fitted["intercept"]) == 2
    assert fitted["val_accuracy"] == 1.0
    saved = json.loads((run / "eval.json").read_text())
    assert set(saved["baselines"]) == {"majority_class", "pixel_logreg", "hog_logreg"}
    assert saved["baselines"]["pixel_logreg"]["accuracy"] == 1.0
    assert saved["details"]["pixel_logreg"]["train_images"] == 32


def test_pixel_logreg_named_strongest_when_it_wins(blob_run):
    _, run = blob_run
    saved = json.loads((run / "eval.json").read_text())
    scores = {name: b["accuracy"] for name, b in saved["baselines"].items()}
    assert scores["pixel_logreg"] > scores["hog_logreg"] > scores["majority_class"] - 1e-9
    assert saved["strongest_baseline"] == "pixel_logreg"
    assert saved["beats_baseline"] == (saved["metrics"]["accuracy"] > scores["pixel_logreg"])


def test_evaluate_rescores_pixel_logreg_from_the_run_alone(cli, blob_run, tmp_path):
    data, run = blob_run
    moved = tmp_path / "test-only"
    shutil.copytree(data / "test", moved)  # no training data in reach: only the run's state
    res = cli("evaluate", run, "--data", moved, "--json")
    assert res.code == 0, res.err
    result = json.loads(res.out)
    saved = json.loads((run / "eval.json").read_text())
    assert result["baselines"]["pixel_logreg"] == saved["baselines"]["pixel_logreg"]
    assert result["strongest_baseline"] == "pixel_logreg"


def test_default_augmentation_keeps_orientation():
    """Digits, letters and text change meaning when mirrored: the default training transform never
    flips an image (a bar on the left stays on the left), while the opt-in flip does."""
    image = torch.zeros(1, 32, 32, dtype=torch.uint8)
    image[:, 8:24, 2:8] = 255  # a bar near the left edge
    state = {"image_size": 32, "mean": [0.5], "std": [0.5]}

    def left_share(cfg: dict) -> float:
        out = transform(state, cfg["data"], train=True)
        torch.manual_seed(0)
        shares = []
        for _ in range(40):
            x = out(image)[0] + 1  # back to >= 0
            shares.append(float(x[:, :16].sum() / x.sum()))
        return min(shares)

    default = build_config(VisionClassification, None, [])
    assert left_share(default) > 0.5
    assert left_share(build_config(VisionClassification, None, ["data.hflip=true"])) < 0.5


def test_the_image_cache_gives_way_when_memory_is_short(monkeypatch):
    from dlkit_recipes.vision_classification import data

    assert data.cache_fits(True, 1000, 32, 3) == (True, None)
    assert data.cache_fits(False, 1000, 32, 3) == (False, None)
    monkeypatch.setattr(data, "available_memory", lambda: 2 * 2**30)  # 2 GiB free
    cache, note = data.cache_fits(True, 100_000, 224, 3)  # 14 GiB of decoded images
    assert cache is False and "14.0 GiB" in note and "data.cache=false" in note
