"""Bad input, table-driven across recipes: every case ends with exit 2, a message that names the file,
row, column or key, no traceback, and no run directory left behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

Writer = "callable(tmp_path) -> data path"


def _text(name: str, content: str | bytes):
    def write(tmp: Path) -> Path:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path

    return write


def _png(path: Path, value: int = 128) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), value, dtype=np.uint8)).save(path)


def _images(layout: dict[str, int]):
    """class folder -> image count, under one folder."""

    def write(tmp: Path) -> Path:
        for cls, n in layout.items():
            for i in range(n):
                _png(tmp / "imgs" / cls / f"{i}.png", 40 * i % 255)
        return tmp / "imgs"

    return write


def _images_csv(rows: str, images: int = 0):
    def write(tmp: Path) -> Path:
        for i in range(images):
            _png(tmp / f"{i}.png")
        path = tmp / "labels.csv"
        path.write_text(rows)
        return path

    return write


def _coco(mutate):
    """A valid two-image COCO split trio, then `mutate(train_json_dict)`."""

    def write(tmp: Path) -> Path:
        folder = tmp / "det"
        for i in range(2):
            _png(folder / "images" / f"{i}.png")
        base = {
            "images": [
                {"id": i, "file_name": f"images/{i}.png", "width": 16, "height": 16} for i in range(2)
            ],
            "annotations": [
                {"id": i, "image_id": i, "category_id": 1, "bbox": [2, 2, 8, 8], "area": 64, "iscrowd": 0}
                for i in range(2)
            ],
            "categories": [{"id": 1, "name": "thing"}],
        }
        for split in ("train", "val", "test"):
            data = json.loads(json.dumps(base))
            if split == "train":
                mutate(data)
            (folder / f"{split}.json").write_text(json.dumps(data))
        return folder

    return write


def _set(key, value):
    def mutate(d):
        target = d
        for k in key[:-1]:
            target = target[k]
        target[key[-1]] = value

    return mutate


def _nifti_case(kind: str):
    def write(tmp: Path) -> Path:
        import nibabel as nib

        folder = tmp / "scans"
        (folder / "images").mkdir(parents=True)
        (folder / "masks").mkdir()
        for i in range(4):
            img = np.random.default_rng(i).random((8, 8, 4)).astype(np.float32)
            nib.save(nib.Nifti1Image(img, np.eye(4)), folder / "images" / f"case_{i}.nii.gz")
            shape = (8, 8, 4) if kind != "mask_shape" or i != 2 else (6, 6, 4)
            mask = np.zeros(shape, np.uint8)
            mask[2:5, 2:5] = 1
            nib.save(nib.Nifti1Image(mask, np.eye(4)), folder / "masks" / f"case_{i}.nii.gz")
        if kind == "corrupt":
            (folder / "images" / "case_1.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
        return folder

    return write


TABLE = "amount,device,is_fraud\n"
CASES = [
    # --- tables: tabular-fraud ---
    ("tabular-fraud", "empty file", _text("t.csv", b""), "t.csv"),
    ("tabular-fraud", "binary file", _text("t.csv", bytes(range(256)) * 8), "t.csv"),
    ("tabular-fraud", "utf-16 text", _text("t.csv", (TABLE + "1,a,0\n").encode("utf-16")), "t.csv"),
    ("tabular-fraud", "no label column", _text("t.csv", "amount,device\n1,a\n2,b\n"), "is_fraud"),
    ("tabular-fraud", "one class", _text("t.csv", TABLE + "".join(f"{i},a,0\n" for i in range(40))), "t.csv"),
    (
        "tabular-fraud",
        "labels all missing",
        _text("t.csv", TABLE + "".join(f"{i},a,\n" for i in range(40))),
        "t.csv",
    ),
    (
        "tabular-fraud",
        "three label values",
        _text("t.csv", TABLE + "".join(f"{i},a,{i % 3}\n" for i in range(40))),
        "is_fraud",
    ),
    ("tabular-fraud", "header only", _text("t.csv", TABLE), "t.csv"),
    (
        "tabular-fraud",
        "bad split value",
        _text("t.csv", "amount,is_fraud,split\n" + "".join(f"{i},{i % 2},trian\n" for i in range(20))),
        "trian",
    ),
    ("tabular-fraud", "unknown format", _text("t.xlsx", b"PK\x03\x04"), "t.xlsx"),
    # --- tables: sentiment ---
    ("nlp-sentiment", "empty file", _text("r.csv", b""), "r.csv"),
    ("nlp-sentiment", "no text column", _text("r.csv", "body,label\nhi,pos\nyo,neg\n"), "text"),
    ("nlp-sentiment", "no label column", _text("r.csv", "text,stars\nhi,1\nyo,2\n"), "label"),
    (
        "nlp-sentiment",
        "one class",
        _text("r.csv", "text,label\n" + "".join(f"text {i},pos\n" for i in range(30))),
        "r.csv",
    ),
    (
        "nlp-sentiment",
        "every text empty",
        _text("r.csv", "text,label\n" + "".join(f",{'ab'[i % 2]}\n" for i in range(30))),
        "r.csv",
    ),
    (
        "nlp-sentiment",
        "latin-1 bytes",
        _text("r.csv", "text,label\ncaf\xe9 ok,pos\nbad,neg\n".encode("latin-1")),
        "r.csv",
    ),
    ("nlp-sentiment", "binary file", _text("r.csv", bytes(range(256)) * 8), "r.csv"),
    # --- tables: translation ---
    ("nlp-translation", "empty file", _text("p.tsv", b""), "p.tsv"),
    ("nlp-translation", "one column", _text("p.tsv", "source\nhello\nbye\n"), "p.tsv"),
    (
        "nlp-translation",
        "every target empty",
        _text("p.tsv", "source\ttarget\n" + "".join(f"hi {i}\t\n" for i in range(30))),
        "p.tsv",
    ),
    ("nlp-translation", "binary file", _text("p.tsv", bytes(range(256)) * 8), "p.tsv"),
    (
        "nlp-translation",
        "utf-16 text",
        _text("p.tsv", "source\ttarget\nhi\tsalut\n".encode("utf-16")),
        "p.tsv",
    ),
    # --- tables: forecasting ---
    ("finance-forecasting", "empty file", _text("s.csv", b""), "s.csv"),
    (
        "finance-forecasting",
        "bad dates",
        _text("s.csv", "date,close\n" + "".join(f"day {i},{i}\n" for i in range(60))),
        "date",
    ),
    (
        "finance-forecasting",
        "text values",
        _text("s.csv", "date,close\n" + "".join(f"2021-01-{1 + i % 28:02d},x{i}\n" for i in range(28))),
        "close",
    ),
    (
        "finance-forecasting",
        "too short for the horizon",
        _text("s.csv", "date,close\n2021-01-01,1\n2021-01-02,2\n2021-01-03,3\n"),
        "series 'close'",
    ),
    ("finance-forecasting", "no date column", _text("s.csv", "when,close\n1,2\n2,3\n"), "date"),
    ("finance-forecasting", "binary file", _text("s.csv", bytes(range(256)) * 8), "s.csv"),
    # --- images: vision classification ---
    ("vision-classification", "one class", _images({"cat": 6}), "cat"),
    ("vision-classification", "empty class folders", _images({"cat": 0, "dog": 0}), "imgs"),
    ("vision-classification", "every image corrupt", _text("imgs/a/1.png", b"not a png"), "1.png"),
    ("vision-classification", "csv without a label column", _images_csv("path\n0.png\n", 1), "label"),
    (
        "vision-classification",
        "csv path outside, missing",
        _images_csv("path,label\n../nowhere/x.png,a\n0.png,b\n", 1),
        "x.png",
    ),
    (
        "vision-classification",
        "csv not utf-8",
        _images_csv("path,label\n0.png,caf\xe9\n".encode("utf-16").decode("latin-1"), 1),
        "labels.csv",
    ),
    # --- detection: COCO ---
    ("vision-detection", "file_name null", _coco(_set(["images", 0, "file_name"], None)), "file_name"),
    ("vision-detection", "json not parseable", _text("det/train.json", "{not json"), "train.json"),
    ("vision-detection", "no images key", _coco(lambda d: d.pop("images")), "images"),
    (
        "vision-detection",
        "image file missing",
        _coco(_set(["images", 1, "file_name"], "images/gone.png")),
        "gone.png",
    ),
    # --- medical imaging ---
    ("medical-imaging", "corrupt NIfTI", _nifti_case("corrupt"), "case_1.nii.gz"),
    ("medical-imaging", "mask of another shape", _nifti_case("mask_shape"), "case_2"),
    ("medical-imaging", "empty folder", lambda tmp: (tmp / "scans").mkdir() or tmp / "scans", "scans"),
    ("medical-imaging", "labels.csv without label", _images_csv("path\n0.png\n", 1), "label"),
]

# bad annotations are skipped with a warning that names them; the run goes on
SKIPPED = [
    (
        "vision-detection",
        "negative box width",
        _coco(_set(["annotations", 0, "bbox"], [2, 2, -8, 8])),
        "negative area",
    ),
    (
        "vision-detection",
        "annotation of a missing image",
        _coco(_set(["annotations", 0, "image_id"], 99)),
        "unknown image id",
    ),
    (
        "vision-detection",
        "unknown category",
        _coco(_set(["annotations", 0, "category_id"], 7)),
        "category_id 7",
    ),
]


@pytest.mark.parametrize(
    ("recipe", "case", "write", "named"), CASES, ids=[f"{r}:{c}" for r, c, _, _ in CASES]
)
def test_bad_input_is_exit_2_with_a_named_cause_and_no_run_left(cli, tmp_path, recipe, case, write, named):
    data = write(tmp_path)
    run = tmp_path / "run"
    res = cli("train", recipe, "--data", data, "--out", run, "train.epochs=1")
    assert res.code == 2, f"{case}: exit {res.code}\n{res.err[-1500:]}"
    assert "Traceback" not in res.err
    assert named in res.err, f"{case}: '{named}' not named in\n{res.err[-1500:]}"
    assert not (run / "manifest.json").exists()


@pytest.mark.parametrize(("recipe", "case", "write", "named"), SKIPPED, ids=[c for _, c, _, _ in SKIPPED])
def test_bad_annotations_are_skipped_and_named(cli, tmp_path, recipe, case, write, named):
    res = cli("train", recipe, "--data", write(tmp_path), "--out", tmp_path / "run", "train.epochs=1")
    assert res.code == 0, res.err[-1500:]
    assert "train.json annotation 0" in res.err and named in res.err
