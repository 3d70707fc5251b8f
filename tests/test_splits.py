"""The one split stage: names and aliases, split files and folders on disk, and assigning missing splits."""

from __future__ import annotations

import pytest

from dlkit.data.splits import (
    assign_splits,
    indices,
    parse_split_column,
    split_dirs,
    split_files,
    split_name,
)
from dlkit.errors import UserError


@pytest.mark.parametrize(
    ("value", "name"),
    [("train", "train"), ("VAL", "val"), ("valid", "val"), (" Validation ", "val"), ("dev", "val"),
     ("test", "test"), ("", None), (None, None), (float("nan"), None)],
)  # fmt: skip
def test_one_alias_set(value, name):
    assert split_name(value) == name


def test_a_bad_split_value_names_file_and_row():
    with pytest.raises(UserError, match=r"'data.csv' row 4: split 'holdout'") as exc:
        parse_split_column(["train", "dev", "holdout"], "data.csv")
    assert "validation" in exc.value.hint


def test_split_files_and_folders_with_aliases(tmp_path):
    for name in ("train.csv", "dev.CSV", "test.tsv", "notes.txt", "extra.csv"):
        (tmp_path / name).write_text("x\n")
    for name in ("train", "Valid", "images"):
        (tmp_path / name).mkdir()
    files = split_files(tmp_path, [".csv", ".tsv"])
    assert {s: p.name for s, p in files.items()} == {
        "train": "train.csv",
        "val": "dev.CSV",
        "test": "test.tsv",
    }
    assert {s: p.name for s, p in split_dirs(tmp_path).items()} == {"train": "train", "val": "Valid"}


def test_two_files_for_one_split_are_refused(tmp_path):
    (tmp_path / "val.csv").write_text("x\n")
    (tmp_path / "dev.csv").write_text("x\n")
    with pytest.raises(UserError, match="two files for the val split"):
        split_files(tmp_path, [".csv"])


def test_given_splits_are_kept_and_only_missing_ones_carved_from_the_pool():
    given = ["train"] * 40 + [None] * 40 + ["test"] * 10
    out = assign_splits(given, 0.25, 0.25, seed=0)
    assert out[80:] == ["test"] * 10  # the user's test split is kept as it is
    assert "test" not in out[:80]  # and no second test split is carved
    assert out.count("val") == 20  # a quarter of the 80-row pool (given train + unassigned)


def test_stratified_by_label():
    labels = ["a"] * 80 + ["b"] * 20
    parts = indices(assign_splits([None] * 100, 0.1, 0.2, seed=3, labels=labels))
    assert sum(labels[i] == "b" for i in parts["test"]) == 4 and len(parts["test"]) == 20
    assert sum(labels[i] == "b" for i in parts["val"]) == 2


def test_by_group_no_group_in_two_splits():
    groups = [f"patient{i // 4}" for i in range(80)]
    out = assign_splits([None] * 80, 0.2, 0.2, seed=1, groups=groups)
    seen: dict[str, set] = {}
    for g, s in zip(groups, out, strict=True):
        seen.setdefault(g, set()).add(s)
    assert all(len(s) == 1 for s in seen.values())
    assert {"train", "val", "test"} == set(out)


def test_by_time_the_latest_items_are_held_out():
    order = list(range(100))[::-1]  # item 0 is the latest
    out = assign_splits([None] * 100, 0.1, 0.2, seed=0, order=order)
    assert set(out[:20]) == {"test"} and set(out[20:30]) == {"val"} and set(out[30:]) == {"train"}


def test_same_seed_same_split_other_seed_other_split():
    a = assign_splits([None] * 50, 0.2, 0.2, seed=7)
    assert a == assign_splits([None] * 50, 0.2, 0.2, seed=7)
    assert a != assign_splits([None] * 50, 0.2, 0.2, seed=8)


def test_fractions_out_of_range_are_a_user_error():
    with pytest.raises(UserError, match="add up to less than 1"):
        assign_splits([None] * 10, 0.6, 0.5, seed=0)
