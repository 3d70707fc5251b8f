"""What a scan is, and what a file is: the base layer every reader shares.

A `Scan` holds the pixel data as float32 in one layout, channels first and (X, Y, Z) in the closest
RAS orientation (`nib.as_closest_canonical`), so a volume stored flipped or with swapped axes reads
the same as one stored RAS. The file's own affine is kept too, so a predicted mask can be written
back in the input's orientation. 2D images are volumes with Z = 1. A `ScanInfo` is the same geometry
read from headers only.

Privacy: a Scan holds pixel data and geometry only. No DICOM tag that identifies a person (names,
ids, dates, institutions) is copied out of pydicom; where the PatientID helps keep a patient's scans
in one split it is hashed, kept in memory, and never written or printed. Error messages name files,
never tag values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlkit.data.images import IMAGE_SUFFIXES

NIFTI_SUFFIXES = (".nii", ".nii.gz")
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")


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
    return path.suffix == "" and has_dicm_marker(path)


def has_dicm_marker(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def scan_name(path: Path) -> str:
    """The name that pairs an image with its mask: file name without its (double) suffix."""
    suffix = _suffix(path)
    return path.name[: -len(suffix)] if suffix and path.is_file() else path.name


# --- canonical orientation --------------------------------------------------------------------
def canonical(data: np.ndarray, affine: np.ndarray, kind: str, group: str | None = None) -> Scan:
    """Reorient (X, Y, Z[, C]) data to the closest RAS orientation and put channels first."""
    import nibabel as nib

    if data.ndim == 3:
        data = data[..., None]
    image = nib.Nifti1Image(data, affine)
    ras = nib.as_closest_canonical(image)
    array = np.moveaxis(np.asarray(ras.dataobj, dtype=np.float32), -1, 0)
    zooms = np.sqrt((ras.affine[:3, :3] ** 2).sum(0))
    return Scan(
        np.ascontiguousarray(np.nan_to_num(array)),
        tuple(float(z) for z in zooms),
        ras.affine,
        np.asarray(affine, dtype=float),
        tuple(data.shape[:3]),
        kind,
        group,
    )


def canonical_info(shape, spacing, affine: np.ndarray, channels: int, group: str | None = None) -> ScanInfo:
    """A ScanInfo for stored `shape`/`spacing` as the canonical (RAS) reorientation would give them."""
    import nibabel as nib

    axes = nib.io_orientation(affine)[:, 0].astype(int)
    canon_shape, canon_spacing = [0, 0, 0], [0.0, 0.0, 0.0]
    for stored, axis in enumerate(axes):
        canon_shape[axis], canon_spacing[axis] = int(shape[stored]), float(spacing[stored])
    return ScanInfo(tuple(canon_shape), channels, tuple(canon_spacing), group)
