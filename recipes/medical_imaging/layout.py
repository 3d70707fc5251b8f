"""Which scans make up the data, and which split each belongs to.

Accepted layouts (a data folder, or a labels CSV given as the data path):
- `labels.csv` (data.table): `path` plus `label` (classification) or `mask` (segmentation), optional
  `patient_id` and `split` (train; val, valid, validation or dev; test); paths relative to the CSV.
- segmentation without a CSV: `images/` and `masks/` folders, masks named like their scans.
- split folders `train/`, `val/` (or valid/validation/dev) and `test/`, each laid out as one of the
  above (the nnU-Net / Decathlon habit for segmentation).
A missing val or test split is carved out of train by patient (`assign_splits` with groups), so no
patient is in two splits; a patient the user put in two splits is refused, naming rows, not ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from dlkit_recipes.medical_imaging.scans import ScanInfo, is_scan_file, scan_name

from dlkit.data.splits import assign_splits, leaking_groups, parse_split_column, split_dirs
from dlkit.data.tables import read_table, require_columns
from dlkit.errors import UserError


@dataclass
class Case:
    """One row of the data: a scan with its label or mask, and where it came from (for messages)."""

    image: Path
    mask: Path | None = None
    label: str | None = None
    patient: str | None = None
    split: str | None = None
    where: str = ""


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == ""


def _label_text(value) -> str:
    """Labels and patient ids as text; 1.0 from a numeric column reads as '1'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_cases_csv(table: Path, task: str, folder_split: str | None = None) -> list[Case]:
    """Rows of a labels CSV; in a split folder every row belongs to that folder's split."""
    df = read_table(table)
    target = "mask" if task == "segmentation" else "label"
    require_columns(df, ["path", target], table)
    splits = (
        parse_split_column(df["split"].tolist(), table.name) if "split" in df.columns else [None] * len(df)
    )
    cases = []
    for n, (row, split) in enumerate(zip(df.to_dict("records"), splits, strict=True), start=2):
        where = f"'{table.name}' row {n}"
        raw, value = row["path"], row[target]
        if _blank(raw) or _blank(value):
            raise UserError(
                f"{where}: empty '{'path' if _blank(raw) else target}'", "fill it in or drop the row"
            )
        if folder_split is not None:
            if split not in (None, folder_split):
                raise UserError(
                    f"{where}: split '{row['split']}' in a CSV of the {folder_split} folder "
                    f"'{table.parent.name}/'",
                    "a split folder's rows belong to its split: drop the split column or move the row",
                )
            split = folder_split
        image = table.parent / str(raw)
        if not image.exists():
            raise UserError(
                f"{where}: scan '{image}' does not exist", "paths are relative to the CSV's folder"
            )
        mask = table.parent / str(value) if target == "mask" else None
        if mask is not None and not mask.exists():
            raise UserError(
                f"{where}: mask '{mask}' does not exist", "paths are relative to the CSV's folder"
            )
        patient = None if _blank(row.get("patient_id")) else _label_text(row["patient_id"])
        label = None if target == "mask" else _label_text(value)
        cases.append(Case(image, mask, label, patient, split, where))
    return cases


def pair_folders(images: Path, masks: Path, split: str | None = None) -> list[Case]:
    """Image i pairs with the mask of the same name (or with _mask/_seg/_label added)."""
    entries = sorted(
        p for p in images.iterdir() if not p.name.startswith(".") and (p.is_dir() or is_scan_file(p))
    )
    mask_files = {scan_name(p): p for p in masks.iterdir() if is_scan_file(p)}
    if not entries:
        raise UserError(
            f"folder '{images}' holds no scans", "put NIfTI files, DICOM series folders or PNGs in it"
        )
    cases = []
    for image in entries:
        name = scan_name(image)
        keys = (name, f"{name}_mask", f"{name}_seg", f"{name}_label")
        mask = next((mask_files[k] for k in keys if k in mask_files), None)
        if mask is None:
            raise UserError(
                f"image '{image}' has no mask in '{masks}'",
                f"name its mask '{name}' plus the mask's suffix (e.g. {name}.nii.gz or {name}.png)",
            )
        where = f"'{image.parent.parent.name}/{images.name}/{image.name}'" if split else f"'{image.name}'"
        cases.append(Case(image, mask, split=split, where=where))
    return cases


def _folder_cases(folder: Path, cfg: dict, split: str | None) -> list[Case] | None:
    """The cases of a folder laid out as a CSV or as images/ + masks/; None when it is neither."""
    d = cfg["data"]
    if (folder / d["table"]).is_file():
        return read_cases_csv(folder / d["table"], cfg["task"], split)
    images, masks = folder / d["images_dir"], folder / d["masks_dir"]
    if cfg["task"] == "segmentation" and images.is_dir() and masks.is_dir():
        return pair_folders(images, masks, split)
    return None


def list_cases(path: Path, cfg: dict) -> list[Case]:
    """Every case of a data file or folder, with the split the user gave (None = to be assigned)."""
    if path.is_file():
        return read_cases_csv(path, cfg["task"])
    cases = _folder_cases(path, cfg, None)
    if cases is not None:
        return cases
    d = cfg["data"]
    wanted = (
        f"'{d['table']}' (path,mask) or '{d['images_dir']}/' and '{d['masks_dir']}/' folders"
        if cfg["task"] == "segmentation"
        else f"'{d['table']}' with path,label columns"
    )
    folders = split_dirs(path)
    if not folders:
        raise UserError(
            f"data folder '{path}' has no {wanted}, nor train/ val/ test/ folders laid out so",
            "see `dlkit info medical-imaging` for the layouts",
        )
    cases = []
    for split, folder in folders.items():
        found = _folder_cases(folder, cfg, split)
        if found is None:
            raise UserError(
                f"split folder '{folder}' has no {wanted}", "lay out every split folder the same way"
            )
        cases += found
    return cases


def groups_of(cases: list[Case], infos: list[ScanInfo]) -> list[str]:
    """The patient of each case: patient_id, else the (hashed) DICOM PatientID, else the case itself."""
    return [
        c.patient or (f"dicom:{i.group}" if i.group else f"case:{c.image}")
        for c, i in zip(cases, infos, strict=True)
    ]


def leak_message(cases: list[Case], splits: list[str | None], leaks: dict) -> str:
    """Name rows, not patient ids: the ids may identify people."""
    shown = []
    for patient in list(leaks)[:3]:
        rows = [f"{c.where} ({s})" for c, s in zip(cases, splits, strict=True) if c.patient == patient]
        shown.append(" and ".join(rows[:3]))
    return f"{len(leaks)} patient(s) appear in more than one split: " + "; ".join(shown)


def patient_leaks(cases: list[Case], splits: list[str | None]) -> dict:
    """Patients (by patient_id) found in more than one split."""
    return leaking_groups([c.patient for c in cases], splits)


def assign(cases: list[Case], groups: list[str], cfg: dict) -> list[str]:
    """A split for every case: the user's, else carved out of train by patient (stratified by label)."""
    d = cfg["data"]
    given = [c.split for c in cases]
    labels = [c.label for c in cases] if cfg["task"] == "classification" else None
    assigned = assign_splits(
        given, d["val_fraction"], d["test_fraction"], cfg["seed"], labels=labels, groups=groups
    )
    leaks = patient_leaks(cases, assigned)
    if leaks:
        raise UserError(
            leak_message(cases, assigned, leaks),
            "give all of a patient's rows the same split (or leave the split empty for all of them)",
        )
    if "train" not in assigned:
        raise UserError(
            "the data has no training cases", "mark some rows (or a folder) train, or leave splits empty"
        )
    return assigned
