"""medical-imaging: DICOM/NIfTI/PNG reading, layouts and patient-level splits, 2D/3D segmentation and
classification beside their baselines, predicted masks in the folder the core picks."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import ROOT, expect_user_error, load_sample_generator, train_ok
from dlkit_recipes.medical_imaging import otsu, preprocess, readers
from dlkit_recipes.medical_imaging.metrics import ClassDice, ClassIoU

from dlkit import jobs

SAMPLE = ROOT / "sample_data" / "medical_imaging"
# short fixed-epoch runs on the tiny samples: batch 2 gives them enough steps (the default is 8)
FAST = ["train.log_every=4", "grad_monitor.every=4", "data.batch_size=2"]
# Identifying values written into the sample DICOM headers: none may reach a run, a log or a prediction.
PHI = [
    "PHANTOM^CASE",
    "FAKE-000",
    "19700101",
    "20240115",
    "Example General Hospital",
    "EXAMPLE^DOCTOR",
    "ACC000",
]


def _write_dicom(
    path: Path,
    stored: np.ndarray,
    position=(0.0, 0.0, 0.0),
    spacing=(1.0, 1.0),
    slope=1.0,
    intercept=0.0,
    instance=1,
    series="1.2.3.4",
    pixels=True,
) -> None:
    """A minimal CT slice: pixel (row, column) = stored[row, column]."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.StudyDate = "DOE^JANE", "MRN-4242", "20230102"
    ds.Modality, ds.SeriesInstanceUID, ds.InstanceNumber = "CT", series, instance
    ds.ImageOrientationPatient, ds.ImagePositionPatient = [1, 0, 0, 0, 1, 0], list(position)
    ds.PixelSpacing, ds.SliceThickness = list(spacing), 2.0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if pixels:
        ds.Rows, ds.Columns = stored.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = stored.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def _series(folder: Path, n: int = 4, shape=(8, 8), gap: float = 2.0, odd: dict | None = None) -> Path:
    """A series whose slice k holds the value 100*k; files named and numbered out of order."""
    folder.mkdir(parents=True)
    for k in range(n):
        kw = dict(odd or {}) if k == n - 1 else {}
        size = kw.pop("shape", shape)
        z = k * gap if "z" not in kw else kw.pop("z")
        _write_dicom(
            folder / f"f{(k * 7) % n}.dcm", np.full(size, 100 * k), position=(0, 0, z), instance=n - k, **kw
        )
    return folder


def _csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def _sample_rows(n: int, column: str = "mask") -> list[str]:
    lines = (SAMPLE / "labels.csv").read_text().splitlines()[1 : n + 1]
    out = []
    for line in lines:
        path, mask, label, patient = line.split(",")
        out.append(f"{SAMPLE / path},{SAMPLE / mask if column == 'mask' else label},{patient}")
    return out


def _recipe(*overrides: str):
    from dlkit.registry import get_recipe

    cls = get_recipe("medical-imaging")
    return cls(jobs.build_config(cls, None, list(overrides)))


def _split_folders(root: Path, layout: dict[str, range]) -> Path:
    """Sample NIfTI cases copied into ROOT/<split>/images and ROOT/<split>/masks (the nnU-Net habit)."""
    for folder, cases in layout.items():
        for sub in ("images", "masks"):
            (root / folder / sub).mkdir(parents=True)
            for i in cases:
                shutil.copy(SAMPLE / sub / f"case_{i:03d}.nii.gz", root / folder / sub)
    return root


# --- reading --------------------------------------------------------------------------------------------
def test_dicom_rescale_and_windows_give_known_values(tmp_path):
    hu = np.array([[-1024.0, -600.0, 40.0], [1000.0, 240.0, -160.0]])
    _write_dicom(tmp_path / "ct.dcm", (hu + 1024) / 2, slope=2.0, intercept=-1024.0)
    scan = readers.read_scan(tmp_path / "ct.dcm")
    # DICOM is LPS (columns run to the patient's left): the RAS array is the pixel grid transposed, flipped.
    assert np.array_equal(scan.array[0, :, :, 0], hu.T[::-1, ::-1])
    assert scan.kind == "dicom" and scan.array.shape == (1, 3, 2, 1)

    lung = preprocess.normalise_intensity(scan.array, {"window": preprocess.window_range("lung", 0, 1)})
    assert np.allclose(np.sort(lung.ravel()), np.sort([326 / 1500, 0.5, 1390 / 1500, 1.0, 1.0, 1190 / 1500]))
    soft = preprocess.normalise_intensity(
        scan.array, {"window": preprocess.window_range("soft_tissue", 0, 1)}
    )
    assert np.allclose(np.sort(soft.ravel()), [0, 0, 0, 0.5, 1, 1])
    assert preprocess.window_range("brain", 0, 1) == [0.0, 80.0]
    assert preprocess.window_range("custom", 100, 50) == [75.0, 125.0]
    z = preprocess.normalise_intensity(scan.array, {"percentiles": None, "zscore": True})
    assert abs(z.mean()) < 1e-5 and abs(z.std() - 1) < 1e-4


def test_dicom_series_is_sorted_by_position_not_by_file_name(tmp_path):
    scan = readers.read_scan(_series(tmp_path / "s", n=5, gap=2.5))
    assert scan.shape == (8, 8, 5) and scan.spacing == pytest.approx((1.0, 1.0, 2.5))
    assert scan.array[0].mean(axis=(0, 1)).tolist() == [0, 100, 200, 300, 400]


def test_nifti_is_reoriented_to_canonical_and_keeps_spacing(tmp_path):
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    ras = np.diag([0.7, 0.8, 3.0, 1.0])
    flipped = ras @ np.array([[-1, 0, 0, 3], [0, -1, 0, 4], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
    nib.save(nib.Nifti1Image(data, ras), tmp_path / "ras.nii.gz")
    nib.save(nib.Nifti1Image(data[::-1, ::-1].copy(), flipped), tmp_path / "lps.nii.gz")
    a, b = readers.read_scan(tmp_path / "ras.nii.gz"), readers.read_scan(tmp_path / "lps.nii.gz")
    assert np.array_equal(a.array, b.array) and np.allclose(a.affine, b.affine, atol=1e-5)
    assert b.spacing == pytest.approx((0.7, 0.8, 3.0))
    assert np.allclose(b.source_affine, flipped, atol=1e-5)
    assert readers.probe(tmp_path / "lps.nii.gz").shape == (4, 5, 6)


def test_sample_dicom_series_matches_its_mask():
    scan = readers.read_scan(SAMPLE / "images" / "case_079")
    labels, _ = readers.read_mask(SAMPLE / "masks" / "case_079.nii.gz")
    assert scan.shape == labels.shape == (32, 32, 16)
    if labels.any():
        assert scan.array[0][labels > 0].mean() > scan.array[0][labels == 0].mean() + 500


# --- metrics and baselines --------------------------------------------------------------------------------
def test_dice_and_iou_skip_images_without_the_class_and_score_false_positives_there_zero():
    target = torch.zeros(3, 8, 8, dtype=torch.long)
    target[0, 2:6, 2:6] = 1  # 16 voxels
    preds = target.clone()
    preds[0, 2, 2:6] = 0  # 12 of 16 found
    preds[1, 0, 0] = 1  # a false positive on an image without the class
    dice, iou = ClassDice(2), ClassIoU(2)  # image 2: empty in both, says nothing
    for m in (dice, iou):
        m.update(preds, target)
    assert dice.compute().item() == pytest.approx((24 / 28 + 0) / 2)
    assert iou.compute().item() == pytest.approx((12 / 16 + 0) / 2)


def test_multi_otsu_thresholds_split_three_intensity_modes():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(m, 0.3, n) for m, n in ((0, 5000), (2, 3000), (4, 2000))])
    low, high = otsu.otsu_thresholds(x, 3)
    assert 0.6 < low < 1.4 and 2.6 < high < 3.4


def test_multi_otsu_baseline_learns_levels_and_labels_on_train_and_applies_from_the_state():
    """Three tissues whose brightness order is not the label order (label 2 is the middle one), and
    scans scaled differently: the level -> label map comes from the masks, thresholds per scan."""
    gen = torch.Generator().manual_seed(0)
    images, targets = [], []
    for i in range(6):
        mask = torch.zeros(24, 24, dtype=torch.int16)
        mask[4:12, 4:20], mask[14:20, 4:20] = 1, 2
        image = torch.randn(1, 24, 24, generator=gen) * 0.05 + torch.tensor([0.0, 2.0, 1.0])[mask.long()]
        images.append(image * (1 + i) + 3 * i)  # each scan its own gain and offset
        targets.append(mask)
    fitted = otsu.fit(images[:4], targets[:4], k=3)
    assert json.loads(json.dumps(fitted)) == fitted  # lives in state.json
    assert fitted["per_image"]
    labels = otsu.predict(torch.stack(images[4:]), fitted)
    assert torch.equal(labels, torch.stack(targets[4:]).long())


# --- layouts and patient-level splits ---------------------------------------------------------------------
def test_sample_split_is_by_patient():
    data = _recipe().load_data(SAMPLE)
    owners = {
        s: {Path(i).name for i in getattr(data, s).ids} for s in ("train", "val", "test")
    }  # case file names, two per patient
    patients = {s: {int(n[5:8]) // 2 for n in names} for s, names in owners.items()}
    assert patients["train"].isdisjoint(patients["test"]) and patients["val"].isdisjoint(patients["test"])
    assert patients["train"].isdisjoint(patients["val"])
    assert data.state["patients"] == {"train": 28, "val": 6, "test": 6}


def test_split_column_takes_every_alias_and_carves_test_out_by_patient(cli, tmp_path):
    rows = _sample_rows(40)
    splits = ["train"] * 24 + ["dev"] * 4 + ["Validation"] * 4 + [""] * 8
    table = _csv(
        tmp_path / "cases.csv",
        "path,mask,patient_id,split",
        [f"{r},{s}" for r, s in zip(rows, splits, strict=True)],
    )
    data = _recipe().load_data(table)
    assert data.state["counts"]["val"] == 8  # dev + Validation rows, kept as given
    assert data.state["counts"]["test"] > 0  # no test rows given: carved out of the rest, by patient
    test_cases = {int(Path(i).name[5:8]) for i in data.test.ids}
    assert test_cases.isdisjoint(range(24, 32))  # never from the given val rows
    table.write_text(table.read_text().replace(",dev", ",holdout", 1))
    expect_user_error(
        cli("train", "medical-imaging", "--data", table, "--out", tmp_path / "run"),
        "'cases.csv' row 26: split 'holdout' is not a split name",
    )


def test_split_folders_with_only_train_and_test_get_val_by_patient(tmp_path):
    root = tmp_path / "data"
    for folder, rows in (("train", range(0, 40)), ("test", range(60, 72))):
        (root / folder).mkdir(parents=True)
        lines = [
            f"{SAMPLE / 'images' / f'case_{i:03d}.nii.gz'},{'present' if i % 3 else 'absent'},P{i // 2}"
            for i in rows
        ]
        _csv(root / folder / "labels.csv", "path,label,patient_id", lines)
    data = _recipe("task=classification").load_data(root)
    val = {Path(i).name for i in data.val.ids}
    train = {Path(i).name for i in data.train.ids}
    assert len(val) and len(train) + len(val) == 40 and len(data.test) == 12
    assert {int(n[5:8]) // 2 for n in val}.isdisjoint({int(n[5:8]) // 2 for n in train})


def test_check_reports_patient_leakage_in_given_splits(cli, tmp_path):
    rows = _sample_rows(12)
    splits = ["train"] * 8 + ["val"] * 2 + ["test"] * 2
    splits[1] = "test"  # P000's second scan in test, its first in train
    table = _csv(
        tmp_path / "cases.csv",
        "path,mask,patient_id,split",
        [f"{r},{s}" for r, s in zip(rows, splits, strict=True)],
    )
    res = cli("check", "medical-imaging", "--data", table, "--json")
    expect_user_error(res, "fatal problem")
    findings = {f["check"]: f for f in json.loads(res.out)["findings"]}
    assert findings["patient leakage"]["severity"] == "fatal"
    assert "row 2 (train) and 'cases.csv' row 3 (test)" in findings["patient leakage"]["message"]
    assert "P000" not in res.out + res.err  # rows are named, patient ids are not
    expect_user_error(
        cli("train", "medical-imaging", "--data", table, "--out", tmp_path / "run"),
        "1 patient(s) appear in more than one split",
        "row 3 (test)",
    )


def test_check_on_sample_data_passes(cli):
    res = cli("check", "medical-imaging", "--json")
    assert res.code == 0, res.err
    findings = {f["check"]: f["severity"] for f in json.loads(res.out)["findings"]}
    assert findings["patient leakage"] == "ok" and findings["mask/image shapes"] == "ok"
    assert findings["files readable"] == "ok" and findings["data readable"] == "ok"
    res = cli("check", "medical-imaging", "task=classification", "--json")
    findings = {f["check"]: f for f in json.loads(res.out)["findings"]}
    assert "train: absent" in findings["class balance"]["message"]


# --- bad input --------------------------------------------------------------------------------------------
def test_file_that_is_not_a_scan_says_what_it_looks_like(cli, tmp_path):
    fake = tmp_path / "scan.nii.gz"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    table = _csv(
        tmp_path / "c.csv",
        "path,label",
        [f"{fake},a"] + [r.rsplit(",", 1)[0] for r in _sample_rows(6, "label")],
    )
    expect_user_error(
        cli("train", "medical-imaging", "task=classification", "--data", table),
        "scan.nii.gz' is not a readable NIfTI file: it looks like a PNG image",
    )
    notes = tmp_path / "notes.dcm"
    notes.write_text("patient history, not an image\n")
    table = _csv(tmp_path / "d.csv", "path,label", [f"{notes},a", f"{SAMPLE / 'images/case_000.nii.gz'},b"])
    expect_user_error(
        cli("train", "medical-imaging", "task=classification", "--data", table),
        "notes.dcm' is not a readable DICOM file: it looks like a text file",
    )


def test_dicom_without_pixel_data(cli, tmp_path):
    _write_dicom(tmp_path / "nopix.dcm", np.zeros((4, 4)), pixels=False)
    rows = [f"{tmp_path / 'nopix.dcm'},a"] + [f"{tmp_path / 'nopix.dcm'},b"]
    expect_user_error(
        cli(
            "train",
            "medical-imaging",
            "task=classification",
            "mode=2d",
            "--data",
            _csv(tmp_path / "c.csv", "path,label", rows),
        ),
        "nopix.dcm' has no pixel data",
    )


@pytest.mark.parametrize(
    "odd,message",
    [
        ({"shape": (6, 6)}, "mixes image sizes: 8x8 (3 files) and 6x6 (1 file(s)"),
        ({"spacing": (0.5, 0.5)}, "mixes pixel spacings: 1x1 mm (3 files) and 0.5x0.5 mm"),
        ({"z": 9.0}, "has uneven slice spacing (2 to 5 mm)"),
    ],
)
def test_bad_series(cli, tmp_path, odd, message):
    bad = _series(tmp_path / "bad_series", odd=odd)
    good = _series(tmp_path / "good_series")
    table = _csv(tmp_path / "c.csv", "path,label", [f"{bad},a", f"{good},b", f"{good},a", f"{good},b"])
    expect_user_error(
        cli("train", "medical-imaging", "task=classification", "--data", table), f"series '{bad}' {message}"
    )


def test_mask_and_image_shapes_differ(cli, tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((32, 32, 15), np.uint8), np.eye(4)), tmp_path / "short.nii.gz")
    rows = _sample_rows(8)
    rows[0] = f"{SAMPLE / 'images/case_000.nii.gz'},{tmp_path / 'short.nii.gz'},P000"
    table = _csv(tmp_path / "c.csv", "path,mask,patient_id", rows)
    expect_user_error(
        cli("train", "medical-imaging", "--data", table),
        f"mask '{tmp_path / 'short.nii.gz'}' is 32x32x15 but its image "
        f"'{SAMPLE / 'images/case_000.nii.gz'}' is 32x32x16",
    )
    res = cli("check", "medical-imaging", "--data", table, "--json")
    findings = {f["check"]: f for f in json.loads(res.out)["findings"]}
    assert res.code == 2 and findings["mask/image shapes"]["severity"] == "fatal"


@pytest.mark.parametrize(
    "values,message",
    [
        (np.full((32, 32, 16), 0.5), "holds the value 0.5, which is not a class index"),
        (np.arange(32 * 32 * 16).reshape(32, 32, 16) % 200, "holds 200 distinct values"),
        (np.full((32, 32, 16), 3), "holds the label 3, but the training masks use only 0, 1"),
    ],
)
def test_masks_with_unexpected_labels(cli, tmp_path, values, message):
    bad = tmp_path / "bad.nii.gz"
    nib.save(nib.Nifti1Image(values.astype(np.float32), np.eye(4)), bad)
    rows = [f"{r},train" for r in _sample_rows(10)]
    rows.append(f"{SAMPLE / 'images/case_010.nii.gz'},{bad},P099,test")
    table = _csv(tmp_path / "c.csv", "path,mask,patient_id,split", rows)
    expect_user_error(cli("train", "medical-imaging", "--data", table, *FAST), f"mask '{bad}' {message}")


# --- training, evaluation, prediction ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def seg_run(tmp_path_factory) -> tuple[Path, dict]:
    """The default recipe (3D U-Net segmentation) on the sample phantoms, briefly trained."""
    out = tmp_path_factory.mktemp("seg")
    result = jobs.train("medical-imaging", out=out / "run", overrides=[*FAST, "train.epochs=8"])
    return out / "run", result


def test_segmentation_beats_both_baselines_on_dice(seg_run):
    run, result = seg_run
    state = json.loads((run / "preprocess" / "state.json").read_text())
    assert state["mode"] == "3d" and state["size"] == [32, 32, 16]
    assert state["intensity"]["window"] == [-160.0, 240.0]  # CT found: soft-tissue window
    metrics, base = result["metrics"], result["baselines"]
    assert result["monitor"] == "dice" and "score" not in metrics
    assert metrics["dice"] > 0.75 and 0 < metrics["iou"] < metrics["dice"], metrics
    assert set(base) == {"all_background", "multi_otsu"}
    assert base["all_background"]["dice"] == 0.0
    assert 0 < base["multi_otsu"]["dice"] < metrics["dice"] - 0.3
    assert result["strongest_baseline"] == "multi_otsu" and result["beats_baseline"]
    saved = json.loads((run / "eval.json").read_text())
    assert saved["metrics"]["dice"] == metrics["dice"] and saved["baselines"] == base
    per_class = saved["details"]["dice_per_class"]
    assert per_class["model"]["foreground"] == pytest.approx(metrics["dice"], abs=1e-6)


def test_evaluate_scores_the_baselines_from_the_run_alone(cli, seg_run):
    run, result = seg_run
    res = cli("evaluate", run, "--json")
    assert res.code == 0, res.err
    again = json.loads(res.out)
    assert again["baselines"] == result["baselines"]
    assert again["metrics"]["dice"] == pytest.approx(result["metrics"]["dice"], abs=1e-6)


def test_predicted_nifti_masks_keep_the_input_affine(cli, seg_run, tmp_path):
    run, _ = seg_run
    inputs = [SAMPLE / "images" / f"case_{i:03d}.nii.gz" for i in (0, 4, 5)]  # RAS, flipped, x/y swapped
    series = SAMPLE / "images" / "case_078"
    output = tmp_path / "out" / "preds.jsonl"
    res = cli("predict", run, *inputs, series, "--output", output)
    assert res.code == 0, res.err
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["path"] for r in records] == [str(p) for p in inputs] + [str(series)]
    side = tmp_path / "out" / "preds_outputs"  # beside --output
    for source, record in zip(inputs, records[:-1], strict=True):
        assert Path(record["mask"]).parent == side
        given, written = nib.load(source), nib.load(record["mask"])
        assert np.array_equal(written.affine, given.affine) and written.shape == given.shape
        truth = np.asarray(nib.load(str(source).replace("images", "masks")).dataobj)
        predicted = np.asarray(written.dataobj)
        if truth.any():  # the mask lies where the lesion is, in the file's own voxel order
            assert 2 * (predicted * truth).sum() / (predicted.sum() + truth.sum()) > 0.6
        assert Path(record["overlay"]).is_file() and record["voxels"]["foreground"] == int(predicted.sum())
    dicom_mask = nib.load(records[-1]["mask"])
    assert np.allclose(dicom_mask.affine, readers.read_scan(series).source_affine)
    assert dicom_mask.shape == (32, 32, 16) and "volume_ml" in records[-1]


def test_predict_writes_side_files_into_a_new_run_folder_never_the_cwd(cli, seg_run, tmp_path, monkeypatch):
    run, _ = seg_run
    monkeypatch.chdir(tmp_path)
    scan = SAMPLE / "images" / "case_000.nii.gz"
    first = json.loads(cli("predict", run, scan, "--json").out)
    second = json.loads(cli("predict", run, scan, "predict.overlays=false", "--json").out)
    folders = [Path(r["outputs_dir"]) for r in (first, second)]
    assert folders[0] != folders[1] and all(f.parent == run / "predictions" for f in folders)
    assert (
        Path(first["predictions"][0]["mask"]).is_file() and Path(first["predictions"][0]["overlay"]).is_file()
    )
    assert "overlay" not in second["predictions"][0]
    assert list(tmp_path.iterdir()) == []


def test_no_identifying_dicom_tags_reach_the_run_or_outputs(cli, seg_run):
    run, _ = seg_run
    res = cli("predict", run, SAMPLE / "images" / "case_079", "--json")
    assert res.code == 0, res.err
    texts = [res.out, res.err]
    for p in run.rglob("*"):  # configs, logs, state, eval.json, checkpoints, predicted masks
        if p.is_file():
            raw = p.read_bytes()
            texts.append((gzip.decompress(raw) if p.suffix == ".gz" else raw).decode("latin-1"))
    for text in texts:
        for value in PHI:
            assert value not in text


def test_predict_rejects_a_file_that_is_not_a_scan(cli, seg_run, tmp_path):
    run, _ = seg_run
    fake = tmp_path / "scan.dcm"
    fake.write_bytes(b"%PDF-1.4 report")
    expect_user_error(
        cli("predict", run, fake), "scan.dcm' is not a readable DICOM file: it looks like a PDF"
    )


def test_split_folders_with_images_and_masks_train_and_evaluate(cli, tmp_path):
    """The nnU-Net / Decathlon layout, with the `valid` alias: train/ valid/ test/ of images/ + masks/."""
    data = _split_folders(
        tmp_path / "data", {"train": range(0, 24), "valid": range(24, 30), "test": range(30, 36)}
    )
    run = tmp_path / "run"
    result = train_ok(cli, "medical-imaging", run, "--data", data, *FAST, "train.epochs=6")
    state = json.loads((run / "preprocess" / "state.json").read_text())
    assert state["counts"] == {"train": 24, "val": 6, "test": 6} and result["examples"] == 6
    assert set(result["baselines"]) == {"all_background", "multi_otsu"}
    assert result["strongest_baseline"] == "multi_otsu" and result["beats_baseline"], result
    res = cli("evaluate", run, "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["metrics"]["dice"] == pytest.approx(result["metrics"]["dice"], abs=1e-6)


def test_classification_3d_beats_the_majority_and_the_logistic_regression(cli, tmp_path):
    run = tmp_path / "cls"
    result = train_ok(cli, "medical-imaging", run, "task=classification", *FAST)
    metrics, base = result["metrics"], result["baselines"]
    assert result["monitor"] == "auroc" and "score" not in metrics
    assert set(metrics) >= {"auroc", "accuracy", "sensitivity", "specificity", "confusion_matrix"}
    assert base["majority"]["auroc"] == 0.5 and base["histogram_logreg"]["auroc"] > 0.6, base
    assert metrics["auroc"] > 0.7 and metrics["accuracy"] > base["majority"]["accuracy"], (metrics, base)
    assert result["strongest_baseline"] == "histogram_logreg" and result["beats_baseline"]
    state = json.loads((run / "preprocess" / "state.json").read_text())
    assert len(state["baselines"]["histogram_logreg"]["coef"][0]) == 9  # 8 tail shares + the maximum
    assert result["details"]["threshold"] == state["threshold"]
    res = cli("predict", run, SAMPLE / "images" / "case_000.nii.gz", "--json")
    record = json.loads(res.out)["predictions"][0]
    assert record["label"] in ("absent", "present") and set(record["probs"]) == {"absent", "present"}
    res = cli("predict", run, SAMPLE / "images" / "case_000.nii.gz", "predict.threshold=0.999999", "--json")
    assert json.loads(res.out)["predictions"][0]["threshold"] == 0.999999


@pytest.fixture(scope="module")
def png_slices(tmp_path_factory) -> Path:
    """80 2D PNG images (soft-tissue window) with 0/255 masks and labels, cut from phantoms."""
    from PIL import Image

    gen = load_sample_generator("medical_imaging")
    out = tmp_path_factory.mktemp("png")
    (out / "images").mkdir()
    (out / "masks").mkdir()
    rng = np.random.default_rng(7)
    rows = []
    for i in range(80):
        hu, mask = gen.make_case(rng, lesion=i % 2 == 0, spacing_xy=1.0)
        z = int(np.argmax(mask.sum((0, 1)))) if mask.any() else 8
        grey = np.clip((hu[:, :, z] + 160) / 400 * 255, 0, 255).astype(np.uint8)
        Image.fromarray(grey).save(out / "images" / f"s{i:02d}.png")
        Image.fromarray(mask[:, :, z] * 255).save(out / "masks" / f"s{i:02d}.png")
        rows.append(f"images/s{i:02d}.png,{'present' if mask[:, :, z].any() else 'absent'}")
    _csv(out / "labels.csv", "path,label", rows)
    return out


def test_2d_png_segmentation_writes_png_masks(cli, png_slices, tmp_path):
    run = tmp_path / "run"
    result = train_ok(
        cli, "medical-imaging", run, "--data", png_slices, "data.table=none.csv", *FAST, "train.epochs=10"
    )
    state = json.loads((run / "preprocess" / "state.json").read_text())
    assert state["mode"] == "2d" and state["mask_scale"] == 255 and state["intensity"]["window"] is None
    assert result["metrics"]["dice"] > 0.5 and result["beats_baseline"], result
    res = cli("predict", run, png_slices / "images" / "s00.png", "--output", tmp_path / "p.jsonl")
    assert res.code == 0, res.err
    record = json.loads((tmp_path / "p.jsonl").read_text())
    from PIL import Image

    written = np.asarray(Image.open(record["mask"]))
    assert Path(record["mask"]).parent == tmp_path / "p_outputs"
    assert written.shape == (32, 32) and set(np.unique(written)) <= {0, 255}


def test_2d_classification_with_a_timm_model(cli, png_slices, tmp_path):
    args = ["task=classification", "model.name=resnet10t", "--data", png_slices, *FAST, "train.epochs=2"]
    result = train_ok(cli, "medical-imaging", tmp_path / "run", *args)
    assert result["metrics"]["accuracy"] > 0 and set(result["baselines"]) == {"majority", "histogram_logreg"}
    res = cli("predict", tmp_path / "run", png_slices / "images", "--json")
    assert len(json.loads(res.out)["predictions"]) == 80
