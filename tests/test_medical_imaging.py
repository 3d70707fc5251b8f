"""medical-imaging: DICOM/NIfTI/PNG reading, patient-level splits, 2D/3D segmentation and classification."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import ROOT

from dlkit import jobs
from dlkit.data import medical

SAMPLE = ROOT / "sample_data" / "medical_imaging"
FAST = ["train.log_every=4", "grad_monitor.every=4"]
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


def _generator():
    spec = importlib.util.spec_from_file_location("make_mi", ROOT / "sample_data" / "make_medical_imaging.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _expect_user_error(res, *fragments):
    assert res.code == 2, (res.code, res.err)
    assert "Traceback" not in res.err
    text = " ".join(res.err.split())  # rich may wrap long messages
    for f in fragments:
        assert f in text, res.err


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


# --- reading --------------------------------------------------------------------------------------------
def test_dicom_rescale_and_windows_give_known_values(tmp_path):
    hu = np.array([[-1024.0, -600.0, 40.0], [1000.0, 240.0, -160.0]])
    _write_dicom(tmp_path / "ct.dcm", (hu + 1024) / 2, slope=2.0, intercept=-1024.0)
    scan = medical.read_scan(tmp_path / "ct.dcm")
    # DICOM is LPS (columns run to the patient's left): the RAS array is the pixel grid transposed, flipped.
    assert np.array_equal(scan.array[0, :, :, 0], hu.T[::-1, ::-1])
    assert scan.kind == "dicom" and scan.array.shape == (1, 3, 2, 1)

    lung = medical.normalise_intensity(scan.array, {"window": medical.window_range("lung", 0, 1)})
    assert np.allclose(np.sort(lung.ravel()), np.sort([326 / 1500, 0.5, 1390 / 1500, 1.0, 1.0, 1190 / 1500]))
    soft = medical.normalise_intensity(scan.array, {"window": medical.window_range("soft_tissue", 0, 1)})
    assert np.allclose(np.sort(soft.ravel()), [0, 0, 0, 0.5, 1, 1])
    assert medical.window_range("brain", 0, 1) == [0.0, 80.0]
    assert medical.window_range("custom", 100, 50) == [75.0, 125.0]
    z = medical.normalise_intensity(scan.array, {"percentiles": None, "zscore": True})
    assert abs(z.mean()) < 1e-5 and abs(z.std() - 1) < 1e-4


def test_dicom_series_is_sorted_by_position_not_by_file_name(tmp_path):
    scan = medical.read_scan(_series(tmp_path / "s", n=5, gap=2.5))
    assert scan.shape == (8, 8, 5) and scan.spacing == pytest.approx((1.0, 1.0, 2.5))
    assert scan.array[0].mean(axis=(0, 1)).tolist() == [0, 100, 200, 300, 400]


def test_nifti_is_reoriented_to_canonical_and_keeps_spacing(tmp_path):
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    ras = np.diag([0.7, 0.8, 3.0, 1.0])
    flipped = ras @ np.array([[-1, 0, 0, 3], [0, -1, 0, 4], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
    nib.save(nib.Nifti1Image(data, ras), tmp_path / "ras.nii.gz")
    nib.save(nib.Nifti1Image(data[::-1, ::-1].copy(), flipped), tmp_path / "lps.nii.gz")
    a, b = medical.read_scan(tmp_path / "ras.nii.gz"), medical.read_scan(tmp_path / "lps.nii.gz")
    assert np.array_equal(a.array, b.array) and np.allclose(a.affine, b.affine, atol=1e-5)
    assert b.spacing == pytest.approx((0.7, 0.8, 3.0))
    assert np.allclose(b.source_affine, flipped, atol=1e-5)


def test_sample_dicom_series_matches_its_mask():
    scan = medical.read_scan(SAMPLE / "images" / "case_079")
    labels, _ = medical.read_mask(SAMPLE / "masks" / "case_079.nii.gz")
    assert scan.shape == labels.shape == (32, 32, 16)
    if labels.any():
        assert scan.array[0][labels > 0].mean() > scan.array[0][labels == 0].mean() + 500


# --- patient-level splits -------------------------------------------------------------------------------
def test_group_split_keeps_each_patient_in_one_split():
    groups = [f"p{i // 3}" for i in range(60)]
    labels = [i % 2 for i in range(60)]
    parts = medical.group_split(groups, labels, 0.2, 0.2, seed=3)
    owners = [{groups[i] for i in part} for part in parts]
    assert not (owners[0] & owners[1] or owners[0] & owners[2] or owners[1] & owners[2])
    assert sorted(i for part in parts for i in part) == list(range(60))


def test_sample_split_is_by_patient():
    from dlkit.registry import get_recipe

    cls = get_recipe("medical-imaging")
    recipe = cls(jobs.build_config(cls, None, []))
    cases = recipe._cases(SAMPLE)
    infos = [medical.probe(c.image) for c in cases]
    parts = recipe._split(cases, recipe._groups(cases, infos))
    owners = {s: {cases[i].patient for i in idx} for s, idx in parts.items()}
    assert owners["train"].isdisjoint(owners["test"]) and owners["val"].isdisjoint(owners["test"])
    assert owners["train"].isdisjoint(owners["val"])


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
    _expect_user_error(res, "fatal problem")
    findings = {f["check"]: f for f in json.loads(res.out)["findings"]}
    assert findings["patient leakage"]["severity"] == "fatal"
    assert "row 2 (train) and 'cases.csv' row 3 (test)" in findings["patient leakage"]["message"]
    assert "P000" not in res.out + res.err  # rows are named, patient ids are not
    _expect_user_error(
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


# --- bad input --------------------------------------------------------------------------------------------
def test_file_that_is_not_a_scan_says_what_it_looks_like(cli, tmp_path):
    fake = tmp_path / "scan.nii.gz"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    table = _csv(
        tmp_path / "c.csv",
        "path,label",
        [f"{fake},a"] + [r.rsplit(",", 1)[0] for r in _sample_rows(6, "label")],
    )
    _expect_user_error(
        cli("train", "medical-imaging", "task=classification", "--data", table),
        "scan.nii.gz' is not a readable NIfTI file: it looks like a PNG image",
    )
    notes = tmp_path / "notes.dcm"
    notes.write_text("patient history, not an image\n")
    table = _csv(tmp_path / "d.csv", "path,label", [f"{notes},a", f"{SAMPLE / 'images/case_000.nii.gz'},b"])
    _expect_user_error(
        cli("train", "medical-imaging", "task=classification", "--data", table),
        "notes.dcm' is not a readable DICOM file: it looks like a text file",
    )


def test_dicom_without_pixel_data(cli, tmp_path):
    _write_dicom(tmp_path / "nopix.dcm", np.zeros((4, 4)), pixels=False)
    rows = [f"{tmp_path / 'nopix.dcm'},a"] + [f"{tmp_path / 'nopix.dcm'},b"]
    _expect_user_error(
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
    _expect_user_error(
        cli("train", "medical-imaging", "task=classification", "--data", table), f"series '{bad}' {message}"
    )


def test_mask_and_image_shapes_differ(cli, tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((32, 32, 15), np.uint8), np.eye(4)), tmp_path / "short.nii.gz")
    rows = _sample_rows(8)
    rows[0] = f"{SAMPLE / 'images/case_000.nii.gz'},{tmp_path / 'short.nii.gz'},P000"
    table = _csv(tmp_path / "c.csv", "path,mask,patient_id", rows)
    _expect_user_error(
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
    _expect_user_error(cli("train", "medical-imaging", "--data", table, *FAST), f"mask '{bad}' {message}")


# --- training, evaluation, prediction ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def seg_run(tmp_path_factory) -> tuple[Path, dict, Path]:
    """The default recipe (3D U-Net segmentation) on the sample phantoms, briefly trained."""
    out = tmp_path_factory.mktemp("seg")
    masks = out / "masks"
    result = jobs.train(
        "medical-imaging", out=out / "run", overrides=[*FAST, "train.epochs=8", f"predict.mask_dir={masks}"]
    )
    return out / "run", result, masks


def test_segmentation_reaches_high_dice(seg_run):
    run, result, _ = seg_run
    state = json.loads((run / "preprocess" / "state.json").read_text())
    assert state["mode"] == "3d" and state["size"] == [32, 32, 16]
    assert state["intensity"]["window"] == [-160.0, 240.0]  # CT found: soft-tissue window
    metrics, baseline = result["metrics"], result["baseline"]
    assert metrics["score"] == metrics["dice"] == metrics["dice_foreground"] > 0.75, metrics
    assert 0 < metrics["iou"] < metrics["dice"]
    assert result["beats_baseline"] and baseline["dice"] < 0.1
    assert json.loads((run / "eval.json").read_text())["metrics"]["dice"] == metrics["dice"]


def test_predicted_nifti_masks_keep_the_input_affine(cli, seg_run):
    run, _, masks = seg_run
    inputs = [SAMPLE / "images" / f"case_{i:03d}.nii.gz" for i in (0, 4, 5)]  # RAS, flipped, x/y swapped
    series = SAMPLE / "images" / "case_078"
    res = cli("predict", run, *inputs, series, "--json")
    assert res.code == 0, res.err
    records = json.loads(res.out)["predictions"]
    assert [r["path"] for r in records] == [str(p) for p in inputs] + [str(series)]
    for source, record in zip(inputs, records[:-1], strict=True):
        given, written = nib.load(source), nib.load(record["mask"])
        assert np.array_equal(written.affine, given.affine) and written.shape == given.shape
        truth = np.asarray(nib.load(str(source).replace("images", "masks")).dataobj)
        predicted = np.asarray(written.dataobj)
        if truth.any():  # the mask lies where the lesion is, in the file's own voxel order
            assert 2 * (predicted * truth).sum() / (predicted.sum() + truth.sum()) > 0.6
        assert Path(record["overlay"]).is_file() and record["voxels"]["foreground"] == int(predicted.sum())
    dicom_mask = nib.load(records[-1]["mask"])
    assert np.allclose(dicom_mask.affine, medical.read_scan(series).source_affine) and dicom_mask.shape == (
        32,
        32,
        16,
    )
    assert "volume_ml" in records[-1]


def test_no_identifying_dicom_tags_reach_the_run_or_outputs(cli, seg_run):
    run, _, masks = seg_run
    res = cli("predict", run, SAMPLE / "images" / "case_079", "--json")
    assert res.code == 0, res.err
    texts = [res.out, res.err] + [
        p.read_text(errors="ignore")
        for p in run.rglob("*")
        if p.is_file() and p.suffix in (".json", ".jsonl", ".yaml")
    ]
    for text in texts:
        for value in PHI:
            assert value not in text


def test_predict_rejects_a_file_that_is_not_a_scan(cli, seg_run, tmp_path):
    run, _, _ = seg_run
    fake = tmp_path / "scan.dcm"
    fake.write_bytes(b"%PDF-1.4 report")
    _expect_user_error(
        cli("predict", run, fake), "scan.dcm' is not a readable DICOM file: it looks like a PDF"
    )


def test_classification_3d_beats_the_majority_baseline(cli, tmp_path):
    run = tmp_path / "cls"
    res = cli("train", "medical-imaging", "task=classification", "--out", run, "--json", *FAST)
    assert res.code == 0, res.err
    result = json.loads(res.out)
    metrics, baseline = result["metrics"], result["baseline"]
    assert set(metrics) >= {"auroc", "accuracy", "sensitivity", "specificity", "confusion_matrix"}
    assert baseline["auroc"] == 0.5 and metrics["auroc"] > 0.7, (metrics, baseline)
    assert metrics["accuracy"] > baseline["accuracy"] and result["beats_baseline"]
    records = json.loads(cli("predict", run, SAMPLE / "images" / "case_000.nii.gz", "--json").out)[
        "predictions"
    ]
    assert records[0]["label"] in ("absent", "present") and set(records[0]["probs"]) == {"absent", "present"}


@pytest.fixture(scope="module")
def png_slices(tmp_path_factory) -> Path:
    """2D PNG images (soft-tissue window) with 0/255 masks and labels, cut from phantoms."""
    from PIL import Image

    gen = _generator()
    out = tmp_path_factory.mktemp("png")
    (out / "images").mkdir()
    (out / "masks").mkdir()
    rng = np.random.default_rng(7)
    rows = []
    for i in range(40):
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
    res = cli(
        "train",
        "medical-imaging",
        "--data",
        png_slices,
        "data.table=none.csv",
        "--out",
        run,
        "--json",
        *FAST,
        "train.epochs=6",
        f"predict.mask_dir={tmp_path / 'pred'}",
    )
    assert res.code == 0, res.err
    state = json.loads((run / "preprocess" / "state.json").read_text())
    assert state["mode"] == "2d" and state["mask_scale"] == 255 and state["intensity"]["window"] is None
    assert json.loads(res.out)["metrics"]["dice"] > 0.5
    res = cli("predict", run, png_slices / "images" / "s00.png", "--json")
    record = json.loads(res.out)["predictions"][0]
    from PIL import Image

    written = np.asarray(Image.open(record["mask"]))
    assert written.shape == (32, 32) and set(np.unique(written)) <= {0, 255}


def test_2d_classification_with_a_timm_model(cli, png_slices, tmp_path):
    res = cli(
        "train",
        "medical-imaging",
        "task=classification",
        "model.name=resnet10t",
        "--data",
        png_slices,
        "--out",
        tmp_path / "run",
        "--json",
        *FAST,
        "train.epochs=2",
    )
    assert res.code == 0, res.err
    assert json.loads(res.out)["metrics"]["accuracy"] > 0
    res = cli("predict", tmp_path / "run", png_slices / "images", "--json")
    assert len(json.loads(res.out)["predictions"]) == 40
