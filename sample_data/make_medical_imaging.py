"""Generate the small synthetic CT-like phantom set used by dlkit's medical-imaging recipe.

Each case is a 32x32x16 volume in Hounsfield units: air around an elliptic "body" of noisy soft
tissue with a gently varying texture, a larger low-contrast "organ", and one or two bright
"vessels" running through every slice. Half the cases also hold one or two bright ellipsoid
"lesions"; their voxels form the segmentation mask and their presence the classification label.
Vessels are as bright as lesions and look like small discs in a single slice, so telling a lesion
apart takes its size and shape, not just its brightness.

Most cases are NIfTI files, stored in three orientations (RAS, flipped LPS-like, and with the first
two axes swapped) so that readers must reorient them. Two cases are DICOM CT series (one file per
slice, file names out of order, rescale slope/intercept, fake patient names, ids and dates in the
headers) that a reader must sort by position and convert to Hounsfield units. Every patient has two
scans, so a split that ignores `patient_id` leaks patients between train and test.

Output layout::

    OUT/images/case_000.nii.gz ... case_077.nii.gz     NIfTI volumes (int16, HU)
    OUT/images/case_078/, case_079/                     DICOM series (16 .dcm slices each)
    OUT/masks/case_XXX.nii.gz                           lesion masks (uint8, 0/1), canonical geometry
    OUT/labels.csv                                      path,mask,label,patient_id

Usage::

    python sample_data/make_medical_imaging.py [--out DIR] [--seed N] [--patients N]

Needs numpy, nibabel and pydicom. The output is deterministic for a given seed. A rerun deletes and
recreates images/, masks/ and labels.csv under OUT and leaves anything else (README.md) alone.
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np

SHAPE = (32, 32, 16)
SLICE_MM = 2.5
DICOM_CASES = 2  # the last cases are written as DICOM series
DEFAULT_OUT = Path(__file__).resolve().parent / "medical_imaging"


def _blur(noise: np.ndarray, passes: int = 3) -> np.ndarray:
    """A cheap low-pass: repeated averaging with the neighbours along every axis."""
    out = noise
    for _ in range(passes):
        out = sum(np.roll(out, shift, axis) for axis in range(out.ndim) for shift in (-1, 1)) / (2 * out.ndim)
    return out


def _ellipsoid(grid: tuple[np.ndarray, ...], centre, radii) -> np.ndarray:
    """Normalised radius: < 1 inside the ellipsoid."""
    return np.sqrt(sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True)))


def make_case(rng: np.random.Generator, lesion: bool, spacing_xy: float) -> tuple[np.ndarray, np.ndarray]:
    """(HU volume float, lesion mask uint8) in canonical (x, y, z) voxel order."""
    nx, ny, nz = SHAPE
    grid = np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz), indexing="ij")
    x, y, _ = grid
    body_c = (nx / 2 + rng.uniform(-1.5, 1.5), ny / 2 + rng.uniform(-1.5, 1.5))
    body_r = (rng.uniform(12.5, 14.5), rng.uniform(10.5, 13.5))
    body = ((x - body_c[0]) / body_r[0]) ** 2 + ((y - body_c[1]) / body_r[1]) ** 2 < 1
    tissue = 40 + rng.uniform(-15, 15)
    hu = np.where(body, tissue + 30 * _blur(rng.normal(size=SHAPE)), -1000.0)

    organ_c = (body_c[0] + rng.uniform(-5, 5), body_c[1] + rng.uniform(-4, 4), rng.uniform(4, nz - 4))
    organ = _ellipsoid(grid, organ_c, (rng.uniform(5, 7), rng.uniform(4, 6), rng.uniform(3, 5))) < 1
    hu = np.where(organ & body, hu + rng.uniform(15, 30), hu)

    for _ in range(rng.integers(1, 3)):  # vessels: bright tubes through every slice
        vc = (body_c[0] + rng.uniform(-8, 8), body_c[1] + rng.uniform(-6, 6))
        radius = rng.uniform(1.0, 1.6)
        tube = ((x - vc[0]) ** 2 + (y - vc[1]) ** 2) < radius**2
        hu = np.where(tube & body, tissue + rng.uniform(90, 130), hu)

    mask = np.zeros(SHAPE, dtype=np.uint8)
    if lesion:
        for _ in range(rng.integers(1, 3)):
            r_xy = rng.uniform(2.5, 4.5)
            radii = (
                r_xy * rng.uniform(0.8, 1.2),
                r_xy * rng.uniform(0.8, 1.2),
                max(1.2, r_xy * spacing_xy / SLICE_MM * rng.uniform(1.0, 1.6)),
            )
            centre = (body_c[0] + rng.uniform(-7, 7), body_c[1] + rng.uniform(-5, 5), rng.uniform(4, nz - 4))
            r = _ellipsoid(grid, centre, radii)
            inside = (r < 1) & body
            weight = np.clip((1.15 - r) / 0.3, 0, 1)  # soft edge, as partial-volume blur would give
            hu = hu + body * weight * rng.uniform(70, 110)
            mask[inside] = 1
    noise = rng.uniform(12, 25)
    hu = hu + rng.normal(0, noise, SHAPE) + rng.uniform(-10, 10)
    return np.clip(hu, -1024, 3000), mask


def _store(array: np.ndarray, spacing_xy: float, orientation: int) -> tuple[np.ndarray, np.ndarray]:
    """The canonical array re-stored as RAS (0), flipped x/y (1) or x/y swapped (2), with its affine."""
    nx, ny, _ = array.shape
    s = spacing_xy
    ras = np.diag([s, s, SLICE_MM, 1.0])
    ras[:3, 3] = [-s * nx / 2, -s * ny / 2, -20.0]
    if orientation == 0:
        return array, ras
    if orientation == 1:
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        flip[0, 3], flip[1, 3] = nx - 1, ny - 1  # stored index i' = n-1-i
        return array[::-1, ::-1].copy(), ras @ flip
    swap = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
    return array.transpose(1, 0, 2).copy(), ras @ swap


def write_nifti(
    hu: np.ndarray, mask: np.ndarray, image: Path, mask_path: Path, spacing_xy: float, orientation: int
) -> None:
    data, affine = _store(hu.round().astype(np.int16), spacing_xy, orientation)
    nib.save(nib.Nifti1Image(data, affine), image)
    mdata, maffine = _store(mask, spacing_xy, orientation)
    nib.save(nib.Nifti1Image(mdata, maffine), mask_path)


def write_dicom_series(
    hu: np.ndarray,
    mask: np.ndarray,
    folder: Path,
    mask_path: Path,
    spacing_xy: float,
    index: int,
    rng: np.random.Generator,
) -> None:
    """One CT slice per file; pixel (row j, column i) of slice k is canonical voxel (nx-1-i, ny-1-j, k).

    With ImageOrientationPatient (1,0,0,0,1,0) the columns run to the patient's left and the rows to
    the back (DICOM's LPS), which is the canonical RAS volume flipped along x and y.
    """
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True)
    slope, intercept = (1.0, -1024.0) if index % 2 == 0 else (0.5, -1024.0)
    nx, ny, nz = hu.shape
    study_uid = generate_uid(entropy_srcs=[f"dlkit-study-{index}"])
    series_uid = generate_uid(entropy_srcs=[f"dlkit-series-{index}"])
    origin = np.array([-spacing_xy * nx / 2, -spacing_xy * ny / 2, -20.0])
    names = rng.permutation(nz)  # file names out of slice order: readers must sort by position
    for k in range(nz):
        pixels = hu[::-1, ::-1, k].T
        stored = np.round((pixels - intercept) / slope).astype(np.uint16)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[f"dlkit-{index}-{k}"])
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.PatientName = f"PHANTOM^CASE{index:03d}"
        ds.PatientID = f"FAKE-{index:05d}"
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "O"
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = "20240115"
        ds.StudyTime = "093000"
        ds.AccessionNumber = f"ACC{index:06d}"
        ds.InstitutionName = "Example General Hospital"
        ds.ReferringPhysicianName = "EXAMPLE^DOCTOR"
        ds.Modality = "CT"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SeriesNumber, ds.InstanceNumber = 1, nz - k  # instance order runs head to feet
        ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[f"dlkit-frame-{index}"])
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [float(v) for v in origin + [0, 0, k * SLICE_MM]]
        ds.SliceLocation = float(origin[2] + k * SLICE_MM)
        ds.PixelSpacing = [spacing_xy, spacing_xy]
        ds.SliceThickness = SLICE_MM
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = slope, intercept, "HU"
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.PixelData = stored.tobytes()
        ds.save_as(folder / f"IM{names[k]:04d}.dcm", enforce_file_format=True)
    lps = np.diag([spacing_xy, spacing_xy, SLICE_MM, 1.0])
    lps[:3, 3] = origin
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    canonical = nib.as_closest_canonical(nib.Nifti1Image(mask[::-1, ::-1].copy(), ras))
    nib.save(nib.Nifti1Image(np.asarray(canonical.dataobj), canonical.affine), mask_path)


def reset(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("images", "masks"):
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir()


def generate(out: Path, seed: int = 0, patients: int = 40) -> int:
    """Write `patients` x 2 cases (half with lesions); return the number of cases."""
    rng = np.random.default_rng(seed)
    reset(out)
    cases = patients * 2
    lesions = rng.permutation(np.arange(cases) % 2 == 0)
    rows = []
    for i in range(cases):
        spacing = float(np.round(rng.uniform(0.8, 1.2), 3))
        hu, mask = make_case(rng, bool(lesions[i]), spacing)
        mask_path = out / "masks" / f"case_{i:03d}.nii.gz"
        if i >= cases - DICOM_CASES:
            image = out / "images" / f"case_{i:03d}"
            write_dicom_series(hu, mask, image, mask_path, spacing, i, rng)
        else:
            image = out / "images" / f"case_{i:03d}.nii.gz"
            write_nifti(hu, mask, image, mask_path, spacing, orientation=i % 3)
        rows.append(
            {
                "path": image.relative_to(out).as_posix(),
                "mask": mask_path.relative_to(out).as_posix(),
                "label": "present" if lesions[i] else "absent",
                "patient_id": f"P{i // 2:03d}",
            }
        )
    with open(out / "labels.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "mask", "label", "patient_id"])
        writer.writeheader()
        writer.writerows(rows)
    return cases


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--patients", type=int, default=40, help="patients, two scans each (default: 40)")
    args = parser.parse_args(argv)
    if args.patients < 4:
        parser.error("--patients must be at least 4")
    cases = generate(args.out, args.seed, args.patients)
    print(f"wrote {cases} cases ({cases - DICOM_CASES} NIfTI, {DICOM_CASES} DICOM series) to {args.out}")


if __name__ == "__main__":
    main()
