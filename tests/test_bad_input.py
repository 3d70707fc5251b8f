"""Every user mistake: exit code 2, one clear message naming the thing, no traceback."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import TINY, expect_user_error


def test_missing_data_folder(cli, tmp_path):
    expect_user_error(
        cli("train", "vision-classification", "--data", tmp_path / "nope"), "data path", "does not exist"
    )


def test_empty_data_folder(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    expect_user_error(cli("train", "vision-classification", "--data", tmp_path / "empty"), "is empty")


def test_loose_images_without_class_folders(cli, tmp_path, tiny_images):
    loose = tmp_path / "loose"
    loose.mkdir()
    shutil.copy(next((tiny_images / "train" / "star").iterdir()), loose / "a.png")
    expect_user_error(
        cli("train", "vision-classification", "--data", loose), "no class folders", "sub-folder per class"
    )


def test_class_folder_without_images(cli, flat_images):
    (flat_images / "hexagon").mkdir()
    (flat_images / "hexagon" / "notes.txt").write_text("no images here")
    expect_user_error(
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
    expect_user_error(
        cli("train", "vision-classification", "--data", flat_images),
        "cannot be read",
        "bad0.jpg",
        "data.max_bad_fraction",
    )


def test_csv_without_label_column(cli, tmp_path):
    table = tmp_path / "images.csv"
    table.write_text("file,class\na.png,cat\n")
    expect_user_error(
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
    expect_user_error(
        cli("train", "vision-clasification"),
        "unknown recipe 'vision-clasification'",
        "did you mean 'vision-classification'",
    )
    expect_user_error(cli("info", "nope"), "unknown recipe 'nope'")


def test_unknown_timm_model_suggests_similar_names(cli, tiny_images, tmp_path):
    expect_user_error(
        cli(
            "train",
            "vision-classification",
            "--data",
            tiny_images,
            "--out",
            tmp_path / "r",
            "model.name=resnet10",
        ),
        "model.name 'resnet10' is not a timm model",
        "similar names: resnet10t",
    )


def test_bad_split_value_in_csv_names_the_row(cli, tiny_images, tmp_path):
    rows = ["path,label,split"]
    for i, p in enumerate(sorted((tiny_images / "train").rglob("*.png"))):
        rows.append(f"{p},{p.parent.name},{'holdout' if i == 3 else 'train'}")
    table = tmp_path / "images.csv"
    table.write_text("\n".join(rows) + "\n")
    expect_user_error(
        cli("train", "vision-classification", "--data", table),
        f"'{table}' row 5",
        "split 'holdout' is not a split name",
        "validation or dev",
    )


def test_split_folders_without_training_data(cli, tiny_images, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_images / "val", data / "valid")
    shutil.copytree(tiny_images / "test", data / "test")
    expect_user_error(
        cli("train", "vision-classification", "--data", data), "has no training images", "train/ folder"
    )


def test_split_file_that_contradicts_its_split_column(cli, tiny_images, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "test"):
        rows = ["path,label,split"] + [
            f"{p},{p.parent.name},{'val' if split == 'test' else ''}"
            for p in sorted((tiny_images / split).rglob("*.png"))
        ]
        (data / f"{split}.csv").write_text("\n".join(rows) + "\n")
    expect_user_error(
        cli("train", "vision-classification", "--data", data), "test.csv", "split column says 'val'"
    )


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_folder_that_is_not_a_run(cli, tmp_path, command):
    (tmp_path / "x").mkdir()
    args = [command, tmp_path / "x"] + (["img.png"] if command == "predict" else [])
    expect_user_error(cli(*args), "is not a dlkit run directory", "config.yaml")
    args = [command, tmp_path / "missing"] + (["img.png"] if command == "predict" else [])
    expect_user_error(cli(*args), "does not exist")


def test_predict_missing_input(cli, tiny_images, tmp_path):
    run = tmp_path / "run"
    assert (
        cli(
            "train", "vision-classification", "--data", tiny_images, "--out", run, "train.epochs=1", *TINY
        ).code
        == 0
    )
    expect_user_error(cli("predict", run, tmp_path / "nothing.png"), "nothing.png", "does not exist")
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    expect_user_error(cli("predict", run, notes), "notes.txt", "is not one of the image files")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    res = cli("predict", run, tiny_images / "test" / "star", broken)
    assert res.code == 0 and "broken.png" in res.err and len(res.out.splitlines()) == 2
    expect_user_error(cli("predict", run, broken), "no readable inputs", "broken.png")


def test_resume_without_run(cli, tmp_path):
    expect_user_error(
        cli("train", "vision-classification", "--resume", "--out", tmp_path / "none"), "does not exist"
    )
