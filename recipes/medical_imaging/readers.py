"""Reading any supported scan or mask: NIfTI, DICOM (via `dicom`), PNG/JPEG; header-only probes; finding
the scans in a folder. Every reader returns a canonical `Scan` (see `scans`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from dlkit_recipes.medical_imaging import dicom
from dlkit_recipes.medical_imaging.scans import (
    Scan,
    ScanInfo,
    canonical,
    canonical_info,
    describe_file,
    is_scan_file,
    scan_kind,
)

from dlkit.errors import UserError

MAX_LABEL_VALUES = 32  # more distinct values than this in a mask: it is an image, not class indices


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
    files = dicom.dicom_files(path) if kind == "series" else [path]
    return dicom.read_dicom(files, path)


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
    return canonical(data, image.affine, "nifti")


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


# --- cheap look at a scan before reading it -----------------------------------------------------
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
    return dicom.probe_dicom(dicom.dicom_files(path) if kind == "series" else [path])


def _probe_nifti(path: Path) -> ScanInfo:
    import nibabel as nib

    try:
        image = nib.load(str(path))
    except Exception as exc:
        raise _nifti_error(path, exc) from None
    shape = tuple(image.shape) + (1,) * max(0, 3 - len(image.shape))
    zooms = tuple(float(z) for z in image.header.get_zooms()[:3]) + (1.0,) * max(0, 3 - len(image.shape))
    channels = int(shape[3]) if len(shape) > 3 else 1
    return canonical_info(shape[:3], zooms, image.affine, channels)


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
        uids = dicom.series_uids(dicoms)
        found += dicoms if len(set(uids)) == len(uids) else [folder]
    else:
        found += dicoms
    for sub in (p for p in entries if p.is_dir()):
        found += find_scans(sub)
    return found
