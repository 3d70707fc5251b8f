"""Medical images in, arrays out: DICOM, NIfTI and PNG/JPEG, with the geometry kept and nothing else.

Every reader returns a `Scan`: the pixel data as float32 in one layout, channels first and
(X, Y, Z) in the closest RAS orientation (`nib.as_closest_canonical`), so a volume stored flipped or
with swapped axes reads the same as one stored RAS. The file's own affine is kept too, so a
predicted mask can be written back in the input's orientation. 2D images are volumes with Z = 1.

Privacy: a Scan holds pixel data and geometry only. No DICOM tag that identifies a person (names,
ids, dates, institutions) is copied out of pydicom; where the PatientID helps keep a patient's scans
in one split it is hashed, kept in memory, and never written or printed. Error messages name files,
never tag values.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlkit.data.images import IMAGE_SUFFIXES
from dlkit.data.splits import stratified_split
from dlkit.errors import UserError

NIFTI_SUFFIXES = (".nii", ".nii.gz")
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
# CT windows as (level, width) in Hounsfield units, the usual radiology presets.
WINDOWS = {
    "lung": (-600.0, 1500.0),
    "soft_tissue": (40.0, 400.0),
    "brain": (40.0, 80.0),
    "bone": (400.0, 1800.0),
}
MAX_LABEL_VALUES = 32  # more distinct values than this in a mask: it is an image, not class indices


@dataclass
class Scan:
    """Pixel data (C, X, Y, Z) float32 in canonical orientation, plus what is needed to map it back."""

    array: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray  # canonical voxel -> RAS mm
    source_affine: np.ndarray  # the file's voxel -> RAS mm (DICOM: derived from its geometry tags)
    source_shape: tuple[int, ...]  # spatial shape as stored in the file
    kind: str  # "nifti", "dicom" or "image"
    group: str | None = None  # hash of the DICOM PatientID: in memory only, never written

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape[1:])

    @property
    def is_volume(self) -> bool:
        return self.array.shape[-1] > 1


# --- what a file is ---------------------------------------------------------------------------
def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def describe_file(path: Path) -> str:
    """What a file looks like from its first bytes, for messages about files that are not scans."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        return f"an unreadable file ({exc.strerror})"
    if not head:
        return "an empty file"
    signatures = [
        (b"\x89PNG", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"%PDF", "a PDF document"),
        (b"PK\x03\x04", "a ZIP archive"),
        (b"\x1f\x8b", "gzip-compressed data"),
        (b"BM", "a BMP image"),
        (b"II*\x00", "a TIFF image"),
        (b"MM\x00*", "a TIFF image"),
        (b"\x93NUMPY", "a NumPy array file"),
        (b"\x89HDF", "an HDF5 file"),
    ]
    for magic, what in signatures:
        if head.startswith(magic):
            return what
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "a DICOM file"
    if len(head) >= 348 and head[344:347] in (b"n+1", b"ni1"):
        return "a NIfTI-1 file"
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return f"binary data of an unknown kind ({path.stat().st_size} bytes)"


def scan_kind(path: Path) -> str:
    """'nifti', 'image', 'dicom' (a file) or 'series' (a folder of DICOM files)."""
    if path.is_dir():
        return "series"
    suffix = _suffix(path)
    if suffix in NIFTI_SUFFIXES:
        return "nifti"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    return "dicom"


def is_scan_file(path: Path) -> bool:
    """Files worth trying as scans when listing a folder: known suffixes, or DICOM's 'DICM' marker."""
    if path.name.startswith(".") or not path.is_file():
        return False
    if _suffix(path) in NIFTI_SUFFIXES + DICOM_SUFFIXES or path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    return path.suffix == "" and _has_dicm(path)


def _has_dicm(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def scan_name(path: Path) -> str:
    """The name that pairs an image with its mask: file name without its (double) suffix."""
    suffix = _suffix(path)
    return path.name[: -len(suffix)] if suffix and path.is_file() else path.name


# --- readers ----------------------------------------------------------------------------------
def read_scan(path: Path) -> Scan:
    """Any supported scan: NIfTI file, DICOM file, DICOM series folder, or PNG/JPEG image."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"scan '{path}' does not exist")
    kind = scan_kind(path)
    if kind == "nifti":
        return read_nifti(path)
    if kind == "image":
        return read_image(path)
    files = dicom_files(path) if kind == "series" else [path]
    return read_dicom(files, path)


def _canonical(data: np.ndarray, affine: np.ndarray, kind: str, group: str | None = None) -> Scan:
    """Reorient (X, Y, Z[, C]) data to the closest RAS orientation and put channels first."""
    import nibabel as nib

    if data.ndim == 3:
        data = data[..., None]
    image = nib.Nifti1Image(data, affine)
    canonical = nib.as_closest_canonical(image)
    array = np.moveaxis(np.asarray(canonical.dataobj, dtype=np.float32), -1, 0)
    zooms = np.sqrt((canonical.affine[:3, :3] ** 2).sum(0))
    return Scan(
        np.ascontiguousarray(np.nan_to_num(array)),
        tuple(float(z) for z in zooms),
        canonical.affine,
        np.asarray(affine, dtype=float),
        tuple(data.shape[:3]),
        kind,
        group,
    )


def _nifti_error(path: Path, exc: Exception) -> UserError:
    looks = describe_file(path)
    detail = f" ({type(exc).__name__}: {exc})" if "NIfTI" in looks else ""
    return UserError(
        f"'{path}' is not a readable NIfTI file: it looks like {looks}{detail}",
        "give .nii/.nii.gz volumes, DICOM files or series folders, or PNG/JPEG images",
    )


def read_nifti(path: Path) -> Scan:
    import nibabel as nib

    try:
        image = nib.load(str(path))
        data = np.asarray(image.dataobj, dtype=np.float32)  # applies scl_slope / scl_inter
    except Exception as exc:  # nibabel raises many kinds for a damaged or foreign file
        raise _nifti_error(path, exc) from None
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim > 4:
        raise UserError(
            f"NIfTI '{path}' has {data.ndim} dimensions {data.shape}",
            "give 3D volumes, or 4D with channels (e.g. MRI sequences) last",
        )
    return _canonical(data, image.affine, "nifti")


def read_image(path: Path, channels: int | None = None) -> Scan:
    """PNG/JPEG/...: greyscale (any bit depth) -> 1 channel, colour -> 3; rows run along X."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                arr = np.asarray(img, dtype=np.float32)
            elif img.mode in ("L", "1", "LA"):
                arr = np.asarray(img.convert("L"), dtype=np.float32)
            else:
                arr = np.asarray(img.convert("RGB"), dtype=np.float32)
    except (OSError, UnidentifiedImageError, ValueError):
        raise UserError(f"'{path}' is not a readable image: it looks like {describe_file(path)}") from None
    arr = arr[..., None] if arr.ndim == 2 else arr
    if channels is not None and arr.shape[-1] != channels:
        arr = arr.mean(-1, keepdims=True) if channels == 1 else np.repeat(arr[..., :1], channels, -1)
    array = np.moveaxis(arr, -1, 0)[..., None]
    return Scan(np.ascontiguousarray(array), (1.0, 1.0, 1.0), np.eye(4), np.eye(4), array.shape[1:], "image")


def read_label_image(path: Path) -> np.ndarray:
    """A 2D mask as stored: palette indices for 'P' images, grey values otherwise; (X, Y, 1)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.mode in ("RGB", "RGBA"):
                rgb = np.asarray(img.convert("RGB"))
                if not (
                    np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])
                ):
                    raise UserError(
                        f"mask '{path}' is a colour image",
                        "save masks as single-channel PNGs of class indices 0, 1, 2, ...",
                    )
                arr = rgb[..., 0]
            else:
                arr = np.asarray(img if img.mode in ("P", "L", "I", "I;16", "F") else img.convert("L"))
    except (OSError, UnidentifiedImageError, ValueError):
        raise UserError(
            f"mask '{path}' is not a readable image: it looks like {describe_file(path)}"
        ) from None
    return np.asarray(arr, dtype=np.float32)[:, :, None]


def read_mask(path: Path) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Mask labels (X, Y, Z) in canonical orientation, as stored (validated later), and the stored shape."""
    if scan_kind(path) == "image":
        labels = read_label_image(path)
        return labels, labels.shape
    scan = read_scan(path)
    if scan.array.shape[0] != 1:
        raise UserError(
            f"mask '{path}' has {scan.array.shape[0]} channels", "a mask holds one label per voxel"
        )
    return scan.array[0], scan.source_shape


def mask_values(labels: np.ndarray, path: Path) -> set[int]:
    """The label values of a mask; refuses values that cannot be class indices."""
    values = np.unique(labels)
    if len(values) > MAX_LABEL_VALUES:
        sample = ", ".join(f"{v:g}" for v in values[:6])
        raise UserError(
            f"mask '{path}' holds {len(values)} distinct values (e.g. {sample}, ...): it looks like an "
            "image, not class indices",
            "masks must hold class indices 0, 1, 2, ... (JPEG compression changes values: use PNG/NIfTI)",
        )
    bad = [v for v in values if v < 0 or v != np.round(v)]
    if bad:
        raise UserError(
            f"mask '{path}' holds the value {bad[0]:g}, which is not a class index",
            "masks must hold whole numbers 0, 1, 2, ... (0 = background)",
        )
    return {int(v) for v in values}


# --- DICOM ------------------------------------------------------------------------------------
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


def find_scans(folder: Path) -> list[Path]:
    """Scans under a folder: NIfTI/image files, single DICOM images, and DICOM series (one per folder).

    A folder whose DICOM files share one SeriesInstanceUID is one series; DICOM files that each carry
    their own (a folder of X-rays) are separate images; sub-folders are searched the same way.
    """
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    files = [p for p in entries if is_scan_file(p) and p.name.upper() != "DICOMDIR"]
    dicoms = [p for p in files if scan_kind(p) == "dicom"]
    found = [p for p in files if scan_kind(p) != "dicom"]
    if len(dicoms) > 1:
        uids = [str(_dcmread(p, pixels=False).get("SeriesInstanceUID", "")) for p in dicoms]
        found += dicoms if len(set(uids)) == len(uids) else [folder]
    else:
        found += dicoms
    for sub in (p for p in entries if p.is_dir()):
        found += find_scans(sub)
    return found


def _dcmread(path: Path, pixels: bool):
    import pydicom
    from pydicom.errors import InvalidDicomError

    not_dicom = UserError(
        f"'{path}' is not a readable DICOM file: it looks like {describe_file(path)}",
        "give DICOM files or series folders, .nii/.nii.gz volumes, or PNG/JPEG images",
    )
    marked = _has_dicm(path)
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
    return _canonical(volume, affine, "dicom", _patient_group(first))


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
    return _canonical(volume, _dicom_affine(ds, None, None), "dicom", _patient_group(ds))


# --- cheap look at a scan before reading it -----------------------------------------------------
@dataclass
class ScanInfo:
    """Canonical spatial shape, channels, spacing and (DICOM) patient group, from headers only."""

    shape: tuple[int, int, int]
    channels: int
    spacing: tuple[float, float, float]
    group: str | None = None

    @property
    def is_volume(self) -> bool:
        return self.shape[-1] > 1


def probe(path: Path) -> ScanInfo:
    """What `read_scan` would return, without decoding pixel data (used to plan splits and sizes)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"scan '{path}' does not exist")
    kind = scan_kind(path)
    if kind == "nifti":
        return _probe_nifti(path)
    if kind == "image":
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                channels = 1 if img.mode in ("I;16", "I;16B", "I;16L", "I", "F", "L", "1", "LA") else 3
                return ScanInfo((img.height, img.width, 1), channels, (1.0, 1.0, 1.0))
        except (OSError, UnidentifiedImageError, ValueError):
            raise UserError(
                f"'{path}' is not a readable image: it looks like {describe_file(path)}"
            ) from None
    files = dicom_files(path) if kind == "series" else [path]
    first = _dcmread(files[0], pixels=False)
    rows, cols = int(_number(first, "Rows", 0)), int(_number(first, "Columns", 0))
    if not rows or not cols:
        raise _no_pixels(first, files[0])
    depth = len(files) if len(files) > 1 else int(_number(first, "NumberOfFrames", 1) or 1)
    channels = int(_number(first, "SamplesPerPixel", 1) or 1)
    d_row, d_col = _pixel_spacing(first)
    thickness = _number(first, "SpacingBetweenSlices") or _number(first, "SliceThickness") or 1.0
    return _canonical_info(
        (cols, rows, depth),
        (d_col, d_row, thickness),
        _dicom_affine(first, None, None),
        channels,
        _patient_group(first),
    )


def _probe_nifti(path: Path) -> ScanInfo:
    import nibabel as nib

    try:
        image = nib.load(str(path))
    except Exception as exc:
        raise _nifti_error(path, exc) from None
    shape = tuple(image.shape) + (1,) * max(0, 3 - len(image.shape))
    zooms = tuple(float(z) for z in image.header.get_zooms()[:3]) + (1.0,) * max(0, 3 - len(image.shape))
    channels = int(shape[3]) if len(shape) > 3 else 1
    return _canonical_info(shape[:3], zooms, image.affine, channels)


def _canonical_info(shape, spacing, affine: np.ndarray, channels: int, group: str | None = None) -> ScanInfo:
    import nibabel as nib

    axes = nib.io_orientation(affine)[:, 0].astype(int)
    canon_shape, canon_spacing = [0, 0, 0], [0.0, 0.0, 0.0]
    for stored, canonical in enumerate(axes):
        canon_shape[canonical], canon_spacing[canonical] = int(shape[stored]), float(spacing[stored])
    return ScanInfo(tuple(canon_shape), channels, tuple(canon_spacing), group)


# --- intensity --------------------------------------------------------------------------------
def looks_like_ct(scan: Scan) -> bool:
    """Hounsfield units: air at about -1000 HU. MRI, PET, X-ray and photos have nothing below -500."""
    flat = scan.array.ravel()
    return float(np.percentile(flat[:: max(1, flat.size // 200_000)], 1)) <= -500


def window_range(name: str, level: float, width: float) -> list[float] | None:
    """A window preset (or 'custom' level/width) as [low, high] HU; None for 'none'."""
    if name == "none":
        return None
    if name != "custom":
        level, width = WINDOWS[name]
    if width <= 0:
        raise UserError(f"data.window_width must be positive, got {width}")
    return [level - width / 2, level + width / 2]


def normalise_intensity(array: np.ndarray, spec: dict) -> np.ndarray:
    """Per channel: window (clip to [low, high] and scale to [0, 1]) or percentile clip; then z-score.

    `spec` = {"window": [low, high] | None, "percentiles": [low, high] | None, "zscore": bool}.
    Statistics are per image, so scans from different scanners land on the same scale.
    """
    out = np.empty_like(array, dtype=np.float32)
    for c in range(array.shape[0]):
        x = array[c].astype(np.float32)
        if spec.get("window"):
            lo, hi = spec["window"]
            x = (np.clip(x, lo, hi) - lo) / (hi - lo)
        elif spec.get("percentiles"):
            flat = x.ravel()
            sample = flat[:: max(1, flat.size // 1_000_000)]
            lo, hi = np.percentile(sample, spec["percentiles"])
            x = np.clip(x, lo, hi)
        if spec.get("zscore"):
            x = (x - x.mean()) / max(float(x.std()), 1e-6)
        out[c] = x
    return out


# --- geometry: to the model's grid and back ---------------------------------------------------
def _interpolate(t, shape: tuple[int, ...], labels: bool):
    from torch.nn import functional as F

    if tuple(t.shape[1:]) == tuple(shape):
        return t
    mode = "nearest-exact" if labels else ("bilinear" if len(shape) == 2 else "trilinear")
    kwargs = {} if labels else {"align_corners": False}
    return F.interpolate(t[None].float(), size=tuple(shape), mode=mode, **kwargs)[0]


def _pad_or_crop(t, shape: tuple[int, ...], fill: float):
    """Centre pad (with `fill`) or crop every spatial axis to `shape`."""
    from torch.nn import functional as F

    for axis, want in enumerate(shape, start=1):
        have = t.shape[axis]
        if have > want:
            start = (have - want) // 2
            t = t.narrow(axis, start, want)
        elif have < want:
            before = (want - have) // 2
            pad = [0, 0] * (t.dim() - axis - 1) + [before, want - have - before]
            t = F.pad(t, pad, value=fill)
    return t


def spacing_shape(shape: tuple[int, ...], spacing: tuple[float, ...], target: list[float]) -> tuple[int, ...]:
    """The shape after resampling from `spacing` to `target` mm."""
    return tuple(max(1, int(round(s * sp / t))) for s, sp, t in zip(shape, spacing, target, strict=True))


def to_grid(
    array: np.ndarray,
    spacing: tuple[float, ...],
    size: list[int],
    target_spacing: list[float] | None,
    labels: bool = False,
):
    """(C, *spatial) -> tensor (C, *size): resample to the target spacing and centre pad/crop, or resize."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(array))
    if target_spacing:
        t = _interpolate(t, spacing_shape(t.shape[1:], spacing, target_spacing), labels)
        return _pad_or_crop(t, tuple(size), 0.0 if labels else float(t.min()))
    return _interpolate(t, tuple(size), labels)


def from_grid(labels, shape: tuple[int, ...], spacing: tuple[float, ...], target_spacing: list[float] | None):
    """Predicted labels (*size) back to the scan's own spatial `shape` (the inverse of `to_grid`)."""
    t = labels[None]
    if target_spacing:
        t = _pad_or_crop(t, spacing_shape(shape, spacing, target_spacing), 0.0)
    return _interpolate(t, tuple(shape), labels=True)[0]


# --- writing masks ----------------------------------------------------------------------------
def write_nifti_mask(labels: np.ndarray, scan: Scan, path: Path) -> None:
    """Canonical (X, Y, Z) labels -> the input's own orientation, saved with the input's affine."""
    import nibabel as nib

    image = nib.Nifti1Image(labels.astype(np.uint8), scan.affine)
    back = nib.orientations.ornt_transform(
        nib.io_orientation(scan.affine), nib.io_orientation(scan.source_affine)
    )
    data = np.asarray(image.as_reoriented(back).dataobj, dtype=np.uint8)
    nib.save(nib.Nifti1Image(data.reshape(scan.source_shape), scan.source_affine), str(path))


def write_png_mask(labels: np.ndarray, path: Path, scale: int = 1) -> None:
    from PIL import Image

    Image.fromarray((labels[:, :, 0] * scale).astype(np.uint8), "L").save(path)


def write_overlay(image: np.ndarray, labels: np.ndarray, path: Path) -> None:
    """A PNG of the slice with the most foreground: the scan in grey, each class in its own colour."""
    from PIL import Image

    z = (
        int(np.argmax((labels > 0).reshape(-1, labels.shape[-1]).sum(0)))
        if labels.any()
        else labels.shape[-1] // 2
    )
    grey = image[0, :, :, z]
    lo, hi = np.percentile(grey, [1, 99]) if grey.size else (0, 1)
    grey = np.clip((grey - lo) / max(hi - lo, 1e-6), 0, 1)
    rgb = np.repeat(grey[..., None] * 255, 3, -1)
    colours = np.array([[255, 60, 60], [60, 200, 60], [60, 120, 255], [240, 200, 40], [200, 60, 220]], float)
    sl = labels[:, :, z]
    for k in range(1, int(sl.max()) + 1):
        hit = sl == k
        rgb[hit] = 0.45 * rgb[hit] + 0.55 * colours[(k - 1) % len(colours)]
    if image.shape[-1] > 1:  # volumes: show with anterior up, as radiology viewers do
        rgb = np.rot90(rgb)
    picture = Image.fromarray(rgb.astype(np.uint8), "RGB")
    factor = max(1, 256 // max(picture.size))
    picture.resize((picture.width * factor, picture.height * factor), Image.NEAREST).save(path)


# --- patient-level splits ---------------------------------------------------------------------
def group_split(
    groups: list[str],
    labels: list,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> tuple[list[int], list[int], list[int]]:
    """Indices for train/val/test with every group (patient) in exactly one split.

    Groups are stratified by their most common label, so each split keeps the class mix. The
    fractions count groups, not examples. With one example per group this is `stratified_split`.
    """
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    names = list(members)
    group_labels = [Counter(str(labels[i]) for i in members[g]).most_common(1)[0][0] for g in names]
    parts = stratified_split(group_labels, val_fraction, test_fraction, seed)
    return tuple(sorted(i for g in part for i in members[names[g]]) for part in parts)


def leaking_groups(groups: list[str | None], splits: list[str | None]) -> dict[str, set[str]]:
    """Groups (patients) found in more than one of the user's splits."""
    seen: dict[str, set[str]] = {}
    for g, s in zip(groups, splits, strict=True):
        if g is not None and s is not None:
            seen.setdefault(g, set()).add(s)
    return {g: s for g, s in seen.items() if len(s) > 1}
