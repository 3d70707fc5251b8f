"""Every user mistake: exit code 2, one clear message naming the thing, no traceback."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import TINY


def _expect_user_error(res, *fragments):
    assert res.code == 2, (res.code, res.err)
    assert "Traceback" not in res.err
    for f in fragments:
        assert f in res.err, res.err


def test_missing_data_folder(cli, tmp_path):
    _expect_user_error(
        cli("train", "vision-classification", "--data", tmp_path / "nope"), "data path", "does not exist"
    )


def test_empty_data_folder(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    _expect_user_error(cli("train", "vision-classification", "--data", tmp_path / "empty"), "is empty")


def test_loose_images_without_class_folders(cli, tmp_path, tiny_images):
    loose = tmp_path / "loose"
    loose.mkdir()
    shutil.copy(next((tiny_images / "train" / "star").iterdir()), loose / "a.png")
    _expect_user_error(
        cli("train", "vision-classification", "--data", loose), "no class folders", "sub-folder per class"
    )


def test_class_folder_without_images(cli, flat_images):
    (flat_images / "hexagon").mkdir()
    (flat_images / "hexagon" / "notes.txt").write_text("no images here")
    _expect_user_error(
        cli("train", "vision-classification", "--data", flat_images), "hexagon", "has no images"
    )


def test_corrupt_image_is_skipped_named_and_counted(cli, flat_images, tmp_path):
    bad = flat_images / "star" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    res = cli(
        "train",
        "vision-classification",
        "--data",
        flat_images,
        "--out",
        tmp_path / "run",
        "train.epochs=1",
        *TINY,
    )
    assert res.code == 0, res.err
    assert "skipped 1 unreadable image" in res.err and "broken.png" in res.err


def test_too_many_corrupt_images_fail(cli, flat_images):
    for i in range(10):
        (flat_images / "ring" / f"bad{i}.jpg").write_bytes(b"garbage")
    _expect_user_error(
        cli("train", "vision-classification", "--data", flat_images),
        "cannot be read",
        "bad0.jpg",
        "data.max_bad_fraction",
    )


def test_csv_without_label_column(cli, tmp_path):
    table = tmp_path / "images.csv"
    table.write_text("file,class\na.png,cat\n")
    _expect_user_error(
        cli("train", "vision-classification", "--data", table), "no 'path' column", "file, class"
    )


def test_csv_with_path_label(cli, tiny_images, tmp_path):
    rows = ["path,label"]
    for p in sorted((tiny_images / "train").rglob("*.png")):
        rows.append(f"{p},{p.parent.name}")
    table = tmp_path / "images.csv"
    table.write_text("\n".join(rows) + "\n")
    res = cli(
        "train",
        "vision-classification",
        "--data",
        table,
        "--out",
        tmp_path / "run",
        "--json",
        "train.epochs=1",
        *TINY,
    )
    assert res.code == 0, res.err
    assert json.loads(res.out)["examples"] > 0


def test_unknown_recipe_suggests(cli):
    _expect_user_error(
        cli("train", "vision-clasification"),
        "unknown recipe 'vision-clasification'",
        "did you mean 'vision-classification'",
    )
    _expect_user_error(cli("info", "nope"), "unknown recipe 'nope'")


def test_unknown_timm_model(cli, tiny_images, tmp_path):
    _expect_user_error(
        cli(
            "train",
            "vision-classification",
            "--data",
            tiny_images,
            "--out",
            tmp_path / "r",
            "model.name=resnet_does_not_exist",
        ),
        "is not a timm model",
    )


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_folder_that_is_not_a_run(cli, tmp_path, command):
    (tmp_path / "x").mkdir()
    args = [command, tmp_path / "x"] + (["img.png"] if command == "predict" else [])
    _expect_user_error(cli(*args), "is not a dlkit run directory", "config.yaml")
    args = [command, tmp_path / "missing"] + (["img.png"] if command == "predict" else [])
    _expect_user_error(cli(*args), "does not exist")


def test_predict_missing_input(cli, tiny_images, tmp_path):
    run = tmp_path / "run"
    assert (
        cli(
            "train", "vision-classification", "--data", tiny_images, "--out", run, "train.epochs=1", *TINY
        ).code
        == 0
    )
    _expect_user_error(cli("predict", run, tmp_path / "nothing.png"), "nothing.png", "does not exist")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    res = cli("predict", run, tiny_images / "test" / "star", broken)
    assert res.code == 0 and "broken.png" in res.err and len(res.out.splitlines()) == 2
    _expect_user_error(cli("predict", run, broken), "no readable inputs")


def test_resume_without_run(cli, tmp_path):
    _expect_user_error(
        cli("train", "vision-classification", "--resume", "--out", tmp_path / "none"), "does not exist"
    )
