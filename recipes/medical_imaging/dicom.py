"""DICOM: single images, multi-frame files and series folders, read into a canonical `Scan`.

Only pixel data and geometry are taken from the headers. A series is sorted by position along the
slice normal (file names and InstanceNumbers are often out of order), checked for one size, one
spacing, one orientation and even gaps, and converted to modality values (Hounsfield units for CT).
The PatientID, when present, is hashed (`Scan.group`) so a patient's series stay in one split; the
hash stays in memory and nothing identifying is ever written.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
from dlkit_recipes.medical_imaging.scans import (
    Scan,
    ScanInfo,
    canonical,
    canonical_info,
    describe_file,
    has_dicm_marker,
    is_scan_file,
    scan_kind,
)

from dlkit.errors import UserError


def dicom_files(folder: Path) -> list[Path]:
    """The DICOM files of a series folder (not its sub-folders); DICOMDIR index files are skipped."""
    files = sorted(p for p in folder.iterdir() if is_scan_file(p) and p.name.upper() != "DICOMDIR")
    if not files:
        raise UserError(
            f"folder '{folder}' holds no DICOM files", "give a folder with the .dcm files of one series"
        )
    others = [p for p in files if scan_kind(p) != "dicom"]
    if others:
        raise UserError(
            f"folder '{folder}' mixes DICOM files with other scans (e.g. '{others[0].name}')",
            "a series folder holds the DICOM files of one series only",
        )
    return files


def _dcmread(path: Path, pixels: bool):
    import pydicom
    from pydicom.errors import InvalidDicomError

    not_dicom = UserError(
        f"'{path}' is not a readable DICOM file: it looks like {describe_file(path)}",
        "give DICOM files or series folders, .nii/.nii.gz volumes, or PNG/JPEG images",
    )
    marked = has_dicm_marker(path)
    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=not pixels, force=not marked)
        # Without the 'DICM' marker pydicom parses any bytes; keep the result only if it has image attributes.
        if not marked and not any(k in ds for k in ("SOPClassUID", "Rows", "Modality")):
            raise not_dicom
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError, AttributeError):
        raise not_dicom from None
    return ds


def _number(ds, keyword: str, default: float | None = None) -> float | None:
    value = ds.get(keyword)
    try:
        return float(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _vector(ds, keyword: str, n: int) -> np.ndarray | None:
    value = ds.get(keyword)
    try:
        vec = np.array([float(v) for v in value], dtype=float) if value is not None else None
    except (TypeError, ValueError):
        return None
    return vec if vec is not None and len(vec) == n else None


def _pixel_spacing(ds) -> tuple[float, float]:
    """(between rows, between columns) in mm; 1 mm when the tag is missing (e.g. secondary captures)."""
    spacing = _vector(ds, "PixelSpacing", 2)
    return (1.0, 1.0) if spacing is None else (round(float(spacing[0]), 4), round(float(spacing[1]), 4))


def _patient_group(ds) -> str | None:
    pid = str(ds.get("PatientID", "") or "").strip()
    return hashlib.sha256(pid.encode()).hexdigest()[:16] if pid else None


def _no_pixels(ds, path: Path) -> UserError:
    sop = getattr(ds.get("SOPClassUID"), "name", None)
    what = f" (it is a {sop})" if sop and not str(sop).startswith("1.") else ""
    return UserError(
        f"DICOM file '{path}' has no pixel data{what}",
        "remove non-image files (reports, presentation states) from image folders",
    )


def _pixels_hu(ds, path: Path) -> np.ndarray:
    """Stored values -> modality values (Hounsfield units for CT): value * RescaleSlope + RescaleIntercept."""
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise _no_pixels(ds, path)
    try:
        arr = ds.pixel_array.astype(np.float32)
    except Exception as exc:  # a compressed transfer syntax without its decoder, or a truncated file
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        raise UserError(
            f"the pixel data of DICOM file '{path}' cannot be decoded ({type(exc).__name__})",
            f"transfer syntax {getattr(syntax, 'name', syntax)}: decompress it (e.g. gdcmconv --raw) "
            "or install pylibjpeg",
        ) from None
    arr = arr * _number(ds, "RescaleSlope", 1.0) + _number(ds, "RescaleIntercept", 0.0)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":  # inverted grey
        arr = arr.max() + arr.min() - arr
    return arr


def read_dicom(files: list[Path], where: Path) -> Scan:
    """One file (2D, or multi-frame) or a series sorted by position along the slice normal."""
    headers = [_dcmread(p, pixels=False) for p in files]
    if len(files) == 1:
        return _dicom_single(_dcmread(files[0], pixels=True), files[0])
    series = Counter(str(h.get("SeriesInstanceUID", "")) for h in headers)
    if len(series) > 1:
        raise UserError(
            f"folder '{where}' holds {len(series)} DICOM series ({len(files)} files)",
            "put each series in its own folder",
        )
    _same(
        headers,
        files,
        where,
        lambda h: (int(h.get("Rows", 0)), int(h.get("Columns", 0))),
        "image sizes",
        lambda v: f"{v[0]}x{v[1]}",
    )
    _same(headers, files, where, _pixel_spacing, "pixel spacings", lambda v: f"{v[0]:g}x{v[1]:g} mm")
    order, positions, normal = _slice_order(headers, files, where)
    slices = [_pixels_hu(_dcmread(files[i], pixels=True), files[i]) for i in order]
    if any(s.ndim != slices[0].ndim for s in slices):
        raise UserError(f"series '{where}' mixes single- and multi-channel images")
    volume = np.stack(
        [s.T if s.ndim == 2 else s.transpose(1, 0, 2) for s in slices], axis=2
    )  # (cols, rows, Z[, C])
    first = headers[order[0]]
    step = (positions[-1] - positions[0]) / (len(order) - 1) if positions is not None else None
    affine = _dicom_affine(first, step, normal)
    return canonical(volume, affine, "dicom", _patient_group(first))


def _same(headers, files, where: Path, key, what: str, show) -> None:
    values = Counter(key(h) for h in headers)
    if len(values) > 1:
        (common, n), (odd, m) = values.most_common(2)
        example = next(f.name for f, h in zip(files, headers, strict=True) if key(h) == odd)
        raise UserError(
            f"series '{where}' mixes {what}: {show(common)} ({n} files) and {show(odd)} "
            f"({m} file(s), e.g. '{example}')",
            "a series folder must hold one series of equal slices",
        )


def _slice_order(headers, files, where: Path):
    """Sort by ImagePositionPatient along the slice normal; fall back on InstanceNumber."""
    iop = [_vector(h, "ImageOrientationPatient", 6) for h in headers]
    ipp = [_vector(h, "ImagePositionPatient", 3) for h in headers]
    if all(v is not None for v in iop) and all(v is not None for v in ipp):
        if any(not np.allclose(v, iop[0], atol=1e-3) for v in iop):
            raise UserError(f"series '{where}' mixes slice orientations", "put each series in its own folder")
        normal = np.cross(iop[0][:3], iop[0][3:])
        along = np.array([float(p @ normal) for p in ipp])
        order = list(np.argsort(along, kind="stable"))
        gaps = np.diff(along[order])
        if np.any(gaps < 1e-3):
            i = int(np.argmin(gaps))
            raise UserError(
                f"series '{where}' has two slices at the same position ('{files[order[i]].name}' and "
                f"'{files[order[i + 1]].name}')",
                "the folder may hold a repeated acquisition; keep one",
            )
        median = float(np.median(gaps))
        if np.any(np.abs(gaps - median) > 0.1 * median + 1e-3):
            raise UserError(
                f"series '{where}' has uneven slice spacing ({gaps.min():.3g} to {gaps.max():.3g} mm)",
                "slices may be missing; a series must have equally spaced slices",
            )
        return order, [ipp[i] for i in order], normal
    numbers = [h.get("InstanceNumber") for h in headers]
    if any(n is None for n in numbers):
        raise UserError(
            f"series '{where}' has slices without ImagePositionPatient or InstanceNumber",
            "the slices cannot be put in order",
        )
    return list(np.argsort([int(n) for n in numbers], kind="stable")), None, None


def _dicom_affine(ds, step: np.ndarray | None, normal: np.ndarray | None) -> np.ndarray:
    """Voxel (column, row, slice) -> RAS mm from the DICOM geometry (which is LPS)."""
    iop = _vector(ds, "ImageOrientationPatient", 6)
    row_dir, col_dir = (
        (iop[:3], iop[3:]) if iop is not None else (np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
    )
    d_row, d_col = _pixel_spacing(ds)
    if step is None:
        thickness = _number(ds, "SpacingBetweenSlices") or _number(ds, "SliceThickness") or 1.0
        step = (normal if normal is not None else np.cross(row_dir, col_dir)) * thickness
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2] = row_dir * d_col, col_dir * d_row, step
    origin = _vector(ds, "ImagePositionPatient", 3)
    lps[:3, 3] = origin if origin is not None else 0.0
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def _dicom_single(ds, path: Path) -> Scan:
    arr = _pixels_hu(ds, path)
    frames = int(_number(ds, "NumberOfFrames", 1) or 1)
    colour = int(_number(ds, "SamplesPerPixel", 1) or 1) > 1
    if frames > 1:  # (frames, rows, cols[, C]) -> (cols, rows, frames[, C])
        volume = arr.transpose(2, 1, 0, 3) if colour else arr.transpose(2, 1, 0)
    else:  # (rows, cols[, C]) -> (cols, rows, 1[, C])
        volume = arr.transpose(1, 0, 2)[:, :, None, :] if colour else arr.T[:, :, None]
    return canonical(volume, _dicom_affine(ds, None, None), "dicom", _patient_group(ds))


def probe_dicom(files: list[Path]) -> ScanInfo:
    """The canonical geometry of a DICOM file or series from its first header, without pixel data."""
    first = _dcmread(files[0], pixels=False)
    rows, cols = int(_number(first, "Rows", 0)), int(_number(first, "Columns", 0))
    if not rows or not cols:
        raise _no_pixels(first, files[0])
    depth = len(files) if len(files) > 1 else int(_number(first, "NumberOfFrames", 1) or 1)
    channels = int(_number(first, "SamplesPerPixel", 1) or 1)
    d_row, d_col = _pixel_spacing(first)
    thickness = _number(first, "SpacingBetweenSlices") or _number(first, "SliceThickness") or 1.0
    return canonical_info(
        (cols, rows, depth),
        (d_col, d_row, thickness),
        _dicom_affine(first, None, None),
        channels,
        _patient_group(first),
    )


def series_uids(files: list[Path]) -> list[str]:
    """The SeriesInstanceUID of each file (empty when missing), from headers only."""
    return [str(_dcmread(p, pixels=False).get("SeriesInstanceUID", "")) for p in files]
